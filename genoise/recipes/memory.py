"""Recipe entry, evaluation and demo section of MemN2N on bAbI.

- ``genoise train memn2n-babi task=all hops=3 …`` → :func:`train`
- ``genoise eval babi RUN_DIR`` → :func:`evaluate`
- ``genoise demo --only memn2n-babi`` → :func:`demo`
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml

from genoise._checks import check_choice
from genoise.data.babi import BABI_SETS, parse_tasks
from genoise.io import atomic_write_text
from genoise.memory.memn2n import EMPTY_SLOTS, ENCODINGS, TYING
from genoise.memory.training import (
    CLIP_MODES,
    MemN2NConfig,
    build_model,
    error_table,
    load_model_state,
    load_run_data,
    task_errors,
    train_memn2n,
)
from genoise.train.run import Run

CHECKPOINT = "checkpoint.pt"


@contextmanager
def _one_thread():
    """MemN2N's ops are tiny: intra-op threads only add overhead (2–5× slower on a busy CPU)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _config(values: dict[str, Any]) -> MemN2NConfig:
    cfg = MemN2NConfig.from_dict(values)
    parse_tasks(cfg.task)
    check_choice("babi_set", cfg.babi_set, BABI_SETS)
    check_choice("encoding", cfg.encoding, ENCODINGS)
    check_choice("tying", cfg.tying, TYING)
    check_choice("empty_slots", cfg.empty_slots, EMPTY_SLOTS)
    check_choice("clip", cfg.clip, CLIP_MODES)
    for key in ("hops", "epochs", "embedding_dim", "memory_size", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    if not 0.0 <= cfg.noise < 1.0:
        raise ValueError(f"noise must be in [0, 1), got {cfg.noise}")
    return cfg


def _require_data_dir(data_dir: Any) -> Path:
    if data_dir is None:
        raise ValueError("bAbI needs a data folder: set GENOISE_DATA or pass data_dir=… "
                         "(the folder holding babi/en and babi/en-10k)")
    return Path(data_dir)


def _write_tables(run_dir: Path, test: dict[int, float], valid: dict[int, float],
                  fallbacks: dict[int, str]) -> None:
    text = "# MemN2N on bAbI: per-task test error\n\n" + error_table(test, fallbacks=fallbacks)
    atomic_write_text(run_dir / "errors.md", text)
    atomic_write_text(run_dir / "errors.json", json.dumps(
        {"test_error": {str(k): v for k, v in test.items()},
         "valid_error": {str(k): v for k, v in valid.items()},
         "mean_test_error": sum(test.values()) / len(test),
         "failed_tasks": sum(e > 0.05 for e in test.values()),
         "fallbacks": {str(k): v for k, v in fallbacks.items()}}, indent=1) + "\n")


def train(run: Run) -> dict[str, Any]:
    """Train MemN2N with ``run.config`` (keys of :class:`MemN2NConfig`), checkpoint every
    epoch (``--resume`` continues), then write ``errors.md`` / ``errors.json``."""
    cfg = _config(run.config)
    data_dir = _require_data_dir(run.data_dir)
    data = load_run_data(cfg, data_dir)
    with _one_thread():
        out = train_memn2n(data, cfg, checkpoint=run.path(CHECKPOINT), resume=run.resume,
                           progress=run.progress, log=run.log)
    model = out["model"]
    test, _ = task_errors(model, data.test)
    valid, _ = task_errors(model, data.valid) if len(data.valid) else ({}, 0.0)
    _write_tables(run.dir, test, valid, data.fallbacks)
    atomic_write_text(run.path("data_dir.txt"), str(data_dir.resolve()) + "\n")
    return {"mean_test_error": sum(test.values()) / len(test),
            "failed_tasks": sum(e > 0.05 for e in test.values()),
            "test_error": {str(k): v for k, v in test.items()},
            "epochs": out["epoch"], "fallbacks": data.fallbacks}


def evaluate(run_dir: str | Path, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Reload a ``memn2n-babi`` run (checkpoint + config) and report per-task test error.

    The data folder is ``data_dir``, else the one the run used, else ``$GENOISE_DATA``.
    Returns ``{"test_error": {task: error}, "mean_test_error", "failed_tasks", "table"}``."""
    from genoise.data.paths import resolve_data_dir

    run_dir = Path(run_dir)
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: missing (not a memn2n-babi run folder?)")
    saved = torch.load(checkpoint, weights_only=False)
    cfg = _config(saved["config"])
    if data_dir is None and (run_dir / "data_dir.txt").is_file():
        data_dir = (run_dir / "data_dir.txt").read_text().strip()
    if data_dir is None and (run_dir / "config.yaml").is_file():
        data_dir = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("data_dir")
    data = load_run_data(cfg, _require_data_dir(resolve_data_dir(data_dir)))
    if saved["vocab"] != data.vocab.words:
        raise ValueError(f"{checkpoint}: its vocabulary does not match the data in {data_dir}")
    model = build_model(cfg, data)
    load_model_state(model, saved["model"], checkpoint)
    test, _ = task_errors(model, data.test)
    return {"test_error": test, "mean_test_error": sum(test.values()) / len(test),
            "failed_tasks": sum(e > 0.05 for e in test.values()), "config": asdict(cfg),
            "epochs": saved["state"]["epoch"], "table": error_table(test, fallbacks=data.fallbacks)}


def demo(run: Run, full: bool) -> str:
    """A short MemN2N run on bAbI task 1 (1k): PE LS RN, d = 20, 3 hops; < 60 s on CPU."""
    import time

    if run.data_dir is None or not (Path(run.data_dir) / "babi").is_dir():
        return "## Memory networks (bAbI)\n\nSkipped: no bAbI data folder (set GENOISE_DATA).\n"
    cfg = MemN2NConfig(task=1, embedding_dim=20, epochs=20 if full else 10, ls_epochs=10,
                       lr_decay_every=5 if full else 2, seed=run.config.get("seed", 0))
    start = time.perf_counter()
    data = load_run_data(cfg, run.data_dir)
    with _one_thread():
        out = train_memn2n(data, cfg, checkpoint=run.path(CHECKPOINT), progress=run.progress, log=run.log)
    test, _ = task_errors(out["model"], data.test)
    seconds = time.perf_counter() - start
    _write_tables(run.dir, test, {}, data.fallbacks)
    return ("## Memory networks: MemN2N on bAbI task 1\n\n"
            f"End-to-end memory network (Sukhbaatar et al. 2015), 3 hops, PE + linear start + random "
            f"noise, d = 20, {cfg.ls_epochs}+{cfg.epochs} epochs on the 1k training set "
            f"({len(data.train)} questions, 10 % held out), {seconds:.0f} s on CPU.\n\n"
            f"| task | test error (%) | paper, PE LS RN (%) |\n|---|---:|---:|\n"
            f"| 1 single supporting fact | {100 * test[1]:.1f} | 0.0 |\n")
