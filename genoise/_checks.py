"""Input validation shared by every package: one-line ``ValueError`` messages that name
the problem (asserts vanish under ``python -O``, so we never use them for this).

One module for every check of a number (:func:`check_int`, :func:`check_positive`), a
choice (:func:`check_choice`), a tensor's values (:func:`check_finite`, :func:`has_nan`)
and a shape: generic (:func:`check_ndim`, :func:`check_same_batch`), a network's input
(:func:`check_image_batch`, :func:`check_vector_batch`) and an embedding batch of the SSL
losses (:func:`check_embedding`, :func:`check_views`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def check_finite(name: str, tensor: Tensor) -> Tensor:
    """Raise ``ValueError`` if ``tensor`` holds NaN or Inf.

    Fast path: NaN and ±Inf propagate through addition, so a finite sum proves every element
    finite — one reduction instead of ``isfinite(x).all()``'s four elementwise passes (10–20×
    faster on a (256, 4096) tensor). Only a non-finite sum (a bad value, or a float overflow
    of a large finite tensor) runs the exact elementwise test.
    """
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return tensor
    data = tensor.detach()
    if bool(torch.isfinite(data.sum())):
        return tensor
    finite = torch.isfinite(data)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s); clean the input first")
    return tensor


def has_nan(tensor: Tensor) -> bool:
    """Whether a floating-point ``tensor`` holds a NaN (±Inf allowed), with the fast path of
    :func:`check_finite`: the sum is NaN whenever an element is, so a non-NaN sum settles it."""
    data = tensor.detach()
    return bool(torch.isnan(data.sum())) and bool(torch.isnan(data).any())


def check_ndim(name: str, tensor: Tensor, ndim: int | Sequence[int]) -> Tensor:
    """Raise ``ValueError`` unless ``tensor.ndim`` is ``ndim`` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if tensor.ndim not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} dimension(s), got shape {tuple(tensor.shape)}")
    return tensor


def check_same_batch(**tensors: Tensor | None) -> int:
    """Raise ``ValueError`` unless every given tensor has the same leading size."""
    sizes = {k: t.shape[0] for k, t in tensors.items() if t is not None and t.ndim > 0}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"batch sizes differ ({shown})")
    return next(iter(sizes.values()), 0)


def check_positive(name: str, value: float, *, allow_zero: bool = False,
                   allow_inf: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is > 0 (or >= 0), finite unless allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_int(name: str, value: Any, min: int | None = 1, max: int | None = None) -> int:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) in [``min``, ``max``]
    (a bound of ``None`` is open); returns it as a Python ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        bounds = [f">= {min}"] * (min is not None) + [f"<= {max}"] * (max is not None)
        raise ValueError(f"{name} must be an integer {' and '.join(bounds)}, got {value}")
    return value


def check_image_batch(owner: str, x: Tensor, channels: int, size: int | None = None) -> Tensor:
    """Raise ``ValueError`` unless ``x`` is (B, channels, size, size) (any size if ``None``)."""
    side = size if size is not None else "H"
    want = f"(B, {channels}, {side}, {size if size is not None else 'W'})"
    if x.ndim != 4 or x.shape[1] != channels or (size is not None and tuple(x.shape[2:]) != (size, size)):
        raise ValueError(f"{owner} expects input of shape {want}, got {tuple(x.shape)}")
    return x


def check_vector_batch(owner: str, x: Tensor, dim: int) -> Tensor:
    """Raise ``ValueError`` unless ``x`` is (B, dim)."""
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{owner} expects input of shape (B, {dim}), got {tuple(x.shape)}")
    return x


def check_embedding(name: str, z: Tensor, *, min_batch: int = 2) -> Tensor:
    """``z`` must be a finite (B, D) tensor with B >= ``min_batch`` (a batch of one has no
    statistics for the SSL losses)."""
    check_ndim(name, z, 2)
    if z.shape[0] < min_batch:
        raise ValueError(f"{name} has batch size {z.shape[0]}; this loss needs at least {min_batch} "
                         f"samples (batch statistics are undefined for one sample)")
    return check_finite(name, z)


def check_views(z_a: Tensor, z_b: Tensor, *, min_batch: int = 2,
                names: tuple[str, str] = ("z_a", "z_b")) -> int:
    """Two views' embeddings: same (B, D) shape, each as :func:`check_embedding`; returns B."""
    check_embedding(names[0], z_a, min_batch=min_batch)
    check_embedding(names[1], z_b, min_batch=min_batch)
    if z_a.shape != z_b.shape:
        raise ValueError(f"views have different shapes: {names[0]} {tuple(z_a.shape)} vs "
                         f"{names[1]} {tuple(z_b.shape)}")
    return z_a.shape[0]
