"""Driving cost from vector observations: hand-computed values, agreement with the raster
cost on the same traffic, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.world.costs import CostConfig, driving_cost
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.traffic import RoadConfig
from genoise.world.vector_cost import vector_driving_cost

ROAD = RoadConfig(n_lanes=4, lane_width=3.7)


def observation(y: float, v: float, cars: list[tuple[float, float]], k: int = 3) -> torch.Tensor:
    rows = [[dx, dy, 0.0, 0.0, 1.0] for dx, dy in cars] + [[0.0] * 5] * (k - len(cars))
    return torch.tensor([y, v, 0.0, *np.ravel(rows)], dtype=torch.float64)


def test_hand_computed_costs() -> None:
    config = CostConfig(lane_width=3.7)
    alone = vector_driving_cost(observation(1.85, 20.0, []), ROAD, config)
    assert [float(alone[k]) for k in ("proximity", "lane", "offroad", "total")] == [0.0, 0.0, 0.0, 0.0]
    ahead = vector_driving_cost(observation(1.85, 20.0, [(10.0, 0.0), (30.0, 3.7)]), ROAD, config)
    # reach 1.5 * 20 + 6 = 36 m; gap 10 - 2.3 = 7.7 m ahead, same lane; the other car is a lane away
    assert float(ahead["proximity"]) == pytest.approx(1 - 7.7 / 36)
    on_divider = vector_driving_cost(observation(3.7 + 0.5, 20.0, []), ROAD, config)
    assert float(on_divider["lane"]) == pytest.approx(0.5 * (1 - 0.5 / 1.85))
    near_edge = vector_driving_cost(observation(0.6, 20.0, []), ROAD, config)
    assert float(near_edge["offroad"]) == pytest.approx(1 - 0.6 / 1.85)
    assert float(near_edge["lane"]) == float(near_edge["offroad"])  # the off-road area dominates
    assert float(near_edge["total"]) == pytest.approx(
        config.lane_weight * float(near_edge["lane"]) + config.offroad_weight * float(near_edge["offroad"])
    )


def test_rear_reach_from_the_initial_speed() -> None:
    behind = observation(1.85, 0.0, [(-12.0, 0.0)])
    paper = vector_driving_cost(behind, ROAD, CostConfig(lane_width=3.7))
    initial = vector_driving_cost(
        behind, ROAD, CostConfig(lane_width=3.7, rear_speed="initial"), initial_speed=torch.tensor(20.0)
    )
    assert float(paper["proximity"]) == 0.0  # stopped: reach 6 m < gap 9.7 m
    assert float(initial["proximity"]) == pytest.approx(1 - 9.7 / 36)


def test_gradients_flow_to_speed_and_positions() -> None:
    obs = observation(2.5, 15.0, [(8.0, 0.5)]).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda o: vector_driving_cost(o, ROAD, CostConfig(lane_width=3.7))["total"], (obs,)
    )
    with pytest.raises(ValueError, match="3 \\+ 5k"):
        vector_driving_cost(torch.zeros(7), ROAD)


def test_agrees_with_the_raster_cost_of_the_same_traffic() -> None:
    """Same env states scored both ways: the vector cost is the raster cost without pixels
    (linear correlation over random-action episodes)."""
    env = HighwayTrafficEnv(
        road=dict(n_lanes=3, road_length=300.0), obs_mode="vector", n_neighbours=6, warmup=30, max_steps=50
    )
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(50):
            obs, _, terminated, truncated, _ = env.step(
                np.array([rng.uniform(-4, 2), rng.uniform(-1.5, 1.5)], dtype=np.float32)
            )
            raster = driving_cost(
                torch.as_tensor(env.raster()), torch.tensor(env.ego["v"]), env.spec_raster, env.cost_config
            )
            vector = vector_driving_cost(torch.as_tensor(obs), env.road, env.cost_config)
            rows.append([float(raster[k]) for k in ("proximity", "lane", "offroad")] +
                        [float(vector[k]) for k in ("proximity", "lane", "offroad")])
            if terminated or truncated:
                break
    table = np.array(rows)
    assert len(table) > 60 and table[:, 0].std() > 0.05  # cars were near in some of the frames
    correlation = [np.corrcoef(table[:, i], table[:, i + 3])[0, 1] for i in range(3)]
    assert correlation[0] > 0.95, correlation
    assert correlation[1] > 0.7 and correlation[2] > 0.7, correlation
