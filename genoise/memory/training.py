"""Training and evaluation of :class:`~genoise.memory.memn2n.MemN2N` on bAbI, following
the authors' released setup (Sukhbaatar et al. 2015, §4.2 and their MemN2N-babi-matlab
code), on :class:`genoise.train.Trainer`:

- SGD without momentum on the cross-entropy **summed** over a batch of 32 questions; each
  epoch visits the training questions in a fresh random order (the last batch is smaller);
- gradient-norm clip 40 applied to each embedding matrix on its own (``clip="per-matrix"``,
  the code's ``Weight.update``, done by an optimizer pre-step hook) or to the whole
  gradient (``"global"``, the Trainer's ``grad_clip``);
- linear start (LS): the first ``ls_epochs`` epochs without the softmax in the hops, at
  ``ls_lr`` (or until the validation loss has not decreased for ``ls_patience`` epochs,
  the paper's wording); then the softmax is re-inserted and the main phase runs
  ``epochs`` epochs at ``lr``, halved every ``lr_decay_every`` epochs. ``lr`` = 0.005 by
  default because the released code keeps LS's rate (``config.init_lrate = 0.01/2`` in
  ``config_babi*.m``); runs without LS use 0.01;
- random noise (RN): ~``noise`` empty memories inserted in the time index during training
  (:func:`~genoise.memory.memn2n.random_noise_time`, drawn from the Trainer's generator).

The two phases are two Trainer runs in sub-folders of the run, ``linear_start/`` and
``main/``, each with its ``last.pt`` (the Trainer's checkpoint envelope, kinds
``memn2n-linear-start`` and ``memn2n``) and ``metrics.jsonl`` (one row per epoch with the
training and validation errors in %). Resume is bit-for-bit: the data order is a pure function of (seed,
phase, epoch), the noise comes from the checkpointed generator, and the LS early-stop
state is checkpointed. The model and every batch live on ``run.device``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genoise._checks import check_choice, check_int, check_positive
from genoise.data.babi import BABI_SETS, BabiData, BabiTensors, load_babi, parse_tasks
from genoise.memory.memn2n import EMPTY_SLOTS, ENCODINGS, TYING, MemN2N, random_noise_time
from genoise.train import Run, Trainer
from genoise.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from genoise.train.seed import derive_seed

CLIP_MODES = ("per-matrix", "global")
KIND, LS_KIND = "memn2n", "memn2n-linear-start"
LS_DIR, MAIN_DIR = "linear_start", "main"
_LS_PHASE, _MAIN_PHASE = 0, 1  # mixed into the seeds of each phase's data order and noise


@dataclass(frozen=True)
class MemN2NConfig:
    """The typed view of ``genoise/recipes/memn2n-babi.yaml``'s configuration (the YAML is
    the one place that holds the defaults; every field is required here)."""

    task: Any
    babi_set: str
    hops: int
    encoding: str
    temporal: bool
    tying: str
    linear_start: bool
    random_noise: bool
    noise: float
    embedding_dim: int
    memory_size: int
    epochs: int
    lr: float
    lr_decay_every: int
    ls_epochs: int
    ls_lr: float
    ls_patience: int
    batch_size: int
    max_grad_norm: float
    clip: str
    empty_slots: str
    init_std: float
    valid_fraction: float
    seed: int

    def __post_init__(self) -> None:
        parse_tasks(self.task)
        for name, allowed in (("babi_set", BABI_SETS), ("encoding", ENCODINGS), ("tying", TYING),
                              ("clip", CLIP_MODES), ("empty_slots", EMPTY_SLOTS)):
            check_choice(name, getattr(self, name), allowed)
        for name in ("hops", "embedding_dim", "memory_size", "epochs", "lr_decay_every", "ls_epochs",
                     "batch_size"):
            check_int(name, getattr(self, name), min=1)
        check_int("ls_patience", self.ls_patience, min=0)
        check_int("seed", self.seed, min=0)
        for name in ("lr", "ls_lr", "max_grad_norm", "init_std"):
            check_positive(name, getattr(self, name))
        for name in ("noise", "valid_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MemN2NConfig:
        """The config of ``values`` (a recipe configuration; other keys are ignored)."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"MemN2N configuration lacks {', '.join(missing)} (the defaults are in "
                             "genoise/recipes/memn2n-babi.yaml)")
        return cls(**{n: values[n] for n in names})


