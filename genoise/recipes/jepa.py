"""Recipe of the latent world model (``genoise train jepa-two-rooms``), its evaluator
(``genoise eval planning RUN_DIR``) and its ``genoise demo`` section.

``train``: generate the Two Rooms trajectories (``data/``, seeded shards + manifest), train
the action-conditioned JEPA (``jepa/last.pt``) and the GCBC baseline (``gcbc/last.pt``),
each a resumable :class:`~genoise.train.Trainer`, then run the planning protocol for the
rows of ``rows`` (``planning.md`` / ``planning.json``, ``planning.png``, ``episode.gif``).

Rows: ``mppi``, ``cem``, ``gradient`` (planning in the latent space with the summed cost),
``mppi_last`` (MPPI with the last-step cost), ``gcbc``, ``random``, ``oracle``, and
``mppi_true_dynamics`` (the same MPPI on the arena's exact physics in world units: the
planner's ceiling).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from genoise.io import atomic_write_text
from genoise.recipes import OptionSpec, check_options, count, load_recipe
from genoise.train.run import Run
from genoise.train.run_folder import read_run_config
from genoise.train.seed import derive_seed
from genoise.world.jepa import ActionConditionedJEPA, JEPAConfig, JEPALossWeights
from genoise.world.jepa_committee import JEPACommittee
from genoise.world.jepa_diagnostics import transition_errors, wall_hallucination
from genoise.world.jepa_train import (
    GoalConditionedPolicy,
    denormalise_positions,
    load_gcbc,
    load_jepa,
    train_gcbc,
    train_jepa,
)
from genoise.world.latent_planning import (
    Controller,
    LatentPlanner,
    OracleController,
    PlannerConfig,
    PolicyController,
    Protocol,
    RandomController,
    TrueDynamicsPlanner,
    run_episodes,
)
from genoise.world.two_rooms import GEOMETRY, clip_norm, render
from genoise.world.two_rooms_data import (
    MANIFEST,
    RoomsDataConfig,
    generate_trajectories,
    load_trajectories,
    write_trajectories,
)
from genoise.world.two_rooms_render import save_episode_gif, trajectory_figure

ROWS = ("mppi", "cem", "gradient", "mppi_last", "gcbc", "random", "oracle", "mppi_true_dynamics")
PLANNER_KEYS = (
    "horizon", "iterations", "samples", "elites", "replan_every", "temperature", "noise_beta", "select",
    "distance",
)


def data_config(config: dict[str, Any]) -> RoomsDataConfig:
    return RoomsDataConfig(
        n_trajectories=int(config["trajectories"]),
        length=int(config["length"]),
        cross_wall_rate=float(config["cross_wall_rate"]),
        wall_bump_rate=float(config["wall_bump_rate"]),
        angle_noise=float(config["angle_noise"]),
        fixed_wall=bool(config["fixed_wall"]),
        seed=int(derive_seed(int(config["seed"]), 11)),
    )


COMMON_SEED = 777  # the common diagnostic data: a seed no run's data derive from (derive_seed)


def common_data(config: dict[str, Any], n: int = 4000) -> dict[str, torch.Tensor]:
    """``n`` trajectories of the recipe's default data (its crossing rate, action noise, bumps
    and length; the run's ``fixed_wall``) drawn with ``COMMON_SEED``: one data set on which the
    JEPAs of runs trained on different data are diagnosed alike (``diagnose_data=common``)."""
    defaults = load_recipe("jepa-two-rooms").config
    knobs = {k: defaults[k] for k in ("length", "cross_wall_rate", "wall_bump_rate", "angle_noise")}
    setting = {**config, **knobs, "trajectories": n}
    return generate_trajectories(replace(data_config(setting), seed=COMMON_SEED))


def jepa_config(config: dict[str, Any]) -> JEPAConfig:
    return JEPAConfig(
        image_size=int(config["image_size"]),
        dim=int(config["dim"]),
        width=int(config["width"]),
        hidden=int(config["hidden"]),
        predictor=str(config["predictor"]),
        encoder=str(config["encoder"]),
        projector=int(config["projector"]),
        coords=bool(config["coords"]),
        map_channels=int(config["map_channels"]),
        map_hidden=int(config["map_hidden"]),
    )


def loss_weights(config: dict[str, Any]) -> JEPALossWeights:
    return JEPALossWeights(
        cov=float(config["cov_weight"]),
        var=float(config["var_weight"]),
        time_sim=float(config["time_sim_weight"]),
        idm=float(config["idm_weight"]),
        sigreg=float(config["sigreg_weight"]),
        regularizer=str(config["regularizer"]),
        rollout=int(config["rollout"]),
        hard=float(config["hard_weight"]),
        hard_fraction=float(config["hard_fraction"]),
    )


def planner_config(config: dict[str, Any], row: str) -> PlannerConfig:
    method, objective = ("mppi", "last") if row == "mppi_last" else (row, "sum")
    kwargs = {key: config[key] for key in PLANNER_KEYS}
    return PlannerConfig(method=method, objective=objective, **kwargs)


def validate(config: dict[str, Any]) -> None:
    """Cross-key checks, before anything is written."""
    jepa_config(config)
    loss_weights(config)
    data_config(config)
    rows = config["rows"]
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"rows must be a non-empty list of {', '.join(ROWS)}, got {rows!r}")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise ValueError(f"unknown row(s) {unknown}; choose from {', '.join(ROWS)}")
    if int(config["window"]) > int(config["length"]):
        raise ValueError(f"window={config['window']} exceeds the trajectory length={config['length']}")
    planner_config(config, "mppi")  # the planner keys (ranges, elites <= samples, replan_every <= horizon)


def _data(run: Run) -> dict[str, torch.Tensor]:
    root = run.path("data")
    if not (root / MANIFEST).is_file():
        write_trajectories(root, data_config(run.config))
    return load_trajectories(root)


def _protocol(config: dict[str, Any], episodes: int | None = None, seed: int | None = None) -> Protocol:
    return Protocol(
        episodes=int(episodes if episodes is not None else config["episodes"]),
        fixed_wall=bool(config["fixed_wall"]),
        seed=int(seed if seed is not None else config["eval_seed"]),
    )


def controllers(
    config: dict[str, Any],
    rows: list[str],
    jepa: ActionConditionedJEPA | None,
    gcbc: GoalConditionedPolicy | None,
) -> dict[str, Controller]:
    out: dict[str, Controller] = {}
    for row in rows:
        if row == "oracle":
            out[row] = OracleController()
        elif row == "random":
            out[row] = RandomController(seed=int(config["seed"]))
        elif row == "mppi_true_dynamics":
            out[row] = TrueDynamicsPlanner(planner_config(config, "mppi"), seed=int(config["seed"]))
        elif row == "gcbc":
            if gcbc is None:
                raise ValueError("row gcbc needs a trained GCBC policy (gcbc_steps > 0)")
            out[row] = PolicyController(gcbc)
        else:
            out[row] = LatentPlanner(jepa, planner_config(config, row), seed=int(config["seed"]))
    return out


def by_detour_cell(classes: dict[str, dict[str, Any]]) -> str:
    """A table cell of :func:`~genoise.world.two_rooms.success_by_detour`: the success % per
    class, then the task counts, e.g. ``71 / 67 / 0 (7 / 3 / 10)``."""
    rates = " / ".join("—" if v["success"] is None else f"{v['success']:.0f}" for v in classes.values())
    return f"{rates} ({' / '.join(str(v['tasks']) for v in classes.values())})"


def planning_table(results: dict[str, dict[str, Any]], protocol: Protocol) -> str:
    classes = list(next(iter(results.values()))["success_by_detour"]) if results else []
    lines = [
        f"Protocol: {protocol.describe()}.",
        "",
        f"| row | success % | by detour {' / '.join(classes)} (tasks) | final distance "
        "| planning s / episode |",
        "|---|---:|---:|---:|---:|",
    ]
    for row, r in results.items():
        lines.append(
            f"| {row} | {r['success']:.0f} | {by_detour_cell(r['success_by_detour'])} "
            f"| {r['final_distance']:.1f} | {r['plan_seconds_per_episode']:.2f} |"
        )
    lines += [
        "",
        "Detour: the path from start to goal through the door's centre minus the straight line "
        "(world units; `genoise.world.two_rooms.detour`).",
    ]
    return "\n".join(lines) + "\n"


def decoded_plan(
    jepa: ActionConditionedJEPA, config: dict[str, Any], tasks: dict, index: int
) -> torch.Tensor:
    """The probe's decoding (world units) of the first latent plan of episode ``index``."""
    planner = LatentPlanner(jepa, planner_config(config, "mppi"), seed=int(config["seed"]))
    one = {k: v[index : index + 1] for k, v in tasks.items()}
    size = jepa.config.image_size
    start = render(one["start"], one["wall_x"], one["door_y"], size)
    planner.reset(one, render(one["goal"], one["wall_x"], one["door_y"], size))
    planner(start, one["start"], 0)
    with torch.no_grad():
        z0 = jepa.encode(start)
        z = jepa.unroll(z0, clip_norm(planner.plan, planner.max_norm))[0]
        return denormalise_positions(jepa.probe(jepa.represent(z)))


