"""Checkpoint files: a failed write keeps the previous checkpoint, unreadable files give
one-line errors, a Trainer checkpoint holds every piece of state it documents."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.train import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, unwrap_model
from genoise.train.trainer import Trainer


def small_trainer(run_dir, **kwargs) -> Trainer:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                   lambda m, b, g: ((m(b[0]) - b[1]) ** 2).mean(), (x, y), run_dir=run_dir,
                   max_steps=10, batch_size=4, checkpoint_every=5, log_every=5, progress=False, **kwargs)


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def save_then_fail(obj, handle, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the final checkpoint (step 10): write part of it, then die
            handle.write(b"partial checkpoint bytes")
            raise OSError("disk full")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fail)
    trainer = small_trainer(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        trainer.fit()
    assert trainer.step == 10
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)  # loadable, and the previous one
    assert state["step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME, "metrics.jsonl"]  # no temp file
    # and a resume from it works
    monkeypatch.setattr(torch, "save", real_save)
    assert small_trainer(tmp_path).fit(resume=True)["step"] == 10


def test_trainer_checkpoint_holds_documented_entries_and_loads_weights_only(tmp_path):
    fresh = nn.Linear(3, 1)
    trainer = small_trainer(tmp_path)
    trainer.scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=3)
    trainer.fit()
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME, weights_only=True)  # RNG states are plain data
    assert {"format", "step", "seed", "batch_size", "world_size", "model", "optimizer", "scheduler",
            "extra_state", "rng"} <= set(state)
    assert state["step"] == 10 and state["world_size"] == 1 and len(state["rng"]) == 1
    assert {"generator", "torch", "cuda", "numpy", "python"} <= set(state["rng"][0])
    assert state["scheduler"]["last_epoch"] == 10
    fresh.load_state_dict(state["model"])
    assert torch.equal(fresh.weight, trainer.model.weight)


def test_save_and_load_round_trip(tmp_path):
    path = save_checkpoint({"step": 3, "w": torch.arange(4)}, tmp_path / "sub" / "ck.pt")
    state = load_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(4))


def test_missing_or_corrupt_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"^not a genoise checkpoint: .*bad\.pt") as info:
        load_checkpoint(bad)
    assert "\n" not in str(info.value)
    for garbage in (b"", b"\x80\x04K\x01.", bytes(range(256)) * 4):  # empty, a pickled int, noise
        bad.write_bytes(garbage)
        with pytest.raises(ValueError, match=r"^not a genoise checkpoint: "):
            load_checkpoint(bad)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a genoise checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_unwrap_model_returns_inner_module():
    inner = nn.Linear(2, 2)
    assert unwrap_model(inner) is inner
    assert unwrap_model(nn.DataParallel(inner)) is inner
