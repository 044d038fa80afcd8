"""``genoise train``: validate everything, then own the run folder, then run the recipe.

Order matters (see :mod:`genoise.train.run_folder`): the configuration, its ranges, the
device and the data folder are checked before anything is written, so a rejected command
leaves an existing run folder untouched; then the folder is locked, stale temporaries are
removed and ``config.yaml`` is written atomically; the recipe runs; its status
(``finished``, ``stopped``, ``diverged``, ``failed``, ``interrupted``) and the data it read
go into ``config.yaml`` at the end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from genoise.recipes import Recipe, apply_overrides, load_recipe, resolve_config
from genoise.train import run_folder


def _saved_config(run_dir: Path, recipe: Recipe) -> tuple[dict[str, Any], dict[str, Any]]:
    """The configuration and the ``run`` section of an existing run's ``config.yaml``."""
    try:
        saved, info = run_folder.read_run_config(run_dir)
    except FileNotFoundError:
        raise ValueError(f"--resume: {run_dir / run_folder.CONFIG_NAME} is missing, so the run cannot "
                         "be continued (--overwrite starts it again)") from None
    except ValueError as err:
        raise ValueError(f"--resume: {err}") from err
    if info.get("recipe") not in (None, recipe.name):
        raise ValueError(f"--resume: {run_dir} is a {info['recipe']!r} run, not {recipe.name!r}")
    return {k: saved.get(k, v) for k, v in recipe.config.items()}, info


def follower_rank() -> int:
    """This process's rank when ``torchrun`` started it and it is not rank 0 (else 0)."""
    return int(os.environ.get("RANK", "0") or 0) if "WORLD_SIZE" in os.environ else 0


def resolve_run(args: argparse.Namespace) -> tuple[Recipe, Path, dict[str, Any], dict[str, Any], list[str]]:
    """Everything ``genoise train`` needs, validated, with nothing written yet (the folder
    checks are rank 0's: under torchrun the other ranks never write)."""
    recipe = load_recipe(args.recipe)
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1, got {args.stop_after}")
    run_dir = run_folder.run_path(args.runs_dir, recipe.name if args.name is None else args.name)
    if not follower_rank():
        run_folder.check_reuse(run_dir, resume=args.resume, overwrite=args.overwrite)
    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={args.data_dir}")
    if args.device:
        overrides.append(f"device={args.device}")
    info: dict[str, Any] = {}
    changes: list[str] = []
    if args.resume:
        base, info = _saved_config(run_dir, recipe)
        config = apply_overrides(recipe, base, overrides)
        changed = [k for k in config if config[k] != base.get(k)]
        refused = [k for k in changed if k in recipe.fixed_keys]
        if refused:
            raise ValueError(f"--resume cannot change {', '.join(refused)} (they define the model or "
                             f"the data of run {run_dir}); start a new run with --name")
        changes = [f"{k}: {base.get(k)!r} -> {config[k]!r}" for k in changed]
    else:
        config = resolve_config(recipe, overrides)
    module = importlib.import_module(recipe.entry.partition(":")[0])
    if callable(getattr(module, "validate", None)):  # a recipe module's own cross-key checks
        module.validate(config)
    return recipe, run_dir, config, info, changes


def summary_table(summary: dict[str, Any]) -> str:
    """The end-of-run summary as a short two-column table (nested values as JSON)."""
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}" if math.isfinite(value) else str(value)
        if isinstance(value, (dict, list)):
            text = json.dumps(value, default=str)
            return text if len(text) <= 70 else text[:67] + "..."
        return str(value)

    rows = [(str(k), show(v)) for k, v in summary.items()]
    if not rows:
        return "(no summary)"
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def train(args: argparse.Namespace) -> int:
    """Run ``genoise train`` (see the module docstring); returns the exit status."""
    from genoise.data.paths import data_reads, resolve_data_dir
    from genoise.train import DivergedError, NonFiniteLossError, Run, RunInterrupted
    from genoise.train.run import resolve_device

    recipe, run_dir, config, previous, changes = resolve_run(args)
    device = resolve_device(config["device"])
    data_dir = resolve_data_dir(config["data_dir"])
    if follower_rank():  # torchrun's rank > 0: run the recipe, write nothing (rank 0 owns the folder)
        run = Run(run_dir, config=config, device=device, data_dir=data_dir, resume=args.resume,
                  progress=False, writer=False)
        try:
            recipe.load_entry()(run)
        except RunInterrupted:
            pass
        return 0
    with run_folder.RunLock(run_dir) as lock:
        run_folder.check_reuse(run_dir, resume=args.resume, overwrite=args.overwrite)  # a racing writer
        if args.overwrite:
            run_folder.clear(run_dir)
        lock.write_holder()
        removed = run_folder.remove_stale_temporaries(run_dir)
        if removed:
            print(f"genoise: removed {len(removed)} temporary file(s) left by an interrupted write",
                  file=sys.stderr)
        info = run_folder.provenance(recipe=recipe.name, device=device, data_dir=data_dir)
        if args.resume:
            info["started"] = previous.get("started", info["started"])
            info["resumed"] = [*previous.get("resumed", []),
                               {"at": run_folder.now(), "changed": changes}]
            print(f"genoise: resuming {run_dir}" + (f"; changed {'; '.join(changes)}" if changes else ""),
                  file=sys.stderr)
        run_folder.write_run_config(run_dir, config, info)
        data_reads(clear=True)
        run = Run(run_dir, config=config, device=device, data_dir=data_dir, resume=args.resume,
                  progress=not args.no_progress, tensorboard=args.tensorboard, stop_after=args.stop_after)
        status = "failed"
        try:
            summary = recipe.load_entry()(run) or {}
            status = "finished"
        except RunInterrupted as stop:
            status = "stopped"
            print(f"genoise: {stop}", file=sys.stderr)
            return 0
        except DivergedError:
            status = "diverged"
            raise
        except NonFiniteLossError:
            status = "diverged (non-finite)"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            run.metrics.close()
            before = previous.get("data_read", [])
            info.update(status=status, ended=run_folder.now(),
                        data_read=[*before, *[r for r in data_reads(clear=True) if r not in before]])
            run_folder.write_run_config(run_dir, config, info)
        run.save_summary(summary)
    print(f"{recipe.name}: finished\n{summary_table(summary)}\nrun folder: {run_dir}")
    return 0
