"""Input validation shared by every package: one-line ``ValueError`` messages that name
the problem (asserts vanish under ``python -O``, so we never use them for this)."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
