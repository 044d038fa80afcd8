"""Per-sample backtracking FISTA: same optimum as plain FISTA and scikit-learn's Lasso, certified
by the duality gap, including empty supports and λ above λ_max."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from genoise.latent.backtracking import backtracking_fista
from genoise.latent.dictionary import SparseCoder
from genoise.latent.ista import duality_gap, fista, sparse_coding_objective, sparse_encode


def _problem(
    seed: int, n_features: int = 20, n_atoms: int = 30, batch: int = 12, dtype: torch.dtype = torch.float64
):
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(torch.randn(n_features, n_atoms, generator=gen, dtype=dtype), dim=0)
    y = torch.randn(batch, n_features, generator=gen, dtype=dtype)
    return y, w


def _gap(y, w, z, lam, positive=False):
    y, w, z = y.double(), w.double(), z.double()
    gram = w.T @ w
    return duality_gap(y.pow(2).sum(1), y @ w, z, z @ gram, lam, positive)


def _sklearn_objective(y, w, lam, positive=False):
    codes = [
        Lasso(alpha=lam / w.shape[0], fit_intercept=False, tol=1e-12, max_iter=200000, positive=positive)
        .fit(w.double().numpy(), row.double().numpy())
        .coef_
        for row in y
    ]
    return sparse_coding_objective(y.double(), w.double(), torch.from_numpy(np.array(codes)), lam)


@pytest.mark.parametrize("positive", [False, True])
def test_matches_fista_and_sklearn_lasso_objective_with_a_certified_gap(positive):
    y, w = _problem(0)
    lam = 0.4
    z = backtracking_fista(y, w, lam, gap_tol=1e-10, positive=positive)
    primal, gap = _gap(y, w, z, lam, positive)
    assert torch.all(gap <= 1e-10 * primal)
    reference = fista(y, w, lam, steps=5000, tol=None, gap_tol=1e-12, positive=positive)
    assert torch.allclose(primal, sparse_coding_objective(y, w, reference, lam), rtol=1e-9)
    sklearn = _sklearn_objective(y, w, lam, positive)
    assert torch.all((primal - sklearn).abs() <= 1e-8 * sklearn)
    if positive:
        assert bool((z >= 0).all())


def test_real_digits_float32_reach_the_requested_gap():
    from sklearn.datasets import load_digits

    y = torch.as_tensor(load_digits().data[:300] / 16.0, dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    w = torch.nn.functional.normalize(torch.randn(64, 96, generator=gen), dim=0)
    lam = 0.3
    for gap_tol in (1e-2, 1e-4):  # float32 gap, float64-checked gap
        z = backtracking_fista(y, w, lam, gap_tol=gap_tol, block=128)
        assert z.dtype == torch.float32
        primal, gap = _gap(y, w, z, lam)
        assert torch.all(gap <= gap_tol * primal), gap_tol
    # Below float32's reach the solve runs in float64; the certified float64 codes, rounded
    # to float32, move the objective only to second order.
    best = sparse_coding_objective(
        y.double(), w.double(), fista(y.double(), w.double(), lam, steps=5000, tol=None, gap_tol=1e-12), lam
    )
    z = backtracking_fista(y, w, lam, gap_tol=1e-9, block=128)
    assert z.dtype == torch.float32
    assert torch.all(sparse_coding_objective(y.double(), w.double(), z.double(), lam) - best <= 1e-9 * best)


def test_empty_support_and_lambda_above_lambda_max():
    y, w = _problem(2)
    y[3] = 0.0  # all-zero input: code 0, gap 0
    lam_max = float((y @ w).abs().max())
    z = backtracking_fista(y, w, 1.01 * lam_max, gap_tol=0.0)
    assert bool((z == 0).all())
    lam = 0.5
    row_max = (y @ w).abs().amax(dim=1)
    y[5] *= 0.9 * lam / float(row_max[5])  # this row alone has λ > its λ_max
    z = backtracking_fista(y, w, lam, gap_tol=1e-12)
    assert bool((z[3] == 0).all()) and bool((z[5] == 0).all())
    primal, gap = _gap(y, w, z, lam)
    assert torch.all(gap <= 1e-12 * primal.clamp_min(1e-300))
    assert bool((z.abs().sum(1) > 0).sum() >= 8)


def test_pool_refills_and_rows_are_independent():
    y, w = _problem(3, batch=40)
    lam = 0.3
    whole = backtracking_fista(y, w, lam, gap_tol=1e-12)
    pooled = backtracking_fista(y, w, lam, gap_tol=1e-12, block=6)  # 6 rows at a time, refilled
    assert torch.allclose(whole, pooled, atol=1e-9)
    alone = backtracking_fista(y[7:8], w, lam, gap_tol=1e-12)
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
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(30, 1, generator=gen, dtype=torch.float64)
    w = torch.nn.functional.normalize(
        base + 0.5 * torch.randn(30, 60, generator=gen, dtype=torch.float64), dim=0
    )
    y = torch.randn(50, 30, generator=gen, dtype=torch.float64)
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
    for algorithm in ("auto", "fista_bt"):
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
