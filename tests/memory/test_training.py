"""MemN2N training (genoise.memory.training): a short run on bAbI task 1 (real data) gets
test error < 10 %; the two Trainer phases, their checkpoints and metrics; the batch
source; clipping; the paper's schedule; the LS early stop; the time budget; device."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from genoise.data.babi import load_babi
from genoise.memory import MemN2N
from genoise.memory import training as T
from genoise.recipes import load_recipe, resolve_config
from genoise.train import Run
from genoise.train.checkpoint import load_checkpoint
from tests.data.test_babi import _fake_babi


def config(*overrides: str) -> T.MemN2NConfig:
    """The recipe's defaults (the YAML) with ``overrides``."""
    return T.MemN2NConfig.from_dict(resolve_config(load_recipe("memn2n-babi"), list(overrides)))


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def task1(shared_data, tmp_path_factory):
    if shared_data is None or not (Path(shared_data) / "babi" / "en").is_dir():
        pytest.skip("no bAbI data folder")
    cfg = config("task=1", "embedding_dim=20", "ls_epochs=10", "epochs=10", "lr_decay_every=2")
    data = T.load_run_data(cfg, shared_data)
    run = Run(tmp_path_factory.mktemp("memn2n"), config={}, progress=False)
    return cfg, data, run, T.train_memn2n(data, cfg, run)


def test_short_task1_run_gets_test_error_below_10_percent(task1):
    _, data, _, result = task1
    errors, _ = T.task_errors(result.model, data.test)
    assert errors[1] < 0.10
    assert (result.finished, result.ls_epochs, result.epochs) == (True, 10, 10)


def test_each_phase_writes_a_trainer_checkpoint_and_one_metrics_row_per_epoch(task1):
    cfg, data, run, result = task1
    spe = math.ceil(len(data.train) / cfg.batch_size)
    for folder, kind in ((T.LS_DIR, T.LS_KIND), (T.MAIN_DIR, T.KIND)):
        state = load_checkpoint(run.dir / folder / "last.pt")
        assert (state["kind"], state["step"], state["max_steps"]) == (kind, 10 * spe, 10 * spe)
        assert state["extra_state"]["vocabulary"]["words"] == data.vocab.words
        logged = rows(run.dir / folder / "metrics.jsonl")
        assert [r["step"] for r in logged] == [spe * e for e in range(1, 11)]
        assert all(0 <= r["valid_error_pct"] <= 100 and r["valid_loss"] > 0 for r in logged)
        assert all(0 <= r["train_error_pct"] <= 100 for r in logged)
    assert logged[-1]["valid_error_pct"] < 10
    final = load_checkpoint(run.dir / T.MAIN_DIR / "last.pt")["model"]
    for name, value in result.model.state_dict().items():
        assert torch.equal(final[name], value)


