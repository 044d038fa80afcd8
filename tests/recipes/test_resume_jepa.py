"""Resume of the latent world-model recipe: stopped inside the JEPA's loop or inside the
GCBC policy's, and continued with `--resume`, every checkpoint is bit-for-bit that of an
uninterrupted run (the data shards are regenerated identically or reused)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.recipes._resume import _train, assert_resume_bit_for_bit

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



def test_jepa_recipe_with_the_cosine_schedule_resumes_bit_for_bit_on_its_curve(tmp_path) -> None:
    """`lr_schedule=cosine` (the reference's warm-up + cosine): a run stopped after 4 of 10
    JEPA updates holds the closed form's rate of update 4 in its optimiser (the scheduler's
    step is checkpointed), and resumed it ends as an uninterrupted run."""
    overrides = [o for o in _TINY if not o.startswith(("steps=", "gcbc_steps=", "rows="))]
    overrides += ["steps=10", "gcbc_steps=0", "rows=[oracle]", "lr_schedule=cosine"]
    assert _train(tmp_path, "jepa-two-rooms", overrides, "stopped", "--stop-after", "4") == 0
    state = torch.load(tmp_path / "stopped" / "jepa" / "last.pt", map_location="cpu", weights_only=False)
    warmup, base, floor = 1, 1e-3, 1e-5  # W = floor(0.1 * 10) updates of warm-up
    want = floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * (4 - warmup) / (10 - warmup)))
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(want, rel=1e-12)
    assert_resume_bit_for_bit(tmp_path, "jepa-two-rooms", overrides, 4)
