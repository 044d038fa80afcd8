"""The memory capability's top layer: MemN2N on bAbI (Sukhbaatar et al. 2015).

- ``genoise train memn2n-babi task=all hops=3 …`` → :func:`train`
- ``genoise eval babi RUN_DIR [data_dir=…] [split=test|valid|train]`` → :func:`evaluate`
- ``genoise demo --only memn2n`` → :func:`demo`

The library parts (config, model building, the two training phases on the Trainer, the
per-task error) live in :mod:`genoise.memory.training`; the defaults in
``memn2n-babi.yaml`` beside this file.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from genoise._checks import check_choice
from genoise.data.paths import resolve_data_dir
from genoise.io import atomic_write_text
from genoise.memory.training import (
    KIND,
    LS_DIR,
    MAIN_DIR,
    MemN2NConfig,
    build_model,
    error_table,
    load_model_state,
    load_run_data,
    task_errors,
    train_memn2n,
)
from genoise.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from genoise.train.run import Run
from genoise.train.run_folder import read_run_config

RECIPE = "memn2n-babi"
EVALUATE_OPTIONS = {"data_dir": "data folder (default: the one the run used, else $GENOISE_DATA)",
                    "split": "test (default), valid or train"}
SPLITS = ("test", "valid", "train")


@contextmanager
def _one_thread() -> Iterator[None]:
    """MemN2N's ops are tiny: intra-op threads only add overhead (2–5× slower on a busy CPU)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _percent(errors: dict[int, float]) -> dict[str, float]:
    return {str(task): round(100 * error, 2) for task, error in sorted(errors.items())}


def _write_tables(run_dir: Path, test: dict[int, float], valid: dict[int, float],
                  fallbacks: dict[int, str]) -> None:
    text = "# MemN2N on bAbI: per-task test error\n\n" + error_table(test, fallbacks=fallbacks)
    atomic_write_text(run_dir / "errors.md", text)
    atomic_write_text(run_dir / "errors.json", json.dumps(
        {"test_error_pct": _percent(test), "valid_error_pct": _percent(valid),
         "mean_test_error_pct": 100 * sum(test.values()) / len(test),
         "failed_tasks": sum(e > 0.05 for e in test.values()),
         "fallbacks": {str(k): v for k, v in fallbacks.items()}}, indent=1) + "\n")


def train(run: Run) -> dict[str, Any]:
    """Train MemN2N with ``run.config`` (linear start in ``linear_start/``, main phase in
    ``main/``, each with ``last.pt``; ``--resume`` continues), then write ``errors.md`` /
    ``errors.json``. Returns the summary (errors in %)."""
    cfg = MemN2NConfig.from_dict(run.config)
    data = load_run_data(cfg, run.data_dir)
    with _one_thread():
        result = train_memn2n(data, cfg, run)
    test, _ = task_errors(result.model, data.test)
    valid, _ = task_errors(result.model, data.valid) if len(data.valid) else ({}, 0.0)
    _write_tables(run.dir, test, valid, data.fallbacks)
    summary: dict[str, Any] = {"mean_test_error_pct": 100 * sum(test.values()) / len(test),
                               "failed_tasks": sum(e > 0.05 for e in test.values()),
                               "epochs": f"{result.ls_epochs} LS + {result.epochs}"}
    if len(test) > 1:
        summary["test_error_pct"] = _percent(test)
    if data.fallbacks:
        summary["fallbacks"] = {str(k): v for k, v in data.fallbacks.items()}
    return summary


def _recorded_data_dir(run_dir: Path) -> Any:
    """The data folder a run used, from its ``config.yaml`` (``run.data_dir``, else ``data_dir``)."""
    try:
        saved, info = read_run_config(run_dir)
    except (FileNotFoundError, ValueError):
        return None
    return info.get("data_dir") or saved.get("data_dir")


