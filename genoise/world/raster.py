"""Ego-centred rasters of the neighbourhood, as in Henaff, Canziani & LeCun (ICLR 2019,
pytorch-PPUU): three channels — lanes, other cars, ego car — in a window that moves with
the ego car. Batched in torch (no loop over cars or pixels).

Layout of a raster ``(3, H, W)``: row ``i`` is a longitudinal offset (row 0 furthest
ahead, ``dx_i = (H/2 - i - 1/2) * extent_x / H``), column ``j`` a lateral offset
(``dy_j = (j + 1/2 - W/2) * extent_y / W``, column 0 towards the right road edge). A car is
an axis-aligned rectangle; a pixel holds the fraction of its area the rectangle covers
(anti-aliased, so positions are recoverable below pixel size).

The lane channel encodes two things by value: lane dividers and road edges are lines of
intensity 0.5 (a one-pixel triangle profile) and the area beyond the road edges is 1.0, so
``lanes`` gives the lane cost and ``relu(2 * lanes - 1)`` the off-road cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

LANES, CARS, EGO = 0, 1, 2


@dataclass(frozen=True)
class RasterSpec:
    """Raster resolution ``shape = (H, W)`` (along, across the road) over ``extent``
    metres. Default 64×16 pixels over 80 m × 16 m (the paper: 117×24)."""

    shape: tuple[int, int] = (64, 16)
    extent: tuple[float, float] = (80.0, 16.0)

    @property
    def pixel(self) -> tuple[float, float]:
        return self.extent[0] / self.shape[0], self.extent[1] / self.shape[1]

    def row_edges(self, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Longitudinal (lower, upper) edges of each row, shape (H,), row 0 ahead."""
        h, px = self.shape[0], self.pixel[0]
        upper = (h / 2 - torch.arange(h, device=device, dtype=torch.float32)) * px
        return upper - px, upper

    def col_edges(self, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Lateral (lower, upper) edges of each column, shape (W,)."""
        w, px = self.shape[1], self.pixel[1]
        lower = (torch.arange(w, device=device, dtype=torch.float32) - w / 2) * px
        return lower, lower + px


def _coverage(center: Tensor, half: Tensor, lower: Tensor, upper: Tensor, pixel: float) -> Tensor:
    """Fraction of each pixel interval [lower, upper) covered by [center-half, center+half].
    ``center``/``half`` (..., K) and ``lower``/``upper`` (P,) → (..., K, P)."""
    lo = torch.maximum((center - half).unsqueeze(-1), lower)
    hi = torch.minimum((center + half).unsqueeze(-1), upper)
    return (hi - lo).clamp(min=0.0) / pixel


def rasterize_cars(
    dx: Tensor, dy: Tensor, length: Tensor, width: Tensor, spec: RasterSpec, mask: Tensor | None = None
) -> Tensor:
    """Soft occupancy image of K rectangles per sample.

    Parameters
    ----------
    dx, dy : (B, K) centre offsets from the ego car (metres, ahead / left positive).
    length, width : (B, K) or broadcastable car sizes.
    mask : (B, K) optional 0/1 weights (absent cars).

    Returns
    -------
    (B, H, W) values in [0, 1]: sum over cars of the per-pixel covered fraction, clipped.
    """
    row_lo, row_hi = spec.row_edges(dx.device)
    col_lo, col_hi = spec.col_edges(dx.device)
    length, width = torch.broadcast_to(length, dx.shape), torch.broadcast_to(width, dx.shape)
    cover_x = _coverage(dx, length / 2, row_lo, row_hi, spec.pixel[0])
    cover_y = _coverage(dy, width / 2, col_lo, col_hi, spec.pixel[1])
    if mask is not None:
        cover_x = cover_x * mask.unsqueeze(-1)
    lead = cover_x.shape[:-2]
    image = torch.matmul(cover_x.transpose(-1, -2), cover_y)  # (..., H, K) @ (..., K, W)
    return image.reshape(*lead, *image.shape[-2:]).clamp(max=1.0)


def lane_profile(ego_y: Tensor, spec: RasterSpec, n_lanes: int, lane_width: float) -> Tensor:
    """The lane channel's lateral profile (B, W) for an ego car at lateral position
    ``ego_y`` (B,): 0.5-intensity lines at every lane boundary, 1.0 beyond the road."""
    col_lo, col_hi = spec.col_edges(ego_y.device)
    centre = 0.5 * (col_lo + col_hi)  # (W,)
    pixel = spec.pixel[1]
    bounds = torch.arange(n_lanes + 1, device=ego_y.device, dtype=torch.float32) * lane_width
    rel = bounds.view(1, -1, 1) - ego_y.view(-1, 1, 1)  # (B, n_lanes + 1, 1)
    lines = 0.5 * (1.0 - (centre.view(1, 1, -1) - rel).abs() / pixel).clamp(min=0.0).amax(dim=1)
    road_lo = (-ego_y).unsqueeze(-1)
    road_hi = (n_lanes * lane_width - ego_y).unsqueeze(-1)
    outside = (
        (road_lo - col_lo).clamp(min=0.0, max=pixel) + (col_hi - road_hi).clamp(min=0.0, max=pixel)
    ) / pixel
    return torch.maximum(lines, outside.clamp(max=1.0))


def ego_raster(
    ego_y: Tensor,
    ego_length: Tensor,
    ego_width: Tensor,
    dx: Tensor,
    dy: Tensor,
    length: Tensor,
    width: Tensor,
    spec: RasterSpec,
    n_lanes: int,
    lane_width: float,
    mask: Tensor | None = None,
) -> Tensor:
    """Full 3-channel raster (B, 3, H, W) for B ego cars and K neighbours each.

    ``ego_y``, ``ego_length``, ``ego_width``: (B,); ``dx``, ``dy``, ``length``, ``width``,
    ``mask``: (B, K) neighbours relative to the ego car.
    """
    b = ego_y.shape[0]
    h, w = spec.shape
    lanes = lane_profile(ego_y, spec, n_lanes, lane_width).unsqueeze(1).expand(b, h, w)
    cars = rasterize_cars(dx, dy, length, width, spec, mask)
    zeros = torch.zeros_like(ego_y).unsqueeze(-1)
    ego = rasterize_cars(zeros, zeros, ego_length.unsqueeze(-1), ego_width.unsqueeze(-1), spec)
    return torch.stack([lanes, cars, ego], dim=1)


def relative_positions(ego_x: Tensor, x: Tensor, road_length: float) -> Tensor:
    """Signed longitudinal offset ``x - ego_x`` on the ring, in [-L/2, L/2)."""
    return torch.remainder(x - ego_x.unsqueeze(-1) + road_length / 2, road_length) - road_length / 2
