"""``Trainer``: a small, readable training loop for in-memory tensor data sets.

One step: draw the next batch of a per-epoch permutation, ``loss = step_fn(model,
batch, generator)``, backward, (clip), check finiteness, optimizer step, (weight average),
scheduler step.
Every ``log_every`` steps a metrics row goes to ``metrics.jsonl``; every
``checkpoint_every`` steps, at the end and on Ctrl-C the whole training state goes to
``last.pt`` (atomically). ``fit(resume=True)`` continues from ``last.pt`` and — on CPU
with a fixed seed — ends with bit-for-bit the parameters of an uninterrupted run: the
data order is a pure function of (seed, step) and every RNG state is checkpointed.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``, each rank takes
a disjoint slice of the same epoch permutation and only rank 0 writes files.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from genoise._checks import check_int, check_positive, check_same_batch
from genoise.io import MetricsWriter
from genoise.train import distributed as D
from genoise.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from genoise.train.ema import ema_model, update_ema
from genoise.train.run import Run, resolve_device
from genoise.train.seed import (
    capture_rng_state,
    derive_seed,
    portable_rng_state,
    seed_everything,
    set_rng_state,
)

StepOutput = Tensor | Mapping[str, Any]
BatchSource = Callable[[int, torch.Generator], tuple[Tensor, ...]]
StepFn = Callable[[nn.Module, tuple[Tensor, ...], torch.Generator], StepOutput]
Callback = Callable[["Trainer", int, dict[str, float]], Mapping[str, Any] | None]

# purposes mixed into derive_seed(seed, purpose, key) so the streams are unrelated
_GLOBAL, _GENERATOR, _PERMUTATION, _DATA = 0, 1, 2, 3


def epoch_permutation(seed: int, epoch: int, num_samples: int) -> Tensor:
    """The sample order of ``epoch``: ``randperm(N)`` from a CPU generator seeded by
    ``derive_seed(seed, 2, epoch)`` — the data order of the Trainer and of
    :class:`genoise.train.cluster.Cluster`, each rank or worker taking a contiguous slice."""
    gen = torch.Generator().manual_seed(derive_seed(seed, _PERMUTATION, epoch))
    return torch.randperm(num_samples, generator=gen)


class NonFiniteLossError(ValueError):
    """The loss or the gradient norm became NaN/Inf; training stopped before the update."""


class DivergedError(NonFiniteLossError):
    """The loss or the gradient norm grew past ``diverge_factor`` times its start; training
    stopped before the update (the last good checkpoint is kept)."""


class RunInterrupted(Exception):  # noqa: N818 — an interruption, not an error
    """Raised by a training loop after it finished and checkpointed step ``run.stop_after``
    (``genoise train --stop-after K``); ``--resume`` continues from there."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"stopped after step {step} as asked; checkpoint {checkpoint}; "
                         "continue with --resume")
        self.step, self.checkpoint = step, checkpoint


def _as_tensors(data: Any) -> tuple[Tensor, ...]:
    if isinstance(data, TensorDataset):
        data = data.tensors
    elif isinstance(data, Tensor):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data or not all(isinstance(t, Tensor) for t in data):
        raise ValueError(f"data must be a Tensor, a tuple of Tensors or a TensorDataset; got {type(data)!r}")
    if any(t.ndim == 0 for t in data):
        raise ValueError("data tensors must have a leading sample dimension, got a 0-d tensor")
    check_same_batch(**{f"data[{i}]": t for i, t in enumerate(data)})
    return tuple(data)


