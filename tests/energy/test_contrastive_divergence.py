"""Contrastive divergence (Hinton 2002) and persistent CD (Tieleman 2008), checked against
exact computations on a fully visible Boltzmann machine small enough to enumerate."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from genoise.energy import ReplayBuffer, langevin_sample, uniform_init
from genoise.energy.contrastive_divergence import (
    ContrastiveDivergence,
    contrastive_divergence_loss,
    gibbs_binary_sample,
)


class BoltzmannMachine(nn.Module):
    """Fully visible Boltzmann machine E(y) = −bᵀy − ½ yᵀWy, W symmetric with zero diagonal
    (its free couplings are the strict upper triangle of ``coupling``)."""

    def __init__(self, bias: list[float], upper: dict[tuple[int, int], float]) -> None:
        super().__init__()
        sites = len(bias)
        coupling = torch.zeros(sites, sites, dtype=torch.float64)
        for (i, j), value in upper.items():
            coupling[i, j] = value
        self.bias = nn.Parameter(torch.tensor(bias, dtype=torch.float64))
        self.coupling = nn.Parameter(coupling)

    def weights(self) -> torch.Tensor:
        upper = torch.triu(self.coupling, diagonal=1)
        return upper + upper.T

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return -(y @ self.bias) - 0.5 * ((y @ self.weights()) * y).sum(-1)


def _model() -> BoltzmannMachine:
    return BoltzmannMachine([0.5, -1.0, 0.3], {(0, 1): 1.2, (0, 2): -0.8, (1, 2): 0.5})


STATES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)  # (8, 3)
DATA = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 1], [1, 0, 0], [1, 1, 1]], dtype=torch.float64)


def _state_index(y: torch.Tensor) -> torch.Tensor:
    """Row of STATES for binary vectors y (..., 3): itertools.product order, site 0 most significant."""
    return (y @ torch.tensor([4.0, 2.0, 1.0], dtype=y.dtype)).long()


def _model_distribution(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(-model(STATES), dim=0)


def _state_gradients(model: nn.Module) -> torch.Tensor:
    """∇θ E(s) for each of the 8 states, flattened over the parameters: (8, P)."""
    rows = []
    for state in STATES:
        grads = torch.autograd.grad(model(state[None]).sum(), list(model.parameters()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


def _gibbs_sweep_matrix(model: nn.Module) -> torch.Tensor:
    """T[a, b] = P(one systematic sweep 0 → 1 → 2 moves state a to state b), exactly: the
    product over sites i of p(y_i = b_i | b_<i, a_>i)."""
    transition = torch.ones(8, 8, dtype=torch.float64)
    with torch.no_grad():
        for a, b in itertools.product(range(8), range(8)):
            current = STATES[a].clone()
            for site in range(3):
                off, on = current.clone(), current.clone()
                off[site], on[site] = 0.0, 1.0
                p_on = torch.sigmoid(model(off[None]) - model(on[None]))[0]
                transition[a, b] *= p_on if STATES[b, site] == 1 else 1 - p_on
                current[site] = STATES[b, site]
    return transition


def _data_distribution() -> torch.Tensor:
    return torch.bincount(_state_index(DATA), minlength=8).double() / DATA.shape[0]


def _expected_cd_gradient(model: nn.Module, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """g* = E_data[∇θE] − Σ_s (p_data Tᵏ)(s) ∇θE(s), and the chain distribution p_data Tᵏ."""
    p_data = _data_distribution()
    chain = p_data @ torch.linalg.matrix_power(_gibbs_sweep_matrix(model), k)
    gradients = _state_gradients(model)
    return p_data @ gradients - chain @ gradients, chain


def _flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("k", [1, 2])
def test_cd_k_gradient_equals_data_term_minus_chain_term_computed_exactly(k):
    model = _model()
    expected, chain = _expected_cd_gradient(model, k)
    repeats = 10_000  # 50,000 chains
    cd = ContrastiveDivergence(model, k=k, sampler="gibbs", generator=torch.Generator().manual_seed(k))
    cd.loss(DATA.repeat(repeats, 1))["loss"].backward()
    # the data term is exact; the chain term averages N chains whose states follow p_data Tᵏ
    # (stratified by start, so the i.i.d. standard error is an upper bound)
    gradients = _state_gradients(model)
    variance = chain @ gradients ** 2 - (chain @ gradients) ** 2
    standard_error = (variance.clamp(min=0) / (repeats * DATA.shape[0])).sqrt()
    error = (_flat_grad(model) - expected).abs()
    assert (error <= 4 * standard_error + 1e-12).all(), (error, standard_error)
    assert (expected.abs() > 10 * standard_error).any()  # a gradient far from zero was tested
    other_k, _ = _expected_cd_gradient(model, 3 - k)  # one sweep more or fewer is detected
    assert ((_flat_grad(model) - other_k).abs() > 8 * standard_error).any()


def test_cd_k_gradient_approaches_the_maximum_likelihood_gradient_for_large_k():
    model = _model()
    p_data, p_model = _data_distribution(), _model_distribution(model)
    gradients = _state_gradients(model)
    likelihood_gradient = p_data @ gradients - p_model @ gradients
    cd1, _ = _expected_cd_gradient(model, 1)
    cd50, _ = _expected_cd_gradient(model, 50)
    torch.testing.assert_close(cd50, likelihood_gradient, rtol=0, atol=1e-8)
    assert (cd1 - likelihood_gradient).abs().max() > 1e-2  # CD-1 itself is biased here


def test_gibbs_sweep_leaves_the_boltzmann_distribution_invariant():
    model = _model()
    p = _model_distribution(model)
    transition = _gibbs_sweep_matrix(model)
    torch.testing.assert_close(transition.sum(1), torch.ones(8, dtype=torch.float64))
    torch.testing.assert_close(p @ transition, p)  # exactly stationary
    # the sampler itself: histogram after sweeps from exact samples of p
    g = torch.Generator().manual_seed(0)
    n = 40_000
    start = STATES[torch.multinomial(p.float(), n, replacement=True, generator=g)]
    samples = gibbs_binary_sample(model, start, sweeps=3, generator=g)
    histogram = torch.bincount(_state_index(samples), minlength=8).double() / n
    standard_error = (p * (1 - p) / n).sqrt()
    assert ((histogram - p).abs() < 4 * standard_error).all(), (histogram, p)


def test_gibbs_sampler_one_sweep_follows_the_exact_transition_matrix():
    model = _model()
    transition = _gibbs_sweep_matrix(model)
    per_state = 5000
    start = STATES.repeat_interleave(per_state, dim=0)
    end = gibbs_binary_sample(model, start, sweeps=1, generator=torch.Generator().manual_seed(1))
    counts = torch.zeros(8, 8, dtype=torch.float64)
    counts.index_put_((_state_index(start), _state_index(end)), torch.ones(start.shape[0],
                      dtype=torch.float64), accumulate=True)
    empirical = counts / per_state
    standard_error = (transition * (1 - transition) / per_state).sqrt()
    assert ((empirical - transition).abs() <= 4 * standard_error + 1e-12).all()


def test_loss_gradient_is_mean_data_gradient_minus_mean_sample_gradient():
    torch.manual_seed(0)
    energy = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0)).double()
    data, samples = torch.randn(6, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    loss = contrastive_divergence_loss(energy(data), energy(samples))
    grads = torch.autograd.grad(loss, list(energy.parameters()))

    def mean_gradient(points):
        per_sample = [torch.autograd.grad(energy(p[None]).sum(), list(energy.parameters()))
                      for p in points]
        return [torch.stack(g).mean(0) for g in zip(*per_sample, strict=True)]

    expected = [a - b for a, b in zip(mean_gradient(data), mean_gradient(samples), strict=True)]
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(loss, energy(data).mean() - energy(samples).mean())


def _quadratic(y):
    return 0.5 * (y ** 2).sum(-1)


def test_cd_k_chains_start_at_the_data():
    y = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    for sampler in ("langevin", "hmc"):
        cd = ContrastiveDivergence(_quadratic, k=1, sampler=sampler, step_size=1e-6,
                                   generator=torch.Generator().manual_seed(1))
        samples = cd.negatives(y)
        assert samples.shape == y.shape and not samples.requires_grad
        assert (samples - y).abs().max() < 1e-2 and not torch.equal(samples, y)
    assert cd.last_accept_rate > 0.999


def test_pcd_writes_back_and_continues_the_chains():
    def buffer():
        return ReplayBuffer(32, uniform_init(2, low=-2, high=2), reinit_fraction=0.0,
                            generator=torch.Generator().manual_seed(0))

    pcd = ContrastiveDivergence(_quadratic, k=3, persistent=True, buffer=buffer(), step_size=0.1,
                                noise_std=0.0, generator=torch.Generator().manual_seed(1))
    start = pcd.buffer.samples.clone()
    first = pcd.negatives(torch.zeros(32, 2))
    assert (first[:, None, :] == pcd.buffer.samples[None]).all(-1).any(1).all()  # written back
    pcd.negatives(torch.zeros(32, 2))
    # noise-free Langevin is deterministic: two calls of 3 steps = 6 steps per buffer entry
    six = langevin_sample(_quadratic, start, steps=6, step_size=0.1, noise_std=0.0)
    torch.testing.assert_close(pcd.buffer.samples, six, rtol=0, atol=0)


def test_pcd_state_dict_round_trip_resumes_exactly():
    def make(seed):
        buffer = ReplayBuffer(64, lambda n, g: torch.randint(0, 2, (n, 3), generator=g).double(),
                              generator=torch.Generator().manual_seed(seed))
        return ContrastiveDivergence(_model(), k=2, sampler="gibbs", persistent=True, buffer=buffer,
                                     generator=torch.Generator().manual_seed(seed + 1))

    pcd = make(0)
    pcd.negatives(DATA)
    state = pcd.state_dict()
    first = pcd.negatives(DATA)
    restored = make(100)
    restored.load_state_dict(state)
    assert torch.equal(restored.negatives(DATA), first)
    assert torch.equal(restored.buffer.samples, pcd.buffer.samples)


def test_pcd_with_hmc_learns_the_mean_of_a_gaussian():
    # E_μ(y) = ½‖y − μ‖²: the CD gradient w.r.t. μ is mean(ŷ) − mean(y), so μ → the data mean
    g = torch.Generator().manual_seed(0)
    data = torch.randn(512, 2, generator=g) + torch.tensor([2.0, -1.0])
    mean = nn.Parameter(torch.zeros(2))
    buffer = ReplayBuffer(256, uniform_init(2), generator=torch.Generator().manual_seed(1))
    pcd = ContrastiveDivergence(lambda y: 0.5 * ((y - mean) ** 2).sum(-1), k=2, sampler="hmc",
                                persistent=True, buffer=buffer, step_size=0.3, leapfrog_steps=5,
                                generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.SGD([mean], lr=0.2)
    for _ in range(150):
        batch = data[torch.randint(512, (128,), generator=g)]
        optimizer.zero_grad()
        out = pcd.loss(batch)
        out["loss"].backward()
        optimizer.step()
    assert set(out) == {"loss", "energy_data", "energy_samples"}
    assert not out["energy_data"].requires_grad and out["energy_data"].ndim == 0
    assert 0.5 < pcd.last_accept_rate <= 1.0
    torch.testing.assert_close(mean.detach(), data.mean(0), rtol=0, atol=0.25)


def test_contrastive_divergence_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        ContrastiveDivergence(_quadratic, k=0)
    with pytest.raises(ValueError, match=r"persistent=True \(PCD\) needs a buffer"):
        ContrastiveDivergence(_quadratic, persistent=True)
    with pytest.raises(ValueError, match="buffer is only used with persistent=True"):
        ContrastiveDivergence(_quadratic, buffer=ReplayBuffer(4, uniform_init(2)))
    with pytest.raises(ValueError, match=r"sampler must be one of .*got 'metropolis'"):
        ContrastiveDivergence(_quadratic, sampler="metropolis")
    with pytest.raises(ValueError, match="step_size must be > 0"):
        ContrastiveDivergence(_quadratic, step_size=0.0)
    with pytest.raises(ValueError, match="leapfrog_steps must be an integer >= 1"):
        ContrastiveDivergence(_quadratic, sampler="hmc", leapfrog_steps=0)
    gibbs = ContrastiveDivergence(_model(), sampler="gibbs")
    with pytest.raises(ValueError, match=r"y must be binary \(values in \{0, 1\}\)"):
        gibbs.negatives(torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="init must be binary"):
        gibbs_binary_sample(_model(), torch.full((2, 3), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="sweeps must be an integer >= 0"):
        gibbs_binary_sample(_model(), DATA, sweeps=-1)
    with pytest.raises(ValueError, match="site 0 is undefined"):
        gibbs_binary_sample(lambda y: torch.full((y.shape[0],), math.inf), DATA)
    with pytest.raises(ValueError, match="y must be a floating-point tensor"):
        ContrastiveDivergence(_quadratic).negatives(torch.zeros(4, 2, dtype=torch.long))
    pcd = ContrastiveDivergence(_quadratic, persistent=True, buffer=ReplayBuffer(8, uniform_init(3)))
    with pytest.raises(ValueError, match=r"buffer samples have shape \(3,\) per chain, the data \(2,\)"):
        pcd.negatives(torch.zeros(4, 2))


def test_contrastive_divergence_loss_rejects_bad_energies():
    with pytest.raises(ValueError, match=r"energy_data must have 1 dimension\(s\), got shape \(4, 1\)"):
        contrastive_divergence_loss(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="energy_samples contains 1 NaN/Inf"):
        contrastive_divergence_loss(torch.zeros(4), torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="energy_samples is empty"):
        contrastive_divergence_loss(torch.zeros(4), torch.zeros(0))
    # different lengths are fine: the means are taken separately
    assert contrastive_divergence_loss(torch.ones(4), torch.zeros(7)).item() == 1.0
