"""Latent regularisers: the closed-form KL against torch.distributions and a Monte-Carlo
estimate, the reparameterised sample's moments, seeding and gradients, L1 and one-hot."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from genoise.latent.regularizers import kl_divergence, l1_penalty, one_hot_penalty, reparameterize


def _gaussian(b: int = 7, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, k, generator=gen, dtype=torch.float64),
            torch.randn(b, k, generator=gen, dtype=torch.float64))


def test_kl_matches_closed_form_of_torch_distributions():
    mu, logvar = _gaussian()
    expected = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), 1.0)).sum(-1)
    kl = kl_divergence(mu, logvar)
    assert kl.shape == (7,)
    torch.testing.assert_close(kl, expected)
    assert float(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max()) == 0.0


def test_kl_matches_a_monte_carlo_estimate_from_reparameterized_samples():
    """KL(q ‖ p) = E_q[log q(z) − log p(z)], estimated with 200k samples z = μ + σ ε: the
    closed form lies within 5 standard errors of the estimate, for every sample."""
    mu, logvar = _gaussian(b=3, k=4, seed=1)
    n = 200_000
    z = reparameterize(mu.expand(n, 3, 4), logvar.expand(n, 3, 4), torch.Generator().manual_seed(2))
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)
    terms = (q.log_prob(z) - p.log_prob(z)).sum(-1)                    # (n, 3)
    estimate, se = terms.mean(0), terms.std(0) / math.sqrt(n)
    assert bool(((kl_divergence(mu, logvar) - estimate).abs() < 5 * se).all())


def test_reparameterize_has_the_posterior_moments_is_seeded_and_differentiable():
    mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64).expand(100_000, 2).clone().requires_grad_()
    logvar = torch.tensor([[0.0, math.log(4.0)]], dtype=torch.float64).expand(100_000, 2).clone()
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0], dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([1.0, 4.0], dtype=torch.float64), atol=0.06, rtol=0)
    again = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    other = reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    assert torch.equal(z, again) and not torch.equal(z, other)
    z.sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))                   # ∂z/∂μ = 1


def test_l1_and_one_hot_penalties():
    z = torch.tensor([[1.0, -2.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(l1_penalty(z), torch.tensor([3.0, 1.0, 1.0, 0.0]))
    assert one_hot_penalty(z).tolist() == [math.inf, 0.0, math.inf, math.inf]
    assert one_hot_penalty(torch.eye(4)).tolist() == [0.0] * 4


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(torch.zeros(3, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="z must have 2"):
        l1_penalty(torch.zeros(3))
