"""Shared input-shape checks for the networks: one-line ``ValueError`` naming what the
module expected and the shape it got."""

from __future__ import annotations

from torch import Tensor


def check_image_batch(owner: str, x: Tensor, channels: int, size: int | None = None) -> Tensor:
    """Raise ``ValueError`` unless ``x`` is (B, channels, size, size) (any size if ``None``)."""
    want = f"(B, {channels}, {size if size is not None else 'H'}, {size if size is not None else 'W'})"
    if x.ndim != 4 or x.shape[1] != channels or (size is not None and tuple(x.shape[2:]) != (size, size)):
        raise ValueError(f"{owner} expects input of shape {want}, got {tuple(x.shape)}")
    return x


def check_vector_batch(owner: str, x: Tensor, dim: int) -> Tensor:
    """Raise ``ValueError`` unless ``x`` is (B, dim)."""
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{owner} expects input of shape (B, {dim}), got {tuple(x.shape)}")
    return x


def check_int(name: str, value: int, minimum: int = 1) -> int:
    """Raise ``ValueError`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
