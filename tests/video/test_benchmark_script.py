"""The video benchmark's command line: its table (b) cells are valid ``video-mmnist`` runs
within the stretch goal's parameter budget, and contradictory options stop with a usage error
before anything is trained."""

from __future__ import annotations

import pytest
import torch

from genoise.recipes import load_recipe
from genoise.recipes.video import model_kwargs, model_name, validate
from genoise.video.train import build_predictor
from tests._benchmarks import load_benchmark


@pytest.fixture(scope="module")
def benchmark():
    return load_benchmark("video_prediction")


@pytest.mark.parametrize("model", ["simvp", "convlstm", "dfn"])
def test_table_b_cells_are_valid_runs_under_one_million_parameters(benchmark, model):
    config = {**load_recipe("video-mmnist").config, **benchmark.b_overrides(model, 5, {"test_sequences": 3})}
    validate(config)
    assert model_name(config) == model and config["steps"] == 5 and config["test_sequences"] == 3
    predictor = build_predictor(model, **model_kwargs(config))
    assert sum(p.numel() for p in predictor.parameters()) <= 1_000_000
    out = predictor(torch.rand(1, 10, 1, 64, 64))
    assert out.shape == (1, 10, 1, 64, 64)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "a", "--b-steps", "0"], "leaves nothing to run"),
        (["--set", "stochastic"], "must look like key=value"),
        (["--set", "colour=red"], "unknown key 'colour'"),
        (["--b-models", "predrnn"], "invalid choice"),
        (["--b-batch", "0"], "--b-batch must be >= 1"),
        (["--b-lr", "0"], "--b-lr must be > 0"),
        (["--b-loss", "wgan"], "invalid choice"),
        (["--b-loss", "latent"], "goes with --b-models latent_dfn"),
        (["--b-models", "latent_dfn"], "goes with --b-models latent_dfn"),
        (["--b-set", "steps=3"], "steps is set by table (b)"),
        (["--b-set", "window=1"], "out of range"),
        (["--latent-set", "prior=vamp"], "--latent-set"),
        (["--latent-set", "loss=l2"], "loss is set by table (a)"),
    ],
)
def test_contradictory_options_are_usage_errors(benchmark, argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        benchmark.main([*argv, "--out", str(tmp_path / "cells")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cells").exists()


def test_table_b_cells_of_other_batch_sizes_get_their_own_folders(benchmark):
    """A run with --b-batch 8 must not reuse (or overwrite) the default cells of batch 16."""
    assert benchmark.b_cell("simvp", 1400) == "b-simvp-1400"
    assert benchmark.b_cell("simvp", 1400, 16) == "b-simvp-1400"
    assert benchmark.b_cell("simvp", 1400, 8) == "b-simvp-1400-bs8"
    assert benchmark.b_cell("dfn", 3000, 8, 0.003) == "b-dfn-3000-bs8-lr0.003"
    assert benchmark.b_cell("dfn", 3000, 16, benchmark.RECIPE_LR) == "b-dfn-3000"
    config = benchmark.b_overrides("simvp", 5, {"batch_size": 8})
    assert config["batch_size"] == 8 and config["steps"] == 5
    assert config["loss"] == "l2"  # OpenSTL's training loss unless asked otherwise


@pytest.mark.parametrize("loss", ["l1", "gdl", "adv_gdl"])
def test_table_b_cells_of_other_losses_get_their_own_folders_and_train_with_it(benchmark, loss):
    assert benchmark.b_cell("dfn", 3000, 8, 0.003, loss) == f"b-dfn-3000-bs8-lr0.003-{loss}"
    assert benchmark.b_cell("dfn", 3000, 8, 0.003, "l2") == "b-dfn-3000-bs8-lr0.003"
    config = {**load_recipe("video-mmnist").config, **benchmark.b_overrides("dfn", 5, {"loss": loss})}
    validate(config)
    assert config["loss"] == loss and config["context"] == 10 and config["horizon"] == 10


def test_table_b_set_overrides_name_their_cells_and_reach_the_model(benchmark):
    assert benchmark.b_cell("dfn", 3000, 8, 0.003, "l2", {"window": 10}) == "b-dfn-3000-bs8-lr0.003-window10"
    assert benchmark.b_cell("dfn", 3000, 8, 0.003, "gdl", {"window": 5, "gdl_weight": 0.5}) == (
        "b-dfn-3000-bs8-lr0.003-gdl-gdl_weight0.5-window5")
    config = {**load_recipe("video-mmnist").config, **benchmark.b_overrides("dfn", 5, {"window": 10})}
    validate(config)
    assert build_predictor("dfn", **model_kwargs(config)).window == 10


def test_the_latent_table_b_cell_is_a_latent_dynamic_filter_network_that_draws_futures(benchmark):
    config = {**load_recipe("video-mmnist").config,
              **benchmark.b_overrides("latent_dfn", 5, {"loss": "latent", "p": 2.0, "beta": 1e-4})}
    validate(config)
    assert model_name(config) == "latent" and config["backbone"] == "dfn"
    assert benchmark.b_cell("latent_dfn", 3000, 8, 0.003, "latent", {"p": 2.0, "beta": 1e-4}) == (
        "b-latent_dfn-3000-bs8-lr0.003-latent-beta0.0001-p2")
    predictor = build_predictor("latent", **model_kwargs(config))
    assert sum(p.numel() for p in predictor.parameters()) <= 1_000_000
    frames = torch.rand(2, 10, 1, 64, 64)
    g = torch.Generator().manual_seed(0)
    one, two = predictor.eval()(frames, generator=g), predictor(frames, generator=g)
    assert one.shape == (2, 10, 1, 64, 64) and not torch.equal(one, two)


def test_latent_set_overrides_name_only_the_latent_rows_cell(benchmark):
    """--latent-set prior=learned trains a latent row of its own; the other rows' cells are the
    runs without it (shared), and a learned prior is a valid latent run."""
    assert benchmark.a_cell("latent", 800) == "a-latent-800"
    assert benchmark.a_cell("latent", 800, {"prior": "learned"}) == "a-latent-800-priorlearned"
    assert benchmark.a_cell("l2", 800, {"prior": "learned"}) == "a-l2-800"
    config = {**load_recipe("video-mmnist").config, "loss": "latent", "prior": "learned"}
    validate(config)
    assert build_predictor(model_name(config), **model_kwargs(config)).prior is not None
