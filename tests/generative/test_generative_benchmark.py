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
    args = Namespace(steps=[3000], matched=True, matched_steps=["dcgan=40000", "wgan_gp=9000"], r1=0.0)
    assert bench.budgets(args) == [
        ("3000", dict.fromkeys(bench.GAN_ROWS, 3000)),
        ("matched", {**bench.MATCHED, "dcgan": 40000, "wgan_gp": 9000})]
    assert bench.budgets(Namespace(steps=[3000], matched=False, matched_steps=[], r1=0.0))[-1][0] == "3000"
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


def test_ebm_overrides_name_its_cell_and_are_described(bench, monkeypatch, capsys):
    """``--ebm-set``: the EBM cell's folder names its overrides (the GAN and VAE cells are shared),
    the setting says how its chains run, and keys the benchmark sets or bad values are refused
    before anything is trained."""
    calls = []
    monkeypatch.setattr(bench.cells, "run_cell", lambda out, recipe, name, overrides, result:
                        calls.append((recipe, name, overrides)))
    noise = {"reinit_fraction": 1.0, "mcmc_steps": 100}
    args = Namespace(samples=10, seed=0, width=bench.DEFAULT_WIDTH, ebm_width=32, ebm_steps=2000,
                     ebm_overrides=noise, ema_decay=0.0, steps=[], matched=False, matched_steps=[], r1=0.0)
    names = bench.train_cells(Path("unused"), args, {"dataset": "mnist", "data_dir": None})
    assert names["mcmc_ebm"] == "mcmc_ebm-2000-w32-mcmc_steps100-reinit_fraction1"
    assert calls == [("mcmc-ebm-mnist", names["mcmc_ebm"],
                      {"dataset": "mnist", "data_dir": None, "samples": 10, **noise, "steps": 2000,
                       "width": 32})]
    assert "100 Langevin steps per negative, every chain from uniform noise" in bench.ebm_chains(args)
    buffer = bench.ebm_chains(Namespace(ebm_overrides={}))
    assert buffer == "30 Langevin steps per negative, replay buffer of 5,000"
    longer = bench.ebm_chains(Namespace(ebm_overrides={"mcmc_steps": 60, "alpha": 0.5}))
    assert longer == "60 Langevin steps per negative, replay buffer of 5,000, alpha = 0.5"
    for given, message in ((["steps=5"], "steps is set by the benchmark's own flags"),
                           (["reinit_fraction=2"], "reinit_fraction=2"), (["nonsense=1"], "unknown key")):
        with pytest.raises(SystemExit):
            bench.main(["--ebm-set", *given])
        assert message in capsys.readouterr().err


def test_r1_adds_a_dcgan_r1_row_with_its_own_cells_beside_the_protocols(bench, monkeypatch, capsys):
    """``--r1 γ``: a fifth GAN row, 'DCGAN + R1', trained by dcgan-mnist with r1_weight = γ in cells
    named for γ (36,000 updates in the matched table unless told); the protocol's goals keep their
    five rows, and a line beside them reports the extra row."""
    calls = []
    monkeypatch.setattr(bench.cells, "run_cell", lambda out, recipe, name, overrides, result:
                        calls.append((recipe, name, overrides)))
    args = Namespace(samples=10, seed=0, width=bench.DEFAULT_WIDTH, ebm_width=None, ebm_steps=10,
                     ebm_overrides={}, ema_decay=0.999, steps=[], matched=True,
                     matched_steps=["dcgan=40000"], r1=10.0, margin=bench.DEFAULT_MARGIN,
                     pt_margin=bench.DEFAULT_MARGIN)
    assert list(bench.gan_rows(args)) == [*bench.GAN_ROWS, "dcgan_r1"]
    assert bench.budgets(args)[-1][1]["dcgan_r1"] == bench.R1_MATCHED == 36000
    names = bench.train_cells(Path("unused"), args, {"dataset": "mnist", "data_dir": None})
    assert names[("dcgan_r1", 36000)] == "dcgan_r1-36000-r1w10-ema999"
    assert names[("dcgan", 40000)] == "dcgan-40000-ema999"  # the baseline's cell is shared
    r1_call = next(c for c in calls if c[1] == "dcgan_r1-36000-r1w10-ema999")
    assert r1_call[0] == "dcgan-mnist" and r1_call[2]["r1_weight"] == 10.0 and r1_call[2]["steps"] == 36000
    assert "dcgan_r1" not in bench.gan_rows(Namespace(r1=0.0))
    score = {"frechet": 1.2, "max_class_deviation": 2.5, "cpu_minutes": 18.0, "classes_covered": 10}
    scores = {row: dict(score) for row in (*bench.CONTRASTIVE, "dcgan_r1", "vae", "vae_recipe")}
    scores["vae"]["frechet"] = 1.5
    lines, goals = bench.goal_lines(scores)
    assert set(goals) == {"beat_vae", "coverage", "cpu"}
    beside = "- Beside the protocol's rows, DCGAN + R1: Fréchet 1.20, below the VAE's (1.50)"
    assert lines[-1].startswith(beside)
    with pytest.raises(SystemExit):
        bench.main(["--r1", "-1"])
    assert "--r1 must be >= 0" in capsys.readouterr().err
