"""The SSL backbones: the grid-pooled ConvNet keeps the layout of the last feature map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genoise.nn import ConvEncoder
from genoise.ssl.backbones import GridPoolConvEncoder, make_backbone
from genoise.ssl.methods import build_from_config

BASE = {"method": "simclr", "dataset": "mnist", "backbone": "conv", "out_dim": 64, "width": 32,
        "pool_grid": 1, "proj_hidden": 32, "proj_dim": 16, "proj_layers": -1, "method_options": {},
        "n_local": 0}


def test_grid_pooling_feeds_the_head_the_flattened_grid_of_the_last_feature_map():
    torch.manual_seed(0)
    encoder = GridPoolConvEncoder(1, 28, out_dim=32, width=4, grid=2)
    x = torch.rand(3, 1, 28, 28)
    grid = F.adaptive_avg_pool2d(encoder.blocks(x), 2)                 # (3, 16, 2, 2)
    assert encoder.pooled_dim == 16 * 4
    torch.testing.assert_close(encoder(x), encoder.head(grid.flatten(1)))


def test_grid_of_one_is_the_globally_pooled_conv_encoder():
    torch.manual_seed(0)
    grid_one = GridPoolConvEncoder(1, 8, out_dim=16, width=8, grid=1)
    plain = ConvEncoder(1, 8, out_dim=16, width=8)
    plain.load_state_dict(grid_one.state_dict())
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(grid_one(x), plain(x))


def test_make_backbone_and_recipe_config_choose_grid_pooling_by_pool_grid():
    assert type(make_backbone("conv", in_channels=1, image_size=28)) is ConvEncoder
    backbone = make_backbone("conv", in_channels=1, image_size=28, out_dim=64, pool_grid=2)
    assert isinstance(backbone, GridPoolConvEncoder) and backbone.feature_dim == 64
    method, _ = build_from_config({**BASE, "pool_grid": 2}, torch.zeros(2, 1, 28, 28))
    assert isinstance(method.backbone, GridPoolConvEncoder) and method.feature_dim == 64


@pytest.mark.parametrize("grid", [0, 1.5])
def test_bad_grid_is_refused(grid):
    with pytest.raises(ValueError, match="grid"):
        GridPoolConvEncoder(1, 28, out_dim=8, grid=grid)


def test_wrong_image_size_is_refused():
    with pytest.raises(ValueError, match="GridPoolConvEncoder expects input of shape"):
        GridPoolConvEncoder(1, 28, out_dim=8)(torch.rand(2, 1, 32, 32))
    variable = GridPoolConvEncoder(1, 28, out_dim=8, variable_size=True)
    with pytest.raises(ValueError, match=r"at least 9 × 9, got \(2, 1, 8, 8\)"):
        variable(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="square"):
        variable(torch.rand(2, 1, 16, 20))


def test_ssl_backbones_run_multi_crop_local_views_at_their_own_size():
    """The recipe backbones accept the presets' small local crops, so multi-crop views cost
    less than global ones (Caron et al. 2020), and the augmentation produces them."""
    from genoise.ssl.augment import PRESETS

    for grid in (1, 2):
        method, augment = build_from_config({**BASE, "method": "swav", "pool_grid": grid, "out_dim": 16,
                                             "proj_hidden": 16, "proj_dim": 8, "n_local": 2},
                                            torch.zeros(2, 1, 28, 28))
        views = augment(torch.rand(4, 1, 28, 28), torch.Generator().manual_seed(0))
        local = PRESETS["mnist"].local_size
        assert [tuple(v.shape[-2:]) for v in views] == [(28, 28)] * 2 + [(local, local)] * 2
        assert method.backbone(views[-1]).shape == (4, 16)
