"""Saved driving policies (observation format checked on load) and the driving evaluation of
a run folder (`genoise eval driving RUN_DIR [key=value ...]`)."""

from __future__ import annotations

import pytest
import torch

from genoise.recipes.world import EVALUATE_OPTIONS, evaluate
from genoise.world.checkpoints import find_policies, load_policy, observation_config, save_policy
from genoise.world.evaluate import driving_setting
from genoise.world.forward import ForwardModel
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.policy import DrivingPolicy
from genoise.world.raster import RasterSpec
from genoise.world.traffic import RoadConfig
from tests.world.conftest import HIGH, LOW, ROAD, SPEC


def saved_policy(folder, raster=SPEC, where="policy/mpur/last.pt"):
    torch.manual_seed(0)
    model = ForwardModel(history=2, raster=raster, width=4, hidden=16)
    policy = DrivingPolicy.from_model(model, LOW, HIGH, width=4, hidden=16).eval()
    env = HighwayTrafficEnv(road=ROAD, raster=raster, warmup=5)
    config = {"route_length": 25.0, "max_steps": 40, "eval_episodes": 2}
    save_policy(policy, folder / where, observation_config(env, 2), config, method="mpur")
    return policy, env


def test_policy_checkpoint_round_trip_gives_the_same_actions(tmp_path) -> None:
    policy, env = saved_policy(tmp_path)
    loaded, meta = load_policy(tmp_path / "policy/mpur/last.pt", expect_obs=observation_config(env, 2))
    images, states = torch.rand(5, 2, 3, *SPEC.shape), torch.rand(5, 2, 3) * 10
    torch.testing.assert_close(loaded(images, states), policy(images, states))
    assert meta["method"] == "mpur" and meta["obs_config"]["obs_mode"] == "raster"
    assert meta["config"]["eval_episodes"] == 2


