"""Every latent recipe, stopped after step K and resumed, ends with the checkpoints of an
uninterrupted run (K-means mid-restart, dictionary learning mid-epoch, a Trainer inside
the LISTA recipe after its dictionary is finished)."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY_AE = ["dataset=digits", "epochs=2", "hidden=[16]", "train_subset=300", "batch_size=64"]
_TINY_DICTIONARY = ["dataset=digits", "n_atoms=16", "n_train=300", "n_test=100"]
CASES = {
    "pca-mnist": (["dataset=digits", "n_components=8"], 1),
    "kmeans-mnist": (["dataset=digits", "n_clusters=5", "n_init=2", "max_iter=10"], 7),
    "ae-mnist": ([*_TINY_AE, "kind=denoising", "latent_dim=4"], 5),
    "vae-mnist": (_TINY_AE, 5),
    "sparse-coding-mnist": ([*_TINY_DICTIONARY, "batch_size=64"], 3),
    "lista-mnist": ([*_TINY_DICTIONARY, "epochs=1", "batch_size=256", "steps=[1,2]", "lista_steps=[1,2]",
                     "lcod_steps=[3]", "encoder_epochs=2", "encoder_batch_size=128"], 3),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_latent_recipe_resumes_bit_for_bit(tmp_path, recipe):
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
