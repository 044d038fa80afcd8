"""Scores of generated images: the Fréchet distance against closed forms, nearest-neighbour
distances against brute force, the cached feature classifier, one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genoise.data import load_digits
from genoise.generative import (
    feature_classifier,
    frechet_distance,
    gaussian_stats,
    nearest_distance,
    sample_quality,
)
from genoise.generative.metrics import cache_dir


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())  # 5 + 1 + 1 + 4
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_is_rotation_invariant_and_zero_on_itself():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    cov1, cov2 = m @ m.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    d = frechet_distance(mu1, cov1, mu2, cov2)
    rotated = frechet_distance(q @ mu1, q @ cov1 @ q.T, q @ mu2, q @ cov2 @ q.T)
    assert d == pytest.approx(rotated, rel=1e-8) and d > 0
    assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-8)
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) \
        == pytest.approx(4.0 + 1.0)


def test_frechet_distance_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"need means \(d,\) and covariances \(d, d\)"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_gaussian_stats_match_numpy():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    mu, cov = gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.double().numpy().mean(0), atol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x.double().numpy().T), atol=1e-12)


def test_nearest_distance_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(20, 1, 4, 4, generator=g), torch.rand(57, 1, 4, 4, generator=g)
    expected = torch.cdist(a.flatten(1).double(), b.flatten(1).double()).min(1).values
    torch.testing.assert_close(nearest_distance(a, b, chunk=10), expected)
    assert float(nearest_distance(b[:5], b).max()) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    import os

    old = os.environ.get("GENOISE_CACHE")
    os.environ["GENOISE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    data = load_digits("train")
    try:
        yield feature_classifier(data.images, data.labels, epochs=20), data
    finally:
        if old is None:
            os.environ.pop("GENOISE_CACHE")
        else:
            os.environ["GENOISE_CACHE"] = old


def test_feature_classifier_is_cached_and_a_corrupt_cache_is_replaced(classifier):
    model, data = classifier
    files = list(cache_dir().glob("lenet5-features-*.pt"))
    assert len(files) == 1
    again = feature_classifier(data.images, data.labels, epochs=20)
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    files[0].write_bytes(b"not a checkpoint")
    rebuilt = feature_classifier(data.images, data.labels, epochs=20)
    for p, q in zip(model.parameters(), rebuilt.parameters(), strict=True):
        assert torch.equal(p, q)  # trained again, deterministically, and the cache rewritten
    assert files[0].stat().st_size > 1000


def test_real_images_score_well_and_noise_scores_badly(classifier):
    model, data = classifier
    test = load_digits("test")
    from genoise.generative.metrics import classify

    stats = gaussian_stats(classify(model, test.images)[0])
    real = sample_quality(data.images[:400], model, stats, data.images[400:])
    noise = sample_quality(torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(0)), model,
                           stats, data.images[400:])
    assert real["frechet"] < noise["frechet"] / 5
    assert real["confident"] > 0.8 > noise["confident"]
    assert real["classes_covered"] == 10 and real["max_class_deviation"] < 5
    assert math.isclose(sum(real["class_histogram"]), 1.0)
    assert real["nearest_train"] < noise["nearest_train"]
    quick = sample_quality(data.images[:400], model, stats, data.images[400:], nearest=False)
    assert "nearest_train" not in quick and quick == {k: v for k, v in real.items() if k != "nearest_train"}


def test_sample_quality_refuses_wrong_shapes_and_nan(classifier):
    model, data = classifier
    stats = (torch.zeros(84, dtype=torch.float64), torch.eye(84, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"samples must be \(N, 1, 8, 8\), got \(3, 1, 28, 28\)"):
        sample_quality(torch.rand(3, 1, 28, 28), model, stats, data.images)
    with pytest.raises(ValueError, match="samples contains"):
        sample_quality(torch.full((3, 1, 8, 8), float("nan")), model, stats, data.images)
