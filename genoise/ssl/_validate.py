"""Shape checks shared by the SSL losses: one-line ``ValueError`` messages that print
the shapes received (a batch of one has no statistics; two views must match)."""

from __future__ import annotations

from torch import Tensor

from genoise._checks import check_finite, check_ndim


def check_embedding(name: str, z: Tensor, *, min_batch: int = 2) -> Tensor:
    """``z`` must be a finite (B, D) tensor with B >= ``min_batch``."""
    check_ndim(name, z, 2)
    if z.shape[0] < min_batch:
        raise ValueError(f"{name} has batch size {z.shape[0]}; this loss needs at least {min_batch} "
                         f"samples (batch statistics are undefined for one sample)")
    return check_finite(name, z)


def check_views(z_a: Tensor, z_b: Tensor, *, min_batch: int = 2,
                names: tuple[str, str] = ("z_a", "z_b")) -> int:
    """Two views' embeddings: same (B, D) shape; returns B."""
    check_embedding(names[0], z_a, min_batch=min_batch)
    check_embedding(names[1], z_b, min_batch=min_batch)
    if z_a.shape != z_b.shape:
        raise ValueError(f"views have different shapes: {names[0]} {tuple(z_a.shape)} vs "
                         f"{names[1]} {tuple(z_b.shape)}")
    return z_a.shape[0]
