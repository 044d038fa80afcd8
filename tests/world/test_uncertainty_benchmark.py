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
