"""The certified lasso solvers (per-sample backtracking FISTA, ADMM): same optimum as plain FISTA
and scikit-learn's Lasso, certified by the duality gap, including empty supports and λ above
λ_max, in a row pool that refills; backtracking FISTA's own claims."""

from __future__ import annotations

import pytest
import torch

from genoise.latent.admm import admm
from genoise.latent.backtracking import backtracking_fista
from genoise.latent.dictionary import SparseCoder
from genoise.latent.ista import fista, sparse_coding_objective, sparse_encode
from tests.latent._lasso import correlated
from tests.latent._lasso import gap as _gap
from tests.latent._lasso import problem as _problem
from tests.latent._lasso import sklearn_objective as _sklearn_objective

SOLVERS = [backtracking_fista, admm]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("positive", [False, True])
def test_matches_fista_and_sklearn_lasso_objective_with_a_certified_gap(solver, positive):
    y, w = _problem(0)
    lam = 0.4
    z = solver(y, w, lam, gap_tol=1e-10, positive=positive)
    primal, gap = _gap(y, w, z, lam, positive)
    assert torch.all(gap <= 1e-10 * primal)
    reference = fista(y, w, lam, steps=5000, tol=None, gap_tol=1e-12, positive=positive)
    assert torch.allclose(primal, sparse_coding_objective(y, w, reference, lam), rtol=1e-9)
    sklearn = _sklearn_objective(y, w, lam, positive)
    assert torch.all((primal - sklearn).abs() <= 1e-8 * sklearn)
    if positive:
        assert bool((z >= 0).all())


@pytest.mark.parametrize("solver", SOLVERS)
def test_real_digits_float32_reach_the_requested_gap(solver):
    from sklearn.datasets import load_digits

    y = torch.as_tensor(load_digits().data[:300] / 16.0, dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    w = torch.nn.functional.normalize(torch.randn(64, 96, generator=gen), dim=0)
    lam = 0.3
    for gap_tol in (1e-2, 1e-4):  # float32 gap, float64-checked gap
        z = solver(y, w, lam, gap_tol=gap_tol, block=128)
        assert z.dtype == torch.float32
        primal, gap = _gap(y, w, z, lam)
        assert torch.all(gap <= gap_tol * primal), gap_tol
    # Below float32's reach the solve runs in float64; the certified float64 codes, rounded
    # to float32, move the objective only to second order.
    best = sparse_coding_objective(
        y.double(), w.double(), fista(y.double(), w.double(), lam, steps=5000, tol=None, gap_tol=1e-12), lam
    )
    z = solver(y, w, lam, gap_tol=1e-9, block=128)
    assert z.dtype == torch.float32
    assert torch.all(sparse_coding_objective(y.double(), w.double(), z.double(), lam) - best <= 1e-9 * best)


@pytest.mark.parametrize("solver", SOLVERS)
def test_empty_support_and_lambda_above_lambda_max(solver):
    y, w = _problem(2)
    y[3] = 0.0  # all-zero input: code 0, gap 0
    lam_max = float((y @ w).abs().max())
    z = solver(y, w, 1.01 * lam_max, gap_tol=0.0)
    assert bool((z == 0).all())
    lam = 0.5
    row_max = (y @ w).abs().amax(dim=1)
    y[5] *= 0.9 * lam / float(row_max[5])  # this row alone has λ > its λ_max
    z = solver(y, w, lam, gap_tol=1e-12)
    assert bool((z[3] == 0).all()) and bool((z[5] == 0).all())
    primal, gap = _gap(y, w, z, lam)
    assert torch.all(gap <= 1e-12 * primal.clamp_min(1e-300))
    assert bool((z.abs().sum(1) > 0).sum() >= 8)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pool_refills_and_rows_are_independent(solver):
    """Rows are independent (ADMM's only coupling, the penalty ρ it balances over the pool, is
    fixed here), so a row solved in a refilled pool of 6 or alone reaches the same codes."""
    y, w = _problem(3, batch=40)
    lam = 0.3
    kw = {"adapt": False} if solver is admm else {}
    whole = solver(y, w, lam, gap_tol=1e-12, **kw)
    stats: dict = {}
    pooled = solver(y, w, lam, gap_tol=1e-12, block=6, stats=stats, **kw)  # 6 rows at a time, refilled
    assert stats["uncertified"] == 0 and stats["checks"] >= 40
    assert torch.allclose(whole, pooled, atol=1e-9)
    alone = solver(y[7:8], w, lam, gap_tol=1e-12, **kw)
    assert torch.allclose(alone, whole[7:8], atol=1e-9)


def test_warm_start_and_monotone_backtracking_reach_the_same_optimum():
    y, w = _problem(4)
    lam = 0.2
    z = backtracking_fista(y, w, lam, gap_tol=1e-12)
    warm = backtracking_fista(y, w, lam, z0=z + 0.01, gap_tol=1e-12)
    monotone = backtracking_fista(y, w, lam, gap_tol=1e-12, shrink=1.0, L0=0.1)
    for other in (warm, monotone):
        assert torch.allclose(
            sparse_coding_objective(y, w, other, lam), sparse_coding_objective(y, w, z, lam), rtol=1e-10
        )


def test_fewer_iterations_than_plain_fista_on_correlated_atoms():
    """The point of the per-sample step: on correlated atoms (global L ≫ local curvature)
    the same budget gets much closer to the optimum."""
    y, w = correlated(5)
    lam = 0.5
    best = sparse_coding_objective(y, w, fista(y, w, lam, steps=20000, tol=None, gap_tol=1e-13), lam).sum()
    plain = sparse_coding_objective(y, w, fista(y, w, lam, steps=40, tol=None), lam).sum()
    ours = sparse_coding_objective(
        y, w, backtracking_fista(y, w, lam, steps=40, gap_tol=0.0, check_every=40), lam
    ).sum()
    assert float(ours - best) < 0.1 * float(plain - best)


def test_sparse_encode_and_sparse_coder_dispatch():
    y, w = _problem(6)
    lam = 0.3
    best = sparse_coding_objective(y, w, fista(y, w, lam, steps=5000, tol=None, gap_tol=1e-13), lam)
    for algorithm in ("auto", "fista_bt", "admm"):
        z = sparse_encode(y, w, lam, algorithm, gap_tol=1e-9)
        assert torch.all(sparse_coding_objective(y, w, z, lam) - best <= 1e-9 * best)
    z = SparseCoder(w.T, lam).transform(y)  # default "auto", gap 1e-4
    primal, gap = _gap(y, w, z, lam)
    assert torch.all(gap <= 1e-4 * primal)
    with pytest.raises(ValueError, match="algorithm"):
        sparse_encode(y, w, lam, "newton")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gap_tol": -1.0}, "gap_tol"),
        ({"shrink": 0.0}, "shrink"),
        ({"shrink": 1.5}, "shrink"),
        ({"block": 0}, "block"),
        ({"L0": -2.0}, "L0"),
        ({"check_every": 0}, "check_every"),
        ({"z0": torch.zeros(3, 3)}, "z0"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    y, w = _problem(7)
    with pytest.raises(ValueError, match=match):
        backtracking_fista(y, w, 0.1, **kwargs)


def test_nan_input_is_refused():
    y, w = _problem(8)
    y[0, 0] = float("nan")
    with pytest.raises(ValueError, match="y"):
        backtracking_fista(y, w, 0.1)
