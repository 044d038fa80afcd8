"""Two Rooms: planning through a committee of JEPAs trained from different seeds (issue 14,
beside table (a)).

The planner exploits the learned model's errors: it finds plans through the wall that one
JEPA predicts to be cheap (docs/jepa.md, "Why: the model walks through walls"). Models from
other seeds err elsewhere, so this benchmark asks whether a plan that must be cheap under
every member — the committee's cost is the RMS of the members' latent distances to the goal
(:mod:`genoise.world.jepa_committee`) — reaches the goal more often than any member alone.

Each member is the recipe's defaults with one training seed (a ``genoise train
jepa-two-rooms`` cell under ``--out``, reused when finished, MPPI only), or an already
trained run folder (``--runs``). Every row is MPPI with the recipe's planner on the same 20
tasks of the protocol, with the wall diagnostics of ``genoise eval planning RUN
diagnose=true`` (held-out pushes into the wall decoded beyond it; one-step error on wall vs
free transitions, in the first member's data):

- ``member_s<seed>`` — one JEPA (its own run's MPPI row);
- ``committee_<k>`` — the first k members planned as one model (k = ``--sizes``, default: all).

Writes ``benchmarks/records/jepa_committee.{md,json}`` (rows as above; the command; the date).

    python benchmarks/jepa_committee.py                       # seeds 0 1 2, ≈ 45 CPU-min + planning
    python benchmarks/jepa_committee.py --seeds 0 1 2 --sizes 2 3
    python benchmarks/jepa_committee.py --runs runs/s0 runs/s1 runs/s2
    python benchmarks/jepa_committee.py --quick               # a smoke run: the pipeline, not the numbers
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _cells as cells  # noqa: E402

from benchmarks._records import write_records  # noqa: E402
from genoise.recipes import jepa as recipe  # noqa: E402
from genoise.train.run_folder import read_run_config  # noqa: E402
from genoise.world.jepa_committee import JEPACommittee  # noqa: E402
from genoise.world.jepa_train import load_jepa  # noqa: E402
from genoise.world.latent_planning import Protocol  # noqa: E402
from genoise.world.two_rooms import detour, sample_tasks, success_by_detour  # noqa: E402

QUICK = {
    "trajectories": 200, "steps": 30, "episodes": 2, "hidden": 32, "horizon": 8, "iterations": 2,
    "samples": 16, "elites": 4,
}  # fmt: skip


def _saved(folder: Path, config: dict, episodes: int | None, committee: list[str] | None) -> dict | None:
    """The MPPI result of ``folder/planning.json`` when it was planned by the same members
    with the recipe's planner on the protocol's tasks (deterministic: the planner is
    seeded), else None."""
    path = folder / "planning.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    same = (
        "mppi" in record["results"]
        and record.get("committee") == committee
        and record["planner"] == {k: config[k] for k in recipe.PLANNER_KEYS}
        and record["protocol"]["episodes"] == (episodes or int(config["episodes"]))
        and record["protocol"]["seed"] == int(config["eval_seed"])
    )
    return record["results"]["mppi"] if same else None


def _plan(members: list[Path], episodes: int | None, figures: bool) -> tuple[dict, dict, float]:
    """MPPI through one member or a committee (its first member's run folder holds the
    tables), reused when already planned; and the wall diagnostics."""
    run, others = members[0], members[1:]
    config = {**recipe.load_recipe("jepa-two-rooms").config, **read_run_config(run)[0]}
    committee = [str(m) for m in members] if others else None
    folder = recipe.committee_folder(run, others) if others else run
    result = _saved(folder, config, episodes, committee)
    if result is not None:
        size = int(config["image_size"])
        models = [load_jepa(m / "jepa" / "last.pt", image_size=size) for m in members]
        model = models[0] if not others else JEPACommittee(models)
        return result, recipe.diagnose(run, model, folder), float("nan")
    begin = time.perf_counter()
    options = {"committee": [str(m) for m in others]} if others else {}
    out = recipe.evaluate(
        run, rows=["mppi"], figures=figures, diagnose=True, **options, **_episodes(episodes)
    )
    seconds = time.perf_counter() - begin
    return out["results"]["mppi"], json.loads((folder / "diagnostics.json").read_text()), seconds


def _episodes(episodes: int | None) -> dict:
    return {} if episodes is None else {"episodes": episodes}


def _row(
    name: str, members: list[Path], result: dict, diagnostics: dict, seconds: float, detours: torch.Tensor
) -> dict:
    pushes, errors = diagnostics["wall_hallucination"], diagnostics["transition_errors"] or {}
    successes = torch.tensor(result["successes"])
    return {
        "row": name,
        "members": [str(_shown(m)) for m in members],
        "success": result["success"],
        "final_distance": result["final_distance"],
        "plan_seconds_per_episode": result["plan_seconds_per_episode"],
        "successes": result["successes"],
        "success_by_detour": success_by_detour(successes, detours),
        "pushes_beyond_wall_speed_1": pushes["speed 1"]["model"],
        "pushes_beyond_wall_speed_2.45": pushes["speed 2.45"]["model"],
        "wall_error": errors.get("wall", float("nan")),
        "free_error": errors.get("free", float("nan")),
        "eval_wall_seconds": seconds,
    }


def _shown(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of the members"
    )
    parser.add_argument(
        "--runs", type=Path, nargs="+", default=None, help="trained run folders (not --seeds)"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="committees of the first k members (default: all of them)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "jepa_committee")
    parser.add_argument("--records", type=Path, default=ROOT / "benchmarks" / "records")
    parser.add_argument("--record", default="jepa_committee", help="file stem of the record")
    parser.add_argument(
        "--quick", action="store_true", help="tiny budgets: checks the pipeline, not the numbers"
    )
    args = parser.parse_args(argv)
    if args.runs is not None:
        members = list(args.runs)
        for run in members:
            if not (run / "jepa" / "last.pt").is_file():
                raise SystemExit(f"--runs: {run} holds no trained JEPA (jepa/last.pt)")
    else:
        members, overrides = [], {"gcbc_steps": 0, "rows": ["mppi"], **(QUICK if args.quick else {})}
        for seed in args.seeds:
            name = f"member-s{seed}" + ("-quick" if args.quick else "")
            cells.run_cell(args.out, "jepa-two-rooms", name, {"seed": seed, **overrides}, "planning.json")
            members.append(args.out / name)
    if len(members) < 2:
        raise SystemExit("a committee needs at least 2 members (give two or more --seeds or --runs)")
    sizes = sorted(set(args.sizes or [len(members)]))
    bad = [k for k in sizes if not 2 <= k <= len(members)]
    if bad:
        raise SystemExit(f"--sizes {bad}: each must lie in [2, {len(members)}] (the number of members)")
    episodes = QUICK["episodes"] if args.quick else None
    first = {**recipe.load_recipe("jepa-two-rooms").config, **read_run_config(members[0])[0]}
    tasks_protocol = Protocol(
        episodes=episodes or int(first["episodes"]),
        fixed_wall=bool(first["fixed_wall"]),
        seed=int(first["eval_seed"]),
    )
    detours = detour(  # the protocol's tasks, as run_episodes draws them
        sample_tasks(
            tasks_protocol.episodes,
            np.random.default_rng(tasks_protocol.seed),
            fixed_wall=tasks_protocol.fixed_wall,
        )
    )
    rows = []
    for run in members:
        result, diagnostics, seconds = _plan([run], episodes, figures=False)
        name = f"member_s{read_run_config(run)[0]['seed']}"
        rows.append(_row(name, [run], result, diagnostics, seconds, detours))
        print(f"{rows[-1]['row']:>12}: {rows[-1]['success']:5.1f} %", flush=True)
    for k in sizes:
        result, diagnostics, seconds = _plan(members[:k], episodes, figures=k == max(sizes))
        row = _row(f"committee_{k}", members[:k], result, diagnostics, seconds, detours)
        rows.append({**row, "wall_error": None, "free_error": None})
        print(f"{rows[-1]['row']:>12}: {rows[-1]['success']:5.1f} %", flush=True)
    folder = recipe.committee_folder(members[0], members[1 : max(sizes)])
    record = json.loads((folder / "planning.json").read_text())
    protocol, planner = record["protocol"], record["planner"]
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/jepa_committee.py", *map(str, given)])
    lines = [
        "# Two Rooms: MPPI through one JEPA vs through a committee of JEPAs",
        "",
        f"Protocol: {Protocol(**protocol).describe()}. Planner: MPPI, "
        + ", ".join(f"{k} {v}" for k, v in planner.items())
        + ". Committee cost: the RMS over members of each member's latent distance to the goal. Pushes: 200 "
        "held-out states 6 units in front of the wall, 12 actions into it, decoded beyond it by the probe "
        "(a committee's probe: the mean of its members'). Errors: one-step, per dimension, × 10⁻⁴, on "
        "2,000 transitions of the first member's data (a member's own; a committee's representation is not "
        "comparable, so none is given). Detour: the extra length of the path from start to goal through the "
        "door's centre over the straight line (`genoise.world.two_rooms.detour`); tasks solved: `x` for each "
        "task of the protocol, in order.",
        "",
        "| row | success % | by detour < 3 / 3–10 / ≥ 10 (tasks) | tasks solved | final distance "
        "| planning s / episode | pushes beyond the wall at ‖a‖ = 1 / 2.45 | one-step error, wall / free "
        "| eb_jepa MPPI % |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['success']:.0f} | {recipe.by_detour_cell(r['success_by_detour'])} "
            f"| `{''.join('x' if ok else '.' for ok in r['successes'])}` | {r['final_distance']:.1f} "
            f"| {r['plan_seconds_per_episode']:.1f} "
            f"| {r['pushes_beyond_wall_speed_1']:.0%} / {r['pushes_beyond_wall_speed_2.45']:.0%} "
            + (
                f"| {r['wall_error'] * 1e4:.1f} / {r['free_error'] * 1e4:.1f} "
                if r["wall_error"] is not None
                else "| — "
            )
            + "| 97 ± 2 |"
        )
    lines += ["", "Members: " + ", ".join(f"`{_shown(m)}`" for m in members) + "."]
    figure = folder / "planning.png"
    if figure.is_file():  # the largest committee's first episode, with the probe's decoding of its plan
        args.records.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, args.records / f"{args.record}.png")
        lines += ["", f"![the committee's first episode]({args.record}.png)"]
    text = "\n".join(lines) + f"\n\nCommand: `{command}`; date {date.today().isoformat()}.\n"
    write_records(
        args.records,
        args.record,
        text,
        {"rows": rows, "protocol": protocol, "command": command, "date": date.today().isoformat()},
    )
    print(text)
    print(json.dumps({r["row"]: r["success"] for r in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
