"""Planning on the simulator's true future (`genoise.world.oracle`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.world.costs import CostConfig
from genoise.world.evaluate import evaluate_driving
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.oracle import oracle_controller, true_future_cost
from genoise.world.raster import RasterSpec
from tests.world.conftest import ROAD

SPEC = RasterSpec(shape=(32, 8), extent=(40.0, 16.0))


def test_true_future_cost_equals_the_costs_the_environment_reports() -> None:
    env = HighwayTrafficEnv(road=ROAD, raster=SPEC, route_length=100.0, max_steps=60, warmup=50)
    env.reset(seed=3)
    actions = torch.tensor([[[1.0, 0.3], [-2.0, 0.0], [0.5, -0.4], [0.0, 0.0]]])
    alternative = torch.zeros(1, 4, 2)
    predicted = true_future_cost(env, env.cost_config)(torch.cat([actions, alternative]))
    x0 = env.ego["x"]
    reported = []
    for action in actions[0].numpy():
        _, _, terminated, _, info = env.step(action)
        assert not terminated
        reported.append(info["cost"])
    assert env.ego["x"] != x0  # the planner's evaluation did not move the environment
    assert predicted[0].item() == pytest.approx(sum(reported), rel=1e-5, abs=1e-6)
    assert predicted.shape == (2,)


def test_true_future_cost_needs_the_replay() -> None:
    env = HighwayTrafficEnv(road=ROAD, raster=SPEC, reactive=True, warmup=10)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invisible-car mode"):
        true_future_cost(env)


def test_oracle_planner_drives_a_short_route() -> None:
    torch.manual_seed(0)
    env_kwargs = dict(road=ROAD, raster=SPEC, route_length=30.0, max_steps=60, warmup=50)
    costs = CostConfig(lane_width=3.7, rear_speed="initial")
    options = dict(population=16, n_elites=4, iterations=2)
    act = oracle_controller("cem", horizon=5, options=options, config=costs)
    result = evaluate_driving(act, [0, 1, 2], env_kwargs, history=1)
    assert result["success_rate"] == 1.0
    assert np.isfinite(result["mean_distance"]) and result["mean_distance"] >= 30.0
