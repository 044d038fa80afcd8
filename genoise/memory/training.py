"""Training and evaluation of :class:`~genoise.memory.memn2n.MemN2N` on bAbI, following
the authors' released setup (Sukhbaatar et al. 2015, §4.2 and their MemN2N-babi-matlab
code): SGD without momentum, summed cross-entropy over a batch of 32, gradient-norm clip
40 applied to each embedding matrix on its own (``clip="per-matrix"``, as the code's
``Weight.update``; ``"global"`` clips the whole gradient), N(0, 0.1²) initialisation;
60 epochs halved every 15 (joint). Linear start (LS): first ``ls_epochs`` epochs without
the softmax in the memory layers at ``ls_lr`` = 0.005 (or until the validation loss stops
decreasing when ``ls_patience > 0``), then the softmax is re-inserted and the main
schedule runs at ``lr`` — 0.005 by default because the released code keeps LS's rate
(``config.init_lrate = 0.01/2`` in ``config_babi*.m``); runs without LS use 0.01.
Random noise (RN): ~10 % empty memories in the time index during training.

Checkpoints (every epoch) make training resumable and let long runs be split into
several time-limited invocations (``max_seconds``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genoise._checks import check_choice
from genoise.data.babi import BabiData, BabiTensors, load_babi, parse_tasks
from genoise.io import atomic_torch_save
from genoise.memory.memn2n import MemN2N, random_noise_time

CLIP_MODES = ("per-matrix", "global")


@dataclass
class MemN2NConfig:
    """Hyper-parameters (defaults: the paper's joint PE LS RN setup, 3 hops, d = 50)."""

    task: Any = "all"
    babi_set: str = "en"
    hops: int = 3
    encoding: str = "pe"
    temporal: bool = True
    tying: str = "adjacent"
    linear_start: bool = True
    random_noise: bool = True
    noise: float = 0.1
    embedding_dim: int = 50
    memory_size: int = 50
    empty_slots: str = "zero"
    epochs: int = 60
    lr: float = 0.005
    lr_decay_every: int = 15
    ls_epochs: int = 30
    ls_lr: float = 0.005
    ls_patience: int = 0
    batch_size: int = 32
    max_grad_norm: float = 40.0
    clip: str = "per-matrix"
    init_std: float = 0.1
    valid_fraction: float = 0.1
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MemN2NConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def build_model(cfg: MemN2NConfig, data: BabiData) -> MemN2N:
    """The model of ``cfg`` for ``data``: its vocabulary, its memory width (the slots that
    can be filled, ≤ ``memory_size``) and the PE length of its longest sentence or question."""
    generator = torch.Generator().manual_seed(cfg.seed)
    width = max(data.train.sentences.shape[1], data.train.queries.shape[1])
    return MemN2N(len(data.vocab), data.train.memories.shape[1], cfg.embedding_dim, cfg.hops,
                  encoding=cfg.encoding, temporal=cfg.temporal, tying=cfg.tying, init_std=cfg.init_std,
                  generator=generator, sentence_length=width, empty_slots=cfg.empty_slots)


def load_model_state(model: MemN2N, state: dict[str, Any], checkpoint: str | Path) -> None:
    """``model.load_state_dict(state)`` with a one-line error naming the checkpoint when the
    shapes differ (a run made with other data, memory width or an older genoise)."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{checkpoint}: does not fit this model/data ({first})") from None


def clip_gradients(model: MemN2N, max_norm: float, mode: str) -> None:
    """Clip the gradient norm to ``max_norm``: over all parameters (``"global"``) or per
    embedding matrix (``"per-matrix"``: word and time rows of one matrix together, as the
    released code stores the time words in the embedding table)."""
    if mode == "global":
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return
    groups = [[w, t] for w, t in zip(model.words, model.time, strict=False)]
    groups += [[w] for w in list(model.words)[len(model.time):]]
    if model.H is not None:
        groups.append([model.H.weight])
    for group in groups:
        torch.nn.utils.clip_grad_norm_(group, max_norm)


@torch.no_grad()
def task_errors(model: MemN2N, data: BabiTensors, *, linear: bool = False,
             batch_size: int = 1000) -> tuple[dict[int, float], float]:
    """Per-task error (fraction of wrong answers) and mean cross-entropy on ``data``."""
    model.eval()
    wrong = torch.zeros(len(data), dtype=torch.bool)
    total_loss = 0.0
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        logits = model(data.queries[sl], data.sentences, data.memories[sl], linear=linear)
        total_loss += float(F.cross_entropy(logits, data.answers[sl], reduction="sum"))
        wrong[sl] = logits.argmax(dim=1) != data.answers[sl]
    errors = {int(t): float(wrong[data.tasks == t].float().mean()) for t in data.tasks.unique()}
    return errors, total_loss / max(1, len(data))


def learning_rate(cfg: MemN2NConfig, epoch: int, ls_end: int) -> float:
    if epoch < ls_end:
        return cfg.ls_lr
    return cfg.lr * 0.5 ** ((epoch - ls_end) // cfg.lr_decay_every)


def train_memn2n(data: BabiData, cfg: MemN2NConfig, *, checkpoint: str | Path | None = None,
                 resume: bool = False, progress: bool = False, log: Any = None,
                 max_seconds: float | None = None) -> dict[str, Any]:
    """Train (or resume) and return ``{"model", "finished", "history", "epoch"}``.

    ``log(record, step)`` receives one row per epoch. With ``max_seconds`` the loop
    stops after the epoch that exceeds the budget (``finished=False``); rerun with
    ``resume=True`` to continue from ``checkpoint``."""
    torch.manual_seed(cfg.seed)
    check_choice("clip", cfg.clip, CLIP_MODES)
    model = build_model(cfg, data)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    ls_end = cfg.ls_epochs if cfg.linear_start else 0
    state = {"epoch": 0, "ls_end": ls_end, "history": [], "best_ls_loss": math.inf, "ls_bad": 0}
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        saved = torch.load(checkpoint, weights_only=False)
        if saved["vocab"] != data.vocab.words:
            raise ValueError(f"{checkpoint}: vocabulary differs from the data being trained on")
        load_model_state(model, saved["model"], checkpoint)
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        state = saved["state"]
    total = state["ls_end"] + cfg.epochs
    train, start_time, first_epoch = data.train, time.perf_counter(), state["epoch"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state["epoch"], desc="memn2n", unit="epoch")
    while state["epoch"] < total:
        epoch = state["epoch"]
        linear = epoch < state["ls_end"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch, state["ls_end"])
        model.train()
        order = torch.randperm(len(train), generator=generator)
        train_loss = 0.0
        for start in range(0, len(train), cfg.batch_size):
            idx = order[start: start + cfg.batch_size]
            memories = train.memories[idx]
            times = random_noise_time(memories > 0, cfg.noise, generator) if cfg.random_noise else None
            logits = model(train.queries[idx], train.sentences, memories, time=times, linear=linear)
            loss = F.cross_entropy(logits, train.answers[idx], reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model, cfg.max_grad_norm, cfg.clip)
            optimizer.step()
            train_loss += float(loss.detach())
        valid_errors, valid_loss = task_errors(model, data.valid, linear=linear) if len(data.valid) \
            else ({}, math.nan)
        if not all(math.isfinite(float(p.detach().abs().max())) for p in model.parameters()):
            raise FloatingPointError(f"MemN2N parameters became NaN/Inf at epoch {epoch}; lower lr")
        if linear and cfg.ls_patience > 0:  # paper: LS until the validation loss stops decreasing
            if valid_loss < state["best_ls_loss"]:
                state["best_ls_loss"], state["ls_bad"] = valid_loss, 0
            else:
                state["ls_bad"] += 1
                if state["ls_bad"] >= cfg.ls_patience:
                    state["ls_end"] = epoch + 1
                    total = state["ls_end"] + cfg.epochs
        record = {"epoch": epoch + 1, "linear_start": linear, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": train_loss / len(train), "valid_loss": valid_loss,
                  "valid_error": sum(valid_errors.values()) / max(1, len(valid_errors))}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if log is not None:
            log(record, epoch + 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_err=f"{record['valid_error']:.3f}")
        if checkpoint is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "generator": generator.get_state(), "state": state,
                               "config": asdict(cfg), "vocab": data.vocab.words}, checkpoint)
        elapsed = time.perf_counter() - start_time
        epoch_seconds = elapsed / (state["epoch"] - first_epoch)
        if max_seconds is not None and elapsed + epoch_seconds > max_seconds and state["epoch"] < total:
            break  # the next epoch would not fit in the budget
    if bar is not None:
        bar.close()
    return {"model": model, "finished": state["epoch"] >= total, "history": state["history"],
            "epoch": state["epoch"]}


def error_table(errors: dict[int, float], title: str = "test error (%)",
                fallbacks: dict[int, str] | None = None) -> str:
    """Markdown table of per-task errors (in %) and their mean; † marks fallback tasks."""
    fallbacks = fallbacks or {}
    lines = [f"| task | {title} |", "|---|---:|"]
    for task in sorted(errors):
        mark = " †" if task in fallbacks else ""
        lines.append(f"| {task}{mark} | {100 * errors[task]:.1f} |")
    mean = sum(errors.values()) / len(errors)
    failed = sum(e > 0.05 for e in errors.values())
    lines.append(f"| **mean** | **{100 * mean:.1f}** |")
    lines.append(f"| failed tasks (> 5 %) | {failed} |")
    if fallbacks:
        lines.append("\n† trained on the 1k file: " + ", ".join(fallbacks.values()) + " (10k file missing)")
    return "\n".join(lines) + "\n"


def load_run_data(cfg: MemN2NConfig, data_dir: str | Path) -> BabiData:
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return load_babi(data_dir, parse_tasks(cfg.task), cfg.babi_set, cfg.memory_size,
                         cfg.valid_fraction, seed=cfg.seed)
