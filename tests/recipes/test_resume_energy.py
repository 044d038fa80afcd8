"""The foundation experiments resume bit for bit. Both train several models in sub-folders
(one per (toy, method) or per loss): the stop hits the first, the resume finishes it and
trains the others."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

CASES: dict[str, tuple[list[str], int]] = {
    "energy-landscapes": (["toys=[two_moons]", "methods=[nll, hinge]", "steps=6", "batch_size=64",
                           "hidden=8", "grid=8", "eval_grid=16", "langevin_steps=2", "n_train=200"], 3),
    "loss-table": (["dataset=digits", "losses=[hinge, nll]", "steps=6", "batch_size=32",
                    "train_subset=128"], 3),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_energy_recipe_resumes_bit_for_bit(tmp_path, recipe):
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
