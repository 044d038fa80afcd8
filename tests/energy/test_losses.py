"""Every loss of the table against values worked out by hand, gradients by finite differences,
and bad input. The worked example (B = 2, K = 2):

    F(y)   = [1.0, 2.0]
    F(ŷ_k) = [[3.0, 1.5], [0.5, 4.0]]   → most offending F(ŷ) = [1.5, 0.5]
    gap d  = F(y) − F(ŷ) = [−0.5, 1.5]
"""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import (
    energy_loss,
    hinge_loss,
    info_nce_loss,
    log_loss,
    lvq2_loss,
    margin_loss,
    mce_loss,
    mee_loss,
    most_offending,
    nce_loss,
    nll_loss,
    perceptron_loss,
    split_energies,
    square_exp_loss,
    square_square_loss,
)

CORRECT = [1.0, 2.0]
CONTRASTIVE = [[3.0, 1.5], [0.5, 4.0]]


def _inputs(dtype=torch.float64):
    return torch.tensor(CORRECT, dtype=dtype), torch.tensor(CONTRASTIVE, dtype=dtype)


def _assert_rows(loss_fn, expected, **hyper):
    correct, contrastive = _inputs()
    got = loss_fn(correct, contrastive, reduction="none", **hyper)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def _nll_by_hand(correct, contrastive, beta):
    return [fy + math.log(math.exp(-beta * fy) + sum(math.exp(-beta * f) for f in row)) / beta
            for fy, row in zip(correct, contrastive, strict=True)]


def test_energy_loss_is_the_correct_energy():
    _assert_rows(energy_loss, [1.0, 2.0])
    assert energy_loss(torch.tensor(CORRECT)).item() == pytest.approx(1.5)


def test_perceptron_loss_subtracts_min_over_all_answers_including_correct():
    # min over {F(y)} ∪ {F(ŷ_k)}: row 0 → 1.0 (the correct one), row 1 → 0.5
    _assert_rows(perceptron_loss, [1.0 - 1.0, 2.0 - 0.5])


def test_hinge_loss_values():
    _assert_rows(hinge_loss, [0.5, 2.5], margin=1.0)  # [1 + d]⁺
    _assert_rows(hinge_loss, [0.0, 1.75], margin=0.25)


def test_log_loss_is_softplus_of_gap():
    _assert_rows(log_loss, [math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(1.5))])


def test_lvq2_loss_saturates_at_saturation():
    _assert_rows(lvq2_loss, [0.0, 1.0], saturation=1.0)
    _assert_rows(lvq2_loss, [0.0, 1.5], saturation=2.0)


def test_mce_loss_is_sigmoid_of_gap():
    _assert_rows(mce_loss, [1 / (1 + math.exp(0.5)), 1 / (1 + math.exp(-1.5))])


def test_square_square_loss_values():
    # F(y)² + ([m − F(ŷ)]⁺)²
    _assert_rows(square_square_loss, [1.0 + 0.0, 4.0 + 0.25], margin=1.0)
    _assert_rows(square_square_loss, [1.0 + 0.25, 4.0 + 2.25], margin=2.0)


def test_square_exp_loss_values():
    _assert_rows(square_exp_loss, [1.0 + math.exp(-1.5), 4.0 + math.exp(-0.5)], beta=1.0)
    _assert_rows(square_exp_loss, [1.0 + 2 * math.exp(-1.5), 4.0 + 2 * math.exp(-0.5)], beta=2.0)


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_nll_loss_sums_partition_over_correct_and_contrastive(beta):
    _assert_rows(nll_loss, _nll_by_hand(CORRECT, CONTRASTIVE, beta), beta=beta)


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_mee_loss_is_one_minus_gibbs_probability_of_correct(beta):
    expected = []
    for fy, row in zip(CORRECT, CONTRASTIVE, strict=True):
        z = math.exp(-beta * fy) + sum(math.exp(-beta * f) for f in row)
        expected.append(1 - math.exp(-beta * fy) / z)
    _assert_rows(mee_loss, expected, beta=beta)


