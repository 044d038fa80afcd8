"""Resume of the video-prediction recipe: stopped inside the training loop (the adversarial one,
and the dynamic filter network's) and continued with `--resume`, every checkpoint (the
generator, its optimiser, the discriminator and its optimiser) is bit-for-bit that of an
uninterrupted run."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY = ["image_size=32", "scales=2", "width=4", "steps=4", "batch_size=2", "test_sequences=2",
         "discriminator_width=4", "dataset=digits", "loss=adv_gdl"]

_DFN = ["image_size=32", "model=dfn", "loss=l2", "stochastic=false", "context=4", "horizon=3",
        "eval_steps=3", "width=4", "hidden=8", "steps=4", "batch_size=2", "test_sequences=2",
        "dataset=digits"]

CASES = {"video-mmnist": (_TINY, 2)}  # by recipe name: tests/recipes/test_every_recipe.py reads it


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_video_recipe_resumes_bit_for_bit(tmp_path, recipe: str) -> None:
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)


def test_video_recipe_resumes_the_dynamic_filter_network_bit_for_bit(tmp_path) -> None:
    assert_resume_bit_for_bit(tmp_path, "video-mmnist", _DFN, 2)
