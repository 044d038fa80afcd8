"""Every SSL recipe resumes bit for bit: stopped after step 3 of 4 (mid-epoch, after the
epoch boundary where DeepCluster recomputes its targets) and resumed, it ends with the
checkpoint of an uninterrupted run. Tiny settings: 64 digits images, a 4-channel ConvNet."""

from __future__ import annotations

import pytest

from genoise.ssl.methods import METHODS
from tests.recipes._resume import assert_resume_bit_for_bit

TINY = ["dataset=digits", "backbone=conv", "width=4", "out_dim=8", "proj_hidden=16", "proj_dim=16",
        "train_subset=64", "batch_size=32", "epochs=2", "probe_iterations=5"]
# k-means over 64 images needs fewer prototypes than the MNIST/CIFAR recipes' 100/300.
EXTRA = {"deepcluster": ["method_options={temperature: 0.1, num_prototypes: 8}"]}

CASES: dict[str, tuple[list[str], int]] = {
    f"{method}-{dataset}": ([*TINY, *EXTRA.get(method, [])], 3)
    for method in METHODS for dataset in ("digits", "mnist", "cifar10")
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_ssl_recipe_resumes_bit_for_bit(tmp_path, recipe):
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
