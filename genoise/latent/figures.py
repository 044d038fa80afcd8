"""Pictures of latent models: image grids (prototypes, components, atoms, samples) and
code-error curves. Matplotlib is imported inside the functions that draw (the Agg
backend: no display needed), so importing this module stays cheap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor


def as_images(images: Tensor, shape: tuple[int, ...] | None = None) -> Tensor:
    """Images as (N, C, H, W): from (N, C, H, W), (N, H, W), or (N, D) with ``shape``
    = (C, H, W) / (H, W) or, by default, a square D = side² (one channel)."""
    images = images.detach().float().cpu()
    if images.ndim == 4:
        return images
    if images.ndim == 3:
        return images[:, None]
    if images.ndim != 2:
        raise ValueError(f"images must be (N, C, H, W), (N, H, W) or (N, D), got {tuple(images.shape)}")
    if shape is None:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"images (N, D) with D={images.shape[1]} not a square: pass shape=(C, H, W)")
        shape = (side, side)
    shape = (1, *shape) if len(shape) == 2 else tuple(shape)
    if math.prod(shape) != images.shape[1]:
        raise ValueError(f"shape {shape} does not hold the D={images.shape[1]} values per image")
    return images.reshape(images.shape[0], *shape)


def image_grid(images: Tensor, ncol: int | None = None, *, shape: tuple[int, ...] | None = None,
               normalise: bool = False) -> np.ndarray:
    """Tile images into one (rows·(H+1) − 1, ncol·(W+1) − 1[, C]) array for ``imshow``, with
    one white pixel between tiles.

    ``images``: see :func:`as_images` (dictionary atoms (K, D) and PCA components work as
    they are). ``ncol`` defaults to ⌈√N⌉. ``normalise`` rescales every image to [0, 1] by
    its own minimum and maximum (for signed filters: components, atoms).
    """
    images = as_images(images, shape)
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    if normalise:
        flat = images.reshape(n, -1)
        low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        images = ((flat - low) / (high - low).clamp_min(1e-12)).reshape(n, c, h, w)
    ncol = ncol or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    canvas = torch.ones(c, rows * (h + 1) - 1, ncol * (w + 1) - 1)
    for index in range(n):
        r, col = divmod(index, ncol)
        canvas[:, r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = images[index]
    out = canvas.permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def image_grid_figure(images: Tensor, title: str = "", *, ncol: int | None = None,
                      shape: tuple[int, ...] | None = None, normalise: bool = False) -> Any:
    """A matplotlib figure of :func:`image_grid` (grey levels in [0, 1], no axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, ncol, shape=shape, normalise=normalise)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    if title:
        ax.set_title(title)
    ax.axis("off")
    return fig


def curves_figure(curves: dict[str, dict[int, float]], title: str = "") -> Any:
    """Code prediction error vs iterations, one log-log line per method (empty curves skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        if curve:
            xs = sorted(curve)
            ax.plot(xs, [curve[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("iterations (LCoD/CoD: coordinate updates)")
    ax.set_ylabel("½‖Z* − Z‖² (test mean)")
    ax.set_title(title)
    ax.legend()
    return fig
