"""Saved driving policies (observation format checked on load), the evaluation of a run
folder, and resume of the policy recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.train.run import Run
from genoise.world.evaluate import (
    evaluate_driving_run,
    load_policy,
    observation_config,
    save_policy,
)
from genoise.world.forward import ForwardModel
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.policy import DrivingPolicy
from genoise.world.raster import RasterSpec
from genoise.world.recipes import mpur_traffic

SPEC = RasterSpec(shape=(16, 8), extent=(40.0, 16.0))
ROAD = dict(n_lanes=3, road_length=300.0)
LOW, HIGH = np.array([-6.0, -2.0]), np.array([3.0, 2.0])


def saved_policy(folder, raster=SPEC):
    torch.manual_seed(0)
    model = ForwardModel(history=2, raster=raster, width=4, hidden=16)
    policy = DrivingPolicy(model, LOW, HIGH, width=4, hidden=16).eval()
    env = HighwayTrafficEnv(road=ROAD, raster=raster, warmup=5)
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    config = {"route_length": 25.0, "max_steps": 40, "eval_episodes": 2}
    save_policy(policy, folder / "policies" / "mpur.pt", observation_config(env, 2), config, method="mpur")
    return policy, env


def test_policy_checkpoint_round_trip_gives_the_same_actions(tmp_path) -> None:
    policy, env = saved_policy(tmp_path)
    loaded, meta = load_policy(tmp_path / "policies" / "mpur.pt", expect_obs=observation_config(env, 2))
    images, states = torch.rand(5, 2, 3, *SPEC.shape), torch.rand(5, 2, 3) * 10
    torch.testing.assert_close(loaded(images, states), policy(images, states))
    assert meta["method"] == "mpur" and meta["obs_config"]["obs_mode"] == "raster"


def test_policy_checkpoint_from_another_observation_format_is_a_one_line_error(tmp_path) -> None:
    _, env = saved_policy(tmp_path)
    path = tmp_path / "policies" / "mpur.pt"
    vector = HighwayTrafficEnv(road=ROAD, raster=SPEC, obs_mode="vector")
    with pytest.raises(ValueError, match=r"mpur.pt was trained for obs_mode='raster' .* obs_mode='vector'"):
        load_policy(path, expect_obs=observation_config(vector, 2))
    with pytest.raises(ValueError, match="trained for history=2"):
        load_policy(path, expect_obs=observation_config(env, 4))
    other = HighwayTrafficEnv(road=ROAD, raster=RasterSpec(shape=(32, 8), extent=(40.0, 16.0)))
    with pytest.raises(ValueError, match="trained for raster="):
        load_policy(path, expect_obs=observation_config(other, 2))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"corrupt policy checkpoint .*junk.pt"):
        load_policy(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="no policy checkpoint"):
        load_policy(tmp_path / "missing.pt")


def test_evaluate_driving_run_reloads_policies_on_the_fixed_seeds(tmp_path) -> None:
    saved_policy(tmp_path)
    out = evaluate_driving_run(tmp_path, env_overrides={"warmup": 5})
    assert set(out["results"]) == {"none", "idm", "mpur"}
    assert out["results"]["idm"]["outcomes"] == ["arrived", "arrived"]  # 2 episodes from the run's config
    assert "| MPUR |" in out["table"] and (tmp_path / "evaluation_reloaded.md").is_file()
    again = evaluate_driving_run(tmp_path, env_overrides={"warmup": 5}, references=False, write=False)
    assert again["results"]["mpur"]["outcomes"] == out["results"]["mpur"]["outcomes"]  # deterministic
    with pytest.raises(ValueError, match="obs_mode='vector'"):
        evaluate_driving_run(tmp_path, env_overrides={"warmup": 5, "obs_mode": "vector"})
    with pytest.raises(ValueError, match="no trained policies in"):
        evaluate_driving_run(tmp_path / "empty")


def test_mpur_recipe_saves_policies_and_resume_skips_training(tmp_path) -> None:
    from tests.world.test_recipes import TINY

    config = dict(
        TINY,
        policies=["bc", "mpur"],
        planners=[],
        horizon=2,
        u_weight=0.05,
        n_dropout=2,
        policy_steps=2,
        policy_batch=4,
        policy_lr=1e-3,
        lane_weight=0.2,
        offroad_weight=5.0,
        action_weight=0.01,
        planner_horizon=2,
        planner_samples=4,
        planner_iterations=1,
        eval_episodes=1,
        route_length=20.0,
        max_steps=30,
        model_run=None,
    )
    run = Run(tmp_path / "mpur", config=dict(config), progress=False)
    first = mpur_traffic(run)
    files = {p.name: p.stat().st_mtime_ns for p in (run.dir / "policies").glob("*.pt")}
    assert set(files) == {"bc.pt", "mpur.pt"} and "| MPUR |" in first["table"]
    resumed = Run(tmp_path / "mpur", config=dict(config), progress=False, resume=True)
    second = mpur_traffic(resumed)
    assert {p.name: p.stat().st_mtime_ns for p in (run.dir / "policies").glob("*.pt")} == files
    assert second["results"]["mpur"]["outcomes"] == first["results"]["mpur"]["outcomes"]


def test_mpur_recipe_drives_planners_on_the_first_planner_episodes_only(tmp_path) -> None:
    from tests.world.test_recipes import TINY

    config = dict(
        TINY, policies=[], planners=["cem"], horizon=2, u_weight=0.05, n_dropout=2, policy_steps=1,
        policy_batch=4, policy_lr=1e-3, lane_weight=0.2, offroad_weight=5.0, action_weight=0.01,
        planner_horizon=2, planner_samples=4, planner_iterations=1, planner_episodes=1, eval_episodes=2,
        route_length=20.0, max_steps=30, model_run=None,
    )
    out = mpur_traffic(Run(tmp_path / "plan", config=dict(config), progress=False))
    assert len(out["results"]["none"]["outcomes"]) == 2 and len(out["results"]["cem"]["outcomes"]) == 1
    assert "Planners over the learned model" in out["table"] and "| CEM |" in out["table"]
    assert (tmp_path / "plan" / "evaluation.md").read_text() == out["table"]
    with pytest.raises(ValueError, match="planner_episodes must be > 0"):
        mpur_traffic(Run(tmp_path / "bad", config=dict(config, planner_episodes=0), progress=False))
