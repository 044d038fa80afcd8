"""The JEPA's IMPALA encoder (the reference's, eb_jepa's ``ImpalaEncoder``) and the planning
cost's squared distance (eb_jepa's mean squared error): shapes, the residual block against its
formula, the layer layout, a checkpoint round trip, the cost by hand, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genoise.world.jepa import JEPAConfig, ResidualBlock, impala_encoder
from genoise.world.latent_planning import PlannerConfig, latent_rollout_cost
from tests.world.conftest import train_tiny_jepa


def test_residual_block_is_relu_of_x_plus_two_convolutions() -> None:
    torch.manual_seed(0)
    block, x = ResidualBlock(3), torch.randn(2, 3, 5, 5)
    expected = F.relu(x + block.conv2(F.relu(block.conv1(x))))
    assert torch.equal(block(x), expected)
    assert block.conv1.weight.shape == (3, 3, 3, 3) and block.conv1.padding == (1, 1)


@pytest.mark.parametrize(("size", "coords"), [(33, False), (65, False), (33, True)])
def test_impala_encoder_has_three_pooled_stacks_of_two_blocks(size: int, coords: bool) -> None:
    encoder = impala_encoder(size, 2, 4, 16, coords)
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    # per stack: the stack's convolution + 2 blocks × 2 convolutions; widths w, 2w, 2w
    assert len(convs) == 15
    assert [c.out_channels for c in convs[::5]] == [4, 8, 8]
    assert convs[0].in_channels == 2 + 2 * coords
    assert sum(isinstance(m, nn.MaxPool2d) for m in encoder.modules()) == 3
    side = size
    for _ in range(3):
        side = (side + 2 - 3) // 2 + 1  # 3 × 3 max-pool, stride 2, padding 1
    assert encoder[1].in_features == 8 * side * side
    z = encoder(torch.randn(5, 2, size, size))
    assert z.shape == (5, 16)
    assert torch.allclose(z.mean(-1), torch.zeros(5), atol=1e-5)  # ends in a LayerNorm


def test_an_impala_jepa_trains_and_reloads_with_its_encoder(tmp_path) -> None:
    config = JEPAConfig(image_size=17, dim=8, width=2, hidden=16, encoder="impala")
    _, reloaded = train_tiny_jepa(config, tmp_path / "a", steps=3)
    assert any(isinstance(m, ResidualBlock) for m in reloaded.encoder.modules())


def test_impala_encoder_bad_settings_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="encoder=impala needs predictor=mlp or gru"):
        JEPAConfig(encoder="impala", predictor="conv")
    with pytest.raises(ValueError, match="encoder"):
        JEPAConfig(encoder="resnet")


class _Shift(nn.Module):
    """z_t = z_0 + Σ a (the representation is the state)."""

    def unroll(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z0.unsqueeze(-2) + actions.cumsum(-2)

    def represent(self, state: torch.Tensor) -> torch.Tensor:
        return state


def test_squared_distance_is_the_mean_squared_error_over_the_coordinates() -> None:
    z0, goal = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    plans = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (E=1, N=2, H=2, 2)
    # plan 0 visits (1, 0) then (1, 1); plan 1 stays at the origin
    l2 = latent_rollout_cost(_Shift(), z0, goal, "sum", 10.0)(plans)
    squared = latent_rollout_cost(_Shift(), z0, goal, "sum", 10.0, "squared")(plans)
    last = latent_rollout_cost(_Shift(), z0, goal, "last", 10.0, "squared")(plans)
    assert torch.allclose(l2, torch.tensor([[(20**0.5 + 13**0.5) / 2, 5.0]]))
    assert torch.allclose(squared, torch.tensor([[(20 / 2 + 13 / 2) / 2, 25 / 2]]))
    assert torch.allclose(last, torch.tensor([[13 / 2, 25 / 2]]))
    with pytest.raises(ValueError, match="distance"):
        latent_rollout_cost(_Shift(), z0, goal, "sum", 10.0, "l1")
    with pytest.raises(ValueError, match="distance"):
        PlannerConfig(distance="l1")
