"""Shared plumbing of the classical estimators (PCA, K-means, GMM): input conversion,
validation, fitted-state checks and batched squared distances."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_finite, check_ndim


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``None`` (keep the input's float type), ``torch.float32/64`` or ``"float32"/"float64"``."""
    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating type, got {dtype}")
        return dtype
    names = {"float32": torch.float32, "float64": torch.float64}
    if dtype not in names:
        raise ValueError(f"dtype must be one of 'float32', 'float64' or a torch float dtype; got {dtype!r}")
    return names[dtype]


def as_data(name: str, data: Any, *, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None, ndim: int = 2) -> Tensor:
    """Convert ``data`` (numpy array, tensor or nested list) to a float tensor (N, D).

    ``dtype=None`` keeps a floating input's precision (numpy float64 stays float64) and
    turns integer input into float32. Raises a one-line ``ValueError`` on the wrong number
    of dimensions, an empty array or NaN/Inf.
    """
    if isinstance(data, Tensor):
        tensor = data.detach()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(data))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be an array of numbers ({err})") from err
    if dtype is None:
        dtype = tensor.dtype if tensor.is_floating_point() else torch.float32
    tensor = tensor.to(dtype=dtype, device=device)
    check_ndim(name, tensor, ndim)
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    check_finite(name, tensor)
    return tensor


def check_fitted(estimator: Any, attribute: str) -> None:
    """Raise ``ValueError`` if ``estimator.fit`` has not been called yet."""
    if getattr(estimator, attribute, None) is None:
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet; call fit(y) first")


def check_features(name: str, y: Tensor, expected: int) -> None:
    if y.shape[-1] != expected:
        raise ValueError(f"{name} has {y.shape[-1]} features but the model was fitted with {expected}")


def squared_norms(a: Tensor) -> Tensor:
    """‖a_i‖² per row of a (N, D), (N,): the norm, then its square (one fused reduction; the
    product a * a summed makes an N × D temporary and runs 5× slower on 4,000 × 3,072)."""
    return torch.linalg.vector_norm(a, dim=-1).square()


def squared_distances(a: Tensor, b: Tensor, b_sq: Tensor | None = None,
                      a_sq: Tensor | None = None) -> Tensor:
    """‖a_i − b_j‖² for a (N, D), b (K, D) → (N, K) via ‖a‖² − 2 a·b + ‖b‖² (one matmul),
    clamped at 0 against round-off. ``a_sq`` (N,), ``b_sq`` (K,): precomputed norms."""
    if b_sq is None:
        b_sq = squared_norms(b)
    if a_sq is None:
        a_sq = squared_norms(a)
    dist = torch.addmm(b_sq.unsqueeze(0), a, b.T, alpha=-2.0)
    dist += a_sq.unsqueeze(1)
    return dist.clamp_min_(0.0)


def make_generator(seed: int | torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed (``None`` → a fresh non-deterministic seed)."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen
