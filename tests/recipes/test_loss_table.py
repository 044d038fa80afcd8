"""Foundation experiment (b): evaluation, the verdict, and the collapse claim itself on
digits (a test that can fail: it trains)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.data import load_digits
from genoise.energy.networks import ClassifierEnergy
from genoise.experiments.loss_table import (
    TABLE_LOSSES,
    LossTableConfig,
    claim_verdict,
    evaluate,
    loss_table_markdown,
    train_with_loss,
)


class _Fixed(nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, x):
        return self.outputs


def test_table_losses_are_the_ten_rows_of_the_tutorial():
    assert TABLE_LOSSES == ("energy", "perceptron", "hinge", "log", "lvq2", "mce",
                            "square_square", "square_exp", "nll", "mee")


def test_evaluate_on_hand_made_energies():
    # outputs = -energies; sample 0 is right with gap 1, sample 1 wrong with gap -2.
    outputs = torch.tensor([[3.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    model = ClassifierEnergy(_Fixed(outputs))
    result = evaluate(model, torch.zeros(2, 1), torch.tensor([0, 1]))
    assert result["test_error"] == pytest.approx(50.0)
    assert result["margin_gap"] == pytest.approx(((-2 + 3) + (-3 + 1)) / 2)


def test_verdict_is_computed_from_the_numbers():
    shows = [{"loss": "energy", "margin_type": "none", "test_error": 88.0, "margin_gap": -1.0},
             {"loss": "hinge", "margin_type": "m", "test_error": 3.0, "margin_gap": 2.0}]
    assert claim_verdict(shows).startswith("**The claim shows.**")
    fails = [{"loss": "energy", "margin_type": "none", "test_error": 4.0, "margin_gap": 1.0},
             {"loss": "hinge", "margin_type": "m", "test_error": 3.0, "margin_gap": 2.0}]
    assert claim_verdict(fails).startswith("**The claim did not show")


def test_energy_loss_collapses_while_hinge_trains_on_digits():
    train, test = load_digits("train"), load_digits("test")
    cfg = LossTableConfig(dataset="digits", steps=150, batch_size=64, lr=3e-3)
    energy = train_with_loss("energy", train, test, cfg)
    hinge = train_with_loss("hinge", train, test, cfg)
    assert hinge["test_error"] < 25.0, hinge
    assert energy["test_error"] > hinge["test_error"] + 30.0, (energy, hinge)
    assert "| hinge | m |" in loss_table_markdown([energy, hinge])
