"""Resume of the averaging recipes: a simulated cluster stopped after local step K and
continued with ``--resume`` ends with the checkpoint of an uninterrupted run (every worker,
the center or the master, the counters and the curve)."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY = ["dataset=digits", "n_test=60", "eval_points=4", "batch_size=8"]

CASES = {
    "averaging-mnist": ([*_TINY, "distributed=eamsgd", "workers=3", "tau=2", "worker_steps=24"], 3),
    "averaging-cifar10": ([*_TINY, "distributed=downpour", "workers=2", "tau=2", "worker_steps=16"], 4),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_averaging_recipe_resumes_bit_for_bit(tmp_path, recipe: str) -> None:
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)


def test_diloco_resumes_bit_for_bit(tmp_path) -> None:
    assert_resume_bit_for_bit(
        tmp_path,
        "averaging-mnist",
        [*_TINY, "distributed=diloco", "workers=2", "tau=3", "worker_steps=18"],
        5,
    )
