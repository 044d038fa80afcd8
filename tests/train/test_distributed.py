"""Distributed helpers: single-process no-ops, and a real 2-process gloo run on CPU
(DistributedDataParallel training keeps ranks identical; the differentiable all-gather
matches a single-process computation on the concatenated batch)."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from genoise.train import (
    all_gather_with_grad,
    barrier,
    init_distributed,
    is_distributed,
    is_main_process,
    world_size,
)
from tests._ddp import run_ranks
from tests.train._ddp_worker import run_rank, warm_up

WORLD = 2
MODES = ["train", "resume", "gather"]


def test_helpers_are_single_process_no_ops_without_torchrun(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed() is False
    assert not is_distributed() and world_size() == 1 and is_main_process()
    barrier()
    x = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(x) is x


def test_init_distributed_names_missing_variable(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(ValueError, match="MASTER_PORT"):
        init_distributed()


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory) -> dict:
    """Run the worker on 2 forked ranks (gloo, CPU) once for the whole module."""
    out = tmp_path_factory.mktemp("ddp")
    warm_up()
    run_ranks(functools.partial(run_rank, world=WORLD, out=out, modes=MODES), world=WORLD)
    return {mode: json.loads((out / f"{mode}.json").read_text()) for mode in MODES} | {
        "run": out / "run"}


@pytest.mark.slow
@pytest.mark.xdist_group("distributed")
def test_ddp_training_keeps_parameters_identical_across_ranks(two_rank_results):
    results = two_rank_results["train"]
    assert all(r["ranks_equal"] for r in results)
    assert all(r["changed"] for r in results)
    # each rank trains on a disjoint half of the same epoch permutation
    first, second = results[0]["indices"]
    assert results[0]["indices"] == results[1]["indices"]
    assert sorted(first + second) == list(range(64)) and not set(first) & set(second)
    # only rank 0 wrote: one metrics row per logged step, and the final checkpoint
    rows = [json.loads(line) for line in (two_rank_results["run"] / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4, 6]
    state = torch.load(two_rank_results["run"] / "last.pt", weights_only=False)
    assert state["step"] == 6 and state["world_size"] == 2 and len(state["rng"]) == 2


@pytest.mark.slow
@pytest.mark.xdist_group("distributed")
def test_ddp_resume_after_max_steps_split_is_bit_for_bit(two_rank_results):
    assert all(r["bit_exact"] and r["generator_equal"] for r in two_rank_results["resume"])


@pytest.mark.slow
@pytest.mark.xdist_group("distributed")
def test_all_gather_with_grad_matches_single_process_gradient(two_rank_results):
    for result in two_rank_results["gather"]:
        assert result["forward_equal"]
        assert result["max_grad_error"] <= 1e-5 * max(1.0, result["grad_scale"])
