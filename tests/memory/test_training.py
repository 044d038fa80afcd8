"""A short MemN2N run on bAbI task 1 (real data) through the recipe entry: test error
< 10 %, run folder contents, and the reload-and-evaluate function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genoise.cli.recipes import load_recipe, resolve_config
from genoise.recipes.memory import evaluate, train
from genoise.train.run import Run


@pytest.fixture(scope="module")
def task1_run(shared_data, tmp_path_factory):
    if shared_data is None or not (Path(shared_data) / "babi" / "en").is_dir():
        pytest.skip("no bAbI data folder")
    recipe = load_recipe("memn2n-babi")
    config = resolve_config(recipe, ["task=1", "embedding_dim=20", "ls_epochs=10", "epochs=10",
                                     "lr_decay_every=2"])
    run = Run(tmp_path_factory.mktemp("memn2n"), config=config, data_dir=Path(shared_data), progress=False)
    return run, train(run)


def test_short_task1_run_gets_test_error_below_10_percent(task1_run):
    _, summary = task1_run
    assert summary["mean_test_error"] < 0.10
    assert summary["epochs"] == 20


def test_run_folder_holds_checkpoint_and_error_tables(task1_run):
    run, summary = task1_run
    assert run.path("checkpoint.pt").is_file()
    errors = json.loads(run.path("errors.json").read_text())
    assert errors["test_error"]["1"] == pytest.approx(summary["mean_test_error"])
    assert "| **mean** |" in run.path("errors.md").read_text()
    assert len(run.path("metrics.jsonl").read_text().splitlines()) == 20


def test_evaluate_babi_run_reloads_the_same_model(task1_run):
    run, summary = task1_run
    result = evaluate(run.dir)
    assert result["test_error"][1] == pytest.approx(summary["mean_test_error"])
    assert "| 1 |" in result["table"]


def test_recipe_refuses_bad_values(tmp_path):
    recipe = load_recipe("memn2n-babi")
    with pytest.raises(ValueError, match="encoding"):
        resolve_config(recipe, ["encoding=onehot"])
    run = Run(tmp_path, config=resolve_config(recipe, ["task=25"]), data_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="task must be"):
        train(run)
    with pytest.raises(FileNotFoundError, match=r"checkpoint\.pt"):
        evaluate(tmp_path)


def test_per_matrix_clipping_bounds_each_matrix_and_global_bounds_the_sum():
    from genoise.memory import MemN2N
    from genoise.memory.training import clip_gradients

    model = MemN2N(12, 4, 3, 2)
    for mode in ("per-matrix", "global"):
        for p in model.parameters():
            p.grad = torch.full_like(p, 100.0)
        clip_gradients(model, 1.0, mode)
        norms = [torch.cat([w.grad.flatten(), t.grad.flatten()]).norm()
                 for w, t in zip(model.words, model.time, strict=True)]
        total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
        if mode == "per-matrix":
            torch.testing.assert_close(torch.stack(norms), torch.ones(len(norms)))
        else:
            torch.testing.assert_close(total, torch.tensor(1.0))


def test_checkpoint_of_another_shape_is_refused_in_one_line(tmp_path):
    from genoise.memory import MemN2N
    from genoise.memory.training import load_model_state

    small, big = MemN2N(12, 4, 3, 1), MemN2N(12, 9, 3, 1)
    with pytest.raises(ValueError, match=r"ckpt\.pt: does not fit this model/data \(.*size mismatch"):
        load_model_state(big, small.state_dict(), tmp_path / "ckpt.pt")
