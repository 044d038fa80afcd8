"""PCA's three SVD solvers: each against scikit-learn's solver of the same name, against an
exact float64 SVD, on the two branches of every backend (scipy BLAS/LAPACK and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import decomposition
from sklearn.datasets import load_digits

from genoise.latent.pca import PCA
from genoise.latent.pca_solvers import (
    centred_gram,
    choose_solver,
    svd_covariance_eigh,
    svd_full,
    svd_randomized,
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    # 1e-3 noise: the integer pixels have exactly tied trailing singular values, whose
    # vectors no two solvers need agree on
    data = load_digits().data.astype(np.float64)
    return data + 1e-3 * np.random.default_rng(0).standard_normal(data.shape)


def _exact(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and right vectors of the centred y, by numpy's LAPACK SVD."""
    _, s, vh = np.linalg.svd(y - y.mean(0), full_matrices=False)
    return s, vh


def _same_subspace(a: np.ndarray, b: np.ndarray) -> float:
    """max |cos| deviation: 0 when the rows of a and b are the same vectors up to sign."""
    return float(np.abs(np.abs((a * b).sum(1)) - 1).max())


@pytest.mark.parametrize("solver", ["full", "covariance_eigh"])
@pytest.mark.parametrize("k", [10, 0.9, None])
def test_exact_solvers_match_sklearns_solver_of_the_same_name(digits, solver, k):
    ours = PCA(k, svd_solver=solver).fit(digits)
    ref = decomposition.PCA(k, svd_solver=solver).fit(digits)
    assert ours.svd_solver_ == solver and ours.n_components_ == ref.n_components_
    # covariance_eigh's variances are accurate to ε·λ₁ absolutely (the trailing ones ~1e-6 here)
    top = ref.explained_variance_[0]
    np.testing.assert_allclose(ours.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-10,
                               atol=1e-14 * top)
    np.testing.assert_allclose(ours.explained_variance_ratio_.numpy(), ref.explained_variance_ratio_,
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours.singular_values_.numpy() ** 2, ref.singular_values_**2, rtol=1e-10,
                               atol=1e-14 * top * len(digits))
    # same sign convention, so the components agree as they are, not up to sign (the first
    # 40: the trailing eigenvectors of covariance_eigh are accurate to ε·λ₁ / gap only)
    np.testing.assert_allclose(ours.components_.numpy()[:40], ref.components_[:40], atol=1e-8)
    assert ours.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
@pytest.mark.parametrize("scipy", [True, False])
def test_covariance_eigh_equals_an_exact_svd_on_both_backends_and_shapes(shape, scipy):
    gen = np.random.default_rng(1)
    y = gen.standard_normal(shape) * np.linspace(5, 0.5, shape[1]) + 3.0
    s_ref, vh_ref = _exact(y)
    t = torch.from_numpy(y)
    s, vh, total = svd_covariance_eigh(t, t.mean(0), 7, scipy=scipy)
    np.testing.assert_allclose(s.numpy(), s_ref[:7], rtol=1e-10)
    assert _same_subspace(vh.numpy(), vh_ref[:7]) < 1e-9
    assert float(total) == pytest.approx(float((s_ref**2).sum()), rel=1e-12)
    s_all, _, _ = svd_covariance_eigh(t, t.mean(0), scipy=scipy)  # all min(n, d)
    assert s_all.shape == (min(shape),)
    np.testing.assert_allclose(s_all.numpy()[: min(shape) - 1], s_ref[: min(shape) - 1], rtol=1e-8)


@pytest.mark.parametrize("shape", [(500, 30), (30, 500), (64, 64)])
def test_full_solver_is_the_exact_thin_svd(shape):
    y = np.random.default_rng(2).standard_normal(shape) @ np.diag(np.geomspace(10, 1e-6, shape[1]))
    s_ref, vh_ref = _exact(y)
    t = torch.from_numpy(y)
    s, vh, total = svd_full(t, t.mean(0))
    keep = min(shape) - 1  # the last singular value of centred data is 0: its vector is arbitrary
    # backward stable: every singular value to ε·σ₁, the tiny ones included
    np.testing.assert_allclose(s.numpy()[:keep], s_ref[:keep], rtol=0, atol=1e-12 * s_ref[0])
    assert _same_subspace(vh.numpy()[:5], vh_ref[:5]) < 1e-12
    assert float(total) == pytest.approx(float((s_ref**2).sum()), rel=1e-12)


@pytest.mark.parametrize("scipy", [True, False])
def test_gram_centres_far_from_origin_data_instead_of_cancelling(scipy):
    """float32 data at 1e3 ± 1: XᵀX − nμμᵀ (scikit-learn's formula) loses every digit;
    centred_gram detects the cancellation (κ ≈ 1e6) and centres the rows first."""
    gen = np.random.default_rng(3)
    y64 = 1000.0 + gen.standard_normal((4000, 12)) * np.linspace(2, 0.5, 12)
    truth = (y64 - y64.mean(0)).T @ (y64 - y64.mean(0))
    y = torch.from_numpy(y64.astype(np.float32))
    mean = y.mean(0)
    ours = centred_gram(y, mean, scipy=scipy).double().numpy()
    shortcut = (y.T @ y - len(y) * torch.outer(mean, mean)).double().numpy()
    scale = np.abs(truth).max()
    assert np.abs(ours - truth).max() < 1e-4 * scale
    assert np.abs(shortcut - truth).max() > 1e-2 * scale  # what the guard avoids
    # near-origin data take the shortcut, and lose nothing measurable to it
    z = y - 1000.0
    np.testing.assert_allclose(centred_gram(z, z.mean(0), scipy=scipy).double().numpy(), truth,
                               rtol=0, atol=1e-4 * scale)


