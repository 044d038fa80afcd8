"""The MPUR table of Henaff, Canziani & LeCun (ICLR 2019) on genoise's traffic simulator
(issue 20, parts 2 and 3): every controller on the same 20 held-out episodes, the trained
policies over several training seeds (mean ± std of the success rate), the curve of success
against policy updates for MPUR and its no-uncertainty ablation, and the U-ratio diagnostic
that says whether the uncertainty term was active.

    python benchmarks/mpur_table.py --seeds 0 1 2 3            # one process per core:
    python benchmarks/mpur_table.py --seeds 4 5 6 7            #   the cells are shared
    python benchmarks/mpur_table.py --report                   # table + JSON + PNG from the cells

The forward model is one ``genoise train world-model-traffic`` cell (seed 0, 1500 steps,
``action_conditioned=true learned_prior=true``: the learned part reads the ego's action, so
its dropout uncertainty depends on it; the paper's learned prior). The policies are trained
through it with the paper's training details: latents inferred from the posterior of the
recorded sequence (``latents=posterior``), the uncertainty cost standardised by its range on
recorded actions and hinged at 0.5 (``u_normalise=true``, pytorch-PPUU's
``compute_uncertainty_batch``), ``u_weight`` = 0.05 × H: the paper's ``u_reg = 0.05`` against
a cost *averaged* over the H unrolled steps, ours is summed. Rows:

- ``mpur``, ``mpur_no_u``, ``mper``, ``bc``: trained policies, one per training seed;
- ``mpc_gradient``, ``cem``, ``mppi``: planners over the same model (``--planner-episodes``,
  one planner seed: ≈ 1 CPU-minute per episode each);
- ``keep_speed``, ``idm`` (replay of the recorded driver), ``true_future_cem`` (CEM on the
  simulator's true future: the reference an ideal model would give): deterministic, one run.

The success-vs-rollout-length curve (the paper's Figure 5) trains MPUR and its ablation with
another training horizon, same budget, ``u_weight`` = 0.05 × H, cells and policies named
``…_h{H}``; ``--report`` (at the table's H = 20) puts them beside the table's rows:

    python benchmarks/mpur_table.py --horizon 10 --methods mpur mpur_no_u --seeds 0 1 --steps 800

``--u-scale robust`` trains MPUR with U standardised by its per-step median and 1.4826 × MAD on
recorded actions instead of the mean and standard deviation (cells and policies
``mpur_robust``, with the curve's budgets; a row beside the table's, ours, not the paper's):

    python benchmarks/mpur_table.py --methods mpur --u-scale robust --seeds 0 1 --steps 1600 --curve 400 800

Every cell (a policy's checkpoint, an evaluation) is kept under ``--out``: an interrupted run
continues where it stopped (a policy resumes from its last checkpoint, bit for bit), and the
curve's budgets are one training run evaluated at each budget. Writes
``benchmarks/records/mpur_table.{md,json,png}`` (rows, command, date).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._cells import recipe_overrides, run_cell  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from benchmarks.world_uncertainty import KINDS, OOD, action_sets  # noqa: E402
from genoise.io import atomic_write_text  # noqa: E402
from genoise.recipes import load_recipe, resolve_config  # noqa: E402
from genoise.train.run import Run  # noqa: E402
from genoise.train.trainer import DivergedError  # noqa: E402
from genoise.world.checkpoints import find_forward_model, load_forward_model, observation_config  # noqa: E402
from genoise.world.control import expert, keep_speed, planner_controller, policy_controller  # noqa: E402
from genoise.world.costs import CostConfig  # noqa: E402
from genoise.world.dataset import TrafficDataset  # noqa: E402
from genoise.world.evaluate import eval_seeds, evaluation_table  # noqa: E402
from genoise.world.forward import posterior_noise  # noqa: E402
from genoise.world.highway_env import HighwayTrafficEnv  # noqa: E402
from genoise.world.planners import planner_options  # noqa: E402
from genoise.world.policy import unroll_policy  # noqa: E402
from genoise.world.train import mpur_uncertainty_stats, train_policy  # noqa: E402
from genoise.world.uncertainty import uncertainty_cost  # noqa: E402

ROWS = (
    "mpur",
    "mpur_no_u",
    "mper",
    "bc",
    "mpc_gradient",
    "cem",
    "mppi",
    "keep_speed",
    "idm",
    "true_future_cem",
)
POLICIES = ("mpur", "mpur_no_u", "mper", "bc")
PLANNERS = {"mpc_gradient": "gradient", "cem": "cem", "mppi": "mppi"}
NAMES = {
    "mpur": "MPUR",
    "mpur_no_u": "MPUR without uncertainty",
    "mper": "MPER",
    "bc": "behaviour cloning",
    "mpc_gradient": "MPC-gradient over the model",
    "cem": "CEM over the model",
    "mppi": "MPPI over the model",
    "keep_speed": "no action (keep speed)",
    "idm": "IDM driver (replay)",
    "true_future_cem": "CEM on the true future (reference)",
}
MODEL = {"seed": 0, "train_steps": 1500, "action_conditioned": True, "learned_prior": True}
HORIZON = 20  # the table's training rollout length; another --horizon is a point of the curve
STATS_DROPOUT_SEED = 13  # the dropout masks of the diagnostics' normal range of U (Setting.stats)


CURVED = ("mpur", "mpur_no_u", "mpur_robust")  # the rows trained to every budget of the curve


def cell_name(args: argparse.Namespace, method: str) -> str:
    """The name of ``method``'s cells and policies under this run's options: a ``--u-weight``
    makes MPUR a sensitivity row ``mpur_uw{w}``, ``--u-scale robust`` the row ``mpur_robust``,
    a ``--horizon`` other than the table's a point ``{method}_h{H}`` of the rollout-length
    curve."""
    name = method
    if method == "mpur" and args.u_weight is not None:
        name = f"mpur_uw{args.u_weight:g}"
    elif method == "mpur" and args.u_scale != "std":
        name = f"mpur_{args.u_scale}"
    return name if args.horizon == HORIZON else f"{name}_h{args.horizon}"


def policy_config(args: argparse.Namespace, steps: int) -> dict:
    """The world-mpur-traffic recipe's configuration with the paper's MPUR settings."""
    horizon = int(args.horizon)
    paper = {
        "horizon": horizon,
        "latents": "posterior",
        "u_normalise": True,
        "u_hinge": 0.5,
        "u_scale": args.u_scale,
        "u_weight": 0.05 * horizon if args.u_weight is None else float(args.u_weight),
        "policy_steps": int(steps),
        "n_dropout": 4,
    }
    items = [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
        for k, v in paper.items()
    ]
    return resolve_config(load_recipe("world-mpur-traffic"), items)


class Setting:
    """The forward model, the data, the environment of every cell."""

    def __init__(self, args: argparse.Namespace) -> None:
        out = Path(args.out)
        run_cell(out, "world-model-traffic", "model", args.model, "summary.json")
        self.model = load_forward_model(find_forward_model(out / "model")).eval()
        summary = json.loads((out / "model" / "summary.json").read_text())
        self.error_vs_horizon = summary["error_vs_horizon"]
        root, m = summary["traffic_dir"], self.model
        self.data = TrafficDataset(root, "train", history=m.history, n_future=1, raster=m.raster)
        self.sequences = TrafficDataset(
            root, "train", history=m.history, n_future=args.horizon, raster=m.raster
        )
        self.test = TrafficDataset(root, "test", history=m.history, n_future=args.horizon, raster=m.raster)
        self.config = policy_config(args, args.steps)
        self.env_kwargs = dict(
            road=self.data.road,
            raster=m.raster,
            route_length=float(self.config["route_length"]),
            max_steps=int(self.config["max_steps"]),
            warmup=int(self.config["warmup"]),
        )
        probe = HighwayTrafficEnv(**self.env_kwargs)
        self.obs = observation_config(probe, m.history)
        self.low, self.high = probe.action_space.low, probe.action_space.high
        self.costs = CostConfig.from_config(self.config, self.data.road.lane_width)
        self.seeds = eval_seeds(args.episodes)
        self._stats = None

    @property
    def stats(self):
        """The normal range of U on recorded actions, as MPUR's training seed 0 computes it (the
        same sequences and latents), with the dropout masks drawn from ``STATS_DROPOUT_SEED``:
        the same statistics in every process, whatever ran before them."""
        if self._stats is None:  # the paper's mean and std, whatever --u-scale trains with
            self._stats = self.stats_with("std")
        return self._stats

    def stats_with(self, scale: str):
        """:attr:`stats` centred and scaled as ``scale`` says (``std`` or ``robust``)."""
        config = {**self.config, "u_scale": scale}
        return mpur_uncertainty_stats(self.model, self.sequences, config, self.costs, seed=0,
                                      dropout_seed=STATS_DROPOUT_SEED)


def own_uncertainty(args: argparse.Namespace, s: Setting, policy=None) -> float:
    """Mean normalised U (MPUR's training measure) of the policy's own unroll through the
    model from 64 fixed held-out contexts — or of the recorded actions when ``policy`` is
    None: is the trained policy where the model is as certain as on data?"""
    batch = s.test.sample_batch(64, torch.Generator().manual_seed(5))
    z = s.model.sample_prior((64, args.horizon), torch.Generator().manual_seed(6))
    with torch.no_grad():
        if policy is None:
            actions = batch["actions"][:, : args.horizon]
        else:
            actions = unroll_policy(policy, s.model, batch["images"], batch["states"], args.horizon, z)[0]
        torch.manual_seed(7)
        u = uncertainty_cost(s.model, batch["images"], batch["states"], actions, z, 8, s.costs, s.stats)
    return float(u.mean())


def _seeded(cell: dict) -> bool:
    """Was ``cell``'s normalised U made with today's ``STATS_DROPOUT_SEED``?"""
    return cell.get("stats_dropout_seed") == STATS_DROPOUT_SEED


def _mark_seeded(cell: dict) -> dict:
    cell["stats_dropout_seed"] = STATS_DROPOUT_SEED
    return cell


def _cached(path: Path, compute, stats: bool = False) -> dict:
    """The cell at ``path``, computed once. ``stats``: the cell uses ``Setting.stats`` and is
    recomputed unless it was made with today's ``STATS_DROPOUT_SEED`` (the cells of earlier
    revisions drew the statistics' dropout masks from whatever state the global generator was
    in, so their normalised values depended on what the process had run before)."""
    if path.is_file():
        value = json.loads(path.read_text())
        if not stats or _seeded(value):
            return value
    value = compute()
    if stats:
        _mark_seeded(value)
    atomic_write_text(path, json.dumps(value, indent=1) + "\n")
    return value


def policy_cells(args: argparse.Namespace, s: Setting, method: str, seed: int) -> None:
    """Train ``method`` with training seed ``seed`` to each budget of the curve (one resumed
    run) and evaluate it after each on the held-out episodes."""
    out = Path(args.out)
    name = cell_name(args, method)
    budgets = [args.steps]
    if name in CURVED:
        budgets = sorted({b for b in args.curve if b < args.steps} | {args.steps})
    for steps in budgets:
        cell = out / "cells" / f"{name}_s{seed}_n{steps}.json"
        if cell.is_file():
            continue
        config = policy_config(args, steps)
        run = Run(out / "policies" / f"{name}_s{seed}", config=config, resume=True, progress=False)
        try:
            policy = train_policy(
                method,
                s.model,
                s.data,
                s.sequences,
                s.low,
                s.high,
                config,
                seed=seed,
                run=run,
                obs_config=s.obs,
                progress=False,
            )
        except DivergedError as err:  # recorded, and the other seeds go on
            record = {"method": method, "seed": seed, "steps": steps, "error": str(err)}
            _cached(out / "cells" / f"diverged_{name}_s{seed}.json", lambda record=record: record)
            print(f"{method} seed {seed}: {err}", flush=True)
            return
        result = evaluation_table(
            {method: policy_controller(policy)}, s.seeds, s.env_kwargs, s.model.history, record=None
        )["results"][method]
        row = {k: result[k] for k in ("success_rate", "collision_rate", "offroad_rate", "mean_distance")}
        row["u_own"] = own_uncertainty(args, s, policy)
        _mark_seeded(row)
        row.update(method=method, seed=seed, steps=steps, horizon=args.horizon)
        _cached(cell, lambda row=row: row)
        print(f"{name} seed {seed} {steps} updates: success {100 * row['success_rate']:.0f} %", flush=True)


def diagnose(args: argparse.Namespace, s: Setting) -> None:
    """Add ``u_own`` to the table's cells measured before it existed (or before
    ``STATS_DROPOUT_SEED``), where the policy's checkpoint is still the one of the table's
    budget (a longer curve run moves it on)."""
    from genoise.train.checkpoint import load_checkpoint
    from genoise.world.checkpoints import load_policy

    out = Path(args.out)
    for path in sorted((out / "cells").glob(f"*_s*_n{args.steps}.json")):
        cell = json.loads(path.read_text())
        checkpoint = out / "policies" / f"{path.name.rsplit('_n', 1)[0]}" / "last.pt"
        if ("u_own" in cell and _seeded(cell)) or not checkpoint.is_file():
            continue
        if int(load_checkpoint(checkpoint, map_location="cpu")["step"]) != args.steps:
            continue
        cell["u_own"] = own_uncertainty(args, s, load_policy(checkpoint)[0])
        _mark_seeded(cell)
        atomic_write_text(path, json.dumps(cell, indent=1) + "\n")
    data = out / "cells" / "u_data.json"
    _cached(data, lambda: {"u_data": own_uncertainty(args, s)}, stats=True)


def reference_cells(args: argparse.Namespace, s: Setting) -> None:
    """keep speed, IDM, the planners over the model and CEM on the true future."""
    from genoise.world.oracle import oracle_controller

    out = Path(args.out) / "cells"
    keep = ("success_rate", "collision_rate", "offroad_rate", "mean_distance")

    def drive(controllers: dict, seeds: list[int], history: int) -> dict:
        results = evaluation_table(controllers, seeds, s.env_kwargs, history, record=None)["results"]
        return {k: {**{f: v[f] for f in keep}, "episodes": len(seeds)} for k, v in results.items()}

    _cached(
        out / "references.json",
        lambda: drive({"keep_speed": keep_speed, "idm": expert}, s.seeds, s.model.history),
    )
    options = dict(population=64, n_elites=8, iterations=3)
    _cached(
        out / "true_future_cem.json",
        lambda: drive(
            {"true_future_cem": oracle_controller("cem", 20, options, s.costs, seed=0)}, s.seeds, 1
        ),
    )
    c = s.config
    for row, method in PLANNERS.items():
        episodes = s.seeds[: args.planner_episodes]
        controller = planner_controller(
            s.model,
            method,
            s.low,
            s.high,
            int(c["planner_horizon"]),
            planner_options(method, int(c["planner_samples"]), int(c["planner_iterations"])),
            s.costs,
        )
        _cached(
            out / f"{row}.json",
            lambda row=row, controller=controller, episodes=episodes: drive(
                {row: controller}, episodes, s.model.history
            ),
        )


def _u_per_set(s: Setting, batch: dict, sets: dict, z, stats) -> dict:
    """U (B,) of each state for each action set (raw without ``stats``), the same dropout masks
    for every set."""
    n = batch["images"].shape[0]
    values = {}
    for kind in KINDS:
        torch.manual_seed(2)
        with torch.no_grad():
            values[kind] = torch.cat(
                [
                    uncertainty_cost(
                        s.model,
                        batch["images"][i : i + 32],
                        batch["states"][i : i + 32],
                        sets[kind][i : i + 32],
                        None if z is None else z[i : i + 32],
                        8,
                        s.costs,
                        stats,
                    )
                    for i in range(0, n, 32)
                ]
            )
    return values


def _ratio_rows(values: dict) -> dict:
    """Per action set: mean and median U over the states, the share of states where U is above
    U(data), the ratio of the means (the diagnostic's) and of the medians (robust to a few
    states of large U); for the data, the share of its sum carried by its five largest states."""
    data, median = float(values["data"].mean()), float(values["data"].median())
    rows = {
        k: {
            "u_mean": float(v.mean()),
            "u_median": float(v.median()),
            "share_above_data": float((v > values["data"]).double().mean()),
            "ratio_of_means": float(v.mean()) / data if data > 0 else None,
            "ratio_of_medians": float(v.median()) / median if median > 0 else None,
        }
        for k, v in values.items()
    }
    top = values["data"].sort(descending=True).values
    rows["data"]["top5_share"] = float(top[:5].sum() / top.sum()) if data > 0 else None
    ratios = [rows[k]["ratio_of_means"] for k in OOD]
    return {"rows": rows, "min_ood_ratio": None if None in ratios else min(ratios)}


def _ratio_batch(args: argparse.Namespace, s: Setting) -> tuple[dict, dict, torch.Tensor | None]:
    """The diagnostics' held-out states, their action sets and the prior's latents."""
    g = torch.Generator().manual_seed(0)
    batch = s.test.sample_batch(args.ratio_states, g)
    z = s.model.sample_prior((args.ratio_states, args.horizon), torch.Generator().manual_seed(1))
    return batch, action_sets(batch["actions"], g), z


def u_ratio(args: argparse.Namespace, s: Setting) -> dict:
    """U of recorded vs out-of-distribution actions on held-out test states, raw, normalised
    (``Setting.stats``: MPUR's statistics, masks from a fixed seed) and normalised robustly
    (median and 1.4826 × MAD, ``--u-scale robust``'s), same latents and dropout masks per set.
    A cell made before the robust form gains it here, its other forms unchanged."""

    stats = {
        "raw": lambda: None,
        "normalised": lambda: s.stats,
        "normalised_robust": lambda: s.stats_with("robust"),
    }

    def compute(forms=tuple(stats)) -> dict:  # one batch of states and action sets for every form
        batch, sets, z = _ratio_batch(args, s)
        return {form: _ratio_rows(_u_per_set(s, batch, sets, z, stats[form]())) for form in forms}

    path = Path(args.out) / "cells" / "u_ratio.json"
    cell = _cached(path, compute, stats=True)
    if "normalised_robust" not in cell:
        cell.update(compute(("normalised_robust",)))
        atomic_write_text(path, json.dumps(cell, indent=1) + "\n")
    return cell


def u_ratio_latents(args: argparse.Namespace, s: Setting) -> dict:
    """The raw U ratio with three choices of the latents on the same states and masks: samples
    of the prior (the diagnostic's), the prior's mean (noise 0) and samples of the posterior of
    the recorded sequence (MPUR's training latents) — does the ratio depend on the latents?"""

    def compute() -> dict:
        batch, sets, z = _ratio_batch(args, s)
        m, n = s.model, args.ratio_states
        latents = {
            "prior": z,
            "prior_mean": torch.zeros(n, args.horizon, m.nz),
            "posterior": posterior_noise(m, batch, torch.Generator().manual_seed(3)),
        }
        return {name: _ratio_rows(_u_per_set(s, batch, sets, z, None)) for name, z in latents.items()}

    return _cached(Path(args.out) / "cells" / "u_ratio_latents.json", compute)


def summarise(args: argparse.Namespace) -> dict:
    """Rows (mean ± std over training seeds), the curve, from the cells on disk."""
    cells = Path(args.out) / "cells"
    rows: dict[str, dict] = {}
    by_horizon = _by_horizon(cells, args)
    variants = {p.name.split("_s")[0] for p in cells.glob(f"mpur_uw*_s*_n{args.steps}.json")}
    variants |= {p.name.split("_s")[0] for p in cells.glob(f"mpur_robust_s*_n{args.steps}.json")}
    variants = sorted(variants - set(by_horizon))
    for method in (*POLICIES, *variants):
        found = [json.loads(p.read_text()) for p in sorted(cells.glob(f"{method}_s*_n{args.steps}.json"))]
        if found:
            success = np.array([100 * c["success_rate"] for c in found])
            rows[method] = {
                "success_mean": float(success.mean()),
                "success_std": float(success.std()),
                "seeds": len(found),
                "episodes": args.episodes,
                "collision_mean": float(np.mean([100 * c["collision_rate"] for c in found])),
                "offroad_mean": float(np.mean([100 * c["offroad_rate"] for c in found])),
                "distance_mean": float(np.mean([c["mean_distance"] for c in found])),
                "per_seed": {str(c["seed"]): 100 * c["success_rate"] for c in found},
            }
            own = [c["u_own"] for c in found if "u_own" in c]
            if own:
                rows[method].update(u_own_mean=float(np.mean(own)), u_own_seeds=len(own))
            stopped = cells.glob(f"diverged_{method}_s*.json")
            diverged = sorted(json.loads(p.read_text())["seed"] for p in stopped)
            if diverged:  # stopped by the trainer's divergence guard: no policy, not in the mean
                rows[method].update(diverged=len(diverged), diverged_seeds=diverged)
    for name in ("references", "true_future_cem", *PLANNERS):
        path = cells / f"{name}.json"
        if path.is_file():
            for row, r in json.loads(path.read_text()).items():
                rows[row] = {
                    "success_mean": 100 * r["success_rate"],
                    "success_std": 0.0,
                    "seeds": 1,
                    "episodes": r["episodes"],
                    "collision_mean": 100 * r["collision_rate"],
                    "offroad_mean": 100 * r["offroad_rate"],
                    "distance_mean": r["mean_distance"],
                }
    curve: dict[str, dict] = {}
    for method in CURVED:
        by_steps: dict[int, list[float]] = {}
        for p in cells.glob(f"{method}_s*_n*.json"):
            c = json.loads(p.read_text())
            by_steps.setdefault(int(c["steps"]), []).append(100 * c["success_rate"])
        if by_steps or method != "mpur_robust":
            curve[method] = {
                str(k): {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": len(v)}
                for k, v in sorted(by_steps.items())
            }
    lengths: dict[str, dict] = {}
    for method in ("mpur", "mpur_no_u"):
        by_h = {args.horizon: list(rows[method]["per_seed"].values())} if method in rows else {}
        for name, h in by_horizon.items():
            if name == f"{method}_h{h}":
                found = sorted(cells.glob(f"{name}_s*_n{args.steps}.json"))
                by_h[h] = [100 * json.loads(p.read_text())["success_rate"] for p in found]
        lengths[method] = {
            str(h): {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": len(v)}
            for h, v in sorted(by_h.items())
        }
    return {"rows": rows, "curve": curve, "rollout_length": lengths}


def _by_horizon(cells: Path, args: argparse.Namespace) -> dict[str, int]:
    """The cell names ``…_h{H}`` at the table's budget (points of the rollout-length curve)
    and their H."""
    names = {p.name.split("_s")[0] for p in cells.glob(f"*_h*_s*_n{args.steps}.json")}
    return {n: int(n.rsplit("_h", 1)[1]) for n in names if n.rsplit("_h", 1)[1].isdigit()}


def report(args: argparse.Namespace, argv: list[str]) -> str:
    summary = summarise(args)
    ratio_path = Path(args.out) / "cells" / "u_ratio.json"
    ratio = json.loads(ratio_path.read_text()) if ratio_path.is_file() else None
    rows, curve, lengths = summary["rows"], summary["curve"], summary["rollout_length"]
    date = datetime.date.today().isoformat()
    command = "python benchmarks/mpur_table.py " + " ".join(argv)
    lines = [
        f"## MPUR and the other controllers on the traffic simulator ({date})",
        "",
        f"`{command.strip()}` — forward model: `world-model-traffic` {args.model}; "
        f"policies: {args.steps} updates "
        f"of batch 16, H = {args.horizon}, latents from the posterior, normalised hinged U "
        f"(u_weight {0.05 * args.horizon:g} = 0.05 × H); {args.episodes} held-out episodes (seeds 100000…). "
        "Success % is mean ± std over training seeds (a seed whose training the divergence guard stopped "
        "has no policy and is counted apart); the paper's goal: MPUR ≥ 80 % and ≥ 20 points above "
        "its no-uncertainty ablation.",
        "",
        "| controller | success % (mean ± std) | training seeds | episodes | collision % | off-road % | "
        "distance (m) | U of its own unroll |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def line(label: str, r: dict) -> str:
        own = f"{r['u_own_mean']:.2f} ({r['u_own_seeds']} seeds)" if "u_own_mean" in r else "–"
        seeds = f"{r['seeds']} (+ {r['diverged']} diverged)" if r.get("diverged") else f"{r['seeds']}"
        return (
            f"| {label} | {r['success_mean']:.1f} ± {r['success_std']:.1f} | {seeds} | "
            f"{r['episodes']} | {r['collision_mean']:.1f} | {r['offroad_mean']:.1f} | "
            f"{r['distance_mean']:.1f} | {own} |"
        )

    for row in ROWS:
        if row in rows:
            lines.append(line(f"{NAMES[row]} (`{row}`)", rows[row]))
        else:
            lines.append(f"| {NAMES[row]} (`{row}`) | not measured | | | | | | |")
    for row in sorted(r for r in rows if r.startswith("mpur_uw")):
        weight = row.removeprefix("mpur_uw")
        lines.append(line(f"MPUR with u_weight {weight} (sensitivity, `{row}`)", rows[row]))
    if "mpur_robust" in rows:
        label = "MPUR, U scaled by its median and 1.4826 × MAD (ours, `mpur_robust`)"
        lines.append(line(label, rows["mpur_robust"]))
    data_u = Path(args.out) / "cells" / "u_data.json"
    if data_u.is_file():
        lines += [
            "",
            "U of its own unroll: the normalised uncertainty cost MPUR trains with, of the trained policy "
            "driving the model from 64 fixed held-out contexts (mean over those contexts and the seeds "
            f"measured); the recorded actions of the same contexts: "
            f"{json.loads(data_u.read_text())['u_data']:.2f}.",
        ]
    if curve["mpur"] or curve["mpur_no_u"]:
        lines += _both_policies(
            "Success % against policy updates (mean ± std over the seeds measured at that budget):",
            "updates",
            curve,
        )
    several = len({h for c in lengths.values() for h in c}) > 1  # the curve beyond the table's H
    if several:
        lines += _both_policies(
            f"Success % against the training rollout length H ({args.steps} updates, u_weight = 0.05 × H; "
            f"H = {args.horizon} is the table's rows; mean ± std over the seeds measured):",
            "H (× 0.1 s)",
            lengths,
        )
    fmt = lambda v: "∞ (U(data) = 0)" if v is None else f"{v:.2f}"  # noqa: E731
    if ratio:
        lines += [
            "",
            "U-ratio diagnostic (held-out test states, T = H, 8 dropout masks): mean U per action set "
            "and U / U(data):",
            "",
            "| action set | raw U | raw ratio | normalised U | normalised ratio | robustly normalised U | "
            "its ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for kind in KINDS:
            a, b = ratio["raw"]["rows"][kind], ratio["normalised"]["rows"][kind]
            c = ratio.get("normalised_robust", {}).get("rows", {}).get(kind)
            robust = f"{c['u_mean']:.3g} | {fmt(c['ratio_of_means'])}" if c else "– | –"
            lines.append(
                f"| {kind} | {a['u_mean']:.3g} | {fmt(a['ratio_of_means'])} | {b['u_mean']:.3g} | "
                f"{fmt(b['ratio_of_means'])} | {robust} |"
            )
    latents_path = Path(args.out) / "cells" / "u_ratio_latents.json"
    latents = json.loads(latents_path.read_text()) if latents_path.is_file() else None
    if latents:
        lines += [
            "",
            "The raw U ratio with other latents (same states and masks; `--u-ratio-latents`): prior "
            "samples (as above), the prior's mean, the posterior of the recorded sequence (MPUR's "
            "training latents). Each cell: ratio of the means over the states (ratio of the medians); "
            "U(data): mean (median), and the share of its sum carried by its five largest states:",
            "",
            "| latents | U(data) | top-5 share | " + " | ".join(KINDS[1:]) + " |",
            "|---|---:|---:|" + "---:|" * (len(KINDS) - 1),
        ]
        for name, result in latents.items():
            r = result["rows"]
            ratios = [f"{fmt(r[k]['ratio_of_means'])} ({fmt(r[k]['ratio_of_medians'])})" for k in KINDS[1:]]
            d = r["data"]
            data = f"{d['u_mean']:.3g} ({d['u_median']:.3g})"
            lines.append(f"| {name} | {data} | {fmt(d['top5_share'])} | {' | '.join(ratios)} |")
    text = "\n".join(lines) + "\n"
    payload = {
        "date": date,
        "command": command.strip(),
        "model": args.model,
        "policy_steps": args.steps,
        "horizon": args.horizon,
        "episodes": args.episodes,
        "rows": rows,
        "curve": curve,
        "rollout_length": lengths,
        "u_ratio": ratio,
        "u_ratio_latents": latents,
    }
    records = write_records(args.records, args.record, text, payload)
    _plot(curve, lengths if several else None, records / f"{args.record}.png")
    return text


def _both_policies(title: str, column: str, points: dict) -> list[str]:
    """Markdown lines: MPUR and its ablation (mean ± std, seeds) at each point of a curve, and
    MPUR with the robust U scale where it was measured."""
    methods = [m for m in CURVED if m in points]
    labels = {"mpur": "MPUR", "mpur_no_u": "MPUR without U", "mpur_robust": "MPUR, robust U scale"}
    lines = ["", title, "", f"| {column} | " + " | ".join(f"{labels[m]} | seeds" for m in methods) + " |"]
    lines.append("|---:|" + "---:|---:|" * len(methods))
    for x in sorted({int(k) for c in points.values() for k in c}):
        cells = [points[m].get(str(x)) for m in methods]
        text = [f"{c['mean']:.1f} ± {c['std']:.1f} | {c['seeds']}" if c else "– | 0" for c in cells]
        lines.append(f"| {x} | " + " | ".join(text) + " |")
    return lines


def _plot(curve: dict, lengths: dict | None, path: Path) -> None:
    """Success against policy updates and, when measured, against the training rollout length."""
    if not (curve["mpur"] or curve["mpur_no_u"]):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genoise.io import atomic_savefig

    panels = [(curve, "policy updates")]
    if lengths:
        panels.append((lengths, "training rollout length H (× 0.1 s)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (points, xlabel) in zip(axes[0], panels, strict=True):
        labels = (("mpur", "MPUR"), ("mpur_no_u", "MPUR without U"), ("mpur_robust", "MPUR, robust U scale"))
        for method, label in labels:
            xs = sorted(int(k) for k in points.get(method, {}))
            if xs:
                mean = np.array([points[method][str(k)]["mean"] for k in xs])
                std = np.array([points[method][str(k)]["std"] for k in xs])
                ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success % (held-out episodes)")
        ax.set_ylim(0, 100)
        ax.legend()
        ax.grid(alpha=0.3)
    atomic_savefig(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def figure(args: argparse.Namespace, s: Setting, path: Path) -> None:
    """Issue 20, part 4: (top) the real future of a held-out sequence next to the model's
    predictions along the recorded actions with the posterior latents of that sequence and
    with three latent samples of the learned prior; (bottom) the normalised uncertainty per
    step along the recorded actions and along the same actions with a swerve (+2 m/s lateral)
    from step H/2 on — the trajectory leaves the data where the swerve starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genoise.io import atomic_savefig
    from genoise.world.forward import rollout
    from genoise.world.uncertainty import uncertainty_terms

    m, horizon = s.model, args.horizon
    g = torch.Generator().manual_seed(args.figure_seed)
    batch = s.test.sample_batch(64, g)
    # the sequence with the most traffic in its future: other cars visibly move
    index = int(batch["target_images"][:, :, 1].flatten(1).sum(-1).argmax())
    one = {k: v[index : index + 1] for k, v in batch.items()}
    futures = {"real future": one["target_images"][0]}
    with torch.no_grad():
        z = posterior_noise(m, one, torch.Generator().manual_seed(1))
        futures["posterior z"] = rollout(m, one["images"], one["states"], one["actions"], z)[0][0]
        for k in range(3):
            z = m.sample_prior((1, horizon), torch.Generator().manual_seed(10 + k))
            futures[f"prior z #{k + 1}"] = rollout(m, one["images"], one["states"], one["actions"], z)[0][0]
    steps = [t for t in range(0, horizon, max(1, horizon // 5))][:5]
    fig = plt.figure(figsize=(9, 8.5))
    grid = fig.add_gridspec(2, 1, height_ratios=[1.6, 1])
    top = grid[0].subgridspec(len(futures), len(steps), wspace=0.05, hspace=0.25)
    for r, (name, frames) in enumerate(futures.items()):
        for c, t in enumerate(steps):
            ax = fig.add_subplot(top[r, c])
            ax.imshow(frames[t].permute(1, 2, 0).clamp(0, 1).numpy().transpose(1, 0, 2), aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
            if r == 0:
                ax.set_title(f"t + {(t + 1) * 0.1:.1f} s", fontsize=8)
    stats = s.stats
    swerve = one["actions"].clone()
    swerve[:, horizon // 2 :, 1] = 2.0
    ax = fig.add_subplot(grid[1])
    for name, actions in (("recorded actions", one["actions"]), ("swerve from step H/2", swerve)):
        torch.manual_seed(3)
        with torch.no_grad():
            z = m.sample_prior((1, horizon), torch.Generator().manual_seed(2))
            terms = uncertainty_terms(m, one["images"], one["states"], actions, z, 16, s.costs)
        per_step = sum(torch.relu((terms[k][0] - stats.mean[k]) / stats.std[k] - 0.5) for k in terms)
        ax.plot(range(1, horizon + 1), per_step.numpy(), marker="o", ms=3, label=name)
    ax.axvline(horizon // 2 + 0.5, color="grey", ls="--", lw=1)
    ax.set_xlabel("step (0.1 s)")
    ax.set_ylabel("normalised uncertainty (sum of hinged terms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    atomic_savefig(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[], help="training seeds to run in this process"
    )
    parser.add_argument("--methods", nargs="*", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--steps", type=int, default=400, help="policy updates of the table")
    parser.add_argument("--curve", type=int, nargs="*", default=[100, 200], help="extra budgets of the curve")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument(
        "--u-weight",
        type=float,
        default=None,
        help="MPUR's u_weight (default 0.05 x H); another value is a sensitivity row mpur_uw<value>",
    )
    parser.add_argument(
        "--u-scale",
        choices=("std", "robust"),
        default="std",
        help="how MPUR standardises U on recorded actions: the paper's mean and std, or the median and "
        "1.4826 x MAD (a row mpur_robust)",
    )
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument(
        "--references",
        action="store_true",
        help="drive keep speed, IDM, the planners, true-future CEM and the U-ratio diagnostic",
    )
    parser.add_argument(
        "--u-ratio", action="store_true", help="the U-ratio diagnostic alone (--references includes it)"
    )
    parser.add_argument(
        "--u-ratio-latents",
        action="store_true",
        help="the raw U ratio with prior samples, the prior's mean and posterior latents",
    )
    parser.add_argument("--planner-episodes", type=int, default=5)
    parser.add_argument("--ratio-states", type=int, default=128)
    parser.add_argument("--report", action="store_true")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="add the U of each policy's own unroll to the cells that lack it",
    )
    parser.add_argument(
        "--figure",
        action="store_true",
        help="predicted futures + U along a swerve -> records/mpur_futures.png",
    )
    parser.add_argument("--figure-seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mpur_table"))
    parser.add_argument("--records", default=str(ROOT / "benchmarks" / "records"))
    parser.add_argument(
        "--record", default="mpur_table", help="file stem of the record (another keeps the main one)"
    )
    parser.add_argument(
        "--model-set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="recipe overrides of the forward model (e.g. car_motion=learned n_future=10); give such a "
        "table its own --out and --record",
    )
    args = parser.parse_args(argv)
    args.model = {**MODEL, **recipe_overrides(parser, "world-model-traffic", "--model-set", args.model_set)}
    table_options = ("report", "references", "u_ratio", "u_ratio_latents", "figure", "diagnose")
    table_only = [f for f in table_options if getattr(args, f)]
    if args.horizon != HORIZON and table_only:
        parser.error(
            f"--horizon {args.horizon} trains points of the rollout-length curve (cells …_h{args.horizon}); "
            f"--{table_only[0].replace('_', '-')} works at the table's --horizon {HORIZON}: "
            "run it without --horizon"
        )
    if args.u_weight is not None and args.u_scale != "std":
        parser.error("--u-weight and --u-scale each make MPUR a row of its own: give one of them")
    argv = argv if argv is not None else sys.argv[1:]
    torch.set_num_threads(1)
    if args.seeds or [f for f in table_only if f != "report"]:  # everything but the report needs the model
        setting = Setting(args)
        if args.figure:
            figure(args, setting, Path(args.records) / "mpur_futures.png")
        if args.diagnose:
            diagnose(args, setting)
        if args.references or args.u_ratio:
            u_ratio(args, setting)
        if args.u_ratio_latents:
            u_ratio_latents(args, setting)
        if args.references:
            reference_cells(args, setting)
        for seed in args.seeds:
            for method in args.methods:
                policy_cells(args, setting, method, seed)
    if args.report:
        print(report(args, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
