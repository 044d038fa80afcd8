"""Driving costs on hand-built rasters (values computed by hand in the comments)."""

from __future__ import annotations

import pytest
import torch

from genoise.world.costs import CostConfig, driving_cost, lane_cost, offroad_cost, proximity_cost
from genoise.world.raster import CARS, LANES, RasterSpec

# 1 m pixels: row i centre dx = 3.5 - i (rows 0..7), column j centre dy = j - 1.5 (cols 0..3)
SPEC = RasterSpec(shape=(8, 4), extent=(8.0, 4.0))
CONFIG = CostConfig(safe_time=1.0, min_distance=2.0, lateral_reach=2.0, ego_length=2.0, lane_width=4.0)


def blank() -> torch.Tensor:
    return torch.zeros(1, 3, 8, 4)


def test_proximity_cost_by_hand_and_speed_dependence() -> None:
    raster = blank()
    raster[0, CARS, 1, 2] = 1.0  # dx = 2.5, dy = 0.5
    # d_safe(v) = 1.0 * v + 2.0; M = relu(1 - 2.5 / d_safe) * relu(1 - 0.5 / 2)
    for speed, expected in ((0.0, 0.0), (3.0, (1 - 2.5 / 5.0) * 0.75), (8.0, (1 - 2.5 / 10.0) * 0.75)):
        got = proximity_cost(raster, torch.tensor([speed]), SPEC, CONFIG)
        assert float(got) == pytest.approx(expected, abs=1e-6)
    raster[0, CARS, 3, 1] = 0.5  # dx = 0.5, dy = -0.5 at speed 3: (1 - 0.5/5) * 0.75 * 0.5 = 0.3375 < 0.375
    assert float(proximity_cost(raster, torch.tensor([3.0]), SPEC, CONFIG)) == pytest.approx(0.375)


def test_lane_and_offroad_costs_by_hand() -> None:
    raster = blank()
    # a divider (0.5) in column 3 (dy = 1.5) and off-road (1.0) in column 0 (dy = -1.5)
    raster[0, LANES, :, 3] = 0.5
    raster[0, LANES, :, 0] = 1.0
    # lane mask: rows with |dx| <= 1 (rows 3, 4) x relu(1 - |dy| / 2): column 0 and 3 -> 0.25
    assert float(lane_cost(raster, SPEC, CONFIG)) == pytest.approx(max(0.25 * 0.5, 0.25 * 1.0))
    assert float(offroad_cost(raster, SPEC, CONFIG)) == pytest.approx(0.25 * (2 * 1.0 - 1))
    raster[0, LANES, :, 0] = 0.0
    assert float(offroad_cost(raster, SPEC, CONFIG)) == 0.0  # dividers alone are not off-road
    raster[0, LANES, 0, 2] = 1.0  # far ahead (row 0): outside the footprint rows
    assert float(offroad_cost(raster, SPEC, CONFIG)) == 0.0
    costs = driving_cost(raster, torch.tensor([1.0]), SPEC, CONFIG)
    assert float(costs["total"]) == pytest.approx(
        float(costs["proximity"] + 0.2 * costs["lane"] + costs["offroad"])
    )


def test_costs_are_differentiable_in_the_raster() -> None:
    raster = blank().requires_grad_(True)
    with torch.no_grad():
        raster[0, CARS, 2, 1] = 0.8
    total = driving_cost(raster, torch.tensor([4.0]), SPEC, CONFIG)["total"].sum()
    (grad,) = torch.autograd.grad(total, raster)
    assert grad[0, CARS, 2, 1] > 0 and grad.abs().sum() > 0


def test_bad_raster_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="raster must have shape"):
        lane_cost(torch.zeros(1, 3, 5, 4), SPEC, CONFIG)
    with pytest.raises(ValueError, match="speed must have shape"):
        proximity_cost(blank(), torch.zeros(2), SPEC, CONFIG)


def test_proximity_cost_without_speed_gradient_has_the_same_value_and_no_speed_gradient() -> None:
    spec = RasterSpec(shape=(16, 8), extent=(40.0, 16.0))
    raster = torch.zeros(1, 3, 16, 8)
    raster[0, 1, 5, 4] = 1.0  # a car 7.5 m ahead, in the ego's column
    speed = torch.tensor([6.0], requires_grad=True)
    with_grad = proximity_cost(raster, speed, spec, CostConfig())
    without = proximity_cost(raster, speed, spec, CostConfig(speed_gradient=False))
    assert with_grad.item() == pytest.approx(without.item()) and with_grad.item() > 0
    assert torch.autograd.grad(with_grad.sum(), speed)[0].item() > 0  # braking would lower the cost
    assert not without.requires_grad


def test_rear_reach_from_the_initial_speed_by_hand() -> None:
    raster = blank()
    raster[0, CARS, 6, 2] = 1.0  # behind: dx = -2.5, dy = 0.5
    config = CostConfig(**{**CONFIG.__dict__, "rear_speed": "initial"})
    # current speed 0 -> d_safe = 2 < 2.5: the paper's mask misses the follower
    assert float(driving_cost(raster, torch.tensor([0.0]), SPEC, CONFIG)["proximity"]) == 0.0
    # rear reach from the initial speed 3: d_safe = 5, M = (1 - 2.5 / 5) * 0.75
    got = driving_cost(raster, torch.tensor([0.0]), SPEC, config, torch.tensor([3.0]))["proximity"]
    assert float(got) == pytest.approx(0.5 * 0.75)
    # rows ahead keep the current speed; without an initial speed the current one is used
    raster[0, CARS] = 0.0
    raster[0, CARS, 1, 2] = 1.0  # ahead: dx = 2.5
    assert (
        float(driving_cost(raster, torch.tensor([0.0]), SPEC, config, torch.tensor([3.0]))["proximity"])
        == 0.0
    )
    assert float(driving_cost(raster, torch.tensor([3.0]), SPEC, config)["proximity"]) == pytest.approx(0.375)
    # rollouts: speeds (B, T) with one initial speed per sample (B, 1)
    rasters = raster.expand(2, 3, 3, 8, 4)
    costs = driving_cost(rasters, torch.full((2, 3), 3.0), SPEC, config, torch.zeros(2, 1))["proximity"]
    assert costs.shape == (2, 3) and torch.allclose(costs, torch.full((2, 3), 0.375))
    with pytest.raises(ValueError, match="rear_speed"):
        CostConfig(rear_speed="follower")


def test_cost_config_from_a_recipe_configuration() -> None:
    config = {"lane_weight": 0.5, "offroad_weight": 5, "speed_gradient": False, "rear_speed": "initial",
              "lr": 0.1}
    costs = CostConfig.from_config(config, lane_width=3.5)
    assert costs == CostConfig(lane_weight=0.5, offroad_weight=5.0, lane_width=3.5, speed_gradient=False,
                               rear_speed="initial")
    assert CostConfig.from_config({}, lane_width=3.7) == CostConfig()  # absent keys: the paper's values
    with pytest.raises(ValueError, match="rear_speed must be 'current' or 'initial'"):
        CostConfig.from_config({"rear_speed": "past"}, 3.7)
