"""Foundation experiment (b): evaluation, the verdict, and the collapse claim itself on
digits (a test that can fail: it trains)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from torch import nn

from genoise.data import load_digits
from genoise.energy.networks import ClassifierEnergy
from genoise.recipes.loss_table import (
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


def test_verdict_leaves_out_diverged_rows():
    rows = [{"loss": "energy", "margin_type": "none", "test_error": 88.0, "margin_gap": -1.0,
             "status": "diverged (|loss| grew)"},
            {"loss": "hinge", "margin_type": "m", "test_error": 3.0, "margin_gap": 2.0, "status": "trained"}]
    verdict = claim_verdict(rows)
    assert "not tested" in verdict and "Diverged, left out: energy." in verdict


def test_with_a_huge_learning_rate_every_row_says_diverged_never_trained(tmp_path):
    """lr = 1e6 at tiny size: the unbounded losses stop with DivergedError; the bounded ones
    (LVQ2, MCE, MEE saturate) are caught by their energies' scale. Before, nine rows said
    'trained' at chance."""
    from genoise.recipes.loss_table import train as loss_table_train
    from genoise.train import Run

    config = {**asdict(LossTableConfig(dataset="digits", steps=12, batch_size=32, lr=1e6, train_subset=256)),
              "losses": list(TABLE_LOSSES)}
    run = Run(tmp_path / "run", config=config, progress=False)
    rows = loss_table_train(run)["rows"]
    assert [r["status"].split(" (")[0] for r in rows] == ["diverged"] * len(TABLE_LOSSES), \
        [(r["loss"], r["status"]) for r in rows]
    table = (tmp_path / "run" / "table.md").read_text()
    assert "| trained |" not in table and table.count("| diverged |") == len(TABLE_LOSSES)
    assert any("exceeds" in r["status"] for r in rows)  # the Trainer's DivergedError message


def test_a_normal_run_says_trained(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    row = train_with_loss("hinge", train, test, LossTableConfig(dataset="digits", steps=20, lr=1e-3))
    assert row["status"] == "trained"
