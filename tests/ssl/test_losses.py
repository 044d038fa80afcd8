"""Every SSL loss against a slow, direct reference written here (loops over samples and
dimensions in float64), plus the known fixed points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genoise.ssl.clustering import sinkhorn, spherical_kmeans, swav_loss
from genoise.ssl.contrastive import drlim_loss, moco_loss, nt_xent_loss
from genoise.ssl.distillation import byol_loss, simsiam_loss
from genoise.ssl.infomax import (
    barlow_twins_loss,
    covariance_loss,
    invariance_loss,
    variance_loss,
    vicreg_loss,
)
from genoise.ssl.sigreg import epps_pulley, lejepa_loss, random_directions, sigreg_loss


@pytest.fixture
def pair(generator):
    z_a = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    z_b = z_a + 0.3 * torch.randn(12, 5, generator=generator, dtype=torch.float64)
    return z_a, z_b


def _std(col):
    mean = sum(col) / len(col)
    return math.sqrt(sum((c - mean) ** 2 for c in col) / (len(col) - 1) + 1e-4)


def _cov_offdiag(z):
    rows = z.tolist()
    n, d = len(rows), len(rows[0])
    means = [sum(r[j] for r in rows) / n for j in range(d)]
    total = 0.0
    for i in range(d):
        for j in range(d):
            if i != j:
                c = sum((r[i] - means[i]) * (r[j] - means[j]) for r in rows) / (n - 1)
                total += c * c
    return total / d


def test_vicreg_terms_match_a_loop_reference(pair):
    z_a, z_b = pair
    n, d = z_a.shape
    inv = sum((z_a[b, j] - z_b[b, j]).item() ** 2 for b in range(n) for j in range(d)) / (n * d)
    var_a = sum(max(0.0, 1 - _std(z_a[:, j].tolist())) for j in range(d)) / d
    var_b = sum(max(0.0, 1 - _std(z_b[:, j].tolist())) for j in range(d)) / d
    assert invariance_loss(z_a, z_b).item() == pytest.approx(inv, rel=1e-10)
    assert variance_loss(z_a).item() == pytest.approx(var_a, rel=1e-10)
    assert covariance_loss(z_a).item() == pytest.approx(_cov_offdiag(z_a), rel=1e-10)
    expected = 25 * inv + 25 * (var_a + var_b) / 2 + (_cov_offdiag(z_a) + _cov_offdiag(z_b))
    assert vicreg_loss(z_a, z_b).item() == pytest.approx(expected, rel=1e-10)


def test_covariance_loss_matches_the_loop_when_the_batch_is_smaller_than_the_dimension(generator):
    z = torch.randn(4, 9, generator=generator, dtype=torch.float64)  # uses the 4×4 Gram matrix
    assert covariance_loss(z).item() == pytest.approx(_cov_offdiag(z), rel=1e-10)


def test_vicreg_variance_term_is_zero_when_every_std_is_at_least_one(generator):
    z = 3.0 * torch.randn(64, 8, generator=generator)
    assert (z.std(0) >= 1).all()
    assert variance_loss(z).item() == 0.0
    assert variance_loss(0.1 * z).item() > 0.5


def _hadamard_columns():
    h = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64)
    return h[:, 1:]  # mean 0, biased std 1, mutually orthogonal columns


def test_barlow_twins_is_zero_when_cross_correlation_is_identity():
    z = _hadamard_columns()
    assert barlow_twins_loss(z, z.clone(), eps=0.0).item() == pytest.approx(0.0, abs=1e-12)
    assert barlow_twins_loss(z, z.flip(1), eps=0.0).item() > 1.0


def test_barlow_twins_matches_a_loop_reference(pair):
    z_a, z_b = pair
    n, d = z_a.shape

    def standardise(z):
        cols = []
        for j in range(d):
            col = z[:, j].tolist()
            m = sum(col) / n
            s = math.sqrt(sum((c - m) ** 2 for c in col) / n + 1e-5)
            cols.append([(c - m) / s for c in col])
        return cols

    a, b = standardise(z_a), standardise(z_b)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][k] * b[j][k] for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else 5e-3 * c * c
    assert barlow_twins_loss(z_a, z_b).item() == pytest.approx(loss, rel=1e-9)


def test_nt_xent_matches_a_loop_reference(pair):
    z_a, z_b = pair
    tau = 0.3
    z = torch.cat([z_a, z_b]).tolist()
    n = len(z)
    half = n // 2

    def cos(u, v):
        dot = sum(x * y for x, y in zip(u, v, strict=True))
        return dot / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))

    total = 0.0
    for i in range(n):
        pos = (i + half) % n
        denom = sum(math.exp(cos(z[i], z[j]) / tau) for j in range(n) if j != i)
        total += -math.log(math.exp(cos(z[i], z[pos]) / tau) / denom)
    assert nt_xent_loss(z_a, z_b, tau).item() == pytest.approx(total / n, rel=1e-9)


def test_moco_loss_matches_a_loop_reference(generator):
    q = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    k = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    queue = F.normalize(torch.randn(9, 4, generator=generator, dtype=torch.float64), dim=1)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    total = 0.0
    for b in range(6):
        pos = math.exp(float(qn[b] @ kn[b]) / 0.2)
        neg = sum(math.exp(float(qn[b] @ queue[j]) / 0.2) for j in range(9))
        total += -math.log(pos / (pos + neg))
    assert moco_loss(q, k, queue, 0.2).item() == pytest.approx(total / 6, rel=1e-9)


def test_drlim_square_square_and_square_exp_match_the_pair_formulas(pair):
    z_a, z_b = pair
    n = z_a.shape[0]
    sq = ex = hard = 0.0
    for i in range(n):
        pos = float((z_a[i] - z_b[i]).norm())
        neg = float((z_a[i] - z_b[(i - 1) % n]).norm())
        sq += pos**2 + max(0.0, 2.0 - neg) ** 2
        ex += pos**2 + 0.5 * math.exp(-neg)
        u = F.normalize(z_a[i], dim=0)
        dists = [float((u - F.normalize(z_b[j], dim=0)).norm()) for j in range(n)]
        hardest = min(d for j, d in enumerate(dists) if j != i)
        hard += dists[i] ** 2 + max(0.0, 1.0 - hardest) ** 2
    raw = dict(negatives="roll", normalize=False)
    assert drlim_loss(z_a, z_b, margin=2.0, **raw).item() == pytest.approx(sq / n, rel=1e-10)
    assert drlim_loss(z_a, z_b, kind="square-exp", beta=0.5, **raw).item() == pytest.approx(ex / n, rel=1e-10)
    assert drlim_loss(z_a, z_b).item() == pytest.approx(hard / n, rel=1e-10)


def test_byol_and_simsiam_losses_match_cosine_formulas(pair, generator):
    p_a, p_b = pair
    z_a = torch.randn_like(p_a)
    z_b = torch.randn_like(p_b)

    def mean_cos(p, z):
        return float(np.mean([float(p[i] @ z[i] / (p[i].norm() * z[i].norm())) for i in range(p.shape[0])]))

    c1, c2 = mean_cos(p_a, z_b), mean_cos(p_b, z_a)
    assert byol_loss(p_a, p_b, z_a, z_b).item() == pytest.approx((2 - 2 * c1) + (2 - 2 * c2), rel=1e-9)
    assert simsiam_loss(p_a, p_b, z_a, z_b).item() == pytest.approx(-(c1 + c2) / 2, rel=1e-9)


def test_sinkhorn_gives_doubly_stochastic_codes(generator):
    scores = torch.randn(32, 8, generator=generator)
    q = sinkhorn(scores, epsilon=0.5, iterations=200)
    torch.testing.assert_close(q.sum(1), torch.ones(32), rtol=0, atol=1e-5)
    torch.testing.assert_close(q.sum(0), torch.full((8,), 32 / 8), rtol=0, atol=1e-4)
    # SwAV's setting (cosine scores, ε = 0.05, 3 iterations): rows exact, columns far
    # closer to equipartition than the plain softmax assignment
    cosines = F.normalize(torch.randn(32, 6, generator=generator), dim=1) @ F.normalize(
        torch.randn(8, 6, generator=generator), dim=1).T
    q3 = sinkhorn(cosines, epsilon=0.05, iterations=3)
    torch.testing.assert_close(q3.sum(1), torch.ones(32), rtol=0, atol=1e-5)
    assert (q3 >= 0).all()
    imbalance = [float((sinkhorn(cosines, 0.05, n).sum(0) - 4).abs().max()) for n in (1, 3, 10)]
    assert imbalance[0] > imbalance[1] > imbalance[2]
    assert imbalance[1] < float((torch.softmax(cosines / 0.05, 1).sum(0) - 4).abs().max())


def test_sinkhorn_matches_the_swav_reference_algorithm(generator):
    scores = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    q = np.exp(scores.numpy() / 0.5).T
    q /= q.sum()
    for _ in range(3):
        q /= q.sum(axis=1, keepdims=True) * 4
        q /= q.sum(axis=0, keepdims=True) * 10
    np.testing.assert_allclose(sinkhorn(scores, 0.5, 3).numpy(), (q * 10).T, rtol=1e-5)


def test_swav_loss_is_the_swapped_cross_entropy(generator):
    s = [torch.randn(5, 3, generator=generator, dtype=torch.float64) for _ in range(3)]
    q = [torch.softmax(torch.randn(5, 3, generator=generator, dtype=torch.float64), 1) for _ in range(2)]
    terms = []
    for i in range(2):
        for v in range(3):
            if v != i:
                logp = torch.log_softmax(s[v] / 0.1, 1)
                terms.append(float(-(q[i] * logp).sum(1).mean()))
    assert swav_loss(s, q, 0.1).item() == pytest.approx(np.mean(terms), rel=1e-10)


def test_spherical_kmeans_recovers_separated_directions(generator):
    centres = torch.eye(4)
    labels = torch.arange(200) % 4
    x = centres[labels] + 0.05 * torch.randn(200, 4, generator=generator)
    centroids, assign = spherical_kmeans(x, 4, iterations=10, seed=1)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels.numpy(), assign.numpy()) == 1.0
    torch.testing.assert_close(centroids.norm(dim=1), torch.ones(4))


def test_epps_pulley_matches_a_complex_trapezoid_reference(generator):
    x = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    t = np.linspace(-5, 5, 17)
    phi = np.exp(-t**2 / 2)
    expected = []
    for m in range(3):
        ecf = np.exp(1j * np.outer(x[:, m].numpy(), t)).mean(0)
        expected.append(50 * np.trapezoid(np.abs(ecf - phi) ** 2 * phi, t))
    np.testing.assert_allclose(epps_pulley(x).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("shape", [(12, 3), (2, 9, 4)])
def test_epps_pulley_gradient_matches_finite_differences_and_autograd(generator, shape):
    x = torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: epps_pulley(a, num_points=9), (x,))
    t = torch.linspace(-5, 5, 17, dtype=torch.float64)  # the plain formula on the full grid
    xt = x.unsqueeze(-1) * t
    err = (torch.cos(xt).mean(-3) - torch.exp(-t**2 / 2)).square() + torch.sin(xt).mean(-3).square()
    reference = torch.trapezoid(err * torch.exp(-t**2 / 2), t, dim=-1) * shape[-2]
    weights = torch.randn(reference.shape, generator=generator, dtype=torch.float64)
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    (ours,) = torch.autograd.grad((epps_pulley(x) * weights).sum(), x)
    torch.testing.assert_close(ours, expected)


def test_sigreg_is_small_for_gaussian_samples_and_large_for_collapsed_ones(generator):
    gaussian = torch.randn(512, 16, generator=generator)
    collapsed = torch.ones(512, 16) * 0.3 + 0.01 * torch.randn(512, 16, generator=generator)
    low_rank = torch.randn(512, 1, generator=generator) * torch.ones(1, 16)
    small = sigreg_loss(gaussian).item()
    assert small < 2.0  # E[EP] under H0 = √(2π) − √(2π/3) ≈ 1.06
    assert sigreg_loss(collapsed).item() > 50 * small
    assert sigreg_loss(low_rank).item() > 10 * small


def test_sigreg_on_a_stack_of_views_is_the_mean_of_the_per_view_values(generator):
    z = torch.randn(3, 40, 6, generator=generator, dtype=torch.float64)
    stacked = sigreg_loss(z, num_slices=9, seed=5)
    per_view = torch.stack([sigreg_loss(v, num_slices=9, seed=5) for v in z]).mean()
    torch.testing.assert_close(stacked, per_view)
    torch.testing.assert_close(epps_pulley(z[:, :, :2]), torch.stack([epps_pulley(v[:, :2]) for v in z]))
    with pytest.raises(ValueError, match="must be"):
        sigreg_loss(z[0, 0])


def test_random_directions_are_unit_and_seeded():
    a = random_directions(7, 5, seed=3)
    torch.testing.assert_close(a.norm(dim=0), torch.ones(5))
    torch.testing.assert_close(a, random_directions(7, 5, seed=3))
    assert not torch.allclose(a, random_directions(7, 5, seed=4))


def test_lejepa_prediction_term_is_zero_for_identical_views(generator):
    z = torch.randn(64, 4, generator=generator)
    full = lejepa_loss([z, z.clone()], lambda_sigreg=0.05)
    assert full.item() == pytest.approx(0.05 * sigreg_loss(z).item(), rel=1e-5)


@pytest.mark.parametrize("loss", [vicreg_loss, barlow_twins_loss, nt_xent_loss, drlim_loss])
def test_batch_of_one_is_refused(loss):
    with pytest.raises(ValueError, match="batch size 1"):
        loss(torch.randn(1, 4), torch.randn(1, 4))


@pytest.mark.parametrize("loss", [vicreg_loss, barlow_twins_loss, nt_xent_loss, invariance_loss])
def test_views_of_different_shapes_are_refused(loss):
    with pytest.raises(ValueError, match="different shapes"):
        loss(torch.randn(8, 4), torch.randn(8, 5))


def test_non_finite_embeddings_are_refused():
    z = torch.randn(8, 4)
    z[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        vicreg_loss(z, torch.randn(8, 4))


def test_moco_queue_dimension_mismatch_is_refused():
    with pytest.raises(ValueError, match="queue has dimension 3"):
        moco_loss(torch.randn(4, 5), torch.randn(4, 5), torch.randn(10, 3))
