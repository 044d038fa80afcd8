"""ISTA / FISTA / coordinate descent reach the lasso optimum (vs scikit-learn) and its KKT conditions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from genoise.latent.ista import (
    coordinate_descent,
    duality_gap,
    fista,
    ista,
    lipschitz_constant,
    soft_threshold,
    sparse_coding_objective,
    sparse_encode,
)

SOLVERS = [(ista, 20000), (fista, 3000), (coordinate_descent, 20000)]


def _problem(seed: int, n_features: int = 20, n_atoms: int = 30, batch: int = 5, unit: bool = False):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n_features, n_atoms, generator=gen, dtype=torch.float64)
    if unit:
        w = torch.nn.functional.normalize(w, dim=0)
    y = torch.randn(batch, n_features, generator=gen, dtype=torch.float64)
    return y, w


def _sklearn_codes(y, w, lam, positive=False):
    n_features = w.shape[0]
    codes = [Lasso(alpha=lam / n_features, fit_intercept=False, tol=1e-12, max_iter=200000,
                   positive=positive).fit(w.numpy(), row.numpy()).coef_ for row in y]
    return torch.from_numpy(np.array(codes))


@pytest.mark.parametrize(("solver", "steps"), SOLVERS)
@pytest.mark.parametrize(("seed", "unit"), [(0, False), (1, True)])
def test_solver_matches_sklearn_lasso_objective(solver, steps, seed, unit):
    y, w = _problem(seed, unit=unit)
    lam = 0.6
    z = solver(y, w, lam, steps=steps, tol=1e-13)
    ours = sparse_coding_objective(y, w, z, lam)
    ref = sparse_coding_objective(y, w, _sklearn_codes(y, w, lam), lam)
    assert torch.all((ours - ref).abs() <= 1e-6 * ref)


@pytest.mark.parametrize(("solver", "steps"), SOLVERS)
def test_solution_satisfies_lasso_kkt_conditions(solver, steps):
    y, w = _problem(2)
    lam = 0.8
    z = solver(y, w, lam, steps=steps, tol=1e-13)
    correlation = (y - z @ w.T) @ w                       # W_dᵀ(y − W_d z)
    assert float(correlation.abs().max()) <= lam + 1e-5
    support = z != 0
    assert support.any()
    assert torch.allclose(correlation[support], lam * z[support].sign(), atol=1e-5)


def test_positive_codes_match_sklearn_positive_lasso():
    y, w = _problem(3, unit=True)
    lam = 0.3
    ref = sparse_coding_objective(y, w, _sklearn_codes(y, w, lam, positive=True), lam)
    for solver, steps in SOLVERS:
        z = solver(y, w, lam, steps=steps, tol=1e-13, positive=True)
        assert float(z.min()) >= 0
        assert torch.all((sparse_coding_objective(y, w, z, lam) - ref).abs() <= 1e-6 * ref)


def test_fista_objective_beats_ista_at_equal_iterations():
    y, w = _problem(4, n_features=40, n_atoms=80, batch=20)
    lam = 0.2
    obj_ista = sparse_coding_objective(y, w, ista(y, w, lam, steps=50), lam).sum()
    obj_fista = sparse_coding_objective(y, w, fista(y, w, lam, steps=50), lam).sum()
    assert obj_fista < obj_ista


def test_batched_solution_equals_per_sample_solution():
    y, w = _problem(5)
    batched = fista(y, w, 0.5, steps=200)
    single = torch.cat([fista(y[i:i + 1], w, 0.5, steps=200) for i in range(y.shape[0])])
    assert torch.allclose(batched, single, atol=1e-12)


def test_large_lambda_gives_zero_code():
    y, w = _problem(6)
    lam = float((y @ w).abs().max()) + 1e-3
    for solver, _ in SOLVERS:
        assert torch.count_nonzero(solver(y, w, lam, steps=50)) == 0


def test_soft_threshold_closed_form():
    v = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5])
    assert torch.equal(soft_threshold(v, 0.5), torch.tensor([-1.5, 0.0, 0.0, 0.0, 1.0]))
    assert torch.equal(soft_threshold(v, 0.5, positive=True), torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0]))


def test_power_iteration_lipschitz_close_to_eigvalsh():
    _, w = _problem(7)
    exact = lipschitz_constant(w)
    power = lipschitz_constant(w, "power", steps=500, generator=torch.Generator().manual_seed(0))
    assert exact == pytest.approx(float(torch.linalg.matrix_norm(w, 2)) ** 2, rel=1e-10)
    assert exact <= power <= 1.02 * exact


def test_tolerance_stops_early_but_near_optimum():
    y, w = _problem(8)
    loose = fista(y, w, 0.5, steps=5000, tol=1e-4)
    tight = fista(y, w, 0.5, steps=5000, tol=1e-13)
    gap = sparse_coding_objective(y, w, loose, 0.5) - sparse_coding_objective(y, w, tight, 0.5)
    assert float(gap.max()) < 1e-3


def test_duality_gap_bounds_suboptimality_and_gap_stop_is_certified():
    y, w = _problem(9, n_features=30, n_atoms=60, batch=8, unit=True)
    lam = 0.3
    z_star = fista(y, w, lam, steps=5000, tol=1e-14)
    optimum = sparse_coding_objective(y, w, z_star, lam)
    gram, wty = w.T @ w, y @ w
    for steps in (3, 10, 30):
        z = fista(y, w, lam, steps=steps)
        primal, gap = duality_gap(y.pow(2).sum(1), wty, z, z @ gram, lam)
        assert torch.allclose(primal, sparse_coding_objective(y, w, z, lam), rtol=1e-10)
        assert torch.all(gap >= primal - optimum - 1e-12)            # weak duality
    _, gap_star = duality_gap(y.pow(2).sum(1), wty, z_star, z_star @ gram, lam)
    assert float(gap_star.max()) < 1e-9                                # zero gap at the optimum
    z = fista(y, w, lam, steps=5000, gap_tol=1e-6)
    assert torch.all(sparse_coding_objective(y, w, z, lam) <= optimum * (1 + 1e-6) + 1e-12)


def test_adaptive_restart_converges_faster_on_nonnegative_correlated_atoms():
    gen = torch.Generator().manual_seed(11)
    # Non-negative, correlated atoms and data (like digits): a badly conditioned Gram matrix,
    # where the momentum overshoots and restarting it pays (O'Donoghue & Candès 2015).
    w = torch.nn.functional.normalize(torch.rand(80, 40, generator=gen, dtype=torch.float64) ** 4, dim=0)
    y = 3 * torch.rand(10, 80, generator=gen, dtype=torch.float64) ** 4
    lam = 0.1
    optimum = sparse_coding_objective(y, w, fista(y, w, lam, steps=20000, tol=1e-14), lam).sum()
    plain = sparse_coding_objective(y, w, fista(y, w, lam, steps=150, restart=False), lam).sum()
    restarted = sparse_coding_objective(y, w, fista(y, w, lam, steps=150), lam).sum()
    assert restarted - optimum < 0.1 * (plain - optimum)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"y": torch.randn(3, 4, 5)}, "y must have 2"),
    ({"y": torch.tensor([[float("nan")] * 6] * 2)}, "y contains"),
    ({"lam": -0.1}, "lam must be >= 0"),
    ({"dictionary": torch.zeros(6, 4)}, "zero column"),
    ({"dictionary": torch.randn(7, 4)}, "D=6 features"),
    ({"dictionary": torch.randn(6)}, "dictionary must have 2"),
    ({"dictionary": torch.tensor([[float("inf")] * 4] * 6)}, "dictionary contains"),
    ({"z0": torch.zeros(2, 3)}, "z0 must have shape"),
    ({"algorithm": "lars"}, "algorithm must be one of"),
])
def test_bad_input_is_refused(kwargs, match):
    args = {"y": torch.randn(2, 6), "dictionary": torch.randn(6, 4), "lam": 0.1, "algorithm": "fista"}
    z0 = kwargs.pop("z0", None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sparse_encode(args["y"], args["dictionary"], args["lam"], args["algorithm"], steps=5, z0=z0)


@pytest.mark.parametrize("solver", [ista, fista, coordinate_descent])
def test_callback_sees_at_every_step_the_codes_a_shorter_run_returns(solver):
    """callback(t, z) after step t gives exactly what ``solver(..., steps=t)`` returns, so an
    error curve needs one run (FISTA: samples stopped by tol keep their final codes)."""
    y, w = _problem(4, unit=True)
    seen: dict[int, torch.Tensor] = {}
    kwargs = {"tol": 1e-3} if solver is fista else {}
    solver(y, w, 0.2, steps=12, callback=lambda t, z: seen.__setitem__(t, z.clone()), **kwargs)
    assert sorted(seen)[:3] == [1, 2, 3] and len(seen) == max(seen)
    for t in (1, 5, max(seen)):
        assert torch.equal(seen[t], solver(y, w, 0.2, steps=t, **kwargs)), t