def test_margin_loss_sums_hinge_over_all_contrastive_answers():
    # row 0: [1 − 3 + 1]⁺ + [1 − 1.5 + 1]⁺ = 0 + 0.5 ; row 1: [2 − 0.5 + 1]⁺ + [2 − 4 + 1]⁺ = 2.5 + 0
    _assert_rows(margin_loss, [0.5, 2.5], margin=1.0)
    per_pair = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    # row 0: [−2 + 2]⁺ + [−0.5 + 0]⁺ = 0 ; row 1: [1.5 + 0]⁺ + [−2 + 3]⁺ = 2.5
    _assert_rows(margin_loss, [0.0, 2.5], margin=per_pair)


def test_margin_loss_accepts_a_custom_h_function():
    def square_hinge(fy, fc, m):
        return torch.relu(fy - fc + m) ** 2

    _assert_rows(margin_loss, [0.25, 6.25], margin=1.0, H=square_hinge)


def test_info_nce_loss_values_and_temperature():
    _assert_rows(info_nce_loss, _nll_by_hand(CORRECT, CONTRASTIVE, 1.0))
    tau = 0.5
    expected = [fy / tau + math.log(math.exp(-fy / tau) + sum(math.exp(-f / tau) for f in row))
                for fy, row in zip(CORRECT, CONTRASTIVE, strict=True)]
    _assert_rows(info_nce_loss, expected, temperature=tau)


def test_nce_loss_is_logistic_discrimination_of_data_vs_noise():
    correct, contrastive = _inputs()
    log_q_data = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    log_q_noise = torch.tensor([[-0.5, -1.5], [-1.0, -3.0]], dtype=torch.float64)

    def log_sigmoid(u):
        return -math.log(1 + math.exp(-u))

    for nu in (None, 3.0):
        log_nu = math.log(2 if nu is None else nu)
        expected = []
        for b in range(2):
            g_data = -CORRECT[b] - log_q_data[b].item() - log_nu
            loss = -log_sigmoid(g_data)
            for k in range(2):
                g_noise = -CONTRASTIVE[b][k] - log_q_noise[b, k].item() - log_nu
                loss -= math.log(1 - 1 / (1 + math.exp(-g_noise)))
            expected.append(loss)
        got = nce_loss(correct, contrastive, log_q_data, log_q_noise, nu=nu, reduction="none")
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_one_dimensional_contrastive_is_the_most_offending_answer():
    correct, contrastive = _inputs()
    hardest = torch.tensor([1.5, 0.5], dtype=torch.float64)
    for fn in (perceptron_loss, hinge_loss, log_loss, lvq2_loss, mce_loss, square_square_loss,
               square_exp_loss):
        torch.testing.assert_close(fn(correct, contrastive), fn(correct, hardest))


@pytest.mark.parametrize("reduction,expected", [("mean", 1.5), ("sum", 3.0)])
def test_reductions(reduction, expected):
    correct, contrastive = _inputs()
    assert hinge_loss(correct, contrastive, reduction=reduction).item() == pytest.approx(expected)


def test_split_energies_and_most_offending():
    energies = torch.tensor([[0.3, 0.1, 0.7, 0.2], [0.9, 0.8, 0.4, 0.6]])
    target = torch.tensor([1, 2])
    correct, incorrect = split_energies(energies, target)
    torch.testing.assert_close(correct, torch.tensor([0.1, 0.4]))
    torch.testing.assert_close(incorrect, torch.tensor([[0.3, 0.7, 0.2], [0.9, 0.8, 0.6]]))
    best = most_offending(energies, target)
    torch.testing.assert_close(best.energy, torch.tensor([0.2, 0.6]))
    assert best.index.tolist() == [3, 3]


