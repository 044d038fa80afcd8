"""Resume of the generative recipes: stopped inside training and continued with
``--resume``, every checkpoint (generator or energy, its optimiser, the discriminator and its
optimiser, the replay buffer, the weight average, the learning-rate schedules) is bit-for-bit
that of an uninterrupted run."""

from __future__ import annotations

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

_TINY = ["dataset=digits", "width=4", "latent_dim=4", "code=4", "steps=4", "batch_size=8", "samples=20"]

CASES = {  # case: (recipe, overrides, updates before the stop)
    "ebgan-mnist": ("ebgan-mnist", [*_TINY, "pt_weight=0.1"], 2),
    "wgan-gp-mnist": ("wgan-gp-mnist", [*_TINY, "critic_steps=2"], 2),
    "dcgan-mnist": ("dcgan-mnist", [*_TINY, "ema_decay=0.9"], 2),  # the generator's weight average too
    "dcgan-mnist-r1": ("dcgan-mnist", [*_TINY, "r1_weight=10"], 2),
    "dcgan-mnist-linear": ("dcgan-mnist", [*_TINY, "lr_schedule=linear", "d_lr=0.001"], 2),
    "mcmc-ebm-mnist": ("mcmc-ebm-mnist", [*_TINY, "mcmc_steps=3", "buffer_size=32"], 2),
    "mcmc-ebm-mnist-linear": ("mcmc-ebm-mnist", [*_TINY, "mcmc_steps=3", "buffer_size=32",
                                                 "lr_schedule=linear"], 2),
    "mcmc-ebm-mnist-silu": ("mcmc-ebm-mnist", [*_TINY, "mcmc_steps=3", "buffer_size=32",
                                               "activation=silu"], 2),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOISE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_generative_recipe_resumes_bit_for_bit(tmp_path, case: str) -> None:
    recipe, overrides, stop_after = CASES[case]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
