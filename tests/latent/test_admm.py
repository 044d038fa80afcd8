"""ADMM for the lasso: its iteration equals the formulas of Boyd et al. by hand, it needs fewer
iterations than backtracking FISTA on correlated atoms, residual balancing repairs a bad
penalty, and bad input is refused. (Optimum, certificates and the pool: test_certified_lasso.)"""

from __future__ import annotations

import math

import pytest
import torch

from genoise.latent.admm import admm
from genoise.latent.backtracking import backtracking_fista
from tests.latent._lasso import correlated, gap, problem


def _soft(v, theta):
    return torch.sign(v) * torch.clamp(v.abs() - theta, min=0.0)


@pytest.mark.parametrize("alpha", [1.0, 1.8])
def test_two_iterations_equal_the_scaled_form_by_hand(alpha):
    """x⁺ = (G + ρI)⁻¹(Wᵀy + ρ(u − v)), x̂ = αx⁺ + (1 − α)u, u⁺ = h_{λ/ρ}(x̂ + v), v⁺ = v + x̂ − u⁺."""
    y, w = problem(11, n_features=6, n_atoms=8, batch=3)
    lam, rho = 0.3, 0.7
    g, b = w.T @ w, y @ w
    inverse = torch.linalg.inv(g + rho * torch.eye(8, dtype=torch.float64))
    u, v = torch.zeros_like(b), torch.zeros_like(b)
    for steps in (1, 2):
        x = (b + rho * (u - v)) @ inverse
        x_hat = alpha * x + (1 - alpha) * u
        u = _soft(x_hat + v, lam / rho)
        v = v + x_hat - u
        ours = admm(y, w, lam, steps=steps, rho=rho, alpha=alpha, adapt=False, gap_tol=0.0, check_every=steps)
        assert torch.allclose(ours, u, atol=1e-12), steps


def test_fewer_iterations_than_backtracking_fista_on_correlated_atoms():
    """The point of the cached (G + ρI)⁻¹: the quadratic step absorbs the ill-conditioning of
    correlated atoms that bounds every gradient step."""
    y, w = correlated(5)
    lam = 0.5
    ours, theirs = {}, {}
    z = admm(y, w, lam, gap_tol=1e-8, check_every=1, stats=ours)
    backtracking_fista(y, w, lam, gap_tol=1e-8, check_every=1, stats=theirs)
    primal, certificate = gap(y, w, z, lam)
    assert torch.all(certificate <= 1e-8 * primal)
    assert ours["uncertified"] == 0 and theirs["uncertified"] == 0
    assert ours["iterations"] < 0.6 * (theirs["iterations"] + theirs["retries"]), (ours, theirs)


def test_residual_balancing_repairs_a_bad_penalty():
    y, w = correlated(6)
    lam = 0.5
    fixed, balanced = {}, {}
    admm(y, w, lam, rho=300.0, adapt=False, gap_tol=1e-6, steps=20000, stats=fixed)
    z = admm(y, w, lam, rho=300.0, gap_tol=1e-6, steps=20000, stats=balanced)
    assert balanced["rho"] < 30.0  # moved by at least one clipped factor of 10
    assert balanced["iterations"] < 0.5 * fixed["iterations"], (fixed, balanced)
    primal, certificate = gap(y, w, z, lam)
    assert torch.all(certificate <= 1e-6 * primal)


def test_balancing_keeps_the_penalty_within_a_thousand_times_its_start():
    """λ = 0 on an over-complete dictionary: the residuals drive ρ down at every rebalancing
    (to 1e-8 before the bound), which would leave G + ρI nearly singular (G has rank 20 of 40)."""
    y, w = problem(4, n_features=20, n_atoms=40)
    stats: dict = {}
    z = admm(y, w, 0.0, gap_tol=1e-8, steps=3000, stats=stats)
    assert 1e-3 <= stats["rho"] <= 1e3
    assert torch.allclose(z @ w.T, y, atol=1e-6)  # λ = 0: an exact fit exists, and is found


def test_default_penalty_is_the_mean_squared_atom_norm_and_scales_with_the_dictionary():
    y, w = problem(12)
    lam = 0.3
    stats: dict = {}
    admm(y, w, lam, adapt=False, stats=stats)
    assert math.isclose(stats["rho"], 1.0, rel_tol=1e-12)  # unit-norm atoms
    scaled: dict = {}
    z = admm(y, 3.0 * w, lam, adapt=False, gap_tol=1e-10, steps=20000, stats=scaled)
    assert math.isclose(scaled["rho"], 9.0, rel_tol=1e-12) and scaled["uncertified"] == 0
    primal, certificate = gap(y, 3.0 * w, z, lam)
    assert torch.all(certificate <= 1e-10 * primal)


def test_warm_start_at_the_optimum_is_certified_at_the_first_test_and_codes_are_exactly_sparse():
    y, w = problem(13, dtype=torch.float32)
    lam = 0.5
    z = admm(y, w, lam, gap_tol=1e-3)
    assert z.dtype == torch.float32
    assert bool((z == 0).any()) and bool((z != 0).any())
    stats: dict = {}
    admm(y, w, lam, z0=z, gap_tol=1e-3, check_every=3, stats=stats)
    assert stats["iterations"] == 3 * y.shape[0] and stats["checks"] == y.shape[0]


def test_the_tol_rule_stops_only_at_a_fixed_point():
    """With λ just under every row's λ_max, u stays at 0 for several iterations while the dual
    moves toward the small non-zero optimum. A rule on u's change alone stops 15 of these 40
    rows at u = 0 (a relative gap of 9e-4, measured when this was written); the rule on
    p = x̂ + v stops only where x⁺ = u."""
    y, w = problem(21, batch=40)
    y = y / (y @ w).abs().amax(dim=1, keepdim=True)  # every row: λ_max = 1
    lam = 0.97
    stats: dict = {}
    z = admm(y, w, lam, tol=1e-7, gap_tol=0.0, steps=5000, stats=stats)
    assert stats["uncertified"] == 40  # gap_tol 0: every row stopped by tol
    primal, certificate = gap(y, w, z, lam)
    assert torch.all(certificate <= 1e-6 * primal)
    assert bool((z.abs().sum(dim=1) > 0).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 2.0}, "alpha"),
        ({"rho": 0.0}, "rho"),
        ({"rho": -1.0}, "rho"),
        ({"adapt_steps": -1}, "adapt_steps"),
        ({"gap_tol": -1.0}, "gap_tol"),
        ({"block": 0}, "block"),
        ({"check_every": 0}, "check_every"),
        ({"z0": torch.zeros(3, 3)}, "z0"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    y, w = problem(7)
    with pytest.raises(ValueError, match=match):
        admm(y, w, 0.1, **kwargs)


def test_nan_input_is_refused():
    y, w = problem(8)
    y[2, 3] = float("nan")
    with pytest.raises(ValueError, match="y"):
        admm(y, w, 0.1)
