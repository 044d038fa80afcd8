"""A committee of JEPAs: its rollouts are the members' rollouts side by side, its planning
cost is the RMS of the members' costs, its probe the mean of their probes; the planner and
the diagnostics take it as one model; bad committees get one-line errors; and
`genoise eval planning RUN committee=[...]` writes beside the run's own tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genoise.cli import main
from genoise.world.jepa import ActionConditionedJEPA, JEPAConfig
from genoise.world.jepa_committee import JEPACommittee, state_size
from genoise.world.jepa_diagnostics import transition_errors, wall_hallucination
from genoise.world.latent_planning import (
    LatentPlanner,
    PlannerConfig,
    Protocol,
    latent_rollout_cost,
    run_episodes,
)
from genoise.world.two_rooms import render
from genoise.world.two_rooms_data import RoomsDataConfig, generate_trajectories
from tests._benchmarks import load_benchmark
from tests.recipes.test_resume_jepa import _TINY

MLP = JEPAConfig(image_size=17, dim=8, width=4, hidden=16)
CONV = JEPAConfig(image_size=17, dim=6, width=4, hidden=16, predictor="conv", map_channels=2, map_hidden=3)


def _members(*configs: JEPAConfig) -> list[ActionConditionedJEPA]:
    out = []
    for seed, config in enumerate(configs):
        torch.manual_seed(seed)
        out.append(ActionConditionedJEPA(config).eval())
    return out


def _observations(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pos = 10 + 45 * torch.rand(n, 2, generator=g)
    return render(pos, torch.full((n,), 32.0), torch.full((n,), 30.0), 17)


def test_state_sizes_follow_the_predictor() -> None:
    assert state_size(MLP) == 8
    model = ActionConditionedJEPA(CONV)
    assert state_size(CONV) == model.encode(_observations(1)).shape[-1]


@torch.no_grad()
def test_rollouts_are_the_members_rollouts_side_by_side() -> None:
    members = _members(MLP, CONV, MLP)
    committee = JEPACommittee(members)
    obs, actions = _observations(5), torch.randn(5, 4, 6, 2)
    z0 = committee.encode(obs)
    rolled = committee.unroll(z0[:, None].expand(5, 4, -1), actions)
    start = 0
    for m in members:
        zk = m.encode(obs)
        width = zk.shape[-1]
        torch.testing.assert_close(z0[:, start : start + width], zk)
        torch.testing.assert_close(
            rolled[..., start : start + width], m.unroll(zk[:, None].expand(5, 4, -1), actions)
        )
        torch.testing.assert_close(
            committee.step(z0, actions[:, 0, 0])[:, start : start + width], m.step(zk, actions[:, 0, 0])
        )
        start += width
    assert start == z0.shape[-1]


@torch.no_grad()
@pytest.mark.parametrize("objective", ["sum", "last"])
def test_the_planning_cost_is_the_rms_of_the_members_distances(objective: str) -> None:
    members = _members(MLP, CONV)
    committee = JEPACommittee(members)
    obs, goal, plans = _observations(3), _observations(3, seed=1), torch.randn(3, 7, 5, 2)
    cost = latent_rollout_cost(
        committee, committee.encode(obs), committee.represent(committee.encode(goal)), objective, 2.45
    )(plans)
    # by hand: each member's distances to its own goal embedding, RMS over members, then the objective
    dists = []
    for m in members:
        z = m.represent(m.unroll(m.encode(obs)[:, None].expand(3, 7, -1), _clip(plans)))
        dists.append((z - m.represent(m.encode(goal))[:, None, None]).norm(dim=-1))
    rms = torch.stack(dists).square().mean(0).sqrt()
    expected = rms.mean(-1) if objective == "sum" else rms[..., -1]
    torch.testing.assert_close(cost, expected)


def _clip(actions: torch.Tensor, m: float = 2.45) -> torch.Tensor:
    norm = actions.norm(dim=-1, keepdim=True)
    return actions * torch.clamp(m / norm.clamp(min=1e-12), max=1.0)


@torch.no_grad()
def test_the_probe_is_the_mean_of_the_members_probes() -> None:
    members = _members(MLP, MLP, CONV)
    committee = JEPACommittee(members)
    obs = _observations(4)
    decoded = committee.probe(committee.represent(committee.encode(obs)))
    expected = torch.stack([m.probe(m.represent(m.encode(obs))) for m in members]).mean(0)
    torch.testing.assert_close(decoded, expected)


def test_the_planner_and_the_diagnostics_take_a_committee() -> None:
    committee = JEPACommittee(_members(MLP, MLP))
    planner = LatentPlanner(
        committee, PlannerConfig(horizon=4, iterations=2, samples=8, elites=2, replan_every=2)
    )
    out = run_episodes(planner, Protocol(episodes=2, max_steps=4), image_size=17)
    assert 0.0 <= out["success"] <= 100.0 and np.isfinite(out["final_distance"])
    pushes = wall_hallucination(committee, n=8, steps=3)
    assert 0.0 <= pushes["model"] <= 1.0 and pushes["true"] == 0.0
    data = generate_trajectories(RoomsDataConfig(n_trajectories=16, length=4, seed=0))
    errors = transition_errors(committee, data, n=64)
    assert errors["free_transitions"] > 0 and errors["free"] >= 0


def test_bad_committees_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="at least 2 members"):
        JEPACommittee(_members(MLP))
    other = JEPAConfig(image_size=33, dim=8, width=4, hidden=16)
    with pytest.raises(ValueError, match=r"different image sizes \[17, 33\]"):
        JEPACommittee(_members(MLP, other))
    committee = JEPACommittee(_members(MLP, MLP))
    with pytest.raises(ValueError, match="committee state has width 15, expected 16"):
        committee.unroll(torch.zeros(2, 15), torch.zeros(2, 3, 2))


def test_eval_planning_with_a_committee_writes_beside_the_run(tmp_path, capsys) -> None:
    for name, seed in (("a", 0), ("b", 1)):
        args = [*_TINY, f"seed={seed}", "gcbc_steps=0", "rows=[mppi]"]
        assert (
            main(
                [
                    "train",
                    "jepa-two-rooms",
                    *args,
                    "--runs-dir",
                    str(tmp_path),
                    "--name",
                    name,
                    "--no-progress",
                ]
            )
            == 0
        )
    own = (tmp_path / "a" / "planning.json").read_text()
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "planning",
                str(tmp_path / "a"),
                f"committee=[{tmp_path / 'b'}]",
                "rows=[mppi]",
                "episodes=2",
                "diagnose=true",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["results"]["mppi"]["success"] <= 100.0
    folder = tmp_path / "a" / "committee+b"
    record = json.loads((folder / "planning.json").read_text())
    assert record["committee"] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert "committee of 2 JEPAs" in (folder / "planning.md").read_text()
    for name in ("diagnostics.json", "planning.png", "episode.gif"):
        assert (folder / name).is_file(), name
    assert (tmp_path / "a" / "planning.json").read_text() == own  # the run's own table is kept
    # a member without a model, or trained on another image size: one line naming it
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    (tmp_path / "c" / "jepa" / "last.pt").unlink()
    assert main(["eval", "planning", str(tmp_path / "a"), f"committee=[{tmp_path / 'c'}]"]) != 0
    err = capsys.readouterr().err.strip()
    assert "committee member" in err and "holds no trained JEPA" in err and len(err.splitlines()) == 1
    assert main(["eval", "planning", str(tmp_path / "a"), "committee=[]"]) != 0
    assert "committee" in capsys.readouterr().err


def test_the_committee_benchmark_writes_its_rows(tmp_path, capsys) -> None:
    bench = load_benchmark("jepa_committee")
    args = ["--quick", "--seeds", "0", "1", "--out", str(tmp_path / "cells"), "--records", str(tmp_path)]
    assert bench.main(args) == 0
    record = json.loads((tmp_path / "jepa_committee.json").read_text())
    assert [r["row"] for r in record["rows"]] == ["member_s0", "member_s1", "committee_2"]
    members = record["rows"][2]["members"]
    assert [Path(m).name for m in members] == ["member-s0-quick", "member-s1-quick"]
    for r in record["rows"]:
        assert 0.0 <= r["success"] <= 100.0 and 0.0 <= r["pushes_beyond_wall_speed_1"] <= 1.0
    assert record["rows"][2]["wall_error"] is None and record["rows"][0]["wall_error"] > 0
    assert "| committee_2 |" in (tmp_path / "jepa_committee.md").read_text()
    assert (tmp_path / "jepa_committee.png").is_file()
    # a second run re-plans nothing (same members, planner and tasks) and reports the same rows
    assert bench.main(args) == 0
    again = json.loads((tmp_path / "jepa_committee.json").read_text())
    assert [r["successes"] for r in again["rows"]] == [r["successes"] for r in record["rows"]]
    assert all(r["eval_wall_seconds"] != r["eval_wall_seconds"] for r in again["rows"])  # NaN: not planned
    assert sum(v["tasks"] for v in again["rows"][0]["success_by_detour"].values()) == 2
    with pytest.raises(SystemExit, match=r"--sizes \[3\]"):
        bench.main([*args, "--sizes", "3"])