def build_model(cfg: MemN2NConfig, data: BabiData) -> MemN2N:
    """The model of ``cfg`` for ``data``: its vocabulary, its memory width (the slots that
    can be filled, ≤ ``memory_size``) and the PE length of its longest sentence or question."""
    generator = torch.Generator().manual_seed(cfg.seed)
    width = max(data.train.sentences.shape[1], data.train.queries.shape[1])
    return MemN2N(len(data.vocab), data.train.memories.shape[1], cfg.embedding_dim, cfg.hops,
                  encoding=cfg.encoding, temporal=cfg.temporal, tying=cfg.tying, init_std=cfg.init_std,
                  generator=generator, sentence_length=width, empty_slots=cfg.empty_slots)


def load_model_state(model: MemN2N, state: dict[str, Any], checkpoint: Any) -> None:
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
    """Per-task error (fraction of wrong answers) and mean cross-entropy on ``data``,
    computed on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sentences = data.sentences.to(device)
    wrong = torch.zeros(len(data), dtype=torch.bool)
    total_loss = 0.0
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        answers = data.answers[sl].to(device)
        logits = model(data.queries[sl].to(device), sentences, data.memories[sl].to(device), linear=linear)
        total_loss += float(F.cross_entropy(logits, answers, reduction="sum"))
        wrong[sl] = (logits.argmax(dim=1) != answers).cpu()
    model.train(was_training)
    errors = {int(t): float(wrong[data.tasks == t].float().mean()) for t in data.tasks.unique()}
    return errors, total_loss / max(1, len(data))


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


def load_run_data(cfg: MemN2NConfig, data_dir: Any) -> BabiData:
    """:func:`~genoise.data.babi.load_babi` for ``cfg`` (the 10k-fallback warning is not
    repeated: ``BabiData.fallbacks`` records it and every table marks it)."""
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return load_babi(data_dir, parse_tasks(cfg.task), cfg.babi_set, cfg.memory_size,
                         cfg.valid_fraction, seed=cfg.seed)


# ---------------------------------------------------------------------- the Trainer parts
class _Vocabulary:
    """The run's vocabulary in the checkpoint: a resume on other data is refused."""

    def __init__(self, words: list[str]) -> None:
        self.words = list(words)

    def state_dict(self) -> dict[str, Any]:
        return {"words": list(self.words)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["words"]) != self.words:
            raise ValueError(f"the checkpoint's vocabulary ({len(state['words'])} words) differs from the "
                             f"data's ({len(self.words)} words): the run was trained on other data")


class _EpochEnd:
    """Trainer callback at every epoch end: validation loss and error (added to the metrics
    row), the LS patience counter (checkpointed as extra state) and the time budget."""

    def __init__(self, valid: BabiTensors, *, linear: bool, patience: int, deadline: float | None) -> None:
        self.valid, self.linear, self.patience, self.deadline = valid, linear, patience, deadline
        self.best, self.bad, self.ended_at = math.inf, 0, None
        self.out_of_time = False
        self.epoch_seconds: float | None = None  # of the last epoch run in this process
        self._tic = time.perf_counter()

    def __call__(self, trainer: Trainer, step: int, row: dict[str, float]) -> dict[str, float]:
        extra: dict[str, float] = {}
        if len(self.valid):
            errors, loss = task_errors(trainer.model, self.valid, linear=self.linear)
            extra = {"valid_loss": loss, "valid_error_pct": 100 * sum(errors.values()) / len(errors)}
            if self.patience > 0:  # the paper: LS until the validation loss stops decreasing
                self.best, self.bad = (loss, 0) if loss < self.best else (self.best, self.bad + 1)
                if self.bad >= self.patience:
                    self.ended_at = step
        now = time.perf_counter()
        self.epoch_seconds, self._tic = now - self._tic, now
        if self.deadline is not None and now + self.epoch_seconds > self.deadline:
            self.out_of_time = True  # the next epoch would not fit in the budget
        return extra

    @property
    def stop(self) -> bool:
        return self.ended_at is not None or self.out_of_time

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad": self.bad, "ended_at": self.ended_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad, self.ended_at = state["best"], state["bad"], state["ended_at"]


class _PhaseEnd(Exception):  # noqa: N818 — control flow, not an error
    """Raised by the step function before a step when the phase must end early."""


def _step_fn(cfg: MemN2NConfig, sentences: Tensor, *, linear: bool, control: _EpochEnd) -> Any:
    def step(model: MemN2N, batch: tuple[Tensor, ...], generator: torch.Generator) -> dict[str, Tensor]:
        if control.stop:
            raise _PhaseEnd
        queries, memories, answers = batch
        times = random_noise_time(memories > 0, cfg.noise, generator) if cfg.random_noise else None
        logits = model(queries, sentences, memories, time=times, linear=linear)
        loss = F.cross_entropy(logits, answers, reduction="sum")
        return {"loss": loss, "train_error_pct": 100 * (logits.argmax(dim=1) != answers).float().mean()}
    return step


