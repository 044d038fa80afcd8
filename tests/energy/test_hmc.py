"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) with dual-averaging step size
(Hoffman & Gelman 2014) and its persistent sampler."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import FunctionEnergy, ReplayBuffer, uniform_init
from genoise.energy.hmc import DualAveraging, PersistentHMCSampler, hmc_sample

MEAN = torch.tensor([1.0, -2.0])
COV = torch.tensor([[1.0, 0.8], [0.8, 1.0]])  # eigenvalues 1.8 and 0.2: leapfrog stable for ε < 0.89
PRECISION = torch.linalg.inv(COV)


def _gaussian_energy(y: torch.Tensor) -> torch.Tensor:
    """E(y) = ½ (y − m)ᵀ Σ⁻¹ (y − m): exp(−E) is N(m, Σ)."""
    centred = y - MEAN
    return 0.5 * ((centred @ PRECISION) * centred).sum(-1)


def _exact_samples(n: int, generator: torch.Generator) -> torch.Tensor:
    return MEAN + torch.randn(n, 2, generator=generator) @ torch.linalg.cholesky(COV).T


def _assert_gaussian_moments(samples: torch.Tensor, *, sigmas: float = 4.0) -> None:
    """Sample mean and covariance of n independent N(m, Σ) draws, within ``sigmas`` standard
    errors: SE(mean_i) = √(Σ_ii / n), SE(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²) / n)."""
    n = samples.shape[0]
    variances = torch.diagonal(COV)
    torch.testing.assert_close(samples.mean(0), MEAN, rtol=0,
                               atol=float(sigmas * (variances.max() / n).sqrt()))
    cov_se = ((variances[:, None] * variances[None, :] + COV ** 2) / n).sqrt()
    error = (torch.cov(samples.T) - COV).abs()
    assert (error < sigmas * cov_se).all(), f"covariance error {error} vs SE {cov_se}"


def test_hmc_leaves_a_correlated_gaussian_invariant():
    g = torch.Generator().manual_seed(0)
    start = _exact_samples(4000, g)
    result = hmc_sample(_gaussian_energy, start, steps=20, leapfrog_steps=10, step_size=0.3,
                        generator=g)
    assert result.samples.shape == (4000, 2) and not result.samples.requires_grad
    assert 0.5 < result.accept_rate < 1.0
    assert (result.samples != start).any(dim=1).float().mean() > 0.5  # the chains moved
    _assert_gaussian_moments(result.samples)


def test_hmc_converges_from_a_bad_start():
    g = torch.Generator().manual_seed(1)
    start = torch.tensor([[8.0, -6.0]]).expand(4000, 2)  # against the correlation: U ≈ 150
    result = hmc_sample(_gaussian_energy, start, steps=60, leapfrog_steps=10, step_size=0.3,
                        generator=g)
    _assert_gaussian_moments(result.samples)


def test_acceptance_falls_as_the_step_grows_and_is_one_for_a_tiny_step():
    rates = []
    for step_size in (1e-3, 0.05, 0.5, 1.5):
        g = torch.Generator().manual_seed(2)
        rates.append(hmc_sample(_gaussian_energy, _exact_samples(2000, g), steps=5,
                                leapfrog_steps=10, step_size=step_size, generator=g).accept_rate)
    assert rates[0] > 0.9999
    assert rates[0] >= rates[1] > rates[2] > rates[3]
    assert rates[3] < 0.05  # beyond the stability limit 2·√0.2 ≈ 0.89 the energy error explodes


def test_dual_averaging_reaches_the_target_acceptance():
    scales = torch.linspace(0.5, 1.0, 50)

    def energy(y):
        return 0.5 * ((y / scales) ** 2).sum(-1)

    for target in (0.65, 0.9):
        g = torch.Generator().manual_seed(3)
        result = hmc_sample(energy, torch.randn(500, 50, generator=g) * scales, steps=250,
                            leapfrog_steps=5, step_size=0.01, adapt_steps=150,
                            target_accept=target, generator=g)
        assert abs(result.accept_rate - target) < 0.07, (target, result)
        assert result.step_size > 0.05  # grew from the far too small ε₀ = 0.01


