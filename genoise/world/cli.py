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