def test_nll_is_stable_for_large_energies():
    correct = torch.tensor([1000.0])
    contrastive = torch.tensor([[1001.0, 2000.0]])
    expected = math.log(1 + math.exp(-1.0))  # the common offset of 1000 cancels
    assert nll_loss(correct, contrastive).item() == pytest.approx(expected, rel=1e-5)
    assert log_loss(torch.tensor([500.0]), torch.tensor([-500.0])).item() == pytest.approx(1000.0)


def test_infinite_contrastive_energy_excludes_an_answer():
    correct = torch.tensor([1.0])
    with_inf = torch.tensor([[2.0, math.inf]])
    torch.testing.assert_close(nll_loss(correct, with_inf), nll_loss(correct, torch.tensor([[2.0]])))


# --------------------------------------------------------------------- gradients
ALL_LOSSES = [
    (energy_loss, {}), (perceptron_loss, {}), (hinge_loss, {"margin": 0.7}), (log_loss, {}),
    (lvq2_loss, {"saturation": 5.0}), (mce_loss, {}), (square_square_loss, {"margin": 1.3}),
    (square_exp_loss, {"beta": 0.8}), (nll_loss, {"beta": 1.7}), (mee_loss, {"beta": 0.6}),
    (margin_loss, {"margin": 0.9}), (info_nce_loss, {"temperature": 0.4}),
]


@pytest.mark.parametrize("fn,hyper", ALL_LOSSES, ids=lambda v: getattr(v, "__name__", ""))
def test_gradcheck(fn, hyper):
    g = torch.Generator().manual_seed(1)
    correct = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(True)
    contrastive = torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, reduction="none", **hyper), (correct, contrastive))


def test_gradcheck_nce():
    g = torch.Generator().manual_seed(2)
    args = [torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)
            for shape in ((4,), (4, 3), (4,), (4, 3))]
    assert torch.autograd.gradcheck(lambda *a: nce_loss(*a, nu=2.0, reduction="none"), args)


# --------------------------------------------------------------------- bad input
def test_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"batch sizes differ.*\(3,\).*\(2, 4\)"):
        hinge_loss(torch.zeros(3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"energy_correct must be 1-D, got shape \(3, 1\)"):
        log_loss(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(ValueError, match=r"energy_contrastive must be 1-D or 2-D"):
        nll_loss(torch.zeros(3), torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="no answers"):
        nll_loss(torch.zeros(3), torch.zeros(3, 0))


def test_nan_input_is_rejected():
    with pytest.raises(ValueError, match="energy_contrastive contains 1 NaN"):
        hinge_loss(torch.zeros(2), torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="energy_correct contains 2 NaN"):
        energy_loss(torch.full((2,), math.nan))


@pytest.mark.parametrize("fn,name", [(hinge_loss, "margin"), (square_square_loss, "margin"),
                                     (lvq2_loss, "saturation"), (square_exp_loss, "beta"),
                                     (nll_loss, "beta"), (mee_loss, "beta"), (margin_loss, "margin"),
                                     (info_nce_loss, "temperature")])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan])
def test_non_positive_hyper_parameters_are_rejected(fn, name, value):
    with pytest.raises(ValueError, match=name):
        fn(torch.zeros(2), torch.zeros(2, 2), **{name: value})


def test_bad_reduction_and_bad_margin_tensor():
    with pytest.raises(ValueError, match="reduction must be one of"):
        hinge_loss(torch.zeros(2), torch.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match=r"margin tensor must have the shape.*\(2, 3\)"):
        margin_loss(torch.zeros(2), torch.zeros(2, 3), margin=torch.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        margin_loss(torch.zeros(2), torch.zeros(2, 3), margin=-torch.ones(2, 3))


def test_split_energies_rejects_bad_targets():
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 2\]"):
        split_energies(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer tensor"):
        split_energies(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="K >= 2"):
        split_energies(torch.zeros(2, 1), torch.tensor([0, 0]))
