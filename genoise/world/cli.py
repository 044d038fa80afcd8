"""``genoise world collect``: simulate traffic and write the traffic-camera data set.

The lead wires :func:`collect_main` into the ``genoise`` command line; it can also be run
as ``python -m genoise.world.cli OUT_DIR [options]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from genoise.world.dataset import collect_traffic, read_manifest
from genoise.world.traffic import RoadConfig


def collect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genoise world collect",
        description="Simulate IDM/MOBIL highway traffic and record every car's "
        "trajectory (train/val/test split by time).",
    )
    parser.add_argument("out_dir", help="folder to write (manifest.json + .npz shards)")
    parser.add_argument("--episodes", type=int, default=4, help="independent traffic episodes (default 4)")
    parser.add_argument("--steps", type=int, default=1200, help="recorded steps per episode, dt = 0.1 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=300, help="steps simulated before recording")
    parser.add_argument("--lanes", type=int, default=RoadConfig.n_lanes)
    parser.add_argument("--length", type=float, default=RoadConfig.road_length, help="ring length in metres")
    parser.add_argument("--density", type=float, default=RoadConfig.density, help="cars per km per lane")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def collect_main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, collect the data set, print a one-line summary per split; exit code 0."""
    args = collect_parser().parse_args(argv)
    road = RoadConfig(n_lanes=args.lanes, road_length=args.length, density=args.density)
    path = collect_traffic(
        args.out_dir,
        n_episodes=args.episodes,
        steps=args.steps,
        seed=args.seed,
        road=road,
        warmup=args.warmup,
        progress=not args.no_progress,
    )
    manifest = read_manifest(path.parent)
    for split in ("train", "val", "test"):
        shards = [s for s in manifest["shards"] if s["split"] == split]
        frames = sum(s["n_frames"] for s in shards)
        print(
            json.dumps(
                {
                    "split": split,
                    "shards": len(shards),
                    "frames": frames,
                    "cars": shards[0]["n_cars"] if shards else 0,
                }
            )
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(collect_main())


def plan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genoise plan",
        description="Drive held-out episodes by planning over a learned forward model "
        "(a `genoise train world-model-traffic` run folder).",
    )
    parser.add_argument("model_run", help="run folder holding forward_model.pt")
    parser.add_argument("--planner", choices=("mpc", "cem", "mppi"), default="mpc", help="mpc = gradient MPC")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--samples", type=int, default=32, help="CEM / MPPI candidates per iteration")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--route-length", type=float, default=200.0)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument(
        "--rear-speed",
        choices=("current", "initial"),
        default="initial",
        help="speed that sets the proximity reach behind the ego: the plan's start (default) or, "
        "as in the paper, the current speed (then braking looks safe; see docs/world.md)",
    )
    parser.add_argument("--gif", default=None, help="write the first episode as a GIF here")
    return parser


def plan_main(argv: Sequence[str] | None = None) -> int:
    """``genoise plan``: success / collision / distance of a planner over the learned model."""
    from pathlib import Path

    import torch

    from genoise.world.costs import CostConfig
    from genoise.world.forward import load_forward_model
    from genoise.world.highway_env import HighwayTrafficEnv
    from genoise.world.policy import evaluate_driving, planner_controller
    from genoise.world.render import save_gif

    args = plan_parser().parse_args(argv)
    checkpoint = Path(args.model_run) / "forward_model.pt"
    if not checkpoint.is_file():
        raise ValueError(
            f"no forward model at {checkpoint} (train one with `genoise train world-model-traffic`)"
        )
    torch.set_num_threads(1)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["obs_config"]
    model = load_forward_model(checkpoint)
    road = RoadConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["road"].items()})
    env_kwargs = dict(
        road=road, raster=model.raster, route_length=args.route_length, max_steps=args.max_steps
    )
    probe = HighwayTrafficEnv(**env_kwargs)
    method = {"mpc": "gradient"}.get(args.planner, args.planner)
    options = {
        "gradient": dict(iterations=args.iterations, lr=0.5),
        "cem": dict(population=args.samples, n_elites=max(2, args.samples // 4), iterations=args.iterations),
        "mppi": dict(samples=args.samples, iterations=args.iterations, temperature=0.1),
    }[method]
    costs = CostConfig(lane_width=road.lane_width, rear_speed=args.rear_speed)
    controller = planner_controller(
        model, method, probe.action_space.low, probe.action_space.high, args.horizon, options, costs
    )
    seeds = [100_000 + i for i in range(args.episodes)]
    outcome = evaluate_driving(controller, seeds, env_kwargs, model.history, record=0 if args.gif else None)
    if args.gif:
        save_gif(outcome["frames"][::2], args.gif)
    print(json.dumps({k: v for k, v in outcome.items() if k != "frames"}))
    return 0
