"""K-means: scikit-learn parity from the same init, the discrete-latent energy surface,
determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import cluster
from sklearn.datasets import load_digits

from genoise.energy import infer_latent
from genoise.latent.kmeans import KMeans, kmeans_plusplus


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float64)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("k", [10, 32])
def test_kmeans_inertia_matches_sklearn_from_same_init(digits, dtype, k):
    init = digits[np.random.default_rng(k).choice(len(digits), k, replace=False)]
    ours = KMeans(k, init=init, dtype=dtype).fit(digits)
    ref = cluster.KMeans(k, init=init, n_init=1).fit(digits)
    assert abs(ours.inertia_ - ref.inertia_) <= 5e-3 * ref.inertia_
    # the inertia attribute is the energy it claims to be
    centers = ours.cluster_centers_.double()
    explicit = ((torch.from_numpy(digits)[:, None] - centers[None]) ** 2).sum(-1).min(1).values.sum()
    assert ours.inertia_ == pytest.approx(float(explicit), rel=1e-4)


@pytest.mark.parametrize("k", [10, 32, 64])
def test_float64_kmeans_follows_sklearns_trajectory_exactly(digits, k):
    """In float64 no distance ties to round-off: from the same centres genoise (Elkan's bounds,
    running sums) and scikit-learn (Lloyd) take the same steps, so labels, iteration count and
    final inertia agree (the benchmark's float64 rows: 1e-14 on MNIST and CIFAR). The digits are
    small integers, whose distances tie exactly; a little noise makes every tie a real choice."""
    rng = np.random.default_rng(k)
    digits = digits + 1e-3 * rng.standard_normal(digits.shape)
    init = digits[rng.choice(len(digits), k, replace=False)]
    ours = KMeans(k, init=init, max_iter=50, tol=1e-4, dtype="float64").fit(digits)
    ref = cluster.KMeans(k, init=init, n_init=1, max_iter=50, tol=1e-4).fit(digits)
    assert ours.n_iter_ == ref.n_iter_
    assert np.array_equal(ours.labels_.numpy(), ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, rtol=0, atol=1e-10)


def test_kmeans_recovers_separated_blobs_with_kmeanspp_restarts():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    y = (centres[:, None] + 0.5 * torch.randn(3, 100, 2, generator=gen)).reshape(-1, 2)
    km = KMeans(3, n_init=3, seed=0).fit(y)
    found = km.cluster_centers_[km.cluster_centers_[:, 0].argsort()]
    torch.testing.assert_close(found, centres[centres[:, 0].argsort()], atol=0.2, rtol=0)
    assert sorted(km.labels_.bincount().tolist()) == [100, 100, 100]


def test_kmeans_is_deterministic_given_a_seed(digits):
    a = KMeans(8, seed=3, n_init=2).fit(digits)
    b = KMeans(8, seed=3, n_init=2).fit(digits)
    torch.testing.assert_close(a.cluster_centers_, b.cluster_centers_)
    seeds = kmeans_plusplus(torch.from_numpy(digits), 8, torch.Generator().manual_seed(0))
    assert seeds.shape == (8, 64)
    # k-means++ picks data points
    assert bool(((torch.from_numpy(digits)[None] - seeds[:, None]).abs().sum(-1) == 0).any(1).all())


def test_kmeans_free_energy_is_squared_distance_to_nearest_centre(digits):
    km = KMeans(6, seed=0).fit(digits)
    y = torch.from_numpy(digits[:40])
    dist = ((y[:, None] - km.cluster_centers_[None]) ** 2).sum(-1)  # explicit (B, K)
    torch.testing.assert_close(km.free_energy(y), dist.min(1).values)
    torch.testing.assert_close(km.free_energy(y, beta=0.01), -torch.logsumexp(-0.01 * dist, 1) / 0.01)
    z = infer_latent(km, y)
    torch.testing.assert_close(z, torch.nn.functional.one_hot(dist.argmin(1), 6).double())
    torch.testing.assert_close(km.energy(y, z=z), dist.min(1).values)
    assert torch.equal(km.predict(y), dist.argmin(1))
    torch.testing.assert_close(km.transform(y), dist.sqrt())
    assert km.score(y) == pytest.approx(-float(dist.min(1).values.sum()))


def test_kmeans_bad_input(digits):
    with pytest.raises(ValueError, match="n_clusters=20 is larger than the number of samples"):
        KMeans(20).fit(digits[:10])
    bad = digits.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN/Inf"):
        KMeans(3).fit(bad)
    with pytest.raises(ValueError, match="y must have 2 dimension"):
        KMeans(3).fit(digits[:, 0])
    with pytest.raises(ValueError, match=r"init must have shape \(3, 64\)"):
        KMeans(3, init=digits[:2]).fit(digits)
    with pytest.raises(ValueError, match="init must be"):
        KMeans(3, init="kmeans||").fit(digits)
    with pytest.raises(ValueError, match="not fitted"):
        KMeans(3).predict(digits)
    with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
        KMeans(0).fit(digits)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_tolerance_scale_is_the_mean_feature_variance(digits, dtype):
    from genoise.latent.kmeans import mean_variance

    y = torch.from_numpy(digits).to(dtype) + 100.0  # an offset: the one-pass formula must not cancel
    expected = float(torch.from_numpy(digits).var(0, unbiased=False).mean())
    # float32 row norms of offset data lose ~1e-4 to rounding: ample for a stopping threshold
    rel = 1e-3 if dtype == torch.float32 else 1e-10
    assert mean_variance(y, (y * y).sum(-1)) == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("k", [10, 64])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elkan_bounds_give_lloyds_iterations_exactly(digits, k, dtype):
    """The bounded path skips distances and updates the cluster sums by the samples that moved,
    never changes the result: labels equal Lloyd's after every iteration, from the same
    initialisation, and centres to round-off (float64 running sums vs Lloyd's re-summation)."""
    init = digits[np.random.default_rng(k).choice(len(digits), k, replace=False)]
    fits = {name: KMeans(k, init=init, dtype=dtype, algorithm=name, tol=0.0, max_iter=40)
            for name in ("lloyd", "elkan")}
    for model in fits.values():
        model.init_fit(digits, torch.Generator().manual_seed(0))
    skipped = 0
    while not fits["lloyd"].converged_:
        rows = {name: model.fit_step(digits) for name, model in fits.items()}
        assert fits["elkan"].converged_ == fits["lloyd"].converged_
        if fits["lloyd"].converged_:
            break
        rtol = 1e-5 if dtype == "float32" else 1e-12
        torch.testing.assert_close(fits["elkan"]._centers, fits["lloyd"]._centers, rtol=rtol, atol=rtol)
        assert torch.equal(fits["elkan"]._labels_old, fits["lloyd"]._labels_old)
        assert rows["elkan"]["energy"] == pytest.approx(rows["lloyd"]["energy"], rel=1e-5)
        if fits["elkan"]._bounds is not None:  # rows whose next distances the bounds skip
            labels, upper, lower, sums, counts, shift = fits["elkan"]._bounds
            data = torch.from_numpy(digits).double()
            torch.testing.assert_close(sums, torch.zeros_like(sums).index_add_(0, labels, data))
            assert torch.equal(counts, torch.bincount(labels, minlength=k).double())
            # the bounds hold for the new centres once the pending shifts are applied
            lower, upper = lower - shift, upper + shift[labels]
            centres = fits["elkan"]._centers.double()
            exact = torch.cdist(data, centres)
            slack = 1e-4 * exact.max()
            assert bool((lower.double() <= exact + slack).all())
            assert bool((upper.double() >= exact.gather(1, labels[:, None])[:, 0] - slack).all())
            open_ = lower * (1 - 1e-5) < upper[:, None] * (1 + 1e-5)
            open_[torch.arange(len(labels)), labels] = False
            skipped += int((~open_.any(1)).sum())
    assert torch.equal(fits["elkan"].labels_, fits["lloyd"].labels_)
    assert fits["elkan"].n_iter_ == fits["lloyd"].n_iter_
    assert skipped > 0  # the bounds did prune distance computations
    with pytest.raises(ValueError, match="algorithm must be 'auto', 'elkan' or 'lloyd'"):
        KMeans(k, algorithm="hamerly").fit(digits)
