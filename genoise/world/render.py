"""Top-view pictures of the highway (ego car highlighted) and their PNG / GIF files.

The picture is a window of ``view_length`` metres centred on the ego car, the road running
left to right, the left-most lane on top. Cars are drawn with the same anti-aliased
rectangle coverage as the observation raster (:func:`genoise.world.raster.rasterize_cars`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genoise.io import atomic_write, save_gif  # noqa: F401 — save_gif re-exported (moved to genoise.io)
from genoise.world.raster import RasterSpec, rasterize_cars
from genoise.world.traffic import RoadConfig

ROAD, OFFROAD, LINE = (0.35, 0.35, 0.38), (0.55, 0.70, 0.45), (0.95, 0.95, 0.95)
CAR, EGO = (0.25, 0.45, 0.95), (0.95, 0.15, 0.15)


def top_view(
    ego: dict,
    dx: np.ndarray,
    y: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    road: RoadConfig,
    *,
    view_length: float = 120.0,
    pixels_per_metre: float = 4.0,
    margin: float = 2.0,
) -> np.ndarray:
    """RGB uint8 image (rows across the road, columns along it) of the window around the ego.

    ``ego`` holds ``y, length, width``; ``dx`` (N,) are the other cars' longitudinal offsets
    from the ego car and ``y`` (N,) their lateral positions (0 = right road edge)."""
    across = road.road_width + 2 * margin
    spec = RasterSpec(
        shape=(round(view_length * pixels_per_metre), round(across * pixels_per_metre)),
        extent=(view_length, across),
    )
    centre = road.road_width / 2

    def t(a: object) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(1, -1)

    cars = rasterize_cars(t(dx), t(np.asarray(y) - centre), t(length), t(width), spec)[0]
    me = rasterize_cars(t(0.0), t(ego["y"] - centre), t(ego["length"]), t(ego["width"]), spec)[0]
    col_lo, col_hi = spec.col_edges()
    lateral = (0.5 * (col_lo + col_hi) + centre).numpy()  # (W,) metres from the right edge
    on_road = (lateral >= 0) & (lateral <= road.road_width)
    boundary = np.abs(((lateral + road.lane_width / 2) % road.lane_width) - road.lane_width / 2) < 0.12
    image = np.where(on_road[:, None], 1.0, 0.0)[..., None] * np.array(ROAD) + np.where(
        on_road[:, None], 0.0, 1.0
    )[..., None] * np.array(OFFROAD)
    image = np.broadcast_to(image, (spec.shape[1], spec.shape[0], 3)).copy()
    along = 0.5 * sum(spec.row_edges())
    dashed = ((along.numpy() + ego.get("x", 0.0)) % 12.0) < 6.0
    image[(boundary & on_road)[:, None] & dashed[None, :]] = LINE
    for layer, colour in ((cars.numpy().T, CAR), (me.numpy().T, EGO)):
        image = image * (1 - layer[..., None]) + layer[..., None] * np.array(colour)
    image = image[::-1, ::-1]  # left-most lane on top, driving direction to the right
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def save_png(frame: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one RGB frame as PNG (atomically)."""
    import imageio.v3 as iio

    return atomic_write(path, lambda handle: handle.write(iio.imwrite("<bytes>", frame, extension=".png")))


def filmstrip(frames: Sequence[np.ndarray], every: int = 10) -> np.ndarray:
    """Stack every ``every``-th frame vertically (one PNG summarising an episode)."""
    chosen = list(frames[::every]) or list(frames[:1])
    gap = np.full((3, chosen[0].shape[1], 3), 255, dtype=np.uint8)
    parts = []
    for frame in chosen:
        parts += [frame, gap]
    return np.concatenate(parts[:-1], axis=0)
