"""VAE: closed-form KL, the ELBO against an explicit computation, the ELBO rises with
training, the energy surface, sampling and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal
from torch.distributions import kl_divergence as torch_kl

from genoise.data import load_digits
from genoise.latent.autoencoders import fit_autoencoder
from genoise.latent.regularizers import kl_divergence, reparameterize
from genoise.latent.vae import VAE


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits("train").images[:800]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_matches_explicit_single_sample_computation(digits, likelihood):
    torch.manual_seed(0)
    vae = VAE(64, 3, hidden=[32], likelihood=likelihood)
    y = digits[:10].flatten(1)
    elbo = vae.elbo(y, torch.Generator().manual_seed(7))
    mu, logvar = vae.encode(y)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    out = vae.decoder(z)
    if likelihood == "bernoulli":
        log_lik = Bernoulli(logits=out, validate_args=False).log_prob(y).sum(-1)
    else:
        log_lik = Normal(out, math.sqrt(0.5)).log_prob(y).sum(-1)
    kl = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), 1.0)).sum(-1)
    torch.testing.assert_close(elbo, log_lik - kl, rtol=1e-5, atol=1e-4)


def test_elbo_increases_during_training(digits):
    torch.manual_seed(0)
    vae = VAE(64, 4, hidden=[64])

    def mean_elbo() -> float:
        with torch.no_grad():
            return float(vae.elbo(digits, torch.Generator().manual_seed(0), num_samples=4).mean())

    before = mean_elbo()
    history = fit_autoencoder(vae, digits, epochs=8, batch_size=64, lr=3e-3,
                              generator=torch.Generator().manual_seed(0))
    after = mean_elbo()
    assert history[-1] < history[0]
    assert after > before + 5.0


def test_free_energy_surface(digits):
    torch.manual_seed(0)
    vae = VAE(64, 2, hidden=[16])
    y = digits[:6]
    mu, _ = vae.encode(y)
    torch.testing.assert_close(vae.free_energy(y), vae.energy(y, z=mu))
    torch.testing.assert_close(vae.free_energy(y, beta=1.0, generator=torch.Generator().manual_seed(3)),
                               -vae.elbo(y, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match=r"beta=inf .* and beta=1"):
        vae.free_energy(y, beta=2.0)


def test_kl_weight_scales_only_the_kl_term(digits):
    torch.manual_seed(0)
    vae = VAE(64, 2, hidden=[16])
    y = digits[:6]
    base = vae.loss(y, torch.Generator().manual_seed(1))
    vae.kl_weight = 3.0
    heavy = vae.loss(y, torch.Generator().manual_seed(1))
    kl = kl_divergence(*vae.encode(y)).mean()
    torch.testing.assert_close(heavy - base, 2.0 * kl, rtol=1e-4, atol=1e-4)


def test_sampling_is_seeded_and_in_range():
    vae = VAE(64, 2, hidden=[16])
    a = vae.sample(5, torch.Generator().manual_seed(0))
    b = vae.sample(5, torch.Generator().manual_seed(0))
    assert a.shape == (5, 64) and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_vae_bad_input():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE(64, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        VAE(64, 2, kl_weight=-1.0)
    with pytest.raises(ValueError, match=r"expects y of shape \(B, 64\)"):
        VAE(64, 2).elbo(torch.rand(3, 10))
