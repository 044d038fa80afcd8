"""The world recipes run end to end on a tiny configuration and write their artefacts."""

from __future__ import annotations

import json

import pytest
import yaml

from genoise.train.run import Run
from genoise.world.forward import load_forward_model
from genoise.world.recipes import world_model_traffic

TINY = dict(
    seed=0,
    traffic_dir=None,
    warmup=10,
    episodes=1,
    steps=60,
    lanes=2,
    road_length=200.0,
    density=40.0,
    raster_shape=[16, 8],
    raster_extent=[40.0, 16.0],
    history=2,
    n_future=1,
    nz=2,
    ego_kinematics=True,
    width=4,
    hidden=16,
    dropout=0.1,
    train_steps=3,
    batch_size=4,
    lr=1e-3,
    beta=1e-6,
    z_dropout=0.5,
    eval_horizon=3,
    eval_batches=1,
)


def test_shipped_recipes_name_every_key_the_entry_reads() -> None:
    from importlib import resources

    folder = resources.files("genoise") / "recipes"
    config = yaml.safe_load((folder / "world-model-traffic.yaml").read_text())["config"]
    assert set(TINY) - {"seed"} == set(config)
    mpur = yaml.safe_load((folder / "world-mpur-traffic.yaml").read_text())["config"]
    assert set(config) <= set(mpur) and {"policies", "planners", "u_weight", "horizon"} <= set(mpur)


def test_world_model_recipe_end_to_end(tmp_path) -> None:
    run = Run(tmp_path / "run", config=dict(TINY), progress=False)
    summary = world_model_traffic(run)
    assert len(summary["error_vs_horizon"]["model"]) == 3
    for name in ("forward_model.pt", "error_vs_horizon.png", "predictions.png", "metrics.jsonl"):
        assert (run.dir / name).exists(), name
    assert json.loads((run.dir / "traffic" / "manifest.json").read_text())["road"]["n_lanes"] == 2
    with pytest.raises(ValueError, match="obs_mode"):
        load_forward_model(run.dir / "forward_model.pt", expect_obs={"obs_mode": "vector"})