@dataclass
class TrainResult:
    """What :func:`train_memn2n` returns."""

    model: MemN2N
    finished: bool
    ls_epochs: int  # linear-start epochs run (0 without LS)
    epochs: int  # main-phase epochs run


def _phase(model: MemN2N, data: BabiData, cfg: MemN2NConfig, run: Run, *, linear: bool,
           deadline: float | None) -> tuple[int, bool, float | None]:
    """Run one phase (LS or main) in ``run``; returns (epochs done, phase finished, seconds
    of its last epoch run here or None)."""
    phase = _LS_PHASE if linear else _MAIN_PHASE
    seed = derive_seed(cfg.seed, phase)
    train = data.train
    spe = math.ceil(len(train) / cfg.batch_size)  # the Trainer's epoch with drop_last=False
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.ls_lr if linear else cfg.lr)
    scheduler = None if linear else torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 ** (step // spe // cfg.lr_decay_every))
    if cfg.clip == "per-matrix":
        optimizer.register_step_pre_hook(lambda *_: clip_gradients(model, cfg.max_grad_norm, "per-matrix"))
    control = _EpochEnd(data.valid, linear=linear, patience=cfg.ls_patience if linear else 0,
                        deadline=deadline)
    sentences = data.train.sentences.to(next(model.parameters()).device)
    trainer = Trainer(model, optimizer, _step_fn(cfg, sentences, linear=linear, control=control),
                      (train.queries, train.memories, train.answers), drop_last=False,
                      run=run, max_steps=(cfg.ls_epochs if linear else cfg.epochs) * spe,
                      batch_size=cfg.batch_size, scheduler=scheduler, seed=seed,
                      checkpoint_every=spe, log_every=spe,
                      grad_clip=cfg.max_grad_norm if cfg.clip == "global" else None,
                      extra_state={"vocabulary": _Vocabulary(data.vocab.words), "epoch_end": control},
                      callbacks=[control], desc="memn2n linear start" if linear else "memn2n",
                      kind=LS_KIND if linear else KIND, config={**run.config, **asdict(cfg)})
    try:
        trainer.fit()
    except _PhaseEnd:
        pass
    finally:
        run.metrics.close()
    done = control.ended_at is not None or trainer.step == trainer.max_steps
    return trainer.step // spe, done, control.epoch_seconds


def train_memn2n(data: BabiData, cfg: MemN2NConfig, run: Run, *,
                 max_seconds: float | None = None) -> TrainResult:
    """Train (or, with ``run.resume``, continue) MemN2N on ``data`` in ``run``'s folder:
    linear start in ``linear_start/`` (when ``cfg.linear_start``), then the main phase in
    ``main/``; returns the model (on ``run.device``) and how far training got.

    ``run.stop_after`` stops a phase after that step (``RunInterrupted``). With
    ``max_seconds`` the run pauses at the end of the epoch after which the next one would
    overrun the budget (``finished=False``); call again with ``run.resume=True``."""
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    if run.resume:
        _check_vocabulary(run.dir, data)
    model = build_model(cfg, data).to(run.device)
    ls_epochs = 0
    if cfg.linear_start:
        ls_checkpoint = run.dir / LS_DIR / CHECKPOINT_NAME
        if run.resume and (run.dir / MAIN_DIR / CHECKPOINT_NAME).is_file():  # LS is over
            spe = math.ceil(len(data.train) / cfg.batch_size)
            ls_epochs = int(load_checkpoint(ls_checkpoint)["step"]) // spe if ls_checkpoint.is_file() else 0
        else:
            ls_epochs, done, seconds = _phase(model, data, cfg, run.subrun(LS_DIR), linear=True,
                                              deadline=deadline)
            out_of_time = None not in (deadline, seconds) and time.perf_counter() + seconds > deadline
            if not done or out_of_time:
                return TrainResult(model, False, ls_epochs, 0)
    epochs, done, _ = _phase(model, data, cfg, run.subrun(MAIN_DIR), linear=False, deadline=deadline)
    return TrainResult(model, done, ls_epochs, epochs)


def _check_vocabulary(run_dir: Any, data: BabiData) -> None:
    """Refuse in one line to resume a run whose checkpoints hold another vocabulary."""
    for folder in (MAIN_DIR, LS_DIR):
        path = run_dir / folder / CHECKPOINT_NAME
        if path.is_file():
            words = load_checkpoint(path).get("extra_state", {}).get("vocabulary", {}).get("words")
            if words != data.vocab.words:
                raise ValueError(f"{path}: its vocabulary ({len(words or [])} words) differs from the "
                                 f"data's ({len(data.vocab)} words); the run was trained on other data")
            return
