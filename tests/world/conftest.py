"""Shared settings of the world tests: a small raster, a 3-lane road, the action box, one
traffic data set, and tiny recipe configurations built from the shipped YAML."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genoise.world.dataset import collect_traffic
from genoise.world.raster import RasterSpec
from genoise.world.traffic import RoadConfig

SPEC = RasterSpec(shape=(16, 8), extent=(40.0, 16.0))
ROAD = RoadConfig(n_lanes=3, road_length=300.0)
KIN = {"dt": ROAD.dt, "n_lanes": ROAD.n_lanes, "lane_width": ROAD.lane_width}
LOW, HIGH = np.array([-6.0, -2.0]), np.array([3.0, 2.0])

# the shipped world recipes at a size that trains in seconds (values override the YAML's)
TINY: dict[str, Any] = dict(
    warmup=10, episodes=1, steps=60, lanes=2, road_length=200.0, raster_shape=[16, 8],
    raster_extent=[40.0, 16.0], history=2, n_future=1, nz=2, width=4, hidden=16, train_steps=3,
    batch_size=4, eval_horizon=3, eval_batches=1,
)
TINY_MPUR: dict[str, Any] = dict(
    TINY, policies=["bc", "mpur"], planners=[], horizon=2, n_dropout=2, policy_steps=2, policy_batch=4,
    policy_lr=1e-3, planner_horizon=2, planner_samples=4, planner_iterations=1, planner_episodes=1,
    eval_episodes=1, route_length=20.0, max_steps=30,
)


def recipe_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The resolved configuration of a shipped recipe (YAML defaults, common keys) with
    ``overrides`` applied through the loader, as `genoise train NAME key=value` would."""
    import yaml

    from genoise.recipes import load_recipe, resolve_config

    items = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
             for k, v in overrides.items()]
    return resolve_config(load_recipe(name), items)


@pytest.fixture(scope="session")
def traffic_root(tmp_path_factory):
    """One small traffic data set (1 episode of 80 steps on ROAD) shared by the world tests."""
    root = tmp_path_factory.mktemp("traffic")
    collect_traffic(root, n_episodes=1, steps=80, seed=3, road=ROAD, warmup=20)
    return root


def train_tiny_jepa(config, folder, steps: int):
    """A JEPA of ``config`` trained ``steps`` updates on 32 short trajectories into ``folder``,
    reloaded from its checkpoint and checked equal to the trained one to the bit; returns
    (the data, the reloaded model)."""
    import torch

    from genoise.train import Run
    from genoise.world.jepa import ActionConditionedJEPA
    from genoise.world.jepa_train import load_jepa, train_jepa
    from genoise.world.two_rooms_data import RoomsDataConfig, generate_trajectories

    data = generate_trajectories(RoomsDataConfig(n_trajectories=32, length=6, seed=0))
    torch.manual_seed(0)
    model = ActionConditionedJEPA(config)
    out = train_jepa(model, data, steps, batch_size=8, window=4, seed=0, run=Run(folder, progress=False))
    assert np.isfinite(out["loss"])
    reloaded = load_jepa(folder / "last.pt", image_size=config.image_size)
    assert reloaded.config == config
    for (name, p), q in zip(model.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    return data, reloaded
