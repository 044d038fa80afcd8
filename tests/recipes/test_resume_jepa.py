"""Resume of the latent world-model recipe: stopped inside the JEPA's loop or inside the
GCBC policy's, and continued with `--resume`, every checkpoint is bit-for-bit that of an
uninterrupted run (the data shards are regenerated identically or reused)."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY = [
    "image_size=17",
    "trajectories=24",
    "length=4",
    "window=3",
    "dim=6",
    "width=4",
    "hidden=8",
    "batch_size=4",
    "steps=3",
    "gcbc_steps=3",
    "rows=[mppi,gcbc,oracle]",
    "episodes=2",
    "horizon=4",
    "iterations=1",
    "samples=8",
    "elites=2",
    "replan_every=2",
]

CASES = {
    # stopped inside the JEPA loop (steps=3); the GCBC policy trains after the resume
    "jepa-two-rooms": (_TINY, 2),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_jepa_recipe_resumes_bit_for_bit(tmp_path, recipe: str) -> None:
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
