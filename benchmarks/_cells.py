"""A benchmark cell = one ``genoise train RECIPE`` run folder, trained once and reused: the
benchmarks that sweep a recipe (``jepa_two_rooms.py``, ``video_prediction.py``) resume where
they stopped, and record each cell's CPU time (process user + system) in its result file."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import yaml

from genoise.cli import main as genoise
from genoise.recipes import apply_overrides, load_recipe


def recipe_overrides(
    parser, recipe: str, flag: str, items, fixed=(), why: str = "is set by the benchmark itself"
) -> dict:
    """The ``KEY=VALUE`` items of a benchmark's ``flag`` for ``recipe``, parsed and checked as
    ``genoise train`` does, before anything is written: a bad item, or a key in ``fixed`` (one
    the benchmark sets itself), ends the command with one line naming the flag (``parser.error``)."""
    try:
        overrides = apply_overrides(load_recipe(recipe), {}, items)
    except ValueError as err:
        parser.error(f"{flag}: {err}")
    if clash := sorted(set(overrides) & set(fixed)):
        parser.error(f"{flag}: {', '.join(clash)} {why}")
    return overrides


def recipe_value(value) -> str:
    """A value as ``key=value`` on the command line takes it (YAML flow style)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def named(extra: dict | None) -> str:
    """``-KEYVALUE`` for each recipe override of a cell, in key order (a cell's folder names them)."""
    return "".join(f"-{key}{value:g}" if isinstance(value, float) else f"-{key}{value}"
                   for key, value in sorted((extra or {}).items()))


# where the data lie is not part of a cell's setting (a results folder may move between machines)
NOT_SETTING = frozenset({"data_dir"})


def check_setting(folder: Path, name: str, overrides: dict) -> None:
    """Refuse to reuse or resume a cell folder trained with another setting: a finished cell is
    returned as it is, so a benchmark whose folder name forgot a changed option (a seed, a
    weight) would otherwise report the old cell's numbers under the new setting. Keys the
    saved config does not have (dotted keys, older runs) are not compared."""
    path = folder / "config.yaml"
    if not path.is_file():
        return
    saved = yaml.safe_load(path.read_text()) or {}
    for key, value in overrides.items():
        if key in NOT_SETTING or key not in saved:
            continue
        wanted = yaml.safe_load(recipe_value(value))
        if saved[key] != wanted:
            raise SystemExit(
                f"cell {name} ({folder}) was trained with {key}={saved[key]!r}, not {wanted!r}: "
                "give the benchmark another --out, or delete that folder"
            )


def run_cell(out: Path, recipe: str, name: str, overrides: dict, result: str) -> tuple[dict, float]:
    """Train ``recipe`` with ``overrides`` into ``out/name`` (or reuse it when it finished) and
    return (its ``result`` JSON file, CPU seconds). An interrupted cell is resumed; then its
    CPU time covers only the part after the interruption (``resumed`` says so)."""
    folder = out / name
    check_setting(folder, name, overrides)
    if (folder / "summary.json").is_file() and (folder / result).is_file():
        record = json.loads((folder / result).read_text())
        return record, float(record.get("cpu_seconds", float("nan")))
    args = ["train", recipe, *(f"{k}={recipe_value(v)}" for k, v in overrides.items()),
            "--runs-dir", str(out), "--name", name, "--no-progress"]
    resumed = folder.exists()
    if resumed:
        args.append("--resume")
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if genoise(args) != 0:
        raise SystemExit(f"cell {name} failed")
    after = resource.getrusage(resource.RUSAGE_SELF)
    record = json.loads((folder / result).read_text())
    record["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    record["wall_seconds"] = time.perf_counter() - wall
    record["resumed"] = resumed
    (folder / result).write_text(json.dumps(record, indent=1) + "\n")
    return record, record["cpu_seconds"]
