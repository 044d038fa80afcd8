"""MPUR vs its no-uncertainty ablation as a function of the rollout length used in training
(Henaff, Canziani & LeCun, ICLR 2019, Fig. "success rate vs rollout length").

For every horizon H, a policy is trained through the unrolled forward model of a
`genoise train world-model-traffic` run with the MPUR cost (``u_weight``) and without the
uncertainty term, saved, and driven on the fixed held-out episodes (seeds 100000…). The
"no action" and "IDM driver" references are driven on the same seeds. Results are cached per
(method, H) in the output folder, so the experiment can be run in pieces (each shell command
under 10 minutes on a loaded machine):

    python benchmarks/world_driving.py --model-run runs/world-model-traffic --horizons 1 5 [--quick]
    python benchmarks/world_driving.py --model-run runs/world-model-traffic --horizons 10 20
    python benchmarks/world_driving.py --model-run runs/world-model-traffic --report   # table + PNG
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from genoise.world.checkpoints import (
    find_forward_model,
    load_forward_model,
    load_policy,
    observation_config,
    save_policy,
)
from genoise.world.control import expert, keep_speed, policy_controller
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset
from genoise.world.evaluate import eval_seeds, evaluation_table
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.train import train_policy

DEFAULTS = dict(
    u_weight=0.05,
    n_dropout=4,
    policy_steps=400,
    policy_batch=16,
    policy_lr=3e-4,
    lane_weight=0.2,
    offroad_weight=5.0,
    action_weight=0.01,
    speed_gradient=True,
    rear_speed="initial",
    route_length=200.0,
    max_steps=400,
    warmup=300,
)


def setting(args: argparse.Namespace) -> tuple:
    model_run = Path(args.model_run)
    model = load_forward_model(find_forward_model(model_run))
    summary = json.loads((model_run / "summary.json").read_text())
    data = TrafficDataset(
        summary["traffic_dir"], "train", history=model.history, n_future=1, raster=model.raster
    )
    env_kwargs = dict(
        road=data.road,
        raster=model.raster,
        route_length=DEFAULTS["route_length"],
        max_steps=DEFAULTS["max_steps"],
        warmup=DEFAULTS["warmup"],
    )
    return model, data, env_kwargs


def run_cell(args, model, data, env_kwargs, method: str, horizon: int, seeds: list[int]) -> dict:
    out = Path(args.out)
    cell = out / f"{method}_h{horizon}.json"
    if cell.is_file():
        return json.loads(cell.read_text())
    probe = HighwayTrafficEnv(**env_kwargs)
    obs_config = observation_config(probe, model.history)
    config = {**DEFAULTS, "horizon": horizon, "policy_steps": args.steps, "seed": args.seed}
    path = out / "policies" / f"{method}_h{horizon}.pt"
    start = time.time()
    if path.is_file():
        policy, _ = load_policy(path, expect_obs=obs_config)
    else:
        low, high = probe.action_space.low, probe.action_space.high
        policy = train_policy(method, model, data, data, low, high, config, seed=args.seed, progress=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_policy(policy, path, obs_config, config, method=method)
    trained = time.time() - start
    result = evaluation_table({method: policy_controller(policy)}, seeds, env_kwargs, model.history)
    row = {**result["results"][method], "method": method, "horizon": horizon, "train_seconds": trained,
           "policy_steps": args.steps}
    cell.write_text(json.dumps(row) + "\n")
    return row


def references(args, env_kwargs, history: int, seeds: list[int]) -> dict:
    cell = Path(args.out) / "references.json"
    if cell.is_file():
        return json.loads(cell.read_text())
    result = evaluation_table({"none": keep_speed, "idm": expert}, seeds, env_kwargs, history)["results"]
    cell.write_text(json.dumps(result) + "\n")
    return result


def oracle_references(args, env_kwargs, seeds: list[int]) -> dict:
    """CEM on the simulator's true future (``genoise.world.oracle``) with the rear proximity
    reach from the plan's initial speed (ours) and from the current speed (the paper's)."""
    cell = Path(args.out) / "oracle.json"
    if cell.is_file():
        return json.loads(cell.read_text())
    from genoise.world.oracle import oracle_controller

    options = dict(population=64, n_elites=8, iterations=3)
    lane_width = env_kwargs["road"].lane_width
    controllers = {
        f"oracle_{rear}": oracle_controller(
            "cem", 20, options, CostConfig.from_config({**DEFAULTS, "rear_speed": rear}, lane_width),
            seed=args.seed,
        )
        for rear in ("initial", "current")
    }
    result = evaluation_table(controllers, seeds, env_kwargs, 1)["results"]
    result = {k: {**v, "seeds": seeds} for k, v in result.items()}
    cell.write_text(json.dumps(result) + "\n")
    return result


def report(args, seeds: list[int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    cells = [json.loads(p.read_text()) for p in sorted(out.glob("mpur*_h*.json"))]
    for cell in cells:  # cells written before policy_steps was recorded: read the saved policy
        if "policy_steps" not in cell:
            saved = out / "policies" / f"{cell['method']}_h{cell['horizon']}.pt"
            config = {}
            if saved.is_file():
                config = torch.load(saved, map_location="cpu", weights_only=False)["config"]
            cell["policy_steps"] = config.get("policy_steps", "?")
    steps = sorted({str(c["policy_steps"]) for c in cells})
    refs = json.loads((out / "references.json").read_text()) if (out / "references.json").is_file() else {}
    oracle = json.loads((out / "oracle.json").read_text()) if (out / "oracle.json").is_file() else {}
    horizons = sorted({c["horizon"] for c in cells})
    lines = [
        f"Success rate vs training rollout length; {len(seeds)} held-out episodes (seeds {seeds[0]}…"
        f"{seeds[-1]}), route {DEFAULTS['route_length']} m, time limit {DEFAULTS['max_steps']} steps; "
        f"{' / '.join(steps)} policy updates of batch {DEFAULTS['policy_batch']}; "
        f"u_weight {DEFAULTS['u_weight']}, "
        f"{DEFAULTS['n_dropout']} dropout masks.",
        "",
        "| rollout length H | MPUR success % | collision % | off-road % | distance (m) "
        "| MPUR w/o uncertainty success % | collision % | off-road % | distance (m) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for method, label, style in (("mpur", "MPUR", "o-"), ("mpur_no_u", "MPUR without uncertainty", "s--")):
        points = sorted((c["horizon"], 100 * c["success_rate"]) for c in cells if c["method"] == method)
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label)
    for key, label, style in (("idm", "IDM driver", ":"), ("none", "keep speed", "-.")):
        if key in refs:
            ax.axhline(100 * refs[key]["success_rate"], linestyle=style, color="grey", label=label)
    for h in horizons:
        row = [str(h)]
        for method in ("mpur", "mpur_no_u"):
            c = next((c for c in cells if c["method"] == method and c["horizon"] == h), None)
            row += (
                ["–"] * 4
                if c is None
                else [
                    f"{100 * c['success_rate']:.0f}",
                    f"{100 * c['collision_rate']:.0f}",
                    f"{100 * c['offroad_rate']:.0f}",
                    f"{c['mean_distance']:.1f}",
                ]
            )
        lines.append("| " + " | ".join(row) + " |")
    reference_rows = [
        (refs.get("none"), "no action (keep speed)"),
        (refs.get("idm"), "IDM driver (replay)"),
        (oracle.get("oracle_initial"), "CEM on the true future, rear reach from the initial speed"),
        (oracle.get("oracle_current"), "CEM on the true future, rear reach from the current speed (paper)"),
    ]
    for r, label in reference_rows:
        if r is not None:
            if "seeds" in r:  # the oracle rows drive only the first episodes
                label += f" (first {len(r['seeds'])} episodes)"
            lines.append(
                f"| reference: {label} | {100 * r['success_rate']:.0f} | {100 * r['collision_rate']:.0f} | "
                f"{100 * r['offroad_rate']:.0f} | {r['mean_distance']:.1f} | | | | |"
            )
    ax.set_xlabel("training rollout length H (steps of 0.1 s)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-5, 105)
    ax.legend(fontsize=7)
    fig.savefig(out / "success_vs_rollout_length.png", dpi=110, bbox_inches="tight")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-run", default="runs/world-model-traffic")
    parser.add_argument("--out", default="benchmarks/results/world_driving")
    parser.add_argument("--horizons", type=int, nargs="*", default=[])
    parser.add_argument("--methods", nargs="*", default=["mpur", "mpur_no_u"])
    parser.add_argument("--steps", type=int, default=DEFAULTS["policy_steps"])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true")
    parser.add_argument(
        "--oracle-episodes",
        type=int,
        default=0,
        help="also drive the first N episodes with CEM on the true future (about 1 CPU-minute each)",
    )
    parser.add_argument("--quick", action="store_true", help="horizons 1 and 5, 100 updates, 5 episodes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.horizons = args.horizons or [1, 5]
        args.steps, args.episodes = 100, 5
        args.out = args.out + "_quick"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    seeds = eval_seeds(args.episodes)
    model, data, env_kwargs = setting(args)
    (Path(args.out) / "setting.json").write_text(
        json.dumps(
            {
                "model_run": args.model_run,
                "env": {**env_kwargs, "road": asdict(data.road), "raster": asdict(model.raster)},
                "seeds": seeds,
                **DEFAULTS,
            },
            default=str,
        )
        + "\n"
    )
    references(args, env_kwargs, model.history, seeds)
    if args.oracle_episodes:
        oracle_references(args, env_kwargs, seeds[: args.oracle_episodes])
    for horizon in args.horizons:
        for method in args.methods:
            row = run_cell(args, model, data, env_kwargs, method, horizon, seeds)
            print(
                json.dumps(
                    {
                        k: row[k]
                        for k in (
                            "method",
                            "horizon",
                            "success_rate",
                            "collision_rate",
                            "offroad_rate",
                            "mean_distance",
                            "train_seconds",
                        )
                    }
                )
            )
            sys.stdout.flush()
    if args.report or args.quick:
        table = report(args, seeds)
        Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
        Path("benchmarks/results/world_driving.md").write_text(table)
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
