"""Gaussian mixture: scikit-learn parity from the same initialisation, the energy
surface (free energy at beta=1 is -log p(y)), and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn import mixture
from sklearn.datasets import load_digits
from sklearn.decomposition import TruncatedSVD

from genoise.latent.gmm import GaussianMixture, diag_features, diag_log_joint_matrix, log_gaussian


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    digits = load_digits().data.astype(np.float64)
    return TruncatedSVD(8, random_state=0).fit_transform(digits - digits.mean(0))


def _init(data: np.ndarray, k: int, covariance_type: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    d = data.shape[1]
    means = data[rng.choice(len(data), k, replace=False)]
    precision = 1.0 / data.var(0).mean()
    precisions = (np.stack([np.eye(d) * precision] * k) if covariance_type == "full"
                  else np.full((k, d), precision))
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means, "precisions_init": precisions}


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gmm_log_likelihood_matches_sklearn_from_same_init(data, covariance_type):
    init = _init(data, 5, covariance_type)
    ours = GaussianMixture(5, covariance_type=covariance_type, **init).fit(data)
    ref = mixture.GaussianMixture(5, covariance_type=covariance_type, **init).fit(data)
    assert ours.converged_ == ref.converged_
    assert ours.score(data) == pytest.approx(ref.score(data), rel=1e-3)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-3)
    np.testing.assert_allclose(ours.score_samples(data).numpy(), ref.score_samples(data), rtol=1e-3)
    np.testing.assert_allclose(ours.weights_.numpy(), ref.weights_, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(data).numpy(), ref.predict_proba(data), atol=1e-3)


def test_diag_log_density_as_one_matmul_equals_the_direct_sum():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(30, 6, generator=gen, dtype=torch.float64)
    means = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    variances = torch.rand(4, 6, generator=gen, dtype=torch.float64) + 0.1
    log_weights = torch.rand(4, generator=gen, dtype=torch.float64).log()
    direct = (-0.5 * ((y[:, None] - means) ** 2 / variances).sum(-1) - 0.5 * variances.log().sum(-1)
              - 3 * np.log(2 * np.pi))
    torch.testing.assert_close(log_gaussian(y, means, variances.rsqrt(), "diag"), direct)
    joint = diag_features(y) @ diag_log_joint_matrix(log_weights, means, variances.rsqrt())
    torch.testing.assert_close(joint, direct + log_weights)


def test_gmm_energy_is_minus_log_joint_against_scipy(data):
    gmm = GaussianMixture(3, seed=0).fit(data)
    y = torch.from_numpy(data[:20])
    means, covs, weights = gmm.means_.numpy(), gmm.covariances_.numpy(), gmm.weights_.numpy()
    expected = np.stack([-np.log(weights[k]) - multivariate_normal(means[k], covs[k]).logpdf(data[:20])
                         for k in range(3)], axis=1)
    z = torch.eye(3, dtype=torch.float64)
    for k in range(3):
        energy = gmm.energy(y, z=z[k].expand(20, 3))
        np.testing.assert_allclose(energy.numpy(), expected[:, k], rtol=1e-8)
    np.testing.assert_allclose(gmm.free_energy(y).numpy(), expected.min(1), rtol=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gmm_free_energy_at_beta_one_is_minus_log_likelihood(data, covariance_type):
    gmm = GaussianMixture(4, covariance_type=covariance_type, seed=0).fit(data)
    y = torch.from_numpy(data[:100])
    torch.testing.assert_close(gmm.free_energy(y, beta=1.0), -gmm.score_samples(y))
    torch.testing.assert_close(gmm.predict_proba(y).sum(1), torch.ones(100, dtype=torch.float64))


def test_gmm_random_init_and_sampling_are_seeded(data):
    a = GaussianMixture(3, covariance_type="diag", init_params="random", seed=1, max_iter=20).fit(data)
    b = GaussianMixture(3, covariance_type="diag", init_params="random", seed=1, max_iter=20).fit(data)
    torch.testing.assert_close(a.means_, b.means_, rtol=0, atol=0)
    other = GaussianMixture(3, covariance_type="diag", init_params="random", seed=2, max_iter=20).fit(data)
    assert not torch.equal(a.means_, other.means_)          # the seed reaches the random init
    y, labels = a.sample(50, torch.Generator().manual_seed(0))
    y_again, labels_again = a.sample(50, torch.Generator().manual_seed(0))
    assert y.shape == (50, 8) and labels.shape == (50,)
    assert torch.equal(y, y_again) and torch.equal(labels, labels_again)
    y_other, _ = a.sample(50, torch.Generator().manual_seed(1))
    assert not torch.allclose(y, y_other)                   # a different seed draws other samples


def test_gmm_samples_follow_the_fitted_mixture(data):
    """Sampling draws labels ∝ weights_ and y | k ~ N(means_k, covariances_k): with many
    samples the empirical weights and per-component means agree within a few standard errors."""
    gmm = GaussianMixture(3, covariance_type="full", seed=0).fit(data)
    n = 40000
    y, labels = gmm.sample(n, torch.Generator().manual_seed(3))
    weights = torch.bincount(labels, minlength=3).double() / n
    assert float((weights - gmm.weights_).abs().max()) < 5 * float((0.25 / n) ** 0.5)
    for k in range(3):
        yk = y[labels == k]
        se = (torch.diagonal(gmm.covariances_[k]) / yk.shape[0]).sqrt()
        assert bool(((yk.mean(0) - gmm.means_[k]).abs() < 5 * se).all())


def test_gmm_bad_input(data):
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        GaussianMixture(2, covariance_type="spherical").fit(data)
    with pytest.raises(ValueError, match="n_components=50 is larger than the number of samples"):
        GaussianMixture(50).fit(data[:10])
    bad = data.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf"):
        GaussianMixture(2).fit(bad)
    with pytest.raises(ValueError, match="y must have 2 dimension"):
        GaussianMixture(2).fit(data[None])
    with pytest.raises(ValueError, match="precisions_init must have shape"):
        GaussianMixture(2, covariance_type="diag", precisions_init=np.ones((2, 3))).fit(data)
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixture(2).score(data)