class Trainer:
    """Train ``model`` with ``optimizer`` on in-memory ``data`` for ``max_steps`` updates.

    Parameters
    ----------
    model : nn.Module            moved to ``device``; wrapped in DDP when world size > 1
    optimizer : torch.optim.Optimizer
    step_fn : callable
        ``step_fn(model, batch, generator) -> loss`` where ``batch`` is a tuple of tensors
        (B, ...) on ``device`` and ``generator`` a ``torch.Generator`` on ``device`` for any
        randomness (noise, augmentations, negatives). Returns a scalar loss tensor, or a
        dict with ``"loss"`` and other scalars to log. Under DDP call ``model(...)`` (the
        wrapper) so gradients are synchronised.
    data : tuple of Tensors (N, ...) | TensorDataset | Tensor | batch source
        in-memory samples (shuffled per epoch), or a callable ``sample(step, generator) ->
        tuple of Tensors`` drawing the batch of update ``step`` with a CPU generator that
        the Trainer seeds and checkpoints (a simulator, a sequence sampler…); it must be a
        pure function of its arguments and its own seeded state for resume to be exact
    steps_per_epoch : int, optional  with a batch source only: updates per "epoch" (logged)
    run : Run, optional          run folder, device, progress and metrics writer come from it
    run_dir : path, optional     alternative to ``run``; with neither, nothing is written
    max_steps : int              total number of optimizer updates
    batch_size : int             per process
    drop_last : bool             in-memory data: drop the last incomplete batch of an epoch
        (default), or train on it too (every sample once per epoch)
    scheduler : LR scheduler, optional, stepped after every update
    seed : int                   data order, the step generator and the global RNGs
    checkpoint_every : int | None  also checkpoint at the end and on Ctrl-C
    log_every : int
    grad_clip : float, optional  max global gradient L2 norm
    progress, tensorboard : bool, optional (default: from ``run``, else True / False)
    device : str | torch.device, optional (default: ``run.device``, else the model's device)
    extra_state : dict name → object with ``state_dict()`` / ``load_state_dict()``,
        checkpointed with the model (a replay buffer, an EMA teacher…)
    ema_decay : float in (0, 1), optional
        also keep an exponential moving average of the weights (:mod:`genoise.train.ema`),
        updated after every optimizer step: ``trainer.ema`` (an ``AveragedModel``; its
        ``module`` is the averaged network), checkpointed as ``extra_state["ema"]``
    callbacks : callables ``cb(trainer, step, metrics) -> dict | None`` run on every rank at
        every log (an online probe, an evaluation); a returned dict is added to the row
    ddp_kwargs : dict, optional  extra ``DistributedDataParallel`` arguments
    desc : str                   what is trained, shown on the progress bar
    kind : str                   what the checkpoint holds (``"ssl-vicreg"``); a resume from
        a checkpoint of another kind is refused
    config : dict, optional      the run's configuration, stored in the checkpoint
    diverge_factor : float | None
        stop as diverged when |loss| > factor·max(|loss at the first step|, 1) or the
        gradient norm > factor·max(first gradient norm, 1) (``None``: only NaN/Inf stop).
        With ``grad_clip`` only the loss counts: a clipped update is bounded whatever the
        gradient's norm, so a spike in it is what clipping is for, not a divergence

    Raises ``NonFiniteLossError`` / ``DivergedError`` (before the update; the last good
    checkpoint is kept) and ``RunInterrupted`` after step ``run.stop_after``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, step_fn: StepFn, data: Any, *,
                 run: Run | None = None, run_dir: str | Path | None = None, max_steps: int,
                 batch_size: int, scheduler: Any = None, seed: int = 0,
                 checkpoint_every: int | None = 1000, log_every: int = 50,
                 grad_clip: float | None = None, progress: bool | None = None,
                 tensorboard: bool | None = None, device: str | torch.device | None = None,
                 extra_state: Mapping[str, Any] | None = None, ema_decay: float | None = None,
                 callbacks: Iterable[Callback] = (), ddp_kwargs: Mapping[str, Any] | None = None,
                 steps_per_epoch: int | None = None, drop_last: bool = True, desc: str = "train",
                 kind: str = "trainer",
                 config: Mapping[str, Any] | None = None, diverge_factor: float | None = 1e3) -> None:
        if run is not None and run_dir is not None:
            raise ValueError("give either run or run_dir, not both")
        if not callable(step_fn):
            raise ValueError(f"step_fn must be callable, got {type(step_fn)!r}")
        self.max_steps = check_int("max_steps", max_steps)
        self.batch_size = check_int("batch_size", batch_size)
        self.log_every = check_int("log_every", log_every)
        self.checkpoint_every = None if checkpoint_every is None else check_int(
            "checkpoint_every", checkpoint_every)
        self.grad_clip = None if grad_clip is None else float(check_positive("grad_clip", grad_clip))
        derive_seed(seed)  # validates
        self.seed = int(seed)
        self.extra_state = dict(extra_state or {})
        for name, obj in self.extra_state.items():
            if not all(callable(getattr(obj, m, None)) for m in ("state_dict", "load_state_dict")):
                raise ValueError(f"extra_state[{name!r}] must have state_dict() and load_state_dict()")
        self.callbacks = list(callbacks)
        if not all(callable(cb) for cb in self.callbacks):
            raise ValueError("every callback must be callable")
        self.step_fn, self.optimizer, self.scheduler = step_fn, optimizer, scheduler
        self.desc, self.kind = str(desc), str(kind)
        self.config = dict(config) if config is not None else (dict(run.config) if run is not None else {})
        self.diverge_factor = None if diverge_factor is None else float(
            check_positive("diverge_factor", diverge_factor))
        self._reference: list[float] | None = None  # |loss| and grad norm of the first step

        D.init_distributed()
        self.rank, self.world_size = D.rank(), D.world_size()
        self.sample: BatchSource | None = None
        if callable(data) and not isinstance(data, (Tensor, TensorDataset)):
            self.sample, self.data = data, ()
            self.num_samples = 0
            self.steps_per_epoch = 1 if steps_per_epoch is None else check_int(
                "steps_per_epoch", steps_per_epoch)
        else:
            if steps_per_epoch is not None:
                raise ValueError("steps_per_epoch is only for a batch source; with in-memory data "
                                 "it follows from N, the world size, batch_size and drop_last")
            self.data = _as_tensors(data)
            self.num_samples = self.data[0].shape[0]
            per_rank = self.num_samples // self.world_size
            self.steps_per_epoch = (per_rank // self.batch_size if drop_last
                                    else -(-per_rank // self.batch_size))
            if self.steps_per_epoch == 0:
                raise ValueError(f"batch_size={batch_size} is larger than the {per_rank} samples per "
                                 f"process (N={self.num_samples}, world size {self.world_size})")

        self.device = self._resolve_device(device, run, model)
        self.model = model.to(self.device)
        self.train_model: nn.Module = self.model
        self.ema = None if ema_decay is None else ema_model(self.model, ema_decay)
        if self.ema is not None:
            if "ema" in self.extra_state:
                raise ValueError("extra_state['ema'] is the Trainer's weight average (ema_decay); "
                                 "give yours another name")
            self.extra_state["ema"] = self.ema
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                                   **dict(ddp_kwargs or {}))
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(derive_seed(self.seed, _GENERATOR, self.rank))
        self.data_generator = torch.Generator()  # CPU: a batch source's randomness
        self.data_generator.manual_seed(derive_seed(self.seed, _DATA, self.rank))

        self._run = run
        self.run_dir = run.dir if run is not None else (Path(run_dir) if run_dir is not None else None)
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME if self.run_dir is not None else None
        self.progress = (run.progress if run is not None else True) if progress is None else bool(progress)
        self._metrics: MetricsWriter | None = None
        self._owns_metrics = False
        if self.is_main and run is not None:
            self._metrics = run.metrics
        elif self.is_main and self.run_dir is not None:
            self._metrics = MetricsWriter(self.run_dir, tensorboard=bool(tensorboard))
            self._owns_metrics = True

        self.step = 0
        self.last_metrics: dict[str, Any] = {}
        self._perm_epoch: int | None = None
        self._perm = torch.empty(0, dtype=torch.long)
        self._updating = False
        self._snapshot: tuple[int, Any] | None = None

    # ------------------------------------------------------------------ setup helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _resolve_device(self, device: Any, run: Run | None, model: nn.Module) -> torch.device:
        if device is None and run is not None:
            device = run.device
        if device is None:
            param = next(iter(model.parameters()), None)
            device = param.device if param is not None else torch.device("cpu")
        device = resolve_device(device)
        if self.world_size > 1 and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", D.local_rank())
        return device

    # ------------------------------------------------------------------ data order
    def batch_indices(self, step: int) -> Tensor:
        """Sample indices of the batch for update ``step`` (0-based) on this rank: epoch
        ``e = step // steps_per_epoch`` uses ``randperm(N)`` seeded by (seed, e); rank r
        takes the r-th of ``world_size`` contiguous slices of it."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            perm = epoch_permutation(self.seed, epoch, self.num_samples)
            per_rank = self.num_samples // self.world_size
            self._perm = perm[self.rank * per_rank:(self.rank + 1) * per_rank]
            self._perm_epoch = epoch
        return self._perm[position * self.batch_size:(position + 1) * self.batch_size]

    # ------------------------------------------------------------------ one update
    def _batch(self, step: int) -> tuple[Tensor, ...]:
        if self.sample is None:
            index = self.batch_indices(step)
            return tuple(t[index].to(self.device, non_blocking=True) for t in self.data)
        batch = self.sample(step, self.data_generator)
        if isinstance(batch, Tensor):
            batch = (batch,)
        if not isinstance(batch, (tuple, list)) or not all(isinstance(t, Tensor) for t in batch):
            raise ValueError(f"the batch source must return a tuple of Tensors, got {type(batch).__name__}")
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def _train_step(self, step: int) -> dict[str, Tensor]:
        batch = self._batch(step)
        self.optimizer.zero_grad(set_to_none=True)
        output = self.step_fn(self.train_model, batch, self.generator)
        scalars = dict(output) if isinstance(output, Mapping) else {"loss": output}
        loss = scalars.get("loss")
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("step_fn must return a scalar loss tensor or a dict with a scalar 'loss'; "
                             f"got {type(loss).__name__}")
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        grads = [p.grad for p in params]
        grad_norm = (torch.nn.utils.get_total_norm(grads) if grads
                     else torch.zeros((), device=self.device))
        self._check_finite(step + 1, loss.detach(), grad_norm)
        if self.grad_clip is not None and grads:
            torch.nn.utils.clip_grads_with_norm_(params, self.grad_clip, grad_norm)
        self._updating = True
        self.optimizer.step()
        if self.ema is not None:
            update_ema(self.ema, self.model)
        if self.scheduler is not None:
            self.scheduler.step()
        self.step = step + 1
        self._updating = False
        scalars["grad_norm"] = grad_norm
        return {k: (v.detach().float().reshape(()) if isinstance(v, Tensor) else torch.tensor(float(v)))
                for k, v in scalars.items()}

    def _check_finite(self, step: int, loss: Tensor, grad_norm: Tensor) -> None:
        bad = ~torch.isfinite(torch.stack([loss.float().reshape(()), grad_norm.float().to(loss.device)]))
        if self.world_size > 1:  # every rank must stop, or the others hang in the next all-reduce
            bad = bad.float()
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bool(bad.any()):
            name, value = ("loss", loss) if bool(bad[0]) else ("grad_norm", grad_norm)
            raise NonFiniteLossError(f"non-finite {name} ({float(value)}) at step {step}"
                                     f"{' on some rank' if self.world_size > 1 else ''}; "
                                     f"stopped before the update, {self._kept()}")
        if self.diverge_factor is not None:
            self._check_divergence(step, loss, grad_norm)

    def _check_divergence(self, step: int, loss: Tensor, grad_norm: Tensor) -> None:
        current = torch.stack([loss.float().reshape(()).abs(), grad_norm.float().to(loss.device)])
        current = (D.all_reduce_max(current) if self.world_size > 1 else current).tolist()
        if self._reference is None:
            self._reference = current
            return
        names = ("|loss|",) if self.grad_clip is not None else ("|loss|", "gradient norm")
        for name, value, start in zip(names, current, self._reference, strict=False):
            bound = self.diverge_factor * max(start, 1.0)
            if value > bound:
                raise DivergedError(f"diverged: {name} {value:.4g} at step {step} exceeds "
                                    f"{self.diverge_factor:g} x max(its first value {start:.4g}, 1); "
                                    f"stopped before the update, {self._kept()} "
                                    "(lower lr, or diverge_factor=None to disable)")

    def _kept(self) -> str:
        """What a stop before the update leaves behind, for its message."""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            return f"last good checkpoint {self.checkpoint_path} kept"
        return "no checkpoint written"

    # ------------------------------------------------------------------ logging
    def _log(self, window: dict[str, Tensor], count: int, elapsed: float, bar: Any) -> dict[str, Any]:
        keys = sorted(window)
        means = torch.stack([window[k].to(self.device) for k in keys]) / count
        if self.world_size > 1:
            means = D.all_reduce_mean(means)
        row: dict[str, Any] = dict(zip(keys, means.tolist(), strict=True))
        row["lr"] = float(self.optimizer.param_groups[0]["lr"])
        row["steps_per_sec"] = count / max(elapsed, 1e-9)
        row["epoch"] = self.step / self.steps_per_epoch
        for callback in self.callbacks:
            extra = callback(self, self.step, row)
            if isinstance(extra, Mapping):
                row.update(extra)
        self.train_model.train()  # a callback may have switched to eval mode
        if self._metrics is not None:
            self._metrics.write(row, step=self.step)
        bar.set_postfix(loss=f"{row['loss']:.4g}", lr=f"{row['lr']:.3g}", refresh=False)
        return row

    # ------------------------------------------------------------------ checkpoints
    def _capture_rng(self) -> tuple[Tensor, Tensor, tuple[Any, ...]]:
        return self.generator.get_state(), self.data_generator.get_state(), capture_rng_state()

    @staticmethod
    def _portable_rng(raw: tuple[Tensor, Tensor, tuple[Any, ...]]) -> dict[str, Any]:
        return {"generator": raw[0], "data_generator": raw[1], **portable_rng_state(raw[2])}

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "kind": self.kind, "config": self.config,
            "step": self.step, "max_steps": self.max_steps, "seed": self.seed,
            "divergence_reference": self._reference,
            "batch_size": self.batch_size, "world_size": self.world_size,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "extra_state": {name: obj.state_dict() for name, obj in self.extra_state.items()},
            "rng": rng,
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``last.pt`` (rank 0; every rank must call it under DDP: RNG states are
        gathered). Returns the path, or None when there is no run folder."""
        if self.checkpoint_path is None:
            return None
        rng = [self._portable_rng(self._capture_rng())]
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if self.is_main:
            save_checkpoint(self._state(rng), self.checkpoint_path)
        return self.checkpoint_path

    def _save_on_interrupt(self) -> None:
        if self.checkpoint_path is None or not self.is_main:
            return
        if self._updating:
            warnings.warn("interrupted inside the optimizer update; not saving, last checkpoint kept",
                          stacklevel=3)
            return
        # interrupted mid-step: parameters are those after self.step updates, and the RNGs
        # are restored to where they stood before the interrupted step began
        if self._snapshot is not None and self._snapshot[0] == self.step:
            raw = self._snapshot[1]
        else:
            raw = self._capture_rng()
        save_checkpoint(self._state([self._portable_rng(raw)]), self.checkpoint_path)
        print(f"\ninterrupted: checkpoint at step {self.step} saved to {self.checkpoint_path}",
              file=sys.stderr)

    def load_checkpoint(self, path: str | Path | None = None) -> int:
        """Restore model, optimizer, scheduler, extra state and RNGs; return the step."""
        path = path or self.checkpoint_path
        state = load_checkpoint(path, map_location="cpu")
        if state.get("kind", self.kind) != self.kind:
            raise ValueError(f"checkpoint {path} holds a {state['kind']!r} run, not {self.kind!r}")
        for key in ("seed", "batch_size", "world_size"):
            if state.get(key) != getattr(self, key):
                warnings.warn(f"checkpoint {key}={state.get(key)} differs from this run's "
                              f"{getattr(self, key)}; the data order will not match", stacklevel=2)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for name, obj in self.extra_state.items():
            if name not in state["extra_state"]:
                raise ValueError(f"checkpoint has no extra_state[{name!r}]")
            obj.load_state_dict(state["extra_state"][name])
        self.step = int(state["step"])
        self._reference = state.get("divergence_reference")
        rng = state["rng"]
        if self.rank < len(rng):
            self.generator.set_state(rng[self.rank]["generator"])
            if "data_generator" in rng[self.rank]:
                self.data_generator.set_state(rng[self.rank]["data_generator"])
            set_rng_state(rng[self.rank])
        else:  # e.g. a Ctrl-C checkpoint under DDP holds rank 0's state only
            seed_everything(derive_seed(self.seed, _GLOBAL, self.rank, self.step))
            self.generator.manual_seed(derive_seed(self.seed, _GENERATOR, self.rank, self.step))
            self.data_generator.manual_seed(derive_seed(self.seed, _DATA, self.rank, self.step))
        return self.step

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool | None = None) -> dict[str, Any]:
        """Train until ``max_steps`` and return the last metrics row (with ``"step"``).

        ``resume`` (default: ``run.resume``, else False) continues from ``last.pt`` when it
        exists, dropping metrics rows logged after its step; otherwise training starts at
        step 0 with every RNG seeded from ``seed``.
        """
        resume = (self._run.resume if self._run is not None else False) if resume is None else resume
        if resume and self.checkpoint_path is None:
            raise ValueError("resume=True needs a run or run_dir holding a checkpoint")
        if resume and self.checkpoint_path.exists():
            self.load_checkpoint()
            if self._metrics is not None:
                self._metrics.truncate_after(self.step)
        else:
            self.step = 0
            self._reference = None
            seed_everything(derive_seed(self.seed, _GLOBAL, self.rank))
            self.generator.manual_seed(derive_seed(self.seed, _GENERATOR, self.rank))
            self.data_generator.manual_seed(derive_seed(self.seed, _DATA, self.rank))
        start = self.step
        bar = tqdm(total=self.max_steps, initial=start, desc=self.desc, dynamic_ncols=True,
                   disable=not (self.progress and self.is_main))
        try:
            self._loop(start, bar)
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            bar.close()
            if self._owns_metrics and self._metrics is not None:
                self._metrics.close()
        return {"step": self.step, **self.last_metrics}

    def _loop(self, start: int, bar: Any) -> None:
        self.train_model.train()
        window: dict[str, Tensor] = {}
        count, tic = 0, time.perf_counter()
        for step in range(start, self.max_steps):
            self._snapshot = (step, self._capture_rng())
            for key, value in self._train_step(step).items():
                window[key] = window[key] + value if key in window else value
            count += 1
            bar.update(1)
            if self.step % self.log_every == 0 or self.step == self.max_steps:
                self.last_metrics = self._log(window, count, time.perf_counter() - tic, bar)
                window, count, tic = {}, 0, time.perf_counter()
            stop = self._run is not None and self._run.stop_after == self.step
            if stop or (self.checkpoint_every is not None and self.step % self.checkpoint_every == 0
                        and self.step < self.max_steps):
                self.save_checkpoint()
            if stop:
                raise RunInterrupted(self.step, self.checkpoint_path)
        self._snapshot = None
        if start < self.max_steps:
            self.save_checkpoint()