def evaluate_rows(
    run_dir: Path,
    config: dict[str, Any],
    rows: list[str],
    jepa,
    gcbc,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    figures: bool = True,
    log=None,
    committee: list[str] | None = None,
) -> dict[str, Any]:
    protocol = _protocol(config, episodes, seed)
    size = int(config["image_size"])
    results: dict[str, dict[str, Any]] = {}
    recorded = None
    for row, controller in controllers(config, rows, jepa, gcbc).items():
        out = run_episodes(controller, protocol, size, record=figures and row == rows[0])
        if "positions" in out:
            out.pop("actions")
            recorded = (row, out.pop("positions"), out.pop("tasks"))
        results[row] = out
        if log is not None:
            log({f"plan/{row}/success": out["success"], f"plan/{row}/final_distance": out["final_distance"]})
    table = planning_table(results, protocol)
    if committee:
        table = f"Planned through a committee of {len(committee)} JEPAs: {', '.join(committee)}.\n\n" + table
    protocol_record = asdict(protocol)
    record = {
        "protocol": protocol_record,
        "planner": {k: config[k] for k in PLANNER_KEYS},
        "results": results,
        **({"committee": committee} if committee else {}),
    }
    atomic_write_text(run_dir / "planning.md", table)
    atomic_write_text(run_dir / "planning.json", json.dumps(record, indent=1) + "\n")
    if figures and recorded is not None:
        row, positions, tasks = recorded
        i = 0
        trail, goal = positions[i].numpy(), tasks["goal"][i].numpy()
        wall_x, door_y = float(tasks["wall_x"][i]), float(tasks["door_y"][i])
        decoded = decoded_plan(jepa, config, tasks, i).numpy() if jepa is not None else None
        import matplotlib.pyplot as plt

        figure = trajectory_figure(
            trail,
            goal,
            wall_x,
            door_y,
            decoded=decoded,
            title=f"{row}: {'success' if results[row]['successes'][i] else 'failure'}",
        )
        figure.savefig(run_dir / "planning.png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        save_episode_gif(trail, goal, wall_x, door_y, run_dir / "episode.gif", every=2)
    return {"table": table, "results": results, "protocol": protocol_record}


def train(run: Run) -> dict[str, Any]:
    """``jepa-two-rooms``: data → JEPA → GCBC → the planning table."""
    config, seed = run.config, int(run.config["seed"])
    validate(config)
    data = _data(run)
    torch.manual_seed(seed)
    jepa = ActionConditionedJEPA(jepa_config(config)).to(run.device)
    jepa_metrics = train_jepa(
        jepa,
        data,
        int(config["steps"]),
        batch_size=int(config["batch_size"]),
        window=int(config["window"]),
        lr=float(config["lr"]),
        lr_schedule=str(config["lr_schedule"]),
        weights=loss_weights(config),
        seed=seed,
        run=run.subrun("jepa"),
    )
    gcbc = None
    if int(config["gcbc_steps"]) > 0:
        torch.manual_seed(derive_seed(seed, 5))
        gcbc = GoalConditionedPolicy(int(config["image_size"]), int(config["width"]), int(config["hidden"]))
        train_gcbc(
            gcbc.to(run.device),
            data,
            int(config["gcbc_steps"]),
            batch_size=int(config["batch_size"]),
            lr=float(config["lr"]),
            seed=seed,
            run=run.subrun("gcbc"),
        )
        gcbc = gcbc.cpu().eval()
    rows = [r for r in config["rows"] if r != "gcbc" or gcbc is not None]
    out = evaluate_rows(run.dir, config, rows, jepa.cpu().eval(), gcbc, log=run.log)
    return {
        "jepa": {k: v for k, v in jepa_metrics.items() if isinstance(v, (int, float))},
        **{f"{row}_success": r["success"] for row, r in out["results"].items()},
    }


EVALUATE_OPTIONS: OptionSpec = {
    "rows": ("rows to evaluate (default: the run's)", lambda v: isinstance(v, list),
             "a list such as [mppi,oracle]"),
    "episodes": ("planning episodes (default: the run's)", count(1), "an integer >= 1"),
    "seed": ("seed of the evaluation tasks (default: the run's eval_seed)", count(0), "an integer >= 0"),
    "figures": ("write planning.png and episode.gif (default true)", None, "true or false"),
    "diagnose": ("also measure where the model is wrong about the wall (diagnostics.md / .json)", None,
                 "true or false"),
    "diagnose_data": ("the transitions of the one-step errors: run (the run's own training data, the "
                      "default) or common (4,000 trajectories of the recipe's default data, one seed for "
                      "every run: comparable across runs trained on different data)",
                      lambda v: v in ("run", "common"), "run or common"),
    "plan": ("plan the rows (default true); false: the wall diagnostics alone (with diagnose=true), "
             "leaving the run's planning table as it is", None, "true or false"),
    "committee": ("other jepa-two-rooms run folders whose JEPAs plan with this run's as one committee "
                  "(cost: the RMS of the members' latent distances; genoise.world.jepa_committee)",
                  lambda v: isinstance(v, list) and len(v) > 0,
                  "a list of run folders such as [runs/s1,runs/s2]"),
    **{key: (f"planner key {key} (default: the run's)", None, "see `genoise recipes jepa-two-rooms`")
       for key in PLANNER_KEYS},
}


def evaluate(run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """``genoise eval planning RUN_DIR [rows=[...]] [episodes=N] [seed=S] [horizon=…]``:
    reload the JEPA (and GCBC) of a ``jepa-two-rooms`` run and run the planning protocol;
    writes ``planning.md`` / ``planning.json`` in the run folder."""
    check_options(options, EVALUATE_OPTIONS, "planning evaluation")
    run_dir = Path(run_dir)
    saved, _ = read_run_config(run_dir)
    # keys added to the recipe after the run was trained take their defaults (the old behaviour)
    config = {**load_recipe("jepa-two-rooms").config, **saved}
    for key in PLANNER_KEYS:
        if key in options:
            config[key] = options[key]
    rows = list(options.get("rows") or config["rows"])
    config["rows"] = rows
    validate(config)
    plan, diagnosing = bool(options.get("plan", True)), bool(options.get("diagnose", False))
    if not plan and not diagnosing:
        raise ValueError("plan=false leaves nothing to do without diagnose=true")
    if "diagnose_data" in options and not diagnosing:
        raise ValueError("diagnose_data= chooses the data of diagnose=true; add diagnose=true")
    size = int(config["image_size"])
    jepa_file, gcbc_file = run_dir / "jepa" / "last.pt", run_dir / "gcbc" / "last.pt"
    if not jepa_file.is_file():
        raise FileNotFoundError(
            f"no trained JEPA in {run_dir} (expected {jepa_file}; train with `genoise train jepa-two-rooms`)"
        )
    if plan and "gcbc" in rows and not gcbc_file.is_file():
        raise FileNotFoundError(f"row gcbc asked but {gcbc_file} does not exist")
    jepa = load_jepa(jepa_file, image_size=size)
    others = [Path(p) for p in options.get("committee") or []]
    if others:
        jepa = JEPACommittee([jepa, *(_member(p, size) for p in others)])
    gcbc = load_gcbc(gcbc_file, image_size=size) if plan and "gcbc" in rows else None
    out_dir = committee_folder(run_dir, others) if others else run_dir
    out_dir.mkdir(exist_ok=True)
    data = common_data(config) if options.get("diagnose_data") == "common" else None
    diagnostics = diagnose(run_dir, jepa, out_dir, data=data) if diagnosing else None
    if not plan:
        return {"diagnostics": diagnostics}
    return evaluate_rows(
        out_dir,
        config,
        rows,
        jepa,
        gcbc,
        episodes=options.get("episodes"),
        seed=options.get("seed"),
        figures=bool(options.get("figures", True)),
        committee=[str(run_dir), *map(str, others)] if others else None,
    )


def committee_folder(run_dir: Path, others: list[Path]) -> Path:
    """Where a committee's tables go, beside the run's own: ``RUN_DIR/committee+<member>+…``
    (the other members' folder names), one folder per committee."""
    return run_dir / "+".join(["committee", *(Path(p).resolve().name for p in others)])


def _member(run_dir: Path, image_size: int) -> ActionConditionedJEPA:
    path = run_dir / "jepa" / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"committee member {run_dir} holds no trained JEPA (expected {path})")
    return load_jepa(path, image_size=image_size)


def diagnose(
    run_dir: Path,
    jepa: ActionConditionedJEPA,
    out_dir: Path | None = None,
    data: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Wall hallucination at the data's step (1) and at the planner's largest (2.45), and the
    one-step error on wall vs free transitions of ``data`` (default: the run's own data) →
    ``diagnostics.{md,json}`` in ``out_dir`` (default: the run folder)."""
    out_dir = run_dir if out_dir is None else out_dir
    pushes = {f"speed {s:g}": wall_hallucination(jepa, speed=s) for s in (1.0, GEOMETRY.max_norm)}
    source = "common" if data is not None else "run"
    if data is None and (run_dir / "data" / MANIFEST).is_file():
        data = load_trajectories(run_dir / "data")
    errors = transition_errors(jepa, data) if data is not None else None
    lines = [
        "12 actions straight into the wall from 200 held-out states 6 units in front of it and 15 from "
        "the door; fraction whose final position, decoded by the probe, lies beyond the wall:",
        "",
        "| push | model rollout | encoder on the true states | true | mean decoded overshoot |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {r['model']:.0%} | {r['encoder']:.0%} | {r['true']:.0%} "
            f"| {r['model_overshoot']:.1f} |"
            for name, r in pushes.items()
        ),
    ]
    if errors is not None:
        lines += [
            "",
            f"One-step prediction error per dimension on the {source} data: wall transitions "
            f"{errors['wall']:.4f} "
            f"({errors['wall_transitions']}), free {errors['free']:.4f} ({errors['free_transitions']}), "
            f"ratio {errors['ratio']:.1f}.",
        ]
    record = {"wall_hallucination": pushes, "transition_errors": errors, "transition_data": source}
    atomic_write_text(out_dir / "diagnostics.md", "\n".join(lines) + "\n")
    atomic_write_text(out_dir / "diagnostics.json", json.dumps(record, indent=1) + "\n")
    return record


def demo_overrides(full: bool) -> dict[str, Any]:
    """A setting of well under a minute (``full``: the recipe's defaults, ~15 CPU-minutes)."""
    if full:
        return {}
    return {
        "trajectories": 2000,
        "steps": 200,
        "gcbc_steps": 0,
        "episodes": 4,
        "hidden": 128,
        "rows": ["mppi", "random", "oracle"],
        "horizon": 32,
        "iterations": 4,
        "samples": 64,
        "elites": 8,
    }


def demo(run: Run, full: bool) -> str:
    """Train a small JEPA on Two Rooms and plan with it (the GIF of the first episode)."""
    config = dict(load_recipe("jepa-two-rooms").config)
    config.update(seed=0, device="cpu", data_dir=None, **demo_overrides(full))
    run.config = config
    summary = train(run)
    table = (run.dir / "planning.md").read_text()
    return "\n".join(
        [
            "## Planning in a JEPA's latent space (Two Rooms)",
            "",
            f"An action-conditioned JEPA trained for {config['steps']} steps on {config['trajectories']} "
            "random-walk "
            "trajectories (no pixel is ever predicted); MPPI minimises the distance to the goal's embedding "
            "through the predictor. The full recipe (`genoise train jepa-two-rooms`) and the benchmark "
            "(`benchmarks/jepa_two_rooms.py`) train longer.",
            "",
            table,
            "![planned episode](planning.png)",
            "",
            "[GIF of the episode](episode.gif)",
            "",
            f"MPPI success here: {summary.get('mppi_success', float('nan')):.0f} %.",
            "",
        ]
    )
