"""The comparison grid: where each frame goes in both layouts, and the roll-out GIF's frames."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from genoise.video.figures import comparison_figure, save_rollout_gif

matplotlib.use("Agg")


def _shown(ax) -> np.ndarray | None:
    images = ax.get_images()
    return None if not images else np.asarray(images[0].get_array())


@pytest.mark.parametrize("context_row", [False, True])
def test_every_frame_is_drawn_once_in_its_cell(context_row):
    import matplotlib.pyplot as plt

    context = torch.rand(3, 1, 8, 8)
    truth, pred = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8) * 2 - 0.5  # beyond [0, 1]: clamped
    figure = comparison_figure(context, truth, {"model": pred}, context_row=context_row)
    axes = np.array(figure.axes).reshape((3, 4) if context_row else (2, 7))
    offset, first = (0, 1) if context_row else (3, 0)
    for j in range(3):
        np.testing.assert_allclose(_shown(axes[0, j]), context[j, 0].numpy())
    for j in range(4):
        np.testing.assert_allclose(_shown(axes[first, offset + j]), truth[j, 0].numpy())
        np.testing.assert_allclose(_shown(axes[first + 1, offset + j]), pred[j, 0].clamp(0, 1).numpy())
    drawn = sum(_shown(ax) is not None for ax in figure.axes)
    assert drawn == 3 + 4 + 4  # nothing else, nothing twice
    plt.close(figure)


def test_rollout_gif_has_one_frame_per_time_step(tmp_path):
    generator = torch.Generator().manual_seed(0)  # distinct frames (a GIF writer merges equal ones)
    context, truth = torch.rand(2, 1, 6, 6, generator=generator), torch.rand(3, 1, 6, 6, generator=generator)
    path = save_rollout_gif(context, truth, {"a": truth * 0.5, "b": truth}, tmp_path / "r.gif", scale=1)
    with Image.open(path) as gif:
        assert gif.n_frames == 2 + 3
        assert gif.size == (3 * 6 + 2 * 4, 6)  # truth and two predictions, 4-pixel gaps
