"""Free energies, the Gibbs distribution and the log partition function against explicit
formulas and closed forms (LeCun et al. 2006, §1.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genoise.energy import Energy, FunctionEnergy, free_energy_from_energies, gibbs, log_partition


def _explicit_free_energy(energies: np.ndarray, beta: float, mean: bool = False) -> np.ndarray:
    weights = np.exp(-beta * energies)
    total = weights.mean(axis=1) if mean else weights.sum(axis=1)
    return -np.log(total) / beta


@pytest.mark.parametrize("beta", [0.3, 1.0, 4.0])
def test_discrete_free_energy_matches_explicit_sum(beta):
    e = np.random.default_rng(0).normal(size=(5, 7))
    got = free_energy_from_energies(torch.tensor(e), beta)
    np.testing.assert_allclose(got.numpy(), _explicit_free_energy(e, beta), rtol=1e-12)
    got_mean = free_energy_from_energies(torch.tensor(e), beta, mean=True)
    np.testing.assert_allclose(got_mean.numpy(), _explicit_free_energy(e, beta, mean=True), rtol=1e-12)


def test_free_energy_tends_to_min_as_beta_grows():
    e = torch.tensor([[0.5, 0.2, 0.9], [3.0, -1.0, -0.5]], dtype=torch.float64)
    minimum = e.min(1).values
    torch.testing.assert_close(free_energy_from_energies(e, math.inf), minimum)
    for beta in (10.0, 100.0, 1e4):
        f = free_energy_from_energies(e, beta)
        # min − log(K)/β ≤ F_β ≤ min
        assert (f <= minimum + 1e-12).all() and (f >= minimum - math.log(3) / beta).all()
    torch.testing.assert_close(free_energy_from_energies(e, 1e6), minimum, atol=1e-5, rtol=0)


def test_discrete_latent_model_free_energy_marginalises_z():
    candidates = torch.tensor([[-1.0], [0.0], [2.0]])
    energy = FunctionEnergy(lambda y, x, z: ((y - z) ** 2).sum(-1), latent_candidates=candidates)
    y = torch.tensor([[0.4], [1.5]])
    explicit = (y - candidates.T) ** 2  # (B, K)
    torch.testing.assert_close(energy.free_energy(y), explicit.min(1).values)
    torch.testing.assert_close(energy.free_energy(y, beta=2.0), -torch.logsumexp(-2.0 * explicit, 1) / 2.0)


class GaussianLatentEnergy(Energy):
    """E(y, z) = ‖y − z‖² / 2 with z ~ q = N(0, I): F_β(y) = −(1/β) log E_q[exp(−β E(y, z))]
    = d/(2β) · log(1 + β) + ‖y‖² / (2(1 + β))."""

    has_latent = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def energy(self, y, x=None, z=None):
        return 0.5 * ((y - z) ** 2).sum(-1)

    def sample_latent(self, num_samples, batch_size, generator=None):
        return torch.randn(num_samples, batch_size, self.dim, generator=generator, dtype=torch.float64)

    def initial_latent(self, y, x=None):
        return torch.zeros_like(y)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_monte_carlo_free_energy_of_gaussian_latent_matches_closed_form(beta):
    dim, samples = 2, 20000
    model = GaussianLatentEnergy(dim)
    y = torch.tensor([[0.0, 0.0], [1.0, -0.5], [2.0, 1.0]], dtype=torch.float64)
    got = model.free_energy(y, beta=beta, num_samples=samples, generator=torch.Generator().manual_seed(0))
    sq = (y ** 2).sum(-1)
    closed = dim / (2 * beta) * math.log(1 + beta) + sq / (2 * (1 + beta))
    # Delta-method standard error of −(1/β) log(mean w), w = exp(−β E): closed-form moments of w.
    first = (1 + beta) ** (-dim / 2) * torch.exp(-beta * sq / (2 * (1 + beta)))
    second = (1 + 2 * beta) ** (-dim / 2) * torch.exp(-beta * sq / (1 + 2 * beta))
    stderr = torch.sqrt((second / first ** 2 - 1) / samples) / beta
    assert ((got - closed).abs() < 4 * stderr).all(), (got, closed, stderr)


def test_continuous_latent_at_infinite_beta_minimises_over_z():
    # E(y, z) = ‖y − z‖²/2 + λ‖z‖²/2 → z* = y/(1+λ), F_∞ = λ‖y‖² / (2(1+λ)).
    lam = 0.5

    class Ridge(GaussianLatentEnergy):
        def energy(self, y, x=None, z=None):
            return 0.5 * ((y - z) ** 2).sum(-1) + 0.5 * lam * (z ** 2).sum(-1)

    y = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    expected = lam * (y ** 2).sum(-1) / (2 * (1 + lam))
    torch.testing.assert_close(Ridge(2).free_energy(y), expected)


def test_finite_beta_without_sampler_is_an_error():
    class NoSampler(Energy):
        has_latent = True

        def energy(self, y, x=None, z=None):
            return ((y - z) ** 2).sum(-1)

    with pytest.raises(ValueError, match="no sample_latent"):
        NoSampler().free_energy(torch.zeros(2, 1), beta=1.0)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_gibbs_sums_to_one_and_matches_softmax(beta):
    f = np.random.default_rng(1).normal(size=(4, 6))
    p = gibbs(torch.tensor(f), beta=beta).numpy()
    explicit = np.exp(-beta * f) / np.exp(-beta * f).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, explicit, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_gibbs_at_infinite_beta_is_one_hot_and_shares_ties():
    f = torch.tensor([[0.3, 0.1, 0.5], [0.2, 0.2, 0.9]])
    torch.testing.assert_close(gibbs(f, math.inf), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]))


def test_log_partition_and_gibbs_are_consistent():
    f = torch.tensor([[0.3, 0.1, 0.5], [2.0, -1.0, 0.0]], dtype=torch.float64)
    beta = 1.5
    explicit = torch.log(torch.exp(-beta * f).sum(1)) / beta
    torch.testing.assert_close(log_partition(f, beta), explicit)
    # −(1/β) log P(y|x) = F(x, y) + (1/β) log Z: the NLL loss
    torch.testing.assert_close(-torch.log(gibbs(f, beta)) / beta, f + log_partition(f, beta)[:, None])
    torch.testing.assert_close(log_partition(f, math.inf), -f.min(1).values)


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan, True, "1"])
def test_bad_beta_is_rejected(beta):
    e = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        free_energy_from_energies(e, beta)
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        gibbs(e, beta)
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        FunctionEnergy(lambda y, x, z: y.sum(-1)).free_energy(torch.zeros(2, 1), beta=beta)


def test_free_energy_shape_errors():
    with pytest.raises(ValueError, match="energies must have 2 dimension"):
        free_energy_from_energies(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="empty latent dimension"):
        free_energy_from_energies(torch.zeros(3, 0), 1.0)
    with pytest.raises(ValueError, match="batch sizes differ"):
        FunctionEnergy(lambda y, x, z: y.sum(-1)).free_energy(torch.zeros(2, 1), torch.zeros(3, 1))
