"""Real multi-process runs (gloo, CPU, one thread per rank) of the averaging family: the
synchronous methods end bit for bit where the simulator ends; our periodic averager equals
torch's ``PeriodicModelAverager``; the asynchronous master serves two workers and records
staleness; a worker that dies stops the others with one clear error."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from tests._ddp import run_ranks
from tests.train._averaging_worker import SYNC, run_rank

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distributed")]


def _run(tmp_path, mode: str, world: int) -> list:
    torch.optim.SGD(
        [torch.zeros(1, requires_grad=True)], lr=0.1
    )  # import optimizer code once, before forking
    run_ranks(functools.partial(run_rank, world=world, out=tmp_path, mode=mode), world=world)
    return json.loads((tmp_path / f"{mode}.json").read_text())


def test_synchronous_methods_real_equal_simulated_bit_for_bit(tmp_path):
    ranks = _run(tmp_path, "sync", 2)
    assert all("needs 3 processes" in r["mismatch"] and "\n" not in r["mismatch"] for r in ranks)
    for name in SYNC:
        real0, real1 = ranks[0][name], ranks[1][name]
        assert real0["real"] == real0["sim"], name  # the center / the mean, bit for bit
        # every worker's state: rank r holds worker r of the simulator
        assert [real0["workers"][0], real1["workers"][0]] == real0["sim_workers"], name
        assert real0["rounds"] == real0["sim_rounds"] and real0["bytes"] == real0["sim_bytes"], name
    assert ranks[0]["ddp"]["rounds"] == 10 + 0  # every step (the mean of identical workers is free)
    assert ranks[0]["easgd"]["rounds"] == 3  # after steps 3, 6, 9 of 10
    # rounds of the parameters only: fewer bytes, the same parameters as with the buffers
    read, full = ranks[0]["eamsgd-read"], ranks[0]["eamsgd"]
    assert read["rounds"] == full["rounds"] and 0 < read["bytes"] < full["bytes"]
    n_params = 6 * 12 + 12 + 2 * 12 + 12 * 2 + 2
    assert read["real"][:n_params] == full["real"][:n_params]
    assert read["real"][n_params:] != full["real"][n_params:]


def test_real_synchronous_run_resumes_bit_for_bit(tmp_path):
    for r in _run(tmp_path, "resume", 2):
        assert r["center"] and r["worker"] and r["rounds"] == [5, 5]


def test_periodic_averager_counts_and_averages_like_torch(tmp_path):
    ranks = _run(tmp_path, "torch_averager", 2)
    for r in ranks:
        assert r["equal"]
        assert r["averaged_after"] == [1, 5, 9]  # warmup 0: torch's counter 0, 4, 8
        assert r["counter"] == 10


def test_asynchronous_master_serves_workers_and_records_staleness(tmp_path):
    ranks = _run(tmp_path, "asynchronous", 3)
    master = ranks[0]
    for name in ("easgd", "downpour"):
        assert len(master[name]["staleness"]) == 2 * 4  # 2 workers x 8 steps / tau 2
        assert all(0 <= s <= 7 for s in master[name]["staleness"])
        assert all(map(lambda v: v == v, master[name]["center"]))  # finite center, no NaN
        for worker in ranks[1:]:
            assert worker[name]["rounds"] == 4 and worker[name]["center"] == []


def test_worker_lost_mid_run_stops_the_others_and_keeps_the_checkpoint(tmp_path):
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    run_ranks(functools.partial(run_rank, world=2, out=tmp_path, mode="lost"), world=2, timeout=120)
    survivor = json.loads((tmp_path / "lost-0.json").read_text())
    assert survivor["error"] is not None and "another worker stopped" in survivor["error"]
    assert survivor["checkpoint_step"] == 4


def test_worker_lost_in_an_asynchronous_run_stops_the_master_and_the_others(tmp_path):
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    run_ranks(functools.partial(run_rank, world=3, out=tmp_path, mode="lost_async"), world=3, timeout=120)
    master = json.loads((tmp_path / "lost_async-0.json").read_text())
    assert master["error"] is not None and "a worker stopped mid-run" in master["error"]
    other = json.loads((tmp_path / "lost_async-1.json").read_text())
    assert other["error"] is None or "exchange with the master failed" in other["error"]