def test_dual_averaging_follows_the_paper_recursion():
    adaptation = DualAveraging(0.1, target_accept=0.8)
    assert adaptation.step_size == pytest.approx(0.1) and adaptation.mu == pytest.approx(math.log(1.0))
    adaptation.update(0.5)  # m = 1: H̄ = 0.3/11, log ε = μ − H̄/γ, ε̄ = ε
    h_bar = 0.3 / 11
    assert adaptation.h_bar == pytest.approx(h_bar)
    assert adaptation.step_size == pytest.approx(math.exp(-h_bar / 0.05))
    assert adaptation.averaged_step_size == pytest.approx(adaptation.step_size)
    restored = DualAveraging(1.0)
    restored.load_state_dict(adaptation.state_dict())
    assert restored.update(0.9) == adaptation.update(0.9)


def test_huge_step_rejects_every_proposal_and_keeps_the_init():
    g = torch.Generator().manual_seed(4)
    start = torch.randn(1000, 1, generator=g)

    def energy(y):
        return 0.5 * (y ** 2).sum(-1)

    result = hmc_sample(energy, start, steps=3, leapfrog_steps=5, step_size=50.0, generator=g)
    assert result.accept_rate < 1e-6
    torch.testing.assert_close(result.samples, start, rtol=0, atol=0)
    # one step of moderate size: a chain is unchanged exactly where it was rejected, so the
    # unchanged share matches 1 − mean acceptance probability
    one = hmc_sample(energy, start, steps=1, leapfrog_steps=1, step_size=1.9, generator=g)
    unchanged = (one.samples == start).all(dim=1).float().mean().item()
    assert 0.2 < unchanged < 0.8
    assert abs(unchanged - (1 - one.accept_rate)) < 4 * math.sqrt(0.25 / 1000)


def test_same_seed_gives_the_same_samples():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return hmc_sample(_gaussian_energy, torch.zeros(50, 2), steps=5, adapt_steps=3,
                          generator=g)

    first, again = run(0), run(0)
    assert torch.equal(first.samples, again.samples) and first.step_size == again.step_size
    assert first.accept_rate == again.accept_rate
    assert not torch.equal(first.samples, run(1).samples)


def test_non_finite_proposals_are_rejected_and_the_box_is_sampled_exactly():
    # exp(−E) with E = 0 inside [−1, 1]² and +inf outside: the uniform distribution on the box
    def energy(y):
        inside = (y.abs() <= 1).all(dim=-1)
        return torch.where(inside, 0.0 * y.sum(-1), torch.full_like(y[:, 0], math.inf))

    g = torch.Generator().manual_seed(5)
    start = 2 * torch.rand(4000, 2, generator=g) - 1
    result = hmc_sample(energy, start, steps=10, leapfrog_steps=3, step_size=0.3, generator=g)
    assert (result.samples.abs() <= 1).all()
    assert 0.05 < result.accept_rate < 0.95
    n = result.samples.shape[0]
    torch.testing.assert_close(result.samples.mean(0), torch.zeros(2), rtol=0,
                               atol=4 * math.sqrt(1 / 3 / n))
    # Var(U²) = E[U⁴] − (1/3)² = 1/5 − 1/9 for U uniform on [−1, 1]
    torch.testing.assert_close(result.samples.var(0), torch.full((2,), 1 / 3), rtol=0,
                               atol=4 * math.sqrt((1 / 5 - 1 / 9) / n))