def test_randomized_recovers_an_exactly_low_rank_matrix(digits):
    """Rank-8 data, k = 5 (l = 15 ≥ rank): the range finder captures the whole range,
    so the randomized SVD is exact."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(400, 8, dtype=torch.float64, generator=gen) @ torch.randn(
        8, 60, dtype=torch.float64, generator=gen)
    s_ref, vh_ref = _exact(y.numpy())
    s, vh, total = svd_randomized(y, y.mean(0), 5, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(s.numpy(), s_ref[:5], rtol=1e-10)
    assert _same_subspace(vh.numpy(), vh_ref[:5]) < 1e-10
    assert float(total) == pytest.approx(float((s_ref**2).sum()), rel=1e-12)


def test_randomized_pca_agrees_with_sklearns_and_with_the_exact_variances(digits):
    ours = PCA(10, svd_solver="randomized", seed=0).fit(digits)
    ref = decomposition.PCA(10, svd_solver="randomized", random_state=0).fit(digits)
    exact = decomposition.PCA(10, svd_solver="full").fit(digits)
    assert ours.svd_solver_ == "randomized"
    # 7 power iterations, l = 20 of 64: the leading variances to 1e-5 (3e-6 measured)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), exact.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_ratio_.numpy(), exact.explained_variance_ratio_,
                               rtol=1e-5)
    assert _same_subspace(ours.components_.numpy()[:5], exact.components_[:5]) < 1e-6
    assert ours.noise_variance_ == pytest.approx(exact.noise_variance_, rel=1e-5)
    assert ours.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-5)


def test_randomized_is_seeded_and_survives_rank_deficient_input():
    gen = torch.Generator().manual_seed(4)
    y = torch.randn(300, 3, generator=gen, dtype=torch.float64) @ torch.randn(3, 700, generator=gen,
                                                                                dtype=torch.float64)
    a = PCA(2, svd_solver="randomized", seed=5).fit(y)  # l = 12 > rank 3: LU meets zero pivots
    b = PCA(2, svd_solver="randomized", seed=5).fit(y)
    assert torch.isfinite(a.components_).all() and torch.equal(a.components_, b.components_)
    exact = PCA(2, svd_solver="full").fit(y)
    torch.testing.assert_close(a.explained_variance_, exact.explained_variance_, rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    ("shape", "k"),
    [((2000, 50), 10), ((2000, 50), None), ((100, 50), 10), ((600, 520), 10), ((600, 520), 0.9),
     ((600, 520), 500), ((100, 700), 20)],
)
def test_auto_picks_what_sklearns_auto_picks(shape, k):
    y = np.random.default_rng(5).standard_normal(shape)
    ref = decomposition.PCA(k, random_state=0).fit(y)
    assert choose_solver(*shape, k) == ref._fit_svd_solver
    assert PCA(k, seed=0).fit(y).svd_solver_ == ref._fit_svd_solver


def test_float32_is_kept_by_every_solver(digits):
    y = torch.from_numpy(digits).float()
    exact = PCA(5, svd_solver="full", dtype="float64").fit(digits)
    for solver in ("full", "covariance_eigh", "randomized"):
        pca = PCA(5, svd_solver=solver, seed=0).fit(y)
        assert pca.components_.dtype == torch.float32 and pca.explained_variance_.dtype == torch.float32
        torch.testing.assert_close(pca.explained_variance_.double(), exact.explained_variance_, rtol=1e-4,
                                   atol=0)


def test_solver_bad_input(digits):
    with pytest.raises(ValueError, match="svd_solver must be one of"):
        PCA(2, svd_solver="arpack").fit(digits)
    with pytest.raises(ValueError, match=r"randomized.*integer n_components"):
        PCA(0.9, svd_solver="randomized").fit(digits)
    with pytest.raises(ValueError, match=r"randomized.*integer n_components"):
        PCA(None, svd_solver="randomized").fit(digits)
    with pytest.raises(ValueError, match="n_components=100"):
        PCA(100, svd_solver="covariance_eigh").fit(digits[:, :10])


def test_fitted_solver_survives_the_state_dict(digits):
    pca = PCA(3, svd_solver="covariance_eigh").fit(digits)
    state = pca.state_dict()
    other = PCA(3)
    other.load_state_dict(state)
    assert other.svd_solver_ == "covariance_eigh"
    torch.testing.assert_close(other.transform(digits), pca.transform(digits))
    del state["svd_solver_"]  # a file written before the solver was recorded
    PCA(3).load_state_dict(state)