def test_policy_checkpoint_from_another_observation_format_is_a_one_line_error(tmp_path) -> None:
    _, env = saved_policy(tmp_path)
    path = tmp_path / "policy/mpur/last.pt"
    vector = HighwayTrafficEnv(road=ROAD, raster=SPEC, obs_mode="vector")
    with pytest.raises(ValueError, match=r"last.pt was trained for obs_mode='raster' .* obs_mode='vector'"):
        load_policy(path, expect_obs=observation_config(vector, 2))
    with pytest.raises(ValueError, match="trained for history=2"):
        load_policy(path, expect_obs=observation_config(env, 4))
    other = HighwayTrafficEnv(road=ROAD, raster=RasterSpec(shape=(32, 8), extent=(40.0, 16.0)))
    with pytest.raises(ValueError, match="trained for raster="):
        load_policy(path, expect_obs=observation_config(other, 2))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"^not a genoise checkpoint: .*junk.pt"):
        load_policy(tmp_path / "junk.pt")
    torch.save({"step": 3, "model": {}, "extra_state": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt is not a policy checkpoint"):
        load_policy(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no policy checkpoint at"):
        load_policy(tmp_path / "missing.pt")


def test_policies_of_a_run_folder_are_found_in_both_layouts(tmp_path) -> None:
    saved_policy(tmp_path)
    saved_policy(tmp_path, where="policies/bc.pt")  # the layout of earlier versions
    assert list(find_policies(tmp_path)) == ["bc", "mpur"]
    assert find_policies(tmp_path / "nothing") == {}


def test_driving_setting_rebuilds_the_road_of_the_checkpoint() -> None:
    env = HighwayTrafficEnv(road=RoadConfig(n_lanes=3, road_length=300.0, bottleneck=(10.0, 20.0, 5.0)))
    obs = observation_config(env, 2)
    obs["road"]["bottleneck"] = list(obs["road"]["bottleneck"])  # as read back from JSON / YAML
    run_config = {"route_length": 30.0, "warmup": 7, "lr": 1.0}
    setting = driving_setting(obs, run_config, max_steps=9, route_length=None)
    assert setting["road"] == env.road and setting["raster"] == env.spec_raster
    assert (setting["route_length"], setting["warmup"], setting["max_steps"]) == (30.0, 7, 9)
    assert "lr" not in setting
    with pytest.raises(ValueError, match="names no road"):
        driving_setting({"obs_mode": "raster"}, {})


def test_evaluate_reloads_policies_on_the_fixed_seeds(tmp_path) -> None:
    saved_policy(tmp_path)
    out = evaluate(tmp_path, env_overrides={"warmup": 5})
    assert set(out["results"]) == {"none", "idm", "mpur"}
    assert out["results"]["idm"]["outcomes"] == ["arrived", "arrived"]  # 2 episodes from the run's config
    assert "| MPUR |" in out["table"] and (tmp_path / "evaluation_reloaded.md").is_file()
    again = evaluate(tmp_path, env_overrides={"warmup": 5}, references=False, write=False, episodes=1)
    assert set(again["results"]) == {"mpur"}
    assert again["results"]["mpur"]["outcomes"] == out["results"]["mpur"]["outcomes"][:1]  # deterministic
    shifted = evaluate(tmp_path, env_overrides={"warmup": 5}, methods=["mpur"], seed_start=7, episodes=1,
                       references=False, write=False, route_length=20.0, max_steps=30)
    assert len(shifted["results"]["mpur"]["outcomes"]) == 1 and "seeds 7…7" in shifted["table"]
    with pytest.raises(ValueError, match="obs_mode='vector'"):
        evaluate(tmp_path, env_overrides={"warmup": 5, "obs_mode": "vector"})
    with pytest.raises(ValueError, match=r"no saved policy for \['bc'\] .* saved: mpur"):
        evaluate(tmp_path, methods=["bc"])
    with pytest.raises(ValueError, match="no trained policies in"):
        evaluate(tmp_path / "empty")


def test_evaluate_refuses_a_policy_whose_training_was_interrupted(tmp_path) -> None:
    saved_policy(tmp_path)
    path = tmp_path / "policy/mpur/last.pt"
    checkpoint = torch.load(path, weights_only=False)
    torch.save({**checkpoint, "step": 3, "max_steps": 400}, path)  # as `--stop-after 3` leaves it
    with pytest.raises(ValueError, match=r"last.pt stopped at step 3 of 400; finish it with .*--resume"):
        evaluate(tmp_path, env_overrides={"warmup": 5})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 20}, r"^unknown option\(s\) k for the driving evaluation; allowed: episodes, seed_start"),
        ({"episodes": 0}, r"^option episodes=0 must be an int >= 1$"),
        ({"episodes": 2.5}, r"^option episodes=2.5 must be an int >= 1$"),
        ({"seed_start": -1}, r"must be an int >= 0"),
        ({"methods": "mpur"}, r"^option methods='mpur' must be a list of policy names"),
        ({"references": "yes"}, r"must be true or false"),
        ({"route_length": 0}, r"must be a number > 0"),
        ({"max_steps": True}, r"must be an int >= 1"),
        ({"env_overrides": 5}, r"must be a mapping"),
        ({"gif": 1}, r"must be true or false"),
        ({"write": None}, r"must be true or false"),
    ],
)
def test_every_evaluation_option_is_validated_in_one_line(tmp_path, options, message) -> None:
    saved_policy(tmp_path)
    with pytest.raises(ValueError, match=message):
        evaluate(tmp_path, **options)
    assert set(EVALUATE_OPTIONS) == {"episodes", "seed_start", "methods", "references", "route_length",
                                     "max_steps", "env_overrides", "gif", "write"}


def test_evaluate_writes_the_gif_of_the_first_policy(tmp_path) -> None:
    saved_policy(tmp_path)
    evaluate(tmp_path, env_overrides={"warmup": 5}, episodes=1, references=False, gif=True, write=False,
             route_length=10.0, max_steps=10)
    assert (tmp_path / "mpur_episode.gif").is_file() and not (tmp_path / "evaluation_reloaded.md").exists()
