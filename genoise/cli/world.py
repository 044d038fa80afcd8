"""``genoise world collect`` and ``genoise plan`` (temporary bridge to ``genoise.world.cli``;
the world capability replaces it with real sub-parsers)."""

from __future__ import annotations

import argparse
from typing import Any


def add_subcommands(sub: Any) -> None:
    world = sub.add_parser("world", help="world-model data: genoise world collect OUT_DIR [--episodes N ...]")
    world_sub = world.add_subparsers(dest="world_command", required=True, metavar="SUBCOMMAND")
    collect = world_sub.add_parser("collect", help="simulate traffic and write the data set", add_help=False)
    collect.add_argument("rest", nargs=argparse.REMAINDER)
    collect.set_defaults(handler=lambda args: _bridge("collect_main", args.rest))
    plan = sub.add_parser("plan", add_help=False,
                          help="drive with a planner over a learned model: genoise plan MODEL_RUN")
    plan.add_argument("rest", nargs=argparse.REMAINDER)
    plan.set_defaults(handler=lambda args: _bridge("plan_main", args.rest))


def _bridge(name: str, argv: list[str]) -> int:
    from genoise.world import cli

    return int(getattr(cli, name)(argv) or 0)
