"""The averaging recipes end to end on scikit-learn's digits: the run folder (summary,
curve, history, metrics), the traffic it reports, and one-line refusals of bad settings
before anything is written."""

from __future__ import annotations

import json
import re

import pytest
import torch

from genoise.cli import main
from genoise.recipes.distributed import method_of
from genoise.train.averaging import ring_bytes
from genoise.train.run import Run
from tests.recipes._resume import _train as train_recipe

_TINY = ["dataset=digits", "n_test=100", "batch_size=8"]


def _train(tmp_path, name, *overrides):
    return train_recipe(tmp_path, "averaging-mnist", [*_TINY, *overrides], name)


def test_easgd_run_folder_and_traffic(tmp_path):
    assert (
        _train(tmp_path, "e", "distributed=easgd", "workers=4", "tau=4", "worker_steps=64", "eval_points=2")
        == 0
    )
    run = tmp_path / "e"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "easgd" and summary["workers"] == 4 and summary["processes"] == 1
    assert summary["worker_steps"] == 64 and summary["rounds"] == 16 // 4
    from genoise.nn.lenet import LeNet5

    n = sum(p.numel() for p in LeNet5(image_size=8).parameters())  # no buffers
    assert summary["bytes_per_worker"] == 4 * ring_bytes(n, 4, 4)
    assert 0.0 <= summary["error"] <= 1.0
    for name in ("curve.png", "history.json", "last.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == [8, 16]  # eval_points=2 over 16 local steps
    assert history[-1]["error"] == summary["error"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [8, 16] and all("rounds" in r for r in rows)


def test_asynchronous_eamsgd_and_downpour_record_staleness(tmp_path):
    for name, extra in (("a", ["distributed=eamsgd", "asynchronous=true"]), ("d", ["distributed=downpour"])):
        assert _train(tmp_path, name, *extra, "workers=3", "tau=1", "worker_steps=30", "eval_points=0") == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["asynchronous"] is True and summary["staleness_max"] == 2  # p - 1, round robin
        assert summary["rounds"] == 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["distributed=easgd", "workers=4", "alpha=0.5"], "beta = workers \\* alpha"),
        (["distributed=sgd", "workers=2"], "one worker"),
        (["distributed=localsgd", "asynchronous=true"], "asynchronous=true is for"),
        (["workers=8", "worker_steps=4"], "gives no step"),
        (["tau=0"], "tau"),
        (["distributed=eamsgd", "asynchronous=true", "buffers=read"], "buffers=read is for the synchronous"),
        (["distributed=downpour", "lr_schedule=cosine"], "lr_schedule=cosine is for the synchronous"),
        (["buffers=sometimes"], "buffers"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, capsys, overrides, message):
    assert _train(tmp_path, "bad", *overrides) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "bad").exists()


def test_resume_with_another_worker_count_is_refused(tmp_path, capsys):
    assert _train(tmp_path, "r", "distributed=localsgd", "workers=2", "worker_steps=16", "eval_points=2") == 0
    assert (
        main(
            [
                "train",
                "averaging-mnist",
                *_TINY,
                "distributed=localsgd",
                "workers=4",
                "worker_steps=16",
                "--runs-dir",
                str(tmp_path),
                "--name",
                "r",
                "--resume",
                "--no-progress",
            ]
        )
        != 0
    )
    assert "workers" in capsys.readouterr().err  # fixed key: the run's model and data


def test_default_learning_rates():
    base = {"workers": 4, "tau": 4, "lr": None}
    assert method_of({**base, "distributed": "easgd"}).lr == 0.2
    assert method_of({**base, "distributed": "downpour"}).lr == pytest.approx(0.05)
    assert method_of({**base, "distributed": "eamsgd"}).optimizer([torch.zeros(1)]).defaults["nesterov"]
    assert method_of({**base, "distributed": "easgd", "lr": 0.3}).lr == 0.3


def test_follower_rank_run_writes_nothing(tmp_path, monkeypatch):
    from genoise.cli.train import follower_rank

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert follower_rank() == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert follower_rank() == 1
    run = Run(tmp_path / "follower", writer=False)
    assert run.metrics is None and not (tmp_path / "follower").exists()


def test_buffers_and_schedule_reach_the_method():
    base = {"workers": 4, "tau": 4, "lr": None, "distributed": "eamsgd"}
    assert method_of(base).buffers == "round" and method_of(base).lr_schedule == "constant"
    method = method_of({**base, "buffers": "read", "lr_schedule": "cosine"})
    assert method.buffers == "read" and not method.round_buffers and method.lr_schedule == "cosine"
