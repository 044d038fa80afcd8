"""The vector observation: the ``k`` nearest other cars of an ego car, as rows
``(dx, dy, dv, dv_y, present)`` — relative position (m) and velocity (m/s), nearest first
by Euclidean distance √(dx² + dy²), zero rows (``present = 0``) when fewer than ``k`` cars
are there. One function, batched over any leading dimensions, used by the environment
(``obs_mode="vector"``) and by the traffic-camera loader, so both give the same features
for the same traffic.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise._checks import check_positive

ROW = ("dx", "dy", "dv", "dv_y", "present")


def nearest_order(dx: Tensor, dy: Tensor, k: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Indices (..., min(k, N)) of the ``k`` nearest cars, nearest first (stable sort), and
    whether each is a car (1.0) or a masked entry (0.0)."""
    check_positive("k", k)
    distance = torch.hypot(dx, dy)
    if mask is not None:
        if mask.shape != dx.shape:
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(dx.shape)}")
        distance = distance.masked_fill(~mask, float("inf"))
    order = torch.sort(distance, dim=-1, stable=True).indices[..., : min(k, dx.shape[-1])]
    return order, torch.isfinite(distance.gather(-1, order)).to(dx.dtype)


def neighbour_rows(dx: Tensor, dy: Tensor, dv: Tensor, dvy: Tensor, order: Tensor, present: Tensor,
                   k: int) -> Tensor:
    """Rows (..., k, 5) of the cars ``order`` (..., m ≤ k) with flags ``present``; absent
    cars and the padding up to ``k`` are zero rows."""
    rows = torch.stack([a.gather(-1, order) for a in (dx, dy, dv, dvy)] + [present], -1)
    rows = rows * present.unsqueeze(-1)
    if rows.shape[-2] < k:
        rows = torch.cat([rows, rows.new_zeros(*rows.shape[:-2], k - rows.shape[-2], len(ROW))], -2)
    return rows


def nearest_cars(
    dx: Tensor, dy: Tensor, dv: Tensor, dvy: Tensor, k: int, mask: Tensor | None = None
) -> Tensor:
    """Rows of the ``k`` nearest cars.

    Parameters
    ----------
    dx, dy, dv, dvy : (..., N) other cars relative to the ego car (x already wrapped on the ring).
    k : number of rows.
    mask : optional (..., N) bool, False for entries that are not cars (the ego itself, padding).

    Returns (..., k, 5). Ties in distance keep the input order (stable sort).
    """
    shapes = {tuple(a.shape) for a in (dx, dy, dv, dvy)}
    if len(shapes) != 1:
        raise ValueError(f"dx, dy, dv, dvy must have the same shape, got {sorted(shapes)}")
    order, present = nearest_order(dx, dy, k, mask)
    return neighbour_rows(dx, dy, dv, dvy, order, present, k)
