"""The registry covers every row of the loss table (LOSSES.md) with its margin, and every
spec is callable uniformly on energies of discrete answers."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import (
    LOSSES,
    LossSpec,
    get_loss,
    hinge_loss,
    lvq2_loss,
    most_offending,
    nce_loss,
    nll_loss,
    split_energies,
)

# Table 1 of LeCun et al. 2006 as written in LOSSES.md: name → margin.
TABLE = {"energy": "none", "perceptron": "0", "hinge": "m", "log": ">0", "lvq2": "0", "mce": ">0",
         "square_square": "m", "square_exp": ">0", "nll": ">0", "mee": ">0"}

ENERGIES = torch.tensor([[0.3, 0.1, 0.7, 0.2], [0.9, 0.8, 0.4, 0.6], [0.5, 2.0, 1.0, 0.0]])
TARGET = torch.tensor([1, 2, 0])


def test_every_table_row_is_registered_with_its_margin():
    in_table = {name: spec.margin for name, spec in LOSSES.items() if spec.in_table}
    assert in_table == TABLE
    assert "∞" in LOSSES["log"].note


def test_extra_losses_are_registered_outside_the_table():
    extras = {name for name, spec in LOSSES.items() if not spec.in_table}
    assert extras == {"margin", "info_nce", "nce"}


def test_uses_field():
    assert LOSSES["energy"].uses == "correct"
    assert {n for n, s in LOSSES.items() if s.uses == "all"} == {"nll", "mee", "margin", "info_nce", "nce"}
    assert all(isinstance(s, LossSpec) and s.name == n for n, s in LOSSES.items())


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_spec_is_callable_on_discrete_energies(name):
    spec = get_loss(name)
    loss = spec(ENERGIES, TARGET)
    assert loss.shape == () and math.isfinite(loss.item())
    per_sample = spec(ENERGIES, TARGET, reduction="none")
    assert per_sample.shape == (3,)
    torch.testing.assert_close(per_sample.mean(), loss)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_spec_backpropagates(name):
    energies = ENERGIES.clone().requires_grad_(True)
    LOSSES[name](energies, TARGET).backward()
    assert energies.grad is not None and torch.isfinite(energies.grad).all()


def test_specs_pass_hyper_parameters_and_use_the_most_offending_answer():
    hardest = most_offending(ENERGIES, TARGET).energy
    correct, incorrect = split_energies(ENERGIES, TARGET)
    torch.testing.assert_close(LOSSES["hinge"](ENERGIES, TARGET, margin=0.5),
                               hinge_loss(correct, hardest, margin=0.5))
    torch.testing.assert_close(LOSSES["lvq2"](ENERGIES, TARGET, saturation=0.2),
                               lvq2_loss(correct, hardest, saturation=0.2))
    torch.testing.assert_close(LOSSES["nll"](ENERGIES, TARGET, beta=2.0),
                               nll_loss(correct, incorrect, beta=2.0))


def test_nce_spec_uses_uniform_noise_over_the_answers():
    correct, incorrect = split_energies(ENERGIES, TARGET)
    log_q = math.log(1 / 4)
    expected = nce_loss(correct, incorrect, torch.full((3,), log_q), torch.full((3, 3), log_q))
    torch.testing.assert_close(LOSSES["nce"](ENERGIES, TARGET), expected)


def test_hyper_names_are_keyword_arguments_of_fn():
    import inspect

    for spec in LOSSES.values():
        params = inspect.signature(spec.fn).parameters
        assert all(h in params for h in spec.hyper), spec.name


def test_unknown_loss_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown loss 'hing'; choose one of energy, perceptron, hinge"):
        get_loss("hing")
