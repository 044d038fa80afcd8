"""The one image-grid helper: layout, per-image normalisation, atoms given as (K, D) rows,
and refused shapes; the curve figure skips empty curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.latent.figures import curves_figure, image_grid, image_grid_figure


def test_grid_places_every_image_with_one_pixel_gaps():
    images = torch.arange(5 * 2 * 3, dtype=torch.float32).reshape(5, 1, 2, 3) / 30
    grid = image_grid(images, ncol=3)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)                  # 2 rows of 2 px, 3 columns of 3 px
    np.testing.assert_array_equal(grid[0:2, 4:7], images[1, 0].numpy())   # row 0, column 1
    np.testing.assert_array_equal(grid[3:5, 4:7], images[4, 0].numpy())   # row 1, column 1
    assert (grid[2] == 1).all() and (grid[3:5, 8:11] == 1).all()          # gap and empty cell


def test_atoms_as_rows_are_square_images_scaled_each_to_its_range():
    atoms = torch.stack([torch.linspace(-1, 1, 16), torch.linspace(0, 5, 16)])   # (K=2, D=16)
    grid = image_grid(atoms, normalise=True)
    assert grid.shape == (4, 9)
    for tile in (grid[:, :4], grid[:, 5:]):
        assert tile.min() == 0 and tile.max() == 1
    np.testing.assert_allclose(grid[:, :4], grid[:, 5:], rtol=1e-6)  # same pattern once rescaled


def test_colour_images_keep_their_channels_and_bad_shapes_are_refused():
    assert image_grid(torch.rand(4, 3, 5, 5)).shape == (11, 11, 3)
    assert image_grid(torch.rand(2, 12), shape=(3, 4)).shape == (3, 9)
    with pytest.raises(ValueError, match="D=10 not a square"):
        image_grid(torch.rand(2, 10))
    with pytest.raises(ValueError, match="does not hold"):
        image_grid(torch.rand(2, 10), shape=(3, 4))
    with pytest.raises(ValueError, match="at least one image"):
        image_grid(torch.rand(0, 1, 2, 2))


def test_figures_draw():
    import matplotlib.pyplot as plt

    fig = image_grid_figure(torch.rand(6, 1, 4, 4), "six")
    assert fig.axes[0].get_title() == "six"
    fig2 = curves_figure({"ISTA": {1: 1.0, 10: 0.1}, "LISTA": {}}, "t")
    assert [line.get_label() for line in fig2.axes[0].get_lines()] == ["ISTA"]
    plt.close(fig)
    plt.close(fig2)
