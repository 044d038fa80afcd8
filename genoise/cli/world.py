"""The command lines of :mod:`genoise.world`:

- ``genoise world collect OUT_DIR [--episodes N --steps N --seed N --warmup N --lanes N
  --length M --density D]``: simulate IDM/MOBIL traffic and write the traffic-camera data set;
- ``genoise plan RUN_DIR [--planner mpc|cem|mppi …]``: drive held-out episodes by planning over
  the forward model of a ``genoise train world-model-traffic`` run, with the driving cost of
  that run's configuration (the recipe's: off-road weight 5, rear reach from the initial speed).

:func:`add_subcommands` registers both on the ``genoise`` parser; the handlers import torch
and the library only when they run, so ``genoise --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_PLANNERS = {"mpc": "gradient", "cem": "cem", "mppi": "mppi"}  # command-line name -> planner


def number_arg(kind: type, low: float, strict: bool = False):
    """An argparse ``type`` accepting ``kind`` values >= ``low`` (> ``low`` if ``strict``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an int' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low}, got {text}")
        return value

    return parse


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register ``world collect`` and ``plan`` on the ``genoise`` sub-parsers ``sub``; each sets
    ``handler(args) -> exit status``."""
    world = sub.add_parser("world", help="world-model data: genoise world collect OUT_DIR [...]",
                           description="Commands of the driving world model.")
    world_commands = world.add_subparsers(dest="world_command", required=True, metavar="COMMAND")
    collect = world_commands.add_parser(
        "collect", help="simulate traffic and write the traffic-camera data set",
        description="Simulate IDM/MOBIL highway traffic and record every car's trajectory "
        "(train/val/test split by time). Defaults: those of collect_traffic and RoadConfig "
        "(4 episodes of 1200 steps after 300 warm-up steps; 4 lanes, 500 m ring, 40 cars/km/lane).")
    collect.add_argument("out_dir", help="folder to write (manifest.json + .npz shards)")
    collect.add_argument("--episodes", type=number_arg(int, 1), help="independent traffic episodes")
    collect.add_argument("--steps", type=number_arg(int, 1), help="recorded steps per episode, dt = 0.1 s")
    collect.add_argument("--seed", type=number_arg(int, 0), default=0, help="data-set seed (default 0)")
    collect.add_argument("--warmup", type=number_arg(int, 0), help="steps simulated before recording")
    collect.add_argument("--lanes", type=number_arg(int, 1), help="number of lanes")
    collect.add_argument("--length", type=number_arg(float, 0, strict=True), help="ring length in metres")
    collect.add_argument("--density", type=number_arg(float, 0, strict=True), help="cars per km per lane")
    collect.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    collect.set_defaults(handler=collect_command)

    plan = sub.add_parser(
        "plan", help="drive with a planner over a learned model: genoise plan RUN_DIR --planner cem",
        description="Drive held-out episodes (seeds 100000…) by planning over the forward model of a "
        "`genoise train world-model-traffic` run folder, with the driving cost of that run's "
        "configuration. Prints the outcome as JSON (with the cost used).")
    plan.add_argument("model_run", help="a world-model-traffic run folder (holding model/last.pt)")
    plan.add_argument("--planner", choices=tuple(_PLANNERS), default="mpc",
                      help="mpc = gradient MPC (default)")
    plan.add_argument("--episodes", type=number_arg(int, 1), default=10,
                      help="held-out episodes (default 10)")
    plan.add_argument("--horizon", type=number_arg(int, 1), default=8,
                      help="planning horizon in steps (default 8)")
    plan.add_argument("--samples", type=number_arg(int, 2), default=32,
                      help="CEM / MPPI candidates per iteration (default 32)")
    plan.add_argument("--iterations", type=number_arg(int, 1), default=3,
                      help="planner iterations (default 3)")
    plan.add_argument("--route-length", type=number_arg(float, 0, strict=True),
                      help="route length in metres (default: the simulator's, 200)")
    plan.add_argument("--max-steps", type=number_arg(int, 1),
                      help="time limit in steps (default: the simulator's, 400)")
    plan.add_argument(
        "--rear-speed", choices=("current", "initial"),
        help="speed that sets the proximity reach behind the ego (default: the run's rear_speed): the "
        "plan's start, or, as in the paper, the current speed (then braking looks safe; docs/world.md)")
    plan.add_argument("--gif", help="write the first episode as a GIF here")
    plan.set_defaults(handler=plan_command)


def collect_command(args: argparse.Namespace) -> int:
    """``genoise world collect``: collect the data set, print one JSON line per split."""
    from genoise.world.dataset import collect_traffic, read_manifest
    from genoise.world.traffic import RoadConfig

    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    given = {"n_lanes": args.lanes, "road_length": args.length, "density": args.density}
    road = RoadConfig(**{k: v for k, v in given.items() if v is not None})
    sizes = {"n_episodes": args.episodes, "steps": args.steps, "warmup": args.warmup}
    path = collect_traffic(out, seed=args.seed, road=road, progress=not args.no_progress,
                           **{k: v for k, v in sizes.items() if v is not None})
    manifest = read_manifest(path.parent)
    for split in ("train", "val", "test"):
        shards = [s for s in manifest["shards"] if s["split"] == split]
        frames = sum(s["n_frames"] for s in shards)
        cars = shards[0]["n_cars"] if shards else 0
        print(json.dumps({"split": split, "shards": len(shards), "frames": frames, "cars": cars}))
    print(f"wrote {path}")
    return 0


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The model run's configuration over the shipped recipe's defaults (a run of an earlier
    version may lack the cost keys)."""
    from genoise.recipes import load_recipe
    from genoise.train.run_folder import read_run_config

    try:
        config, _ = read_run_config(run_dir)
    except FileNotFoundError:
        config = {}
    return {**load_recipe("world-model-traffic").config, **config}


def plan_command(args: argparse.Namespace) -> int:
    """``genoise plan``: success / collision / distance of a planner over the learned model."""
    import torch

    from genoise.world.checkpoints import (
        check_finished,
        find_forward_model,
        forward_model_card,
        load_forward_model,
    )
    from genoise.world.control import planner_controller
    from genoise.world.costs import CostConfig
    from genoise.world.evaluate import driving_setting, eval_seeds, evaluate_driving
    from genoise.world.highway_env import HighwayTrafficEnv
    from genoise.world.planners import planner_options
    from genoise.world.render import save_gif

    run_dir = Path(args.model_run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    checkpoint = find_forward_model(run_dir)
    model = load_forward_model(checkpoint).eval()  # "not a genoise checkpoint" before anything else
    check_finished(checkpoint)
    torch.set_num_threads(1)
    config = _run_config(run_dir)
    if args.rear_speed is not None:
        config["rear_speed"] = args.rear_speed
    env_kwargs = driving_setting(forward_model_card(checkpoint)["obs_config"], config,
                                 route_length=args.route_length, max_steps=args.max_steps)
    costs = CostConfig.from_config(config, env_kwargs["road"].lane_width)
    probe = HighwayTrafficEnv(**env_kwargs)
    method = _PLANNERS[args.planner]
    options = planner_options(method, args.samples, args.iterations)
    controller = planner_controller(model, method, probe.action_space.low, probe.action_space.high,
                                    args.horizon, options, costs)
    outcome = evaluate_driving(controller, eval_seeds(args.episodes), env_kwargs, model.history,
                               record=0 if args.gif else None)
    if args.gif:
        save_gif(outcome.pop("frames")[::2], args.gif)
    outcome.pop("frames", None)
    print(json.dumps({**outcome, "planner": method, "options": options, "costs": vars(costs)}))
    return 0
