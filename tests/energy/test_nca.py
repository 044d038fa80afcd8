"""NCA against a brute-force double loop in float64 with math.exp, the exclusion of samples
without a same-class neighbour, invariances, stability for far-apart points and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy.nca import nca_loss, pair_energies

DTYPE = torch.float64


def batch(n: int = 7, dim: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 3])  # classes 2 and 3 have a single member


def nca_by_hand(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float,
                objective: str) -> list[float | None]:
    """Goldberger et al. (2004): p_ij ∝ exp(−‖f_i − f_j‖²/τ) over j ≠ i, p_i = Σ_{same class} p_ij."""
    f, c = embeddings.tolist(), labels.tolist()
    losses: list[float | None] = []
    for i in range(len(f)):
        weights = {j: math.exp(-sum((a - b) ** 2 for a, b in zip(f[i], f[j], strict=True)) / temperature)
                   for j in range(len(f)) if j != i}
        same = [j for j in weights if c[j] == c[i]]
        if not same:
            losses.append(None)
            continue
        p_i = sum(weights[j] for j in same) / sum(weights.values())
        losses.append(-math.log(p_i) if objective == "log" else -p_i)
    return losses


@pytest.mark.parametrize("objective", ["log", "expected"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_nca_matches_brute_force_double_loop(objective, temperature):
    f = batch()
    expected = nca_by_hand(f, LABELS, temperature, objective)
    got = nca_loss(f, LABELS, temperature=temperature, objective=objective, reduction="none")
    for value, reference in zip(got.tolist(), expected, strict=True):
        if reference is None:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(reference, rel=1e-12, abs=1e-14)
    kept = [v for v in expected if v is not None]
    mean = nca_loss(f, LABELS, temperature=temperature, objective=objective)
    total = nca_loss(f, LABELS, temperature=temperature, objective=objective, reduction="sum")
    assert mean.item() == pytest.approx(sum(kept) / len(kept), rel=1e-12)
    assert total.item() == pytest.approx(sum(kept), rel=1e-12)


def test_samples_without_same_class_neighbour_are_excluded_but_still_neighbours():
    f = batch()
    per_sample = nca_loss(f, LABELS, reduction="none")
    assert per_sample.isnan().tolist() == [False, False, False, True, False, False, True]
    assert nca_loss(f, LABELS).item() == pytest.approx(per_sample.nanmean().item(), rel=1e-12)
    # The lone samples still sit in the denominators: moving one changes the others' losses.
    moved = f.clone()
    moved[3] += 1.0
    assert not torch.allclose(nca_loss(moved, LABELS), nca_loss(f, LABELS))


def test_no_same_class_neighbour_anywhere_is_refused():
    with pytest.raises(ValueError, match="no sample has a same-class neighbour"):
        nca_loss(batch(4), torch.tensor([0, 1, 2, 3]))


def test_pair_energies_exclude_self_and_are_scaled_squared_distances():
    f = batch(4)
    energies = pair_energies(f, temperature=2.0)
    assert torch.isinf(energies.diagonal()).all()
    off = ~torch.eye(4, dtype=torch.bool)
    expected = (f[:, None] - f[None]).square().sum(-1) / 2.0
    torch.testing.assert_close(energies[off], expected[off])


def test_nca_is_translation_and_rotation_invariant():
    f = batch()
    rotation, _ = torch.linalg.qr(batch(3, 3, seed=1))
    reference = nca_loss(f, LABELS, reduction="none")
    torch.testing.assert_close(nca_loss(f + 100.0, LABELS, reduction="none"), reference, equal_nan=True)
    torch.testing.assert_close(nca_loss(f @ rotation, LABELS, reduction="none"), reference, equal_nan=True)


def test_nca_is_zero_for_well_separated_classes_and_large_when_swapped():
    f = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1]])
    assert nca_loss(f, torch.tensor([0, 0, 1, 1])).item() < 1e-6
    assert nca_loss(f, torch.tensor([0, 1, 0, 1])).item() > 10.0
    assert nca_loss(f, torch.tensor([0, 0, 1, 1]), objective="expected").item() == pytest.approx(-1.0)


@pytest.mark.parametrize("objective", ["log", "expected"])
def test_far_apart_points_give_finite_loss_and_gradients(objective):
    f = (100.0 * batch(seed=2)).float().requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 2])
    loss = nca_loss(f, labels, objective=objective)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()
    if objective == "log":
        assert loss.item() > 1.0  # p_ij underflows in exp(), the log-sum-exp form does not


def test_duplicate_embeddings_give_finite_gradients():
    f = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], requires_grad=True)
    nca_loss(f, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(f.grad).all()


@pytest.mark.parametrize("objective", ["log", "expected"])
def test_nca_gradcheck(objective):
    f = batch(5).requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1, 2])
    assert torch.autograd.gradcheck(
        lambda e: nca_loss(e, labels, temperature=1.7, objective=objective, reduction="none")[:4], (f,))


# --------------------------------------------------------------------- bad input
def test_labels_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\) = \(7,\).*got \(6,\)"):
        nca_loss(batch(), LABELS[:6])


def test_float_labels_are_refused():
    message = r"labels must be an integer tensor \(B,\), got dtype torch\.float32"
    with pytest.raises(ValueError, match=message):
        nca_loss(batch(), LABELS.float())


def test_nan_embeddings_are_refused():
    f = batch()
    f[2, 1] = float("nan")
    with pytest.raises(ValueError, match="embeddings contains 1 NaN"):
        nca_loss(f, LABELS)


def test_batch_of_one_is_refused():
    with pytest.raises(ValueError, match="embeddings has batch size 1; NCA needs at least 2"):
        nca_loss(batch(1), torch.tensor([0]))


def test_embeddings_of_wrong_ndim_or_dtype_are_refused():
    with pytest.raises(ValueError, match="embeddings must have 2 dimension"):
        nca_loss(torch.zeros(7), LABELS)
    with pytest.raises(ValueError, match="embeddings must be a floating-point tensor"):
        nca_loss(torch.zeros(7, 2, dtype=torch.long), LABELS)


@pytest.mark.parametrize(("keyword", "value", "message"), [
    ("temperature", 0.0, "temperature must be > 0"),
    ("objective", "hinge", "objective must be one of 'log', 'expected'"),
    ("reduction", "max", "reduction must be one of"),
])
def test_bad_hyper_parameters_are_refused(keyword, value, message):
    with pytest.raises(ValueError, match=message):
        nca_loss(batch(), LABELS, **{keyword: value})
