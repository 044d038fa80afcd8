"""Pictures of predictions: the inputs, the truth and each model's frames side by side (where
the blur of ℓ2 shows), and a GIF of a recursive roll-out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from torch import Tensor

from genoise.io import save_gif


def comparison_figure(context: Tensor, truth: Tensor, predictions: Mapping[str, Tensor], title: str = "",
                      context_row: bool = False):
    """A grid: first row the ``context`` frames (T_in, C, H, W) then the ``truth`` (T_out, …);
    one row per entry of ``predictions`` (name → (T_out, C, H, W)) under the truth. With
    ``context_row`` the context has a row of its own above the truth (for long horizons: the
    grid is max(T_in, T_out) wide instead of T_in + T_out)."""
    import matplotlib.pyplot as plt

    t_in, t_out = context.shape[0], truth.shape[0]
    rows = 1 + len(predictions) + int(context_row)
    cols = max(t_in, t_out) if context_row else t_in + t_out
    offset = 0 if context_row else t_in  # the column of the first predicted frame
    figure, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for j in range(t_in):
        axes[0, j].imshow(context[j, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"input {j + 1}", fontsize=7)
    first = int(context_row)
    for i, (name, frames) in enumerate([("truth", truth), *predictions.items()], start=first):
        for j in range(t_out):
            ax = axes[i, offset + j]
            ax.imshow(frames[j, 0].detach().cpu().clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
            if i == first:
                ax.set_title(f"t + {j + 1}", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def _gray(frame: Tensor, scale: int) -> np.ndarray:
    image = (frame[0].detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
    image = image.repeat(scale, 0).repeat(scale, 1)
    return np.repeat(image[:, :, None], 3, axis=2)


def save_rollout_gif(context: Tensor, truth: Tensor, predictions: Mapping[str, Tensor], path: str | Path,
                     scale: int = 2, fps: float = 4.0) -> Path:
    """GIF: the context frames, then the truth beside each prediction (left to right: truth,
    then ``predictions`` in order), one GIF frame per time step."""
    gap = np.full((context.shape[-2] * scale, 4, 3), 255, np.uint8)
    panels = 1 + len(predictions)
    frames = [np.concatenate([_gray(f, scale), *([gap, _gray(f, scale)] * (panels - 1))], 1) for f in context]
    for t in range(truth.shape[0]):
        row = [_gray(truth[t], scale)]
        for pred in predictions.values():
            row += [gap, _gray(pred[t], scale)]
        frames.append(np.concatenate(row, 1))
    return save_gif(frames, path, fps=fps)
