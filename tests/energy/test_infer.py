"""Inference is minimisation: exhaustive search, gradient descent and Langevin sampling agree
with closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import (
    FunctionEnergy,
    exhaustive_argmin,
    gradient_minimize,
    infer,
    infer_latent,
    langevin_sample,
)


def _convex_energy():
    # F(x, y) = ‖y − 2x‖² + 0.5‖y‖² → ŷ = 2x / 1.5
    return FunctionEnergy(lambda y, x, z: ((y - 2 * x) ** 2).sum(-1) + 0.5 * (y ** 2).sum(-1))


def test_exhaustive_and_gradient_inference_agree_on_a_convex_energy():
    energy = _convex_energy()
    x = torch.tensor([[0.1], [-0.4], [0.6]], dtype=torch.float64)
    grid = torch.linspace(-2, 2, 4001, dtype=torch.float64)[:, None]  # spacing 1e-3
    by_search = infer(energy, x, candidates=grid)
    by_gradient = infer(energy, x, method="gradient", init=torch.zeros_like(x), steps=200, lr=0.1)
    closed = 2 * x / 1.5
    torch.testing.assert_close(by_gradient, closed, atol=1e-8, rtol=0)
    torch.testing.assert_close(by_search, closed, atol=5e-4, rtol=0)


def test_docstring_example_and_unconditional_search():
    e = FunctionEnergy(lambda y, x, z: ((y - x) ** 2).sum(-1))
    x = torch.tensor([[0.3], [0.8]])
    torch.testing.assert_close(infer(e, x, candidates=torch.linspace(0, 1, 11)[:, None]),
                               torch.tensor([[0.3], [0.8]]))
    unconditional = FunctionEnergy(lambda y, x, z: ((y - 0.7) ** 2).sum(-1))
    got = infer(unconditional, batch_size=3, candidates=torch.linspace(0, 1, 11)[:, None])
    torch.testing.assert_close(got, torch.full((3, 1), 0.7))


def test_infer_over_a_discrete_latent_model_minimises_the_free_energy():
    # F(y) = min_z (y − z)² + 0.3 z² over z ∈ {−1, 0, 2}, searched over y ∈ grid.
    latents = torch.tensor([[-1.0], [0.0], [2.0]])
    energy = FunctionEnergy(lambda y, x, z: ((y - z - x) ** 2).sum(-1) + 0.3 * (z ** 2).sum(-1),
                            latent_candidates=latents)
    x = torch.tensor([[0.0], [5.0]])
    grid = torch.linspace(-3, 8, 111)[:, None]
    explicit = ((grid[None, :, None, 0] - latents[None, None, :, 0] - x[:, None, None, 0]) ** 2
                + 0.3 * latents[None, None, :, 0] ** 2).amin(-1)  # (B, grid)
    torch.testing.assert_close(infer(energy, x, candidates=grid), grid[explicit.argmin(1)])


def test_infer_latent_over_discrete_set_matches_explicit_argmin():
    latents = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    energy = FunctionEnergy(lambda y, x, z: ((y - z) ** 2).sum(-1), latent_candidates=latents)
    y = torch.tensor([[0.9, 0.1], [0.6, 0.8], [-0.1, 2.0]])
    explicit = ((y[:, None, :] - latents[None]) ** 2).sum(-1).argmin(1)
    torch.testing.assert_close(infer_latent(energy, y), latents[explicit])


def test_infer_latent_by_gradient_from_init():
    energy = FunctionEnergy(lambda y, x, z: ((y - 3 * z) ** 2).sum(-1), has_latent=True)
    y = torch.tensor([[3.0], [-6.0]], dtype=torch.float64)
    z = infer_latent(energy, y, init=torch.zeros_like(y), steps=300, lr=0.02)
    torch.testing.assert_close(z, y / 3, atol=1e-6, rtol=0)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_langevin_samples_a_quadratic_energy(beta):
    # F(y) = (y − μ)² / (2 s²) → P ∝ exp(−β F) = N(μ, s²/β). Unadjusted Langevin, step ε:
    # stationary variance ε / (1 − (1 − a)²), a = ε β / (2 s²), within 1 % of s²/β here.
    mu, s2, eps, chains = 1.5, 1.0, 0.01, 4000
    energy = FunctionEnergy(lambda y, x, z: ((y - mu) ** 2).sum(-1) / (2 * s2))
    init = torch.zeros(chains, 1)
    samples = langevin_sample(lambda y: energy.free_energy(y), init, steps=800, step_size=eps, beta=beta,
                              generator=torch.Generator().manual_seed(0))
    a = eps * beta / (2 * s2)
    var = eps / (1 - (1 - a) ** 2)
    assert abs(var - s2 / beta) / (s2 / beta) < 0.01
    assert abs(samples.mean().item() - mu) < 4 * math.sqrt(var / chains)
    assert abs(samples.var().item() - var) < 4 * var * math.sqrt(2 / chains)
    again = infer(energy, method="langevin", init=init, steps=800, step_size=eps,
                  generator=torch.Generator().manual_seed(0))
    if beta == 1.0:
        torch.testing.assert_close(again, samples)


def test_gradient_minimize_respects_projection():
    got = gradient_minimize(lambda v: ((v - 2.0) ** 2).sum(-1), torch.zeros(3, 1), steps=50, lr=0.1,
                            projection=lambda v: v.clamp(-1, 1))
    torch.testing.assert_close(got, torch.ones(3, 1))


def test_gradient_minimize_does_not_touch_model_parameters():
    w = torch.nn.Parameter(torch.tensor([2.0]))
    gradient_minimize(lambda v: ((v - w) ** 2).sum(-1), torch.zeros(2, 1), steps=5)
    assert w.grad is None


def test_exhaustive_argmin_returns_value_energy_index():
    result = exhaustive_argmin(torch.tensor([[0.3, 0.1, 0.5]]), torch.tensor([[10.0], [20.0], [30.0]]))
    assert result.index.tolist() == [1] and result.value.tolist() == [[20.0]]
    torch.testing.assert_close(result.energy, torch.tensor([0.1]))
    with pytest.raises(ValueError, match=r"energies must be \(B, K=3\)"):
        exhaustive_argmin(torch.zeros(1, 2), torch.zeros(3, 1))


def test_error_messages_for_missing_candidates_and_init():
    energy = _convex_energy()
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="method='exhaustive' needs candidates"):
        infer(energy, x)
    with pytest.raises(ValueError, match="method='gradient' needs an initial value init"):
        infer(energy, x, method="gradient")
    with pytest.raises(ValueError, match="method='langevin' needs an initial value init"):
        infer_latent(FunctionEnergy(energy.fn, has_latent=True), torch.zeros(2, 1), method="langevin")
    with pytest.raises(ValueError, match="candidates is empty"):
        infer(energy, x, candidates=torch.zeros(0, 1))
    with pytest.raises(ValueError, match="infer needs x, init or batch_size"):
        infer(energy, candidates=torch.zeros(3, 1))
    with pytest.raises(ValueError, match="method must be one of"):
        infer(energy, x, method="annealing")
    with pytest.raises(ValueError, match="init contains 1 NaN"):
        infer(energy, x, method="gradient", init=torch.tensor([[0.0], [math.nan]]))
    with pytest.raises(ValueError, match="x contains"):
        infer(energy, torch.tensor([[math.inf]]), candidates=torch.zeros(3, 1))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        gradient_minimize(lambda v: v.sum(-1), torch.zeros(1, 1), steps=-1)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        langevin_sample(lambda v: v.sum(-1), torch.zeros(1, 1), step_size=0.0)


def test_gradient_minimize_with_adam_and_keep_best_returns_the_lowest_iterate():
    """On |v|² with SGD at lr 1.05 every step overshoots (v ← −1.1 v): the last iterate is
    the worst, the first the best. keep_best returns per sample the lowest energy seen."""
    fn = lambda v: (v ** 2).sum(-1)  # noqa: E731
    init = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    last = gradient_minimize(fn, init, steps=5, lr=1.05)
    torch.testing.assert_close(last, init * (-1.1) ** 5)
    torch.testing.assert_close(gradient_minimize(fn, init, steps=5, lr=1.05, keep_best=True), init)
    # per sample: a projection that stops sample 0 at 0.5 makes its last iterate the best
    proj = lambda v: torch.where(torch.arange(2)[:, None] == 0, v.clamp(min=0.5), v)  # noqa: E731
    best = gradient_minimize(fn, init, steps=5, lr=1.05, keep_best=True, projection=proj)
    torch.testing.assert_close(best, torch.tensor([[0.5], [-2.0]], dtype=torch.float64))
    # any torch.optim optimiser, its keyword arguments passed on
    adam = gradient_minimize(fn, init, steps=300, lr=0.05, optimizer=torch.optim.Adam, betas=(0.9, 0.99))
    torch.testing.assert_close(adam, torch.zeros_like(init), atol=1e-2, rtol=0)
