"""Ranks of tests/train/test_averaging_processes.py (forked by ``tests/_ddp.py``, gloo on
CPU, one thread each). Every mode returns a JSON-able dict; rank 0 writes OUT/MODE.json with
every rank's result."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from genoise.train.averaging import ProcessCollective, RowAverager, WorkerLostError, flatten, state_tensors
from genoise.train.cluster import Cluster, Method

SYNC = ("ddp", "localsgd", "easgd", "eamsgd", "diloco", "eamsgd-read")  # -read: buffers="read"


def problem() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A small classifier with a BatchNorm (floating buffers are communicated too)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Linear(12, 2))
    return model, (x, y)


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
    x, y = batch
    noise = 0.01 * torch.randn(x.shape, generator=generator)  # per-worker randomness
    return F.cross_entropy(model(x + noise), y)


def cluster(method: Method, simulate: bool, run_dir: Path | None = None) -> Cluster:
    model, data = problem()
    return Cluster(
        model,
        loss_fn,
        data,
        method=method,
        batch_size=8,
        seed=5,
        simulate=simulate,
        run_dir=run_dir,
        progress=False,
        checkpoint_every=4 if run_dir else None,
    )


def _final(c: Cluster) -> list[float]:
    row = c.center_row()
    return [] if row is None else row.tolist()


def sync(out: Path) -> dict:
    """Each synchronous method, real (2 processes) and simulated (p = 2, on rank 0); and the
    one-line refusal of a method whose worker count does not fit the 2 processes."""
    result = {}
    try:
        cluster(Method("easgd", workers=3, tau=2), simulate=False)
        result["mismatch"] = None
    except ValueError as err:
        result["mismatch"] = str(err)
    for name in SYNC:
        base, _, buffers = name.partition("-")
        lr = {"diloco": 0.01, "eamsgd": 0.02}.get(base, 0.1)
        method = Method(base, workers=2, tau=3, lr=lr, buffers=buffers or "round")
        real = cluster(method, simulate=False)
        summary = real.fit(10)
        entry = {
            "real": _final(real),
            "rounds": summary["rounds"],
            "bytes": summary["bytes_per_worker"],
            "workers": [flatten(state_tensors(w.model)).tolist() for w in real.workers],
        }
        if dist.get_rank() == 0:
            sim = cluster(method, simulate=True)
            sim_summary = sim.fit(10)
            entry.update(
                sim=_final(sim),
                sim_rounds=sim_summary["rounds"],
                sim_bytes=sim_summary["bytes_per_worker"],
                sim_workers=[flatten(state_tensors(w.model)).tolist() for w in sim.workers],
            )
        result[name] = entry
    return result


def torch_averager(out: Path) -> dict:
    """Our RowAverager (warmup 0) against torch's PeriodicModelAverager on two identical
    models trained by the same SGD steps: equal parameters after every step."""
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    rank = dist.get_rank()
    torch.manual_seed(3)
    ours = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 1))
    theirs = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 1))
    theirs.load_state_dict(ours.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (ours, theirs)]
    mine, reference = RowAverager(4, ProcessCollective()), PeriodicModelAverager(period=4)
    averaged, equal = [], True
    gen = torch.Generator().manual_seed(10 + rank)
    for step in range(10):
        x = torch.randn(8, 4, generator=gen)
        for model, opt in zip((ours, theirs), opts, strict=True):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        due = mine.due()
        mine.average_parameters(ours.parameters())
        reference.average_parameters(theirs.parameters())
        if due:
            averaged.append(step + 1)
        equal &= all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))
    return {"equal": equal, "averaged_after": averaged, "counter": mine.step}


def asynchronous(out: Path) -> dict:
    """A master and two workers: EASGD and DOWNPOUR finish, the master records staleness."""
    result = {}
    for name in ("easgd", "downpour"):
        method = Method(name, workers=2, tau=2, asynchronous=True, lr=0.1)
        c = cluster(method, simulate=False)
        summary = c.fit(8)
        result[name] = {
            "staleness": list(c.staleness),
            "center": _final(c),
            "rounds": summary["rounds"],
            "bytes": summary["bytes_per_worker"],
        }
    return result


def lost(out: Path) -> dict:
    """Rank 1 dies after its 6th step: rank 0 stops with WorkerLostError; the checkpoint of
    step 4 stays loadable."""
    rank = dist.get_rank()
    c = cluster(Method("localsgd", workers=2, tau=2, lr=0.1), simulate=False, run_dir=out / "lost")
    if rank == 1:
        original = c._tick

        def dying(step: int) -> float:
            if step == 6:
                os._exit(0)  # a worker killed mid-run
            return original(step)

        c._tick = dying  # type: ignore[method-assign]
    try:
        c.fit(12)
    except WorkerLostError as err:
        return {
            "error": str(err),
            "checkpoint_step": torch.load(out / "lost" / "last.pt", weights_only=False)["step"],
        }
    return {"error": None}


def resume(out: Path) -> dict:
    """A real EASGD run stopped after step 4 and resumed ends where an uninterrupted real
    run ends (the checkpoint gathers every rank's worker)."""
    method = Method("easgd", workers=2, tau=2, lr=0.1)
    cluster(method, simulate=False, run_dir=out / "cut").fit(10, stop_after=4)
    resumed = cluster(method, simulate=False, run_dir=out / "cut")
    resumed.fit(10, resume=True)
    reference = cluster(method, simulate=False, run_dir=out / "full")
    reference.fit(10)
    return {
        "center": torch.equal(resumed.center_row(), reference.center_row()),
        "worker": torch.equal(
            flatten(state_tensors(resumed.workers[0].model)),
            flatten(state_tensors(reference.workers[0].model)),
        ),
        "rounds": [resumed.rounds, reference.rounds],
    }


def lost_async(out: Path) -> dict:
    """A master and two workers; worker 2 dies after its 3rd step: the master stops with
    WorkerLostError, and so does the other worker when the master is gone."""
    rank = dist.get_rank()
    c = cluster(Method("easgd", workers=2, tau=1, asynchronous=True, lr=0.1), simulate=False)
    if rank == 2:
        original = c._tick

        def dying(step: int) -> float:
            if step == 3:
                os._exit(0)
            return original(step)

        c._tick = dying  # type: ignore[method-assign]
    try:
        c.fit(200)
    except WorkerLostError as err:
        return {"error": str(err)}
    return {"error": None}


MODES = {
    "lost_async": lost_async,
    "sync": sync,
    "resume": resume,
    "torch_averager": torch_averager,
    "asynchronous": asynchronous,
    "lost": lost,
}


def run_rank(rank: int, world: int, out: Path, mode: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{(out / 'store').resolve()}",
        rank=rank,
        world_size=world,
        # a master waiting for a dead worker notices after the group's timeout
        timeout=timedelta(seconds=8 if mode == "lost_async" else 60),
    )
    result = MODES[mode](out)
    if mode.startswith("lost"):  # the group lost a member: no collective can gather the results
        (out / f"{mode}-{rank}.json").write_text(json.dumps(result))
        os._exit(0)
    results = [None] * world
    dist.all_gather_object(results, result)
    if rank == 0:
        (out / f"{mode}.json").write_text(json.dumps(results))
    dist.destroy_process_group()