def test_schedule_is_ls_rate_then_halving_every_lr_decay_every_epochs(task1):
    cfg, _, run, _ = task1
    assert {r["lr"] for r in rows(run.dir / T.LS_DIR / "metrics.jsonl")} == {cfg.ls_lr}
    # the row at the end of epoch e logs the rate of the step after it: lr / 2^(e // 2)
    main = [r["lr"] for r in rows(run.dir / T.MAIN_DIR / "metrics.jsonl")]
    assert main == pytest.approx([cfg.lr * 0.5 ** (e // cfg.lr_decay_every) for e in range(1, 11)])


def test_evaluation_in_linear_mode_is_worse_after_softmax_training(task1):
    _, data, _, result = task1
    softmax, _ = T.task_errors(result.model, data.valid)
    linear, _ = T.task_errors(result.model, data.valid, linear=True)
    assert softmax[1] < linear[1]


def test_per_matrix_clipping_bounds_each_matrix_and_global_bounds_the_sum():
    model = MemN2N(12, 4, 3, 2)
    for mode in ("per-matrix", "global"):
        for p in model.parameters():
            p.grad = torch.full_like(p, 100.0)
        T.clip_gradients(model, 1.0, mode)
        norms = [torch.cat([w.grad.flatten(), t.grad.flatten()]).norm()
                 for w, t in zip(model.words, model.time, strict=True)]
        total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
        if mode == "per-matrix":
            torch.testing.assert_close(torch.stack(norms), torch.ones(len(norms)))
        else:
            torch.testing.assert_close(total, torch.tensor(1.0))


def test_checkpoint_of_another_shape_is_refused_in_one_line(tmp_path):
    small, big = MemN2N(12, 4, 3, 1), MemN2N(12, 9, 3, 1)
    with pytest.raises(ValueError, match=r"ckpt\.pt: does not fit this model/data \(.*size mismatch"):
        T.load_model_state(big, small.state_dict(), tmp_path / "ckpt.pt")


def test_config_needs_every_key_and_validates_it():
    with pytest.raises(ValueError, match=r"lacks .*hops.* defaults are in genoise/recipes/memn2n-babi"):
        T.MemN2NConfig.from_dict({"task": 1})
    good = config()
    for key, value, message in (("task", "25", "task must be 1..20 or 'all', got '25'"),
                                ("clip", "none", "clip must be one of"),
                                ("hops", 0, "hops must be an integer >= 1, got 0"),
                                ("lr", -1.0, "lr must be > 0"),
                                ("noise", 1.0, r"noise must be a number in \[0, 1\), got 1.0")):
        with pytest.raises(ValueError, match=message):
            replace(good, **{key: value})


# ---------------------------------------------------------------- tiny handmade data
@pytest.fixture
def tiny(tmp_path):
    data = load_babi(_fake_babi(tmp_path / "data"), [1, 2], "en", valid_fraction=0.1)
    cfg = config("task=all", "embedding_dim=6", "hops=1", "ls_epochs=4", "epochs=3", "batch_size=8")
    return data, cfg


def test_ls_patience_ends_linear_start_early_and_resume_keeps_it(tiny, tmp_path, monkeypatch):
    data, cfg = tiny
    cfg = replace(cfg, ls_patience=1)
    losses = iter([3.0, 2.0, 2.5] + [1.0] * 10)  # the 3rd LS epoch does not improve
    monkeypatch.setattr(T, "task_errors", lambda *a, **k: ({1: 0.5}, next(losses)))
    result = T.train_memn2n(data, cfg, Run(tmp_path / "run", progress=False))
    assert (result.finished, result.ls_epochs, result.epochs) == (True, 3, 3)
    assert len(rows(tmp_path / "run" / T.LS_DIR / "metrics.jsonl")) == 3
    again = T.train_memn2n(data, cfg, Run(tmp_path / "run", progress=False, resume=True))
    assert (again.finished, again.ls_epochs, again.epochs) == (True, 3, 3)
    for name, value in again.model.state_dict().items():
        assert torch.equal(result.model.state_dict()[name], value)


def test_time_budget_pauses_after_an_epoch_and_resume_finishes_identically(tiny, tmp_path):
    data, cfg = tiny
    whole = T.train_memn2n(data, cfg, Run(tmp_path / "whole", progress=False))
    paused = T.train_memn2n(data, cfg, Run(tmp_path / "cut", progress=False), max_seconds=0.0)
    assert (paused.finished, paused.ls_epochs, paused.epochs) == (False, 1, 0)
    for _ in range(20):
        paused = T.train_memn2n(data, cfg, Run(tmp_path / "cut", progress=False, resume=True),
                                max_seconds=0.0)
        if paused.finished:
            break
    assert (paused.finished, paused.ls_epochs, paused.epochs) == (True, 4, 3)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(paused.model.state_dict()[name], value)


def test_resume_on_other_data_is_refused_in_one_line(tiny, tmp_path):
    data, cfg = tiny
    T.train_memn2n(data, cfg, Run(tmp_path / "run", progress=False))
    root = _fake_babi(tmp_path / "other")
    for path in (root / "babi" / "en").glob("*.txt"):  # the same sizes, one other word
        path.write_text(path.read_text().replace("bathroom", "kitchen"))
    other = load_babi(root, [1, 2], "en", valid_fraction=0.1)
    assert len(other.vocab) == len(data.vocab) and other.vocab.words != data.vocab.words
    with pytest.raises(ValueError, match=r"main/last\.pt: its vocabulary \(\d+ words\) differs from "
                                         r"the data's"):
        T.train_memn2n(other, cfg, Run(tmp_path / "run", progress=False, resume=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_runs_on_cuda_with_batches_on_the_device(tiny, tmp_path):
    data, cfg = tiny
    result = T.train_memn2n(data, cfg, Run(tmp_path / "run", device=torch.device("cuda"), progress=False))
    assert result.finished and next(result.model.parameters()).is_cuda
    errors, _ = T.task_errors(result.model, data.test)
    assert set(errors) == {1, 2}
