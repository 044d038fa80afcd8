"""Foundation experiment (a): grid normalisation, and each method learns a landscape
whose Gibbs distribution beats the uniform density on held-out points."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import FunctionEnergy
from genoise.recipes.landscapes import (
    METHODS,
    LandscapeConfig,
    evaluate_landscape,
    gibbs_log_likelihood,
    grid_points,
    landscape_table,
    train_landscape,
)


def test_grid_covers_the_square_with_the_right_cell_area():
    grid, area = grid_points(2.0, 8)
    assert grid.shape == (64, 2)
    assert area == pytest.approx(0.25)
    assert float(grid.min()) == pytest.approx(-1.75) and float(grid.max()) == pytest.approx(1.75)


def test_flat_energy_gives_the_uniform_log_density():
    flat = FunctionEnergy(lambda y, x=None, z=None: torch.zeros(y.shape[0]))
    points = torch.rand(10, 2) * 2 - 1
    assert gibbs_log_likelihood(flat, points, 2.0, 32) == pytest.approx(-math.log(16.0), abs=1e-5)


def test_gaussian_energy_matches_its_closed_form_log_density():
    # E = |y|²/2σ²  -> P = N(0, σ² I); the grid sum approximates Z well for σ << lim.
    sigma = 0.5
    energy = FunctionEnergy(lambda y, x=None, z=None: (y ** 2).sum(1) / (2 * sigma ** 2))
    points = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * sigma
    exact = float((-(points ** 2).sum(1) / (2 * sigma ** 2) - math.log(2 * math.pi * sigma ** 2)).mean())
    assert gibbs_log_likelihood(energy, points, 3.0, 200) == pytest.approx(exact, abs=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_beats_the_uniform_density_on_held_out_points(method):
    # NCE must first learn the normaliser (a bias) and EBGAN's energy follows a generator: slower
    steps = 600 if method in ("nce", "ebgan") else 150
    cfg = LandscapeConfig(steps=steps, hidden=32, n_train=1000, n_val=200, n_test=500,
                          eval_grid=64, langevin_steps=5)
    energy, _ = train_landscape("gaussian_mixture", method, None, cfg)
    result = evaluate_landscape(energy, "gaussian_mixture", cfg)
    uniform = -math.log(16.0)
    assert result["test_loglik"] > uniform + 0.3, result


def test_the_recipe_accepts_every_method_and_the_yaml_documents_them():
    from genoise.recipes import load_recipe

    help_text = load_recipe("energy-landscapes").keys["methods"]["help"]
    assert all(method in help_text for method in METHODS)


def test_training_is_deterministic_with_a_seed():
    cfg = LandscapeConfig(steps=20, hidden=16, n_train=300)
    first, _ = train_landscape("two_moons", "denoising", None, cfg)
    second, _ = train_landscape("two_moons", "denoising", None, cfg)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_toy_or_method_is_refused():
    with pytest.raises(ValueError, match="toy must be one of"):
        train_landscape("swiss_cheese", "nll")
    with pytest.raises(ValueError, match="method must be one of"):
        train_landscape("spiral", "magic")


def test_table_has_a_row_per_toy_and_a_mean():
    rows = [{"toy": "spiral", "nll": -1.0, "nll_beta": 1.0, "kde": -0.5, "uniform": -2.77}]
    table = landscape_table(rows, methods=("nll",))
    assert "| spiral | -1.000 (β=1) | -0.500 | -2.773 |" in table.replace("-2.770", "-2.773") or \
        "| spiral | -1.000 (β=1) | -0.500 | -2.770 |" in table
    assert "**mean**" in table


def test_with_a_huge_learning_rate_each_cell_says_diverged_and_the_run_goes_on(tmp_path):
    from genoise.recipes.landscapes import train as landscapes_train
    from genoise.train import Run

    config = {"toys": ["two_moons"], "methods": ["nll", "denoising"], "steps": 20, "batch_size": 64,
              "lr": 1e6, "hidden": 8, "grid": 8, "eval_grid": 16, "n_train": 200}
    run = Run(tmp_path / "run", config=config, progress=False)
    (row,) = landscapes_train(run)["rows"]
    assert row["nll_status"].startswith("diverged") and row["nll"] is None, row
    assert row["denoising_status"].startswith("diverged"), row
    table = (tmp_path / "run" / "table.md").read_text()
    assert table.count("diverged") == 2 and "trained" not in table
    assert (tmp_path / "run" / "landscapes.png").is_file()


def test_table_marks_a_diverged_cell_and_drops_its_mean():
    rows = [{"toy": "spiral", "nll": None, "nll_beta": None, "nll_status": "diverged (x)",
             "hinge": -1.0, "hinge_beta": 2.0, "hinge_status": "trained", "kde": -0.5, "uniform": -2.77}]
    table = landscape_table(rows, methods=("nll", "hinge"))
    assert "| spiral | diverged | -1.000 (β=2) |" in table
    assert "| **mean** | — | **-1.000** |" in table
