"""Resume of the deployment recipe: stopped inside the float epochs and continued, it ends
with the checkpoints of an uninterrupted run (the float phase and the qat/ sub-run, whose
calibration is recomputed from the same weights and images)."""

from __future__ import annotations

from tests.recipes._resume import assert_resume_bit_for_bit

# digits: 1,347 training images, 64 per step -> 21 steps per epoch; stop inside the float epoch
CASES = {
    "lenet5-mnist": (
        [
            "dataset=digits",
            "epochs=1",
            "batch_size=64",
            "qat=anna_6w3a",
            "qat_epochs=1",
            "calibration_samples=128",
            "activity_l1=0.1",
        ],
        10,
    ),
}


def test_lenet5_recipe_resumes_bit_for_bit(tmp_path) -> None:
    overrides, stop_after = CASES["lenet5-mnist"]
    assert_resume_bit_for_bit(tmp_path, "lenet5-mnist", overrides, stop_after)
