"""PCA: scikit-learn parity (float64), the energy surface and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import decomposition
from sklearn.datasets import load_digits

from genoise.latent.pca import PCA


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float64)


def _align_signs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    signs = np.sign((a * b).sum(1, keepdims=True))
    return a * signs


def test_pca_components_and_variance_match_sklearn(digits):
    ours = PCA(n_components=10).fit(digits)
    ref = decomposition.PCA(n_components=10, svd_solver="full").fit(digits)
    comps = ours.components_.numpy()
    np.testing.assert_allclose(_align_signs(comps, ref.components_), ref.components_, atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_ratio_.numpy(), ref.explained_variance_ratio_,
                               rtol=1e-5)
    np.testing.assert_allclose(ours.mean_.numpy(), ref.mean_, atol=1e-10)
    assert ours.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-5)


def test_pca_whitened_codes_match_sklearn_up_to_sign(digits):
    ours = PCA(n_components=5, whiten=True).fit(digits)
    ref = decomposition.PCA(n_components=5, whiten=True, svd_solver="full").fit(digits)
    z, z_ref = ours.transform(digits).numpy(), ref.transform(digits)
    np.testing.assert_allclose(_align_signs(z.T, z_ref.T).T, z_ref, atol=1e-6)
    np.testing.assert_allclose(z.var(0, ddof=1), np.ones(5), rtol=1e-6)


def test_pca_fractional_n_components_matches_sklearn(digits):
    ours = PCA(n_components=0.9).fit(digits)
    ref = decomposition.PCA(n_components=0.9, svd_solver="full").fit(digits)
    assert ours.n_components_ == ref.n_components_


def test_pca_free_energy_is_distance_to_subspace(digits):
    pca = PCA(n_components=8).fit(digits)
    y = torch.from_numpy(digits[:50])
    recon = pca.inverse_transform(pca.transform(y))
    expected = ((y - recon) ** 2).sum(-1)
    torch.testing.assert_close(pca.free_energy(y), expected)
    torch.testing.assert_close(pca.energy(y), expected)
    # any other code has a higher energy
    z = pca.transform(y) + 0.1
    assert bool((pca.energy(y, z=z) > expected).all())


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_finite_beta_free_energy_matches_quadrature(whiten):
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(200, 3, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.5],
                                                                                   dtype=torch.float64)
    pca = PCA(n_components=1, whiten=whiten).fit(data)
    y, beta = data[:4], 0.7
    grid = torch.linspace(-40, 40, 40001, dtype=torch.float64)
    # quadrature of exp(-beta E) with E(y, z) = F_inf + s²(z − z*)² along the single direction
    z_star = pca.transform(y)
    scale = pca.explained_variance_.sqrt() if whiten else torch.ones(1, dtype=torch.float64)
    e = pca.free_energy(y)[:, None] + (scale * (grid[None, :] - z_star)) ** 2
    step = float(grid[1] - grid[0])
    numeric = -torch.log((torch.exp(-beta * e)).sum(-1) * step) / beta
    torch.testing.assert_close(pca.free_energy(y, beta=beta), numeric, rtol=1e-6, atol=1e-8)
    # and the direct energy agrees with the quadratic form used above
    z = z_star + 0.3
    torch.testing.assert_close(pca.energy(y, z=z), pca.free_energy(y) + (scale * 0.3) ** 2 * torch.ones(4,
                               dtype=torch.float64))
    assert math.isfinite(float(pca.free_energy(y, beta=beta).sum()))


def test_pca_accepts_torch_float32_and_keeps_dtype(digits):
    pca = PCA(n_components=3).fit(torch.from_numpy(digits).float())
    assert pca.components_.dtype == torch.float32
    pca64 = PCA(n_components=3, dtype="float64").fit(torch.from_numpy(digits).float())
    assert pca64.components_.dtype == torch.float64


def test_pca_bad_input(digits):
    with pytest.raises(ValueError, match="y must have 2 dimension"):
        PCA(2).fit(digits.reshape(-1, 8, 8))
    bad = digits.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf"):
        PCA(2).fit(bad)
    with pytest.raises(ValueError, match="n_components=100"):
        PCA(100).fit(digits[:, :10])
    with pytest.raises(ValueError, match="not fitted"):
        PCA(2).transform(digits)
    with pytest.raises(ValueError, match="features"):
        PCA(2).fit(digits).transform(digits[:, :10])
    with pytest.raises(ValueError, match="dtype"):
        PCA(2, dtype="int8").fit(digits)