def evaluate(run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Reload a ``memn2n-babi`` run (``main/last.pt`` and the configuration it holds) and
    report its per-task error on ``split`` (``test`` by default), in %.

    Options: ``data_dir`` (default: the folder the run used, else ``$GENOISE_DATA``) and
    ``split`` (test, valid, train). Returns ``{"split", "error_pct": {task: %},
    "mean_error_pct", "failed_tasks", "finished", "table"}``."""
    unknown = sorted(set(options) - set(EVALUATE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for the bAbI evaluation; allowed: "
                         + "; ".join(f"{k} ({v})" for k, v in EVALUATE_OPTIONS.items()))
    split = check_choice("split", options.get("split", "test"), SPLITS)
    run_dir = Path(run_dir)
    checkpoint = run_dir / MAIN_DIR / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: missing (not a {RECIPE} run folder, or its main phase "
                                "has not started)")
    state = load_checkpoint(checkpoint)
    if state.get("kind") != KIND:
        raise ValueError(f"{checkpoint} holds a {state.get('kind')!r} run, not a {RECIPE} model ({KIND!r})")
    cfg = MemN2NConfig.from_dict(state["config"])
    data_dir = options.get("data_dir") or _recorded_data_dir(run_dir)
    data = load_run_data(cfg, resolve_data_dir(None if data_dir is None else str(data_dir)))
    if state["extra_state"]["vocabulary"]["words"] != data.vocab.words:
        raise ValueError(f"{checkpoint}: its vocabulary does not match the bAbI data in {data_dir}")
    tensors = getattr(data, split)
    if not len(tensors):
        raise ValueError(f"split={split} is empty for this run (valid_fraction={cfg.valid_fraction})")
    model = build_model(cfg, data)
    load_model_state(model, state["model"], checkpoint)
    with _one_thread():
        errors, _ = task_errors(model, tensors)
    return {"split": split, "error_pct": _percent(errors),
            "mean_error_pct": 100 * sum(errors.values()) / len(errors),
            "failed_tasks": sum(e > 0.05 for e in errors.values()),
            "finished": state["step"] == state["max_steps"],
            "table": error_table(errors, title=f"{split} error (%)", fallbacks=data.fallbacks)}


def demo(run: Run, full: bool) -> str:
    """A short MemN2N run on bAbI task 1 (1k): PE LS RN, d = 20, 3 hops; < 60 s on CPU."""
    from genoise.recipes import load_recipe, resolve_config

    if run.data_dir is None or not (Path(run.data_dir) / "babi").is_dir():
        return "## Memory networks (bAbI)\n\nSkipped: no bAbI data folder (set GENOISE_DATA).\n"
    epochs = 20 if full else 10
    config = resolve_config(load_recipe(RECIPE), [
        "task=1", "embedding_dim=20", f"epochs={epochs}", "ls_epochs=10",
        f"lr_decay_every={5 if full else 2}", f"seed={run.config.get('seed', 0)}"])
    for phase in (LS_DIR, MAIN_DIR):  # a fresh run each time (metrics would be appended)
        shutil.rmtree(run.dir / phase, ignore_errors=True)
    section = Run(run.dir, config=config, device=run.device, data_dir=run.data_dir, progress=run.progress)
    start = time.perf_counter()
    cfg = MemN2NConfig.from_dict(config)
    data = load_run_data(cfg, run.data_dir)
    with _one_thread():
        result = train_memn2n(data, cfg, section)
    test, _ = task_errors(result.model, data.test)
    seconds = time.perf_counter() - start
    _write_tables(run.dir, test, {}, data.fallbacks)
    return ("## Memory networks: MemN2N on bAbI task 1\n\n"
            f"End-to-end memory network (Sukhbaatar et al. 2015), 3 hops, PE + linear start + random "
            f"noise, d = 20, {cfg.ls_epochs}+{cfg.epochs} epochs on the 1k training set "
            f"({len(data.train)} questions, 10 % held out), {seconds:.0f} s on {run.device}. "
            "Per-task table: [errors.md](errors.md).\n\n"
            f"| task | test error (%) | paper, PE LS RN (%) |\n|---|---:|---:|\n"
            f"| 1 single supporting fact | {100 * test[1]:.1f} | 0.0 |\n")
