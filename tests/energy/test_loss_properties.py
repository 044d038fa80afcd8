"""Properties of the loss table: margin losses never reward a smaller gap F(x, ŷ) − F(x, y), and
the NLL gradient is ∂F(x, y)/∂w − E_{P(ŷ|x)}[∂F(x, ŷ)/∂w] (LeCun et al. 2006, eq. 7)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genoise.energy import LOSSES, gibbs, nll_loss

energies = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False)
increments = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)

# Losses that depend on the energies only through the gap F(x, y) − F(x, ŷ).
GAP_ONLY = ("perceptron", "hinge", "log", "lvq2", "mce")


def _loss(name: str, correct: float, contrastive: list[float]) -> float:
    spec = LOSSES[name]
    e = torch.tensor([[correct, *contrastive]], dtype=torch.float64)
    return spec(e, torch.tensor([0])).item()


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "energy"])
@settings(max_examples=60, deadline=None)
@given(correct=energies, contrastive=st.lists(energies, min_size=1, max_size=4),
       which=st.integers(min_value=0, max_value=3), delta=increments)
def test_loss_non_increasing_when_an_incorrect_energy_rises(name, correct, contrastive, which, delta):
    which %= len(contrastive)
    raised = list(contrastive)
    raised[which] += delta
    assert _loss(name, correct, raised) <= _loss(name, correct, contrastive) + 1e-9


@pytest.mark.parametrize("name", GAP_ONLY)
@settings(max_examples=60, deadline=None)
@given(correct=energies, contrastive=energies, gap=st.floats(-5, 5), delta=increments)
def test_gap_loss_is_non_increasing_in_the_gap(name, correct, contrastive, gap, delta):
    # Same gap F(ŷ) − F(y) gives the same loss wherever the energies sit...
    assert _loss(name, correct, [correct + gap]) == pytest.approx(
        _loss(name, contrastive, [contrastive + gap]), abs=1e-9)
    # ...and a larger gap never gives a larger loss.
    assert _loss(name, correct, [correct + gap + delta]) <= _loss(name, correct, [correct + gap]) + 1e-9


def test_margin_losses_are_zero_beyond_their_margin():
    # hinge, perceptron, LVQ2 vanish once F(ŷ) − F(y) ≥ m (m = 0 for perceptron and LVQ2).
    assert _loss("hinge", 0.0, [1.0]) == 0.0
    assert _loss("hinge", 0.0, [0.99]) > 0.0
    assert _loss("perceptron", 0.0, [0.0]) == 0.0
    assert _loss("lvq2", 0.0, [1e-3]) == 0.0
    # square-square: correct energy 0 and incorrect energy ≥ m → zero loss.
    assert _loss("square_square", 0.0, [1.0]) == 0.0


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_nll_gradient_is_correct_minus_gibbs_expected_gradient(beta):
    # Linear energy F(x, y) = w · φ(x, y) over K discrete answers, so ∂F(x, y)/∂w = φ(x, y).
    g = torch.Generator().manual_seed(0)
    batch, k, dim = 5, 4, 3
    features = torch.randn(batch, k, dim, generator=g, dtype=torch.float64)
    target = torch.tensor([0, 3, 1, 2, 2])
    w = torch.randn(dim, generator=g, dtype=torch.float64, requires_grad=True)

    energies = features @ w  # (B, K)
    LOSSES["nll"](energies, target, beta=beta).backward()

    with torch.no_grad():
        p = gibbs(features @ w, beta=beta)  # P(y′ | x) ∝ exp(−β F(x, y′))
        correct_grad = features[torch.arange(batch), target]  # φ(x, y)
        expected_grad = (p[:, :, None] * features).sum(1)  # E_P[φ(x, y′)]
        explicit = (correct_grad - expected_grad).mean(0)
    torch.testing.assert_close(w.grad, explicit)


def test_nll_equals_negative_log_gibbs_probability():
    g = torch.Generator().manual_seed(3)
    e = torch.randn(6, 5, generator=g, dtype=torch.float64)
    target = torch.randint(5, (6,), generator=g)
    beta = 1.7
    expected = -torch.log(gibbs(e, beta=beta)[torch.arange(6), target]) / beta
    correct = e[torch.arange(6), target]
    mask = torch.nn.functional.one_hot(target, 5).bool()
    got = nll_loss(correct, e[~mask].reshape(6, 4), beta=beta, reduction="none")
    torch.testing.assert_close(got, expected)
