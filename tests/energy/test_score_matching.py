"""Score matching against closed forms on quadratic energies, Monte-Carlo identities with
standard-error tolerances, brute-force ratio matching, gradients and bad input.

For E(y) = ½(y − μ)ᵀA(y − μ) (A symmetric positive definite): ∇E = A(y − μ), ∇²E = A, so

    J_ESM(y) = ½‖A(y − μ)‖² − tr A,
    E_{y~N(m, Σ)} J_ESM = ½ tr(A²(Σ + (m − μ)(m − μ)ᵀ)) − tr A,  minimised at A = Σ⁻¹, μ = m.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from genoise.energy import FunctionEnergy
from genoise.energy.score_matching import (
    denoising_score_matching_loss,
    explicit_score_matching_loss,
    ratio_matching_loss,
    sliced_score_matching_loss,
)

DTYPE = torch.float64
A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]], dtype=DTYPE)
MU = torch.tensor([0.1, -0.2, 0.3], dtype=DTYPE)


def quadratic(a: torch.Tensor, mu: torch.Tensor):
    return lambda y: 0.5 * ((y - mu) @ a * (y - mu)).sum(-1)


def esm_closed_form(y: torch.Tensor, a: torch.Tensor = A, mu: torch.Tensor = MU) -> torch.Tensor:
    return 0.5 * ((y - mu) @ a).square().sum(1) - torch.trace(a)


def points(n: int, dim: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def moment_matched(n: int, mean: torch.Tensor, cov: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """n points whose sample mean is exactly ``mean`` and (1/n) sample covariance exactly ``cov``."""
    z = points(n, mean.numel(), seed)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / n)).T
    return mean + z @ torch.linalg.cholesky(cov).T


def tanh_energy(weight: torch.Tensor, bias: torch.Tensor):
    """A non-quadratic energy whose third derivatives are non-zero."""
    return lambda y: torch.tanh(y @ weight + bias).square().sum(-1) + 0.1 * (y ** 4).sum(-1)


# --------------------------------------------------------------------- explicit
def test_esm_per_sample_equals_closed_form_for_quadratic():
    y = points(16)
    got = explicit_score_matching_loss(quadratic(A, MU), y, reduction="none")
    torch.testing.assert_close(got, esm_closed_form(y), rtol=1e-12, atol=1e-12)


def test_esm_accepts_energy_module_and_trailing_shape():
    y = points(6, 4).reshape(6, 2, 2)
    energy = FunctionEnergy(lambda v, x=None, z=None: (v ** 4).sum((1, 2)))
    got = explicit_score_matching_loss(energy, y, reduction="none")
    flat = y.reshape(6, 4)
    expected = 0.5 * (4 * flat ** 3).square().sum(1) - (12 * flat ** 2).sum(1)
    torch.testing.assert_close(got, expected)


def test_esm_reductions_are_mean_and_sum_of_per_sample():
    y = points(5)
    per = explicit_score_matching_loss(quadratic(A, MU), y, reduction="none")
    torch.testing.assert_close(explicit_score_matching_loss(quadratic(A, MU), y), per.mean())
    torch.testing.assert_close(explicit_score_matching_loss(quadratic(A, MU), y, reduction="sum"), per.sum())


def test_esm_expectation_over_gaussian_data_matches_closed_form():
    mean, cov = torch.tensor([0.5, -1.0, 0.2], dtype=DTYPE), torch.tensor(
        [[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 1.2]], dtype=DTYPE)
    y = moment_matched(2000, mean, cov)
    offset = (mean - MU)[:, None]
    expected = 0.5 * torch.trace(A @ A @ (cov + offset @ offset.T)) - torch.trace(A)
    got = explicit_score_matching_loss(quadratic(A, MU), y)
    assert got.item() == pytest.approx(expected.item(), rel=1e-9)


def test_esm_is_minimised_at_inverse_covariance_and_data_mean():
    mean, cov = torch.tensor([0.5, -1.0, 0.2], dtype=DTYPE), torch.tensor(
        [[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 1.2]], dtype=DTYPE)
    y = moment_matched(2000, mean, cov)

    def loss_and_grads(a, mu):
        a, mu = a.clone().requires_grad_(True), mu.clone().requires_grad_(True)
        loss = explicit_score_matching_loss(quadratic(a, mu), y)
        return loss.detach(), *torch.autograd.grad(loss, (a, mu))

    precision = torch.linalg.inv(cov)
    best, grad_a, grad_mu = loss_and_grads(precision, mean)
    assert best.item() == pytest.approx(-0.5 * torch.trace(precision).item(), rel=1e-9)
    assert grad_a.abs().max() < 1e-9 and grad_mu.abs().max() < 1e-9
    worse, grad_a, _ = loss_and_grads(precision + 0.1 * torch.eye(3, dtype=DTYPE), mean + 0.1)
    assert worse > best and grad_a.abs().max() > 1e-2


def test_esm_gradcheck_wrt_energy_parameters():
    y = points(4)
    weight = torch.randn(3, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1), requires_grad=True)
    bias = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w, b: explicit_score_matching_loss(tanh_energy(w, b), y, reduction="none"), (weight, bias))


def test_esm_of_energy_linear_in_y_has_zero_trace():
    y = points(3)
    a = torch.tensor([1.0, -2.0, 0.5], dtype=DTYPE)
    got = explicit_score_matching_loss(lambda v: v @ a, y, reduction="none")
    torch.testing.assert_close(got, torch.full((3,), 0.5 * a.square().sum().item(), dtype=DTYPE))


# --------------------------------------------------------------------- sliced
def all_rademacher(dim: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim)), dtype=DTYPE)


@pytest.mark.parametrize("variance_reduction", [False, True])
def test_ssm_over_all_rademacher_directions_equals_esm_exactly(variance_reduction):
    y = points(8)
    energy = tanh_energy(torch.randn(3, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(2)),
                         torch.zeros(2, dtype=DTYPE))
    got = sliced_score_matching_loss(energy, y, directions=all_rademacher(3),
                                     variance_reduction=variance_reduction, reduction="none")
    torch.testing.assert_close(got, explicit_score_matching_loss(energy, y, reduction="none"))


@pytest.mark.parametrize("projection", ["rademacher", "gaussian"])
@pytest.mark.parametrize("variance_reduction", [False, True])
def test_ssm_average_over_random_projections_approaches_closed_form(projection, variance_reduction):
    y, n = points(3), 4000
    kwargs = {"projection": projection, "variance_reduction": variance_reduction, "reduction": "none"}
    # n independent single-projection estimates per point give the standard error ...
    draws = sliced_score_matching_loss(quadratic(A, MU), y.repeat(n, 1), torch.Generator().manual_seed(0),
                                       **kwargs).detach().reshape(n, 3)
    standard_error = draws.std(0) / n ** 0.5
    expected = esm_closed_form(y)
    assert ((draws.mean(0) - expected).abs() < 5 * standard_error).all()
    # ... and num_projections = n averages n projections inside one call.
    averaged = sliced_score_matching_loss(quadratic(A, MU), y, torch.Generator().manual_seed(1),
                                          num_projections=n, **kwargs).detach()
    assert ((averaged - expected).abs() < 5 * standard_error).all()


def test_ssm_vr_with_rademacher_has_smaller_variance_than_plain():
    y = points(1).repeat(2000, 1)
    plain = sliced_score_matching_loss(quadratic(A, MU), y, torch.Generator().manual_seed(0),
                                       reduction="none")
    reduced = sliced_score_matching_loss(quadratic(A, MU), y, torch.Generator().manual_seed(0),
                                         variance_reduction=True, reduction="none")
    assert reduced.var() < plain.var()


def test_ssm_is_reproducible_from_the_generator_seed():
    y = points(5)

    def loss(seed):
        return sliced_score_matching_loss(quadratic(A, MU), y, torch.Generator().manual_seed(seed),
                                          num_projections=3)

    first, again, other = loss(7), loss(7), loss(8)
    assert first.item() == again.item() and first.item() != other.item()


def test_ssm_calls_energy_once_on_all_projections():
    calls = []

    def energy(v):
        calls.append(v.shape[0])
        return quadratic(A, MU)(v)

    sliced_score_matching_loss(energy, points(5), torch.Generator().manual_seed(0), num_projections=4)
    assert calls == [20]


def test_ssm_gradcheck_wrt_energy_parameters():
    y = points(4)
    weight = torch.randn(3, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1), requires_grad=True)
    bias = torch.zeros(2, dtype=DTYPE, requires_grad=True)

    def loss(w, b):
        return sliced_score_matching_loss(tanh_energy(w, b), y, torch.Generator().manual_seed(0),
                                          num_projections=2, projection="gaussian", reduction="none")

    assert torch.autograd.gradcheck(loss, (weight, bias))


# --------------------------------------------------------------------- denoising
def test_dsm_matches_the_landscapes_recipe_inline_step():
    y, sigma = points(32, 2).float(), 0.1
    energy = FunctionEnergy(lambda v, x=None, z=None: torch.sin(v).sum(-1) + (v ** 2).sum(-1))
    got = denoising_score_matching_loss(energy, y, sigma, torch.Generator().manual_seed(3))
    # genoise/recipes/landscapes.py, ``denoising``:
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), device=y.device)
    y_tilde = (y + sigma * noise).requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(y_tilde).sum(), y_tilde, create_graph=True)
    torch.testing.assert_close(got, 0.5 * (sigma * grad - noise).pow(2).sum(dim=1).mean())


def test_dsm_at_a_single_point_matches_its_gaussian_expectation():
    # E_ε ½‖σA(y0 + σε − μ) − ε‖² = ½‖σA(y0 − μ)‖² + ½‖σ²A − I‖_F²
    y0, sigma, n = points(1), 0.7, 20000
    draws = denoising_score_matching_loss(quadratic(A, MU), y0.repeat(n, 1), sigma,
                                          torch.Generator().manual_seed(1), reduction="none").detach()
    expected = (0.5 * (sigma * (y0 - MU) @ A).square().sum()
                + 0.5 * (sigma ** 2 * A - torch.eye(3, dtype=DTYPE)).square().sum())
    assert abs(draws.mean() - expected) < 5 * draws.std() / n ** 0.5


def test_dsm_optimal_quadratic_on_gaussian_data_is_noisy_precision():
    mean, cov, sigma = torch.tensor([1.0, -0.5], dtype=DTYPE), torch.tensor(
        [[1.0, 0.4], [0.4, 0.5]], dtype=DTYPE), 0.5
    y = moment_matched(40000, mean, cov, seed=0)  # the noise below uses another seed
    raw = torch.eye(2, dtype=DTYPE).requires_grad_(True)
    shift = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    opt = torch.optim.LBFGS([raw, shift], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        a = 0.5 * (raw + raw.T)
        # E = ½ yᵀAy − bᵀy; the same noise every evaluation makes the objective deterministic.
        loss = denoising_score_matching_loss(lambda v: 0.5 * (v @ a * v).sum(-1) - v @ shift, y, sigma,
                                             torch.Generator().manual_seed(1))
        loss.backward()
        return loss

    opt.step(closure)
    fitted = 0.5 * (raw + raw.T).detach()
    expected = torch.linalg.inv(cov + sigma ** 2 * torch.eye(2, dtype=DTYPE))
    torch.testing.assert_close(fitted, expected, atol=0.03, rtol=0.0)
    torch.testing.assert_close(torch.linalg.solve(fitted, shift.detach()), mean, atol=0.03, rtol=0.0)


def test_dsm_gradcheck_wrt_energy_parameters():
    y = points(4)
    weight = torch.randn(3, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1), requires_grad=True)
    bias = torch.zeros(2, dtype=DTYPE, requires_grad=True)

    def loss(w, b):
        return denoising_score_matching_loss(tanh_energy(w, b), y, 0.3, torch.Generator().manual_seed(0),
                                             reduction="none")

    assert torch.autograd.gradcheck(loss, (weight, bias))


# --------------------------------------------------------------------- ratio matching
def binary_energy(weight: torch.Tensor, bias: torch.Tensor):
    return lambda y: torch.tanh(y @ weight).sum(-1) + y @ bias


def test_ratio_matching_equals_brute_force_loop_over_bits():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (6, 5), generator=g).to(DTYPE)
    energy = binary_energy(torch.randn(5, 4, generator=g, dtype=DTYPE),
                           torch.randn(5, generator=g, dtype=DTYPE))
    expected = []
    for row in y:
        total = 0.0
        for i in range(row.numel()):
            flipped = row.clone()
            flipped[i] = 1 - flipped[i]
            gap = energy(row[None]) - energy(flipped[None])
            total += torch.sigmoid(gap).item() ** 2
        expected.append(total)
    got = ratio_matching_loss(energy, y, reduction="none")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=DTYPE))


def test_ratio_matching_scores_all_flips_in_one_call_and_accepts_integer_and_shaped_input():
    calls = []
    energy = binary_energy(torch.ones(4, 2, dtype=torch.float32), torch.arange(4.0))

    def counted(v):
        calls.append(tuple(v.shape))
        return energy(v.reshape(v.shape[0], 4))

    y = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]])
    got = ratio_matching_loss(counted, y.reshape(3, 2, 2), reduction="none")
    assert calls == [(3 * 5, 2, 2)]
    torch.testing.assert_close(got, ratio_matching_loss(energy, y.float(), reduction="none"))


def test_ratio_matching_on_energy_table_recovers_data_distribution():
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=DTYPE)
    p_data = torch.tensor([0.05, 0.20, 0.10, 0.15, 0.02, 0.08, 0.30, 0.10], dtype=DTYPE)
    place = torch.tensor([4.0, 2.0, 1.0], dtype=DTYPE)
    table = torch.zeros(8, dtype=DTYPE, requires_grad=True)
    opt = torch.optim.LBFGS([table], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        energy = lambda y: table[(y @ place).long()]  # noqa: E731
        loss = (p_data * ratio_matching_loss(energy, states, reduction="none")).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(torch.softmax(-table.detach(), 0), p_data, atol=1e-4, rtol=0.0)


def test_ratio_matching_gradcheck_wrt_energy_parameters():
    y = torch.randint(0, 2, (5, 3), generator=torch.Generator().manual_seed(0)).to(DTYPE)
    weight = torch.randn(3, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1), requires_grad=True)
    bias = torch.randn(3, dtype=DTYPE, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w, b: ratio_matching_loss(binary_energy(w, b), y, reduction="none"), (weight, bias))


# --------------------------------------------------------------------- bad input
ENERGY = quadratic(A, MU)
LOSSES = [
    lambda y, energy=ENERGY: explicit_score_matching_loss(energy, y),
    lambda y, energy=ENERGY: sliced_score_matching_loss(energy, y),
    lambda y, energy=ENERGY: denoising_score_matching_loss(energy, y, 0.1),
    lambda y, energy=ENERGY: ratio_matching_loss(energy, y),
]


@pytest.mark.parametrize("loss", LOSSES)
def test_nan_in_y_is_refused(loss):
    y = torch.ones(4, 3, dtype=DTYPE)
    y[1, 2] = float("nan")
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        loss(y)


@pytest.mark.parametrize("loss", LOSSES)
def test_y_without_feature_dimension_is_refused(loss):
    with pytest.raises(ValueError, match=r"y must be \(B, \*shape\) with a feature dimension"):
        loss(torch.ones(4, dtype=DTYPE))


@pytest.mark.parametrize("loss", LOSSES)
def test_empty_y_is_refused(loss):
    with pytest.raises(ValueError, match="y is empty"):
        loss(torch.ones(0, 3, dtype=DTYPE))


@pytest.mark.parametrize("loss", LOSSES[:3])
def test_integer_y_is_refused_by_continuous_losses(loss):
    with pytest.raises(ValueError, match="y must be a floating-point tensor"):
        loss(torch.ones(4, 3, dtype=torch.long))


def test_ratio_matching_refuses_non_binary_y():
    message = r"needs binary y with values in \{0, 1\}; got 1 other value\(s\), e\.g\. 0\.5"
    with pytest.raises(ValueError, match=message):
        ratio_matching_loss(ENERGY, torch.tensor([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]], dtype=DTYPE))


def test_esm_refuses_dimension_above_max_dim():
    with pytest.raises(ValueError, match=r"D = 65 exceeds max_dim = 64 .*; use sliced_score_matching_loss"):
        explicit_score_matching_loss(lambda v: v.sum(-1), torch.zeros(2, 65))
    explicit_score_matching_loss(lambda v: v.sum(-1), torch.zeros(2, 65), max_dim=65)


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_ssm_refuses_bad_num_projections(value):
    with pytest.raises(ValueError, match="num_projections must be an integer"):
        sliced_score_matching_loss(ENERGY, points(2), num_projections=value)


def test_ssm_refuses_unknown_projection():
    with pytest.raises(ValueError, match="projection must be one of 'rademacher', 'gaussian'; got 'uniform'"):
        sliced_score_matching_loss(ENERGY, points(2), projection="uniform")


def test_ssm_refuses_directions_of_wrong_shape():
    with pytest.raises(ValueError, match=r"directions must be \(M, 3\)"):
        sliced_score_matching_loss(ENERGY, points(2), directions=torch.ones(4, 2, dtype=DTYPE))


@pytest.mark.parametrize("sigma", [0.0, -0.1, float("nan")])
def test_dsm_refuses_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma must be"):
        denoising_score_matching_loss(ENERGY, points(2), sigma)


@pytest.mark.parametrize("loss", LOSSES)
def test_energy_of_wrong_shape_is_refused(loss):
    with pytest.raises(ValueError, match=r"energy must return shape \(B,\)"):
        loss(torch.ones(4, 3, dtype=DTYPE), energy=lambda v: v)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction must be one of"):
        explicit_score_matching_loss(ENERGY, points(2), reduction="max")


def test_curvature_penalty_of_a_quadratic_is_closed_form():
    """Kingma & LeCun (2010): λ Σ_i (∂²E/∂y_i²)² = λ Σ_i A_ii² for E = ½(y−μ)ᵀA(y−μ); the
    sliced analogue λ (vᵀAv)² averaged over all Rademacher v."""

    a = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]], dtype=torch.float64)
    mu = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)

    def energy(y):
        d = y - mu
        return 0.5 * torch.einsum("bi,ij,bj->b", d, a, d)

    y = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    plain = explicit_score_matching_loss(energy, y, reduction="none")
    penalised = explicit_score_matching_loss(energy, y, curvature_weight=0.5, reduction="none")
    torch.testing.assert_close(penalised - plain, torch.full((5,), 0.5 * float((a.diagonal() ** 2).sum()),
                                                            dtype=torch.float64))
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)), dtype=torch.float64)
    expected = 0.25 * float(torch.stack([(v @ a @ v) ** 2 for v in signs]).mean())
    sliced = sliced_score_matching_loss(energy, y, directions=signs, curvature_weight=0.25, reduction="none")
    sliced_plain = sliced_score_matching_loss(energy, y, directions=signs, reduction="none")
    torch.testing.assert_close(sliced - sliced_plain, torch.full((5,), expected, dtype=torch.float64))
    with pytest.raises(ValueError, match="curvature_weight"):
        explicit_score_matching_loss(energy, y, curvature_weight=-1.0)
