"""benchmarks/generative_mnist.py: cells of a weight-average setting have their own names,
and the table over draws reads the VAE's mean, not one draw."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its helpers as top-level modules
    import benchmarks.generative_mnist as module

    return module


@pytest.mark.parametrize(("decay", "expected"),
                         [(0.0, ""), (0.999, "-ema999"), (0.9999, "-ema9999"), (0.99, "-ema99")])
def test_a_weight_average_names_its_cells_and_record(bench, decay, expected):
    assert bench.ema_suffix(Namespace(ema_decay=decay)) == expected


def test_the_rows_below_the_vae_are_judged_on_the_mean_over_draws(bench):
    spreads = {
        "ebgan_pt": {"frechet_draws": [1.40, 1.50, 1.50], "deviation_draws": [5.0, 6.0, 7.0]},
        # one lucky draw below the VAE's, the mean above it
        "wgan_gp": {"frechet_draws": [1.45, 1.70, 1.70], "deviation_draws": [3.0, 3.0, 3.0]},
        "vae": {"frechet_draws": [1.40, 1.60, 1.60], "deviation_draws": [3.0, 4.0, 5.0]},
        "vae_recipe": {"frechet_draws": [3.0, 3.0, 3.0], "deviation_draws": [5.0, 5.0, 5.0]},
    }
    lines = bench.spread_lines(spreads, 3, 5000)
    assert lines[-1] == "- Rows whose mean Fréchet distance is below the 16-D VAE's (1.53): ebgan_pt."
    assert "| EBGAN + pulling-away | 1.47 ± 0.06 | 1.40 – 1.50 | 6.0 ± 1.0 |" in lines
    assert bench.mean_std([2.0]) == (2.0, 0.0)


def test_the_matched_budget_takes_its_rows_updates_from_the_command_line(bench):
    args = Namespace(steps=[3000], matched=True, matched_steps=["dcgan=40000", "wgan_gp=9000"])
    assert bench.budgets(args) == [
        ("3000", dict.fromkeys(bench.GAN_ROWS, 3000)),
        ("matched", {**bench.MATCHED, "dcgan": 40000, "wgan_gp": 9000})]
    assert bench.budgets(Namespace(steps=[3000], matched=False, matched_steps=[]))[-1][0] == "3000"
    for bad in ("vae=100", "dcgan=0", "dcgan=x", "dcgan"):
        with pytest.raises(SystemExit, match="--matched-steps takes ROW=N"):
            bench.matched_steps([bad])


def test_a_margin_other_than_the_recipes_names_its_ebgan_cells(bench):
    default = bench.DEFAULT_MARGIN
    args = Namespace(margin=0.05, pt_margin=default)
    assert bench.margin_suffix(args, "ebgan") == "-m0.05" and bench.margin_suffix(args, "ebgan_pt") == ""
    assert bench.margin_suffix(Namespace(margin=default, pt_margin=0.2), "ebgan_pt") == "-m0.2"
    assert bench.margin_suffix(args, "dcgan") == ""  # the other GANs have no margin


def test_a_training_seed_other_than_0_names_every_cell(bench):
    assert bench.seed_suffix(Namespace(seed=0)) == "" and bench.seed_suffix(Namespace(seed=1)) == "-s1"
