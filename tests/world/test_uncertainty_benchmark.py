"""benchmarks/world_uncertainty.py's ensemble measurement: identical members never disagree,
members from two seeds do, and the statistics are those of the variance over members."""

from __future__ import annotations

import math

import pytest

from genoise.recipes.world import train_model
from genoise.train.run import Run
from tests._benchmarks import load_benchmark
from tests.world.conftest import TINY, recipe_config


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("world_uncertainty")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    config = dict(TINY, action_conditioned=True)
    first = Run(root / "a", progress=False, config=recipe_config("world-model-traffic", **config))
    first.save_summary(train_model(first))
    first.save_config()
    traffic = str(root / "a" / "traffic")
    second = Run(
        root / "b",
        progress=False,
        config=recipe_config("world-model-traffic", **config, seed=1, traffic_dir=traffic),
    )
    second.save_summary(train_model(second))
    second.save_config()
    return root / "a", root / "b"


def test_identical_members_never_disagree(bench, runs) -> None:
    rows = bench.measure_ensemble([runs[0], runs[0]], states=6, horizon=3, seed=0)
    assert list(rows) == list(bench.KINDS)
    for r in rows.values():
        assert r["u_mean"] == 0.0 and r["u_image_mean"] == 0.0 and r["share_zero"] == 1.0
        assert math.isnan(r["ratio_of_means"])


def test_members_from_two_seeds_disagree(bench, runs) -> None:
    rows = bench.measure_ensemble(list(runs), states=6, horizon=3, seed=0)
    assert rows["data"]["ratio_of_means"] == pytest.approx(1.0) and rows["data"]["share_above_data"] == 0.0
    assert rows["swerve"]["u_image_mean"] > 0.0
    for r in rows.values():
        assert 0.0 <= r["share_above_data"] <= 1.0 and r["u_mean"] >= 0.0


def test_learned_car_motion_model_measured_beside_the_others(bench, tmp_path) -> None:
    """``--learned`` trains a third model (``car_motion=learned``) on the same data, ``--set``
    reaches every model, and the record holds all three."""
    import json

    import yaml

    tiny = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in TINY.items() if k != "train_steps"]
    out, records = tmp_path / "cells", tmp_path / "records"
    args = ["--learned", "--train-steps", "3", "--states", "4", "--horizon", "3", "--samples", "2",
            "--chunk", "4", "--out-dir", str(out), "--records", str(records), "--record", "wu",
            "--today-steps", "2", "--set", *tiny]
    assert bench.main(args) == 0
    payload = json.loads((records / "wu.json").read_text())
    assert set(payload["models"]) == {"blind", "conditioned", "learned"}
    # today's model: the recipe's model and training on the same data, raster and seed
    today = yaml.safe_load((out / "today" / "config.yaml").read_text())
    assert today["raster_shape"] == TINY["raster_shape"]
    assert today["traffic_dir"] == str(out / "blind" / "traffic")
    assert today["train_steps"] == 2 and today["hidden"] == 256 and today["action_conditioned"] is False
    today_error = json.loads((out / "today" / "summary.json").read_text())["error_vs_horizon"]["model"]
    assert payload["today_error_vs_horizon"] == today_error
    for name, verdict in payload["error_goal"].items():
        error = payload["models"][name]["error_vs_horizon"]
        ratios = [e / t for e, t in zip(error, today_error, strict=True)]
        assert verdict["worst_ratio"] == max(ratios) and verdict["met"] == (max(ratios) <= 1)
        # the paired comparison: on the same samples its mean difference is the means' difference
        paired = payload["paired_error_vs_today"][name]
        for step, (rel, ratio) in enumerate(zip(paired["relative"], ratios, strict=True), 1):
            assert rel == pytest.approx(ratio - 1, rel=1e-4, abs=1e-6)
            assert (step in verdict["significantly_worse_steps"]) == (rel > 2 * paired["se"][step - 1])
    assert set(payload["u_ratio"]) == {"blind", "conditioned", "learned"}
    assert payload["model_overrides"]["n_future"] == TINY["n_future"]
    learned = yaml.safe_load((out / "learned" / "config.yaml").read_text())
    assert learned["car_motion"] == "learned" and learned["action_conditioned"] is True
    assert learned["raster_shape"] == TINY["raster_shape"]
    assert learned["traffic_dir"] == str(out / "blind" / "traffic")  # the same data as the others
    text = (records / "wu.md").read_text()
    assert "`car_motion=learned`" in text
    assert "| step | blind MSE | conditioned MSE | learned MSE | today's model MSE |" in text
    assert "Prediction error against today's model" in text and "steps worse by > 2 SE" in text


@pytest.mark.parametrize("bad, message", [(["nope=1"], "unknown key 'nope'"),
                                          (["seed=1"], "seed is set by the benchmark itself")])
def test_bad_model_overrides_are_refused(bench, tmp_path, capsys, bad, message) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--out-dir", str(tmp_path / "x"), "--set", *bad])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
