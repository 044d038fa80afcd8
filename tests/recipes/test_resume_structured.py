"""Resume of the check-amount recipe: stopped inside the isolated stage, the global stage or
the SDNN's training and continued with ``--resume``, every checkpoint is bit-for-bit that of
an uninterrupted run."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY = [
    "dataset=digits",
    "train_strings=24",
    "test_strings=6",
    "isolated_steps=3",
    "steps=3",
    "batch_size=4",
    "max_length=5",
]

CASES = {"gtn-amounts": ([*_TINY, "loss=discriminative_forward"], 2)}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_structured_recipe_resumes_bit_for_bit(tmp_path, recipe: str) -> None:
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)


def test_cosine_isolated_stage_resumes_bit_for_bit(tmp_path) -> None:
    """The learning-rate scheduler's state is in the checkpoint."""
    assert_resume_bit_for_bit(
        tmp_path, "gtn-amounts", [*_TINY, "loss=isolated", "isolated_steps=4", "isolated_schedule=cosine"], 2
    )


def test_sdnn_variant_resumes_bit_for_bit(tmp_path) -> None:
    assert_resume_bit_for_bit(
        tmp_path, "gtn-amounts", [*_TINY, "loss=sdnn_ctc", "sdnn_steps=4", "sdnn_width=2"], 2
    )


def test_pretraining_stage_resumes_bit_for_bit(tmp_path) -> None:
    """Stopped inside the pre-training on isolated digits (distorted: the step's generator is in
    the checkpoint too), then the isolated and global stages."""
    overrides = [*_TINY, "loss=discriminative_forward", "pretrain_epochs=1", "pretrain_distortion=1"]
    assert_resume_bit_for_bit(tmp_path, "gtn-amounts", overrides, 4)


def test_string_stages_with_isolated_characters_resume_bit_for_bit(tmp_path) -> None:
    """``character_weight``: the characters of every string update are drawn (and distorted) from
    the step's generator, so a run stopped inside a string stage ends where an unbroken one does."""
    overrides = [*_TINY, "loss=discriminative_forward", "character_weight=0.5", "pretrain_distortion=1"]
    assert_resume_bit_for_bit(tmp_path, "gtn-amounts", overrides, 2)
