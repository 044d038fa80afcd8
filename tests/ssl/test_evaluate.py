"""Evaluation against scikit-learn and closed forms: weighted kNN, linear probe, RankMe,
alignment/uniformity, the PCA plot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from genoise.ssl.evaluate import (
    alignment,
    collapse_metrics,
    embedding_std,
    knn_predict,
    linear_probe,
    pca_plot,
    rankme,
    uniformity,
)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    noise = torch.randn(len(x), 64, generator=torch.Generator().manual_seed(0))
    x = torch.tensor(x, dtype=torch.float32) + 0.01 * noise
    y = torch.tensor(y)
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.mark.parametrize("k", [20, 200])
def test_weighted_knn_matches_sklearn_with_exponential_cosine_weights(digits, k):
    x_tr, y_tr, x_te, _y_te = digits
    ours = knn_predict(x_tr, y_tr, x_te, k=k, temperature=0.07)
    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                              weights=lambda d: np.exp((1 - d) / 0.07))
    sk.fit(x_tr.numpy(), y_tr.numpy())
    agree = (ours.numpy() == sk.predict(x_te.numpy())).mean()
    assert agree > 0.99


def test_linear_probe_is_close_to_sklearn_logistic_regression(digits):
    x_tr, y_tr, x_te, y_te = digits
    ours = linear_probe(x_tr, y_tr, x_te, y_te, weight_decays=(1e-3,))
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    sk = LogisticRegression(C=1 / (1e-3 * len(x_tr)), max_iter=2000)
    sk.fit(((x_tr - mean) / std).numpy(), y_tr.numpy())
    sk_acc = 100 * sk.score(((x_te - mean) / std).numpy(), y_te.numpy())
    assert abs(ours["linear_acc"] - sk_acc) < 1.5
    assert ours["linear_acc"] > 85


def test_rankme_is_full_for_isotropic_and_one_for_rank_one(generator):
    iso = torch.randn(4000, 8, generator=generator)
    assert rankme(iso) > 7.5
    rank_one = torch.randn(500, 1, generator=generator) * torch.randn(1, 8, generator=generator)
    assert rankme(rank_one) < 1.01
    # exactly: singular values (3, 1) → p = (3/4, 1/4)
    z = torch.diag(torch.tensor([3.0, 1.0]))
    assert rankme(z, eps=0.0) == pytest.approx(float(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))))


def test_alignment_and_uniformity_closed_forms(generator):
    z = torch.randn(64, 5, generator=generator)
    assert alignment(z, 2 * z) == pytest.approx(0.0, abs=1e-10)
    assert alignment(z, -z) == pytest.approx(4.0, rel=1e-5)  # ‖u − (−u)‖² = 4 on the sphere
    assert uniformity(torch.ones(10, 3)) == pytest.approx(0.0, abs=1e-6)  # collapsed: log 1
    assert uniformity(z) < -1.0


def test_collapse_metrics_flag_a_collapsed_embedding(generator):
    spread = torch.randn(256, 16, generator=generator)
    collapsed = torch.ones(256, 16) + 1e-3 * torch.randn(256, 16, generator=generator)
    good, bad = collapse_metrics(spread, spread), collapse_metrics(collapsed, collapsed)
    assert good["emb_std_mean"] == pytest.approx(16 ** -0.5, rel=0.1)
    assert bad["emb_std_mean"] < 0.01 and bad["rankme"] < good["rankme"]
    torch.testing.assert_close(embedding_std(spread).shape, torch.Size([16]))


def test_pca_plot_returns_a_figure(tmp_path, generator):
    fig = pca_plot(torch.randn(50, 6, generator=generator), torch.arange(50) % 3)
    fig.savefig(tmp_path / "pca.png")
    assert (tmp_path / "pca.png").stat().st_size > 1000