def test_an_energy_module_is_sampled_through_its_free_energy():
    energy = FunctionEnergy(lambda y, x=None, z=None: _gaussian_energy(y))
    g = torch.Generator().manual_seed(6)
    start = _exact_samples(2000, g)
    via_module = hmc_sample(energy, start, steps=3, generator=torch.Generator().manual_seed(7))
    via_fn = hmc_sample(_gaussian_energy, start, steps=3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(via_module.samples, via_fn.samples)


def _buffer(seed=0, capacity=200):
    return ReplayBuffer(capacity, uniform_init(2, low=-3, high=3), reinit_fraction=0.0,
                        generator=torch.Generator().manual_seed(seed))


def test_persistent_sampler_writes_back_and_adapts_across_calls():
    sampler = PersistentHMCSampler(_gaussian_energy, _buffer(), steps=5, leapfrog_steps=5,
                                   step_size=0.01)
    assert math.isnan(sampler.last_accept_rate)
    samples = sampler.sample(50)
    assert samples.shape == (50, 2) and not samples.requires_grad
    in_buffer = (samples[:, None, :] == sampler.buffer.samples[None]).all(-1).any(1)
    assert in_buffer.all()
    for _ in range(30):
        sampler.sample(200)
    assert sampler.step_size > 0.1  # adapted up from 0.01, carried across calls
    assert abs(sampler.last_accept_rate - 0.65) < 0.2
    fixed = PersistentHMCSampler(_gaussian_energy, _buffer(), steps=5, step_size=0.01, adapt=False)
    fixed.sample(50)
    assert fixed.step_size == 0.01 and fixed.adaptation is None


def test_persistent_state_dict_round_trip_resumes_exactly():
    sampler = PersistentHMCSampler(_gaussian_energy, _buffer(), steps=4, leapfrog_steps=5)
    sampler.sample(40)
    state = sampler.state_dict()
    first = sampler.sample(40)
    restored = PersistentHMCSampler(_gaussian_energy, _buffer(seed=123), steps=4, leapfrog_steps=5,
                                    step_size=0.7)
    restored.load_state_dict(state)
    assert torch.equal(restored.sample(40), first)
    assert torch.equal(restored.buffer.samples, sampler.buffer.samples)
    assert restored.step_size == sampler.step_size
    assert restored.last_accept_rate == sampler.last_accept_rate
    sampler.restart_adaptation()
    assert sampler.adaptation.count == 0 and sampler.step_size == restored.step_size


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": -1}, "steps must be an integer >= 0"),
    ({"leapfrog_steps": 0}, "leapfrog_steps must be an integer >= 1"),
    ({"step_size": 0.0}, "step_size must be > 0"),
    ({"step_size": -0.1}, "step_size must be > 0"),
    ({"target_accept": 1.0}, r"target_accept must be a number in \(0, 1\)"),
    ({"target_accept": 0.0}, r"target_accept must be a number in \(0, 1\)"),
    ({"beta": 0.0}, "beta must be > 0"),
    ({"adapt_steps": 20}, "adapt_steps must be an integer >= 0 and <= 10"),
])
def test_hmc_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hmc_sample(_gaussian_energy, torch.zeros(4, 2), **kwargs)


def test_hmc_rejects_bad_inputs_and_energies():
    with pytest.raises(ValueError, match=r"hmc_sample fn must return shape \(B,\) = \(4,\), got \(4, 2\)"):
        hmc_sample(lambda y: y ** 2, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="init must be a floating-point tensor"):
        hmc_sample(_gaussian_energy, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="init contains 1 NaN/Inf"):
        hmc_sample(_gaussian_energy, torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match=r"init must be \(B, \*y_shape\)"):
        hmc_sample(_gaussian_energy, torch.zeros(4))
    with pytest.raises(ValueError, match="fn returned 4 NaN energies at init"):
        hmc_sample(lambda y: y.sum(-1) * math.nan, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="leapfrog_steps"):
        PersistentHMCSampler(_gaussian_energy, _buffer(), leapfrog_steps=0)
    with pytest.raises(ValueError, match="target_accept"):
        PersistentHMCSampler(_gaussian_energy, _buffer(), target_accept=1.5)
