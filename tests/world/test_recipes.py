"""The world recipes (`genoise.recipes.world`) run end to end at tiny size, read exactly the keys
their YAML documents, write their artefacts and resume."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from genoise.recipes.world import demo, train_model, train_mpur
from genoise.train.run import Run
from genoise.world.checkpoints import find_forward_model, find_policies, load_forward_model
from tests.world.conftest import TINY, TINY_MPUR, recipe_config

COMMON = {"seed", "device", "data_dir"}
COST_KEYS = {"lane_weight", "offroad_weight", "speed_gradient", "rear_speed"}  # also read by `genoise plan`


class ReadKeys(dict):
    """A configuration that records every key read (``[key]``, ``get``, ``in``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


@pytest.mark.parametrize(
    ("name", "entry", "overrides", "unread"),
    [
        ("world-model-traffic", train_model, TINY, COST_KEYS),
        # planners=[cem] so that the planner keys are read too; model_run=null trains the model
        ("world-mpur-traffic", train_mpur, dict(TINY_MPUR, planners=["cem"]), set()),
    ],
)
def test_entries_read_exactly_the_keys_their_yaml_documents(tmp_path, name, entry, overrides, unread) -> None:
    config = ReadKeys(recipe_config(name, **overrides))
    entry(Run(tmp_path / name, config=config, progress=False))
    documented = set(config)
    assert config.read - documented == set(), "keys read but not in the YAML (hidden defaults)"
    assert documented - COMMON - unread - config.read == set(), "YAML keys the entry never reads"


def test_world_model_recipe_end_to_end(tmp_path) -> None:
    run = Run(tmp_path / "run", config=recipe_config("world-model-traffic", **TINY), progress=False)
    summary = train_model(run)
    assert len(summary["error_vs_horizon"]["model"]) == 3
    for name in ("model/last.pt", "model/metrics.jsonl", "error_vs_horizon.png", "predictions.png"):
        assert (run.dir / name).exists(), name
    assert json.loads((run.dir / "traffic" / "manifest.json").read_text())["road"]["n_lanes"] == 2
    assert find_forward_model(run.dir) == run.dir / "model" / "last.pt"
    model = load_forward_model(run.dir / "model" / "last.pt")
    assert (model.history, model.nz, model.kinematics["n_lanes"]) == (2, 2, 2)
    with pytest.raises(ValueError, match="obs_mode"):
        load_forward_model(run.dir / "model" / "last.pt", expect_obs={"obs_mode": "vector"})


def test_mpur_recipe_saves_policies_and_resume_skips_training(tmp_path) -> None:
    config = recipe_config("world-mpur-traffic", **TINY_MPUR)
    run = Run(tmp_path / "mpur", config=dict(config), progress=False)
    first = train_mpur(run)
    files = {k: p.stat().st_mtime_ns for k, p in find_policies(run.dir).items()}
    assert set(files) == {"bc", "mpur"} and "| MPUR |" in first["table"]
    assert (run.dir / "model" / "last.pt").is_file() and (run.dir / "model" / "summary.json").is_file()
    resumed = Run(tmp_path / "mpur", config=dict(config), progress=False, resume=True)
    second = train_mpur(resumed)
    assert {k: p.stat().st_mtime_ns for k, p in find_policies(run.dir).items()} == files
    assert second["results"]["mpur"]["outcomes"] == first["results"]["mpur"]["outcomes"]


def test_mpur_recipe_reuses_a_model_run(tmp_path) -> None:
    model_run = Run(tmp_path / "model", config=recipe_config("world-model-traffic", **TINY), progress=False)
    model_run.save_summary(train_model(model_run))
    config = recipe_config("world-mpur-traffic", **dict(TINY_MPUR, policies=["bc"]))
    reuse = dict(config, model_run=str(model_run.dir))
    out = train_mpur(Run(tmp_path / "mpur", config=reuse, progress=False))
    assert "bc" in out["results"] and not (tmp_path / "mpur" / "model").exists()
    missing = dict(config, model_run=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no forward model in"):
        train_mpur(Run(tmp_path / "bad", config=missing, progress=False))


def test_mpur_recipe_drives_planners_on_the_first_planner_episodes_only(tmp_path) -> None:
    overrides = dict(TINY_MPUR, policies=[], planners=["cem"], eval_episodes=2)
    config = recipe_config("world-mpur-traffic", **overrides)
    out = train_mpur(Run(tmp_path / "plan", config=dict(config), progress=False))
    assert len(out["results"]["none"]["outcomes"]) == 2 and len(out["results"]["cem"]["outcomes"]) == 1
    assert "Planners over the learned model" in out["table"] and "| CEM |" in out["table"]
    assert (tmp_path / "plan" / "evaluation.md").read_text() == out["table"]
    with pytest.raises(ValueError, match="planner_episodes must be > 0"):
        train_mpur(Run(tmp_path / "bad", config=dict(config, planner_episodes=0), progress=False))


@pytest.mark.slow
def test_demo_section_links_only_files_it_wrote(tmp_path) -> None:
    run = Run(tmp_path / "world", progress=False)
    markdown = demo(run, full=False)
    assert markdown.startswith("## Driving in dense traffic") and "| IDM driver (replay) | 100 |" in markdown
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert links and all((run.dir / link).is_file() for link in links), links


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("world-model-traffic", {"raster_shape": [20, 8]}, r"^raster_shape=\[20, 8\] must be two"),
        ("world-model-traffic", {"raster_extent": [40.0]}, r"^raster_extent=\[40.0\] must be two positive"),
        ("world-mpur-traffic", {"policies": ["bc", "ppo"]}, r"^policies=\[.bc., .ppo.\] must be"),
        ("world-mpur-traffic", {"planners": ["ilqr"]}, r"^planners=\['ilqr'\] must be a list among gradient"),
        ("world-mpur-traffic", {"route_length": 250.0}, r"^route_length=250.0 must be shorter than the ring"),
    ],
)
def test_bad_values_are_refused_before_any_work(tmp_path, name, overrides, message) -> None:
    entry = train_model if name == "world-model-traffic" else train_mpur
    run = Run(tmp_path / "run", config=recipe_config(name, **dict(TINY, **overrides)), progress=False)
    with pytest.raises(ValueError, match=message):
        entry(run)
    assert not (run.dir / "traffic").exists()  # nothing collected, nothing trained
