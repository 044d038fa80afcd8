"""``Cluster``: p workers train copies of one model with a method of the averaging family
(:mod:`genoise.train.averaging`), either **simulated** — the p workers stepped in turn
inside one process, deterministic, for any p — or as **real processes** under ``torchrun``
(gloo on CPU, NCCL on GPUs), one worker per rank, and for the asynchronous methods a master
on rank 0. Both run the same worker step and the same averaging rules; for the synchronous
methods a simulated p = 2 run ends with bit for bit the parameters of the real one.

Methods (``Method.name``):

=========  =================================================================  ============
name       every τ local steps                                                 local optim.
=========  =================================================================  ============
sgd        one worker, no communication (the baseline)                         SGD
ddp        (every step) gradients averaged: synchronous data-parallel SGD      SGD
localsgd   parameters averaged (Stich 2019)                                    SGD
easgd      elastic pull to the center (Zhang et al. 2015); asynchronous too    SGD
eamsgd     the same with Nesterov momentum                                     SGD+Nesterov
diloco     outer Nesterov step on the mean pseudo-gradient (Douillard 2023)   AdamW
downpour   push the gradient sum to the master, pull its parameters (async)   SGD
=========  =================================================================  ============

Data: at epoch e the N samples are permuted by a generator seeded with (seed, e) and
worker i trains on the i-th of p equal slices, so the data order is a pure function of
(seed, worker, step) — in the simulator and in a real run alike. A worker's randomness
comes from its own generator (the ``generator`` argument of ``loss_fn``); draw nothing
from torch's global RNG in ``loss_fn`` or the model (dropout: use the generator).

Asynchronous runs in the simulator are round-robin: at every tick workers 0 … p − 1 each
take one step (and exchange with the master when their step is due), so a worker's
*staleness* — updates the master applied between its pull and its next push — is p − 1 at
τ = 1. Real asynchronous runs record the staleness they meet.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from genoise._checks import check_int, check_positive, check_same_batch
from genoise.io import MetricsWriter
from genoise.train import distributed as D
from genoise.train.averaging import (
    Collective,
    DiLoCoAverager,
    ElasticAverager,
    GradientAverager,
    Master,
    ProcessCollective,
    RowAverager,
    SimulatedCollective,
    Traffic,
    WorkerLostError,
    check_elastic,
    flatten,
    state_tensors,
    unflatten_,
    worker_reply_,
)
from genoise.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from genoise.train.seed import derive_seed
from genoise.train.trainer import NonFiniteLossError, epoch_permutation

METHODS = ("sgd", "ddp", "localsgd", "easgd", "eamsgd", "diloco", "downpour")
ELASTIC = ("easgd", "eamsgd")
BUFFERS = ("round", "read")
SCHEDULES = ("constant", "cosine")
EAMSGD_MOMENTUM = 0.9  # EAMSGD's Nesterov δ when ``momentum`` is None


def cosine_factor(step: int, total: int) -> float:
    """The cosine schedule's factor of local step ``step`` of ``total``: ½(1 + cos(π t / T))
    (Loshchilov & Hutter 2017, without restarts; the closed form of torch's
    ``CosineAnnealingLR`` with ``eta_min=0`` and ``T_max=total``). A pure function of the step,
    so a resumed run and a real process use the very same rates."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total))


LossFn = Callable[[nn.Module, tuple[Tensor, ...], torch.Generator], Tensor]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
_WORKER = 4  # derive_seed purpose of a worker's generator
_HEADER = 3  # kind, pulled version, worker step
_BEFORE_KEY = {"buffers": "round", "lr_schedule": "constant"}  # checkpoints older than these keys


@dataclass(frozen=True)
class Method:
    """A distributed training method and its communication settings (validated).

    Parameters
    ----------
    name : one of :data:`METHODS`
    workers : int               p ≥ 1 (``sgd`` needs 1)
    tau : int                   communication period τ ≥ 1 (ignored by ``sgd`` and ``ddp``)
    asynchronous : bool         EASGD/EAMSGD with a master; DOWNPOUR is always asynchronous
    alpha : float, optional     elastic pull α (default 0.9/p: β = pα = 0.9, the paper's)
    lr : float                  the local (inner) learning rate, and DOWNPOUR's master's
    momentum : float            the local SGD momentum (EAMSGD's Nesterov δ, default 0.9)
    weight_decay : float        DiLoCo's inner AdamW decay
    outer_lr, outer_momentum : DiLoCo's outer Nesterov SGD (0.7 and 0.9 in the paper)
    buffers : str               ``"round"``: a synchronous round carries the parameters and the
                                floating buffers (BatchNorm running statistics); ``"read"``: the
                                parameters only (as torch's ``ModelAverager``), the center's
                                buffers are the workers' mean taken when it is read (evaluation,
                                end; not counted as traffic, as DDP's buffers are not)
    lr_schedule : str           ``"constant"`` or ``"cosine"``: every local optimiser's rate
                                decays as :func:`cosine_factor` over the run's local steps
                                (synchronous methods; the outer and master rates stay)
    """

    name: str
    workers: int = 1
    tau: int = 1
    asynchronous: bool = False
    alpha: float | None = None
    lr: float = 0.05
    momentum: float | None = None
    weight_decay: float = 0.0
    outer_lr: float = 0.7
    outer_momentum: float = 0.9
    buffers: str = "round"
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(
                f"unknown distributed method {self.name!r}; expected one of {', '.join(METHODS)}"
            )
        check_int("workers", self.workers)
        check_int("tau", self.tau)
        check_positive("lr", self.lr)
        if self.name == "sgd" and self.workers != 1:
            raise ValueError(
                f"distributed=sgd is one worker; got workers={self.workers} (ddp, localsgd … run several)"
            )
        if self.name == "downpour":
            object.__setattr__(self, "asynchronous", True)
        elif self.asynchronous and self.name not in ELASTIC:
            raise ValueError(f"asynchronous=true is for easgd, eamsgd (and downpour), not {self.name}")
        if self.name in ELASTIC:
            check_elastic(self.elastic_alpha, self.workers)
        if self.buffers not in BUFFERS:
            raise ValueError(f"buffers must be one of {', '.join(BUFFERS)}, got {self.buffers!r}")
        if self.buffers == "read" and self.asynchronous:
            raise ValueError(
                f"buffers=read is for the synchronous methods; asynchronous {self.name} exchanges "
                "its whole state with the master"
            )
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule != "constant" and self.asynchronous:
            raise ValueError(
                f"lr_schedule={self.lr_schedule} is for the synchronous methods; asynchronous "
                f"{self.name}'s workers run at their own pace"
            )
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    @property
    def elastic_alpha(self) -> float:
        return 0.9 / self.workers if self.alpha is None else float(self.alpha)

    @property
    def round_buffers(self) -> bool:
        """Whether a synchronous round carries the floating buffers too."""
        return self.buffers == "round"

    @property
    def rule(self) -> str:
        return "downpour" if self.name == "downpour" else "elastic"

    @property
    def world_size(self) -> int:
        """Processes of a real run: the workers, plus the master of an asynchronous method."""
        return self.workers + int(self.asynchronous)

    def optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The local (inner) optimiser of one worker."""
        if self.name == "diloco":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.name == "eamsgd":
            delta = EAMSGD_MOMENTUM if self.momentum is None else self.momentum
            return torch.optim.SGD(params, lr=self.lr, momentum=delta, nesterov=delta > 0)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum or 0.0)

    def averager(self, collective: Collective, center: Tensor) -> RowAverager | GradientAverager | None:
        """The synchronous averager of this method (``None``: sgd and the asynchronous ones)."""
        if self.name == "ddp":
            return GradientAverager(collective)
        if self.name == "sgd" or self.asynchronous:
            return None
        warmup = self.tau - 1  # torch's counter: rounds after steps τ, 2τ, … (not 1, τ + 1, …)
        if self.name in ELASTIC:
            return ElasticAverager(self.tau, collective, center, self.elastic_alpha, warmup_steps=warmup)
        if self.name == "diloco":
            return DiLoCoAverager(
                self.tau, collective, center, self.outer_lr, self.outer_momentum, warmup_steps=warmup
            )
        return RowAverager(self.tau, collective, warmup_steps=warmup)


@dataclass
class Worker:
    """One worker's model, local optimiser, generator and exchange bookkeeping."""

    index: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    traffic: Traffic = field(default_factory=Traffic)
    accumulated: Tensor | None = None  # DOWNPOUR: the gradient sum since the last push
    pulled_version: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "traffic": self.traffic.state_dict(),
            "accumulated": None if self.accumulated is None else self.accumulated.clone(),
            "pulled_version": self.pulled_version,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.traffic.load_state_dict(state["traffic"])
        if state["accumulated"] is not None:
            self.accumulated = state["accumulated"].clone()
        self.pulled_version = int(state["pulled_version"])


class Cluster:
    """Train ``model`` on ``data`` with p workers and the averaging ``method``.

    Parameters
    ----------
    model : nn.Module        the initial model, copied to every worker (and the center)
    loss_fn : callable       ``loss_fn(model, batch, generator) -> scalar loss``
    data : tuple of Tensors  (N, …) in-memory samples; worker i trains on slice i of each
                             epoch's permutation
    method : Method
    batch_size : int         per worker
    seed : int
    run_dir : path, optional  ``last.pt`` and ``metrics.jsonl`` (rank 0 writes)
    evaluate : callable, optional  ``evaluate(model) -> {"error": …}`` of the center (or of
                             the workers' mean), every ``eval_every`` steps and at the end
    eval_every, checkpoint_every : int, optional  in local steps per worker
    simulate : bool, optional  default: real processes when a process group is running
                             (torchrun), the simulator otherwise
    device : torch.device    where the workers live
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: tuple[Tensor, ...],
        *,
        method: Method,
        batch_size: int,
        seed: int = 0,
        run_dir: str | Path | None = None,
        evaluate: EvalFn | None = None,
        eval_every: int | None = None,
        checkpoint_every: int | None = None,
        simulate: bool | None = None,
        device: str | torch.device = "cpu",
        progress: bool = True,
        desc: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.method, self.loss_fn, self.evaluate = method, loss_fn, evaluate
        self.batch_size = check_int("batch_size", batch_size)
        derive_seed(seed)  # validates
        self.seed = int(seed)
        self.eval_every = None if eval_every is None else check_int("eval_every", eval_every)
        self.checkpoint_every = (
            None if checkpoint_every is None else check_int("checkpoint_every", checkpoint_every)
        )
        self.device, self.progress = torch.device(device), bool(progress)
        self.desc = desc or f"{method.name} p={method.workers} tau={method.tau}"
        self.config = dict(config or {})
        self.data = tuple(data)
        if not self.data:
            raise ValueError("data must be a non-empty tuple of tensors")
        check_same_batch(**{f"data[{i}]": t for i, t in enumerate(self.data)})
        self.num_samples = self.data[0].shape[0]
        self.per_worker = self.num_samples // method.workers
        self.steps_per_epoch = self.per_worker // self.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {self.per_worker} samples per "
                f"worker (N={self.num_samples}, {method.workers} workers)"
            )

        D.init_distributed()
        self.simulate = not D.is_distributed() if simulate is None else bool(simulate)
        if not self.simulate:
            if not D.is_distributed():
                raise RuntimeError("simulate=False needs a process group: launch with torchrun")
            if D.world_size() != method.world_size:
                raise ValueError(
                    f"{method.name} with workers={method.workers} needs "
                    f"{method.world_size} processes"
                    f"{' (a master and the workers)' if method.asynchronous else ''}, "
                    f"torchrun started {D.world_size()}"
                )
        self.rank = 0 if self.simulate else D.rank()
        self.is_main = self.rank == 0
        self.is_master = method.asynchronous and self.is_main
        if self.simulate:
            indices = list(range(method.workers))
        else:
            indices = [] if self.is_master else [self.rank - int(method.asynchronous)]

        model = model.to(self.device)
        initial = flatten(state_tensors(model))
        if not self.simulate:  # every worker starts from rank 0's model (as DDP does)
            dist.broadcast(initial, src=0)
            unflatten_(state_tensors(model), initial)
        self.center_model = copy.deepcopy(model).eval()
        self.n_params = sum(p.numel() for p in model.parameters())
        self.workers = [self._make_worker(i, model) for i in indices]
        self.collective: Collective | None = None
        if not method.asynchronous and method.name != "sgd":  # one worker still runs its rule
            self.collective = SimulatedCollective(method.workers) if self.simulate else ProcessCollective()
        self.averager = (
            method.averager(self.collective, initial if method.round_buffers else initial[: self.n_params])
            if self.collective is not None
            else None
        )
        self.master = (
            Master(
                method.rule,
                initial,
                alpha=method.elastic_alpha,
                lr=method.lr,
                workers=method.workers,
                n_params=self.n_params,
            )
            if method.asynchronous and (self.simulate or self.is_master)
            else None
        )
        # the master's point-to-point messages need gloo (NCCL cannot receive from any source)
        self._p2p = None
        if method.asynchronous and not self.simulate and dist.get_backend() != "gloo":
            self._p2p = dist.new_group(backend="gloo")
        self._perm_epoch: int | None = None
        self._perm = torch.empty(0, dtype=torch.long)
        self.step = 0
        self.total_steps = 0  # the budget of the current fit (the cosine schedule's T)
        self.history: list[dict[str, float]] = []
        self.staleness: list[int] = []
        self.checkpoint_path = Path(run_dir) / CHECKPOINT_NAME if run_dir is not None else None
        self.metrics = MetricsWriter(Path(run_dir)) if run_dir is not None and self.is_main else None
        self.seconds = 0.0

    # ------------------------------------------------------------------ workers
    def _make_worker(self, index: int, model: nn.Module) -> Worker:
        local = copy.deepcopy(model).train()
        generator = torch.Generator(device=self.device).manual_seed(derive_seed(self.seed, _WORKER, index))
        accumulated = (
            torch.zeros(self.n_params, device=self.device) if self.method.name == "downpour" else None
        )
        return Worker(
            index, local, self.method.optimizer(local.parameters()), generator, accumulated=accumulated
        )

    def batch_indices(self, worker: int, step: int) -> Tensor:
        """Samples of ``worker``'s batch at local ``step``: slice ``worker`` of epoch
        ``step // steps_per_epoch``'s permutation (seeded by (seed, epoch))."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:  # one permutation per epoch, shared by the workers
            self._perm, self._perm_epoch = epoch_permutation(self.seed, epoch, self.num_samples), epoch
        start = worker * self.per_worker + position * self.batch_size
        return self._perm[start : start + self.batch_size]

    def _gradient(self, worker: Worker, step: int) -> float:
        index = self.batch_indices(worker.index, step)
        batch = tuple(t[index].to(self.device, non_blocking=True) for t in self.data)
        worker.optimizer.zero_grad(set_to_none=False)
        loss = self.loss_fn(worker.model, batch, worker.generator)
        loss.backward()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"non-finite loss ({value}) on worker {worker.index} at step "
                f"{step + 1}; lower lr (the last checkpoint is kept)"
            )
        return value

    @staticmethod
    def _grad_row(worker: Worker) -> Tensor:
        return flatten(
            p.grad if p.grad is not None else torch.zeros_like(p) for p in worker.model.parameters()
        )

    # ------------------------------------------------------------------ one tick
    def _tick(self, step: int) -> float:
        if self.method.asynchronous:
            return self._async_tick(step)
        losses = [self._gradient(w, step) for w in self.workers]
        if isinstance(self.averager, GradientAverager):
            rows = torch.stack([self._grad_row(w) for w in self.workers])
            self.averager.average_rows(rows)
            for w, row in zip(self.workers, rows, strict=True):
                unflatten_([p.grad for p in w.model.parameters()], row)
        if self.method.lr_schedule == "cosine":
            lr = self.method.lr * cosine_factor(step, self.total_steps)
            for w in self.workers:
                for group in w.optimizer.param_groups:
                    group["lr"] = lr
        for w in self.workers:
            w.optimizer.step()
        if isinstance(self.averager, RowAverager):
            carried = self.method.round_buffers
            rows = self.averager.tick(
                lambda: torch.stack([flatten(state_tensors(w.model, carried)) for w in self.workers])
            )
            if rows is not None:
                for w, row in zip(self.workers, rows, strict=True):
                    unflatten_(state_tensors(w.model, carried), row)
        return sum(losses) / len(losses)

    def _async_tick(self, step: int) -> float:
        losses = []
        for w in self.workers:  # simulator: round-robin; real: this rank's worker
            losses.append(self._gradient(w, step))
            if w.accumulated is not None:
                w.accumulated.add_(self._grad_row(w))
            w.optimizer.step()
            if (step + 1) % self.method.tau == 0:  # after steps τ, 2τ, …
                self._exchange(w)
        return sum(losses) / max(len(losses), 1)

    def _exchange(self, w: Worker) -> None:
        """One push/pull of worker ``w`` with the master (in process or over gloo)."""
        tensors = state_tensors(w.model)
        state = flatten(tensors)
        payload = state if w.accumulated is None else torch.cat([w.accumulated, state[self.n_params :]])
        if self.master is not None:
            self.staleness.append(self.master.version - w.pulled_version)
            reply = self.master.exchange(payload)
            w.pulled_version = self.master.version
        else:
            reply = self._remote_exchange(w, payload)
        w.traffic.add(payload.numel() * payload.element_size())
        worker_reply_(self.method.rule, state, reply, self.method.elastic_alpha)
        unflatten_(tensors, state)
        if w.accumulated is not None:
            w.accumulated.zero_()

    def _remote_exchange(self, w: Worker, payload: Tensor) -> Tensor:
        header = torch.tensor([0, w.pulled_version, self.step], dtype=torch.long)
        version = torch.zeros(1, dtype=torch.long)
        reply = torch.empty(payload.shape, dtype=payload.dtype)
        try:
            dist.send(header, dst=0, group=self._p2p)
            dist.send(payload.cpu(), dst=0, group=self._p2p)
            dist.recv(version, src=0, group=self._p2p)
            dist.recv(reply, src=0, group=self._p2p)
        except (RuntimeError, dist.DistBackendError) as err:
            raise WorkerLostError(
                f"worker {w.index}: exchange with the master failed ({str(err).splitlines()[0][:160]})"
            ) from err
        w.pulled_version = int(version)
        return reply.to(self.device)

    def _serve(self) -> None:
        """Rank 0 of a real asynchronous run: answer the workers until all are done."""
        assert self.master is not None
        done, n = 0, self.master.center.numel()
        header = torch.zeros(_HEADER, dtype=torch.long)
        payload = torch.empty(n, dtype=self.master.center.dtype)
        while done < self.method.workers:
            try:
                source = dist.recv(header, group=self._p2p)
                if int(header[0]) == 1:
                    done += 1
                    continue
                dist.recv(payload, src=source, group=self._p2p)
                self.staleness.append(self.master.version - int(header[1]))
                reply = self.master.exchange(payload.to(self.device))
                dist.send(torch.tensor([self.master.version]), dst=source, group=self._p2p)
                dist.send(reply.cpu(), dst=source, group=self._p2p)
            except (RuntimeError, dist.DistBackendError) as err:
                raise WorkerLostError(
                    f"master: a worker stopped mid-run ({str(err).splitlines()[0][:160]})"
                ) from err

    # ------------------------------------------------------------------ the center
    def center_row(self, count: bool = False) -> Tensor | None:
        """The model that is evaluated: the center (EASGD, DiLoCo, the master's), or the
        workers' mean (local SGD, DDP, SGD). Collective under real synchronous runs (every
        rank calls it); ``count`` records it as a communication round (of the parameters
        only under ``buffers="read"``). Under ``buffers="read"`` the center's buffers are the
        workers' mean, taken here."""
        if self.master is not None:
            return self.master.center
        if self.method.asynchronous:  # a real asynchronous worker: the master evaluates
            return None
        reported = None if self.averager is None else self.averager.reported
        if reported is not None and self.method.round_buffers:
            return reported
        rows = torch.stack([flatten(state_tensors(w.model)) for w in self.workers])
        if self.collective is None:
            return rows[0]
        if self.method.round_buffers:
            return self.collective.mean(rows, count=count)
        # buffers="read": the rounds' parameters (the center's, or the mean), the buffers' mean uncounted
        n = self.n_params
        params = reported if reported is not None else self.collective.mean(rows[:, :n], count=count)
        if rows.shape[1] == n:
            return params
        return torch.cat([params, self.collective.mean(rows[:, n:], count=False)])

    def center(self, count: bool = False) -> nn.Module | None:
        """The evaluated model as an ``nn.Module`` (a copy in eval mode), or ``None`` on a real
        asynchronous worker (the master holds the center). Collective like
        :meth:`center_row`."""
        row = self.center_row(count)
        if row is None:
            return None
        unflatten_(state_tensors(self.center_model), row)
        return self.center_model

    def _record(self, loss: float, final: bool = False) -> dict[str, float]:
        # local SGD's final model is the workers' mean: one more round unless the last step was one
        model = self.center(
            count=final and self.method.name == "localsgd" and self.step % self.method.tau != 0
        )
        entry: dict[str, float] = {
            "step": self.step,
            "worker_steps": self.step * self.method.workers,
            "rounds": self.rounds,
            "bytes_per_worker": self.bytes_per_worker,
            "loss": loss,
        }
        if self.evaluate is not None and model is not None and self.is_main:
            entry.update({k: float(v) for k, v in self.evaluate(model).items()})
        self.history.append(entry)
        if self.metrics is not None:
            self.metrics.write(dict(entry), step=self.step)
        return entry

    @property
    def traffic(self) -> Traffic:
        """This process's (mean) worker traffic."""
        if self.collective is not None:
            return self.collective.traffic
        total = Traffic()
        if self.master is not None and not self.workers:  # the master of a real run
            total.rounds = self.master.version // self.method.workers
            total.bytes_sent = total.rounds * self.master.center.numel() * self.master.center.element_size()
        if self.workers:
            total.rounds = round(sum(w.traffic.rounds for w in self.workers) / len(self.workers))
            total.bytes_sent = round(sum(w.traffic.bytes_sent for w in self.workers) / len(self.workers))
        return total

    @property
    def rounds(self) -> int:
        return self.traffic.rounds

    @property
    def bytes_per_worker(self) -> int:
        return self.traffic.bytes_sent

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-for-bit resume needs (this process's workers only)."""
        return {
            "kind": "cluster",
            "method": self.method.name,
            "workers": self.method.workers,
            "tau": self.method.tau,
            "asynchronous": self.method.asynchronous,
            "buffers": self.method.buffers,
            "lr_schedule": self.method.lr_schedule,
            "step": self.step,
            "seed": self.seed,
            "config": self.config,
            "worker_states": [w.state_dict() for w in self.workers],
            "averager": None if self.averager is None else self.averager.state_dict(),
            "collective": None if self.collective is None else self.collective.traffic.state_dict(),
            "master": None if self.master is None else self.master.state_dict(),
            "history": list(self.history),
            "staleness": list(self.staleness),
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``last.pt`` atomically (rank 0; under a real synchronous run every rank
        calls it and the workers' states are gathered)."""
        if self.checkpoint_path is None:
            return None
        if self.method.asynchronous and not self.simulate:
            raise RuntimeError("real asynchronous runs are not checkpointed mid-run")
        state = self.state_dict()
        if not self.simulate:
            gathered: list[Any] = [None] * D.world_size()
            dist.all_gather_object(gathered, state["worker_states"])
            state["worker_states"] = [s for part in gathered for s in part]
        if self.is_main:
            save_checkpoint(state, self.checkpoint_path)
        return self.checkpoint_path

    def load_checkpoint(self, path: str | Path | None = None) -> int:
        """Restore every worker, the averager or master, the counters and the history."""
        path = Path(path or self.checkpoint_path)
        state = load_checkpoint(path)
        if state.get("kind") != "cluster":
            raise ValueError(f"{path} is not a distributed-averaging checkpoint")
        for key, mine in (
            ("method", self.method.name),
            ("workers", self.method.workers),
            ("tau", self.method.tau),
            ("asynchronous", self.method.asynchronous),
            ("buffers", self.method.buffers),
            ("lr_schedule", self.method.lr_schedule),
        ):
            saved = state.get(key, _BEFORE_KEY.get(key))
            if saved != mine:
                raise ValueError(
                    f"checkpoint {path} has {key}={saved}, this run {key}={mine}; "
                    "resume with the same setting"
                )
        workers = state["worker_states"]
        for w in self.workers:
            w.load_state_dict(workers[w.index])
        if self.averager is not None:
            self.averager.load_state_dict(state["averager"])
        if self.collective is not None:
            self.collective.traffic.load_state_dict(state["collective"])
        if self.master is not None:
            self.master.load_state_dict(state["master"])
        self.step = int(state["step"])
        self.history, self.staleness = list(state["history"]), list(state["staleness"])
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)
        return self.step

    # ------------------------------------------------------------------ the loop
    def fit(self, steps: int, resume: bool = False, stop_after: int | None = None) -> dict[str, Any]:
        """Run every worker to local step ``steps`` (total worker steps p·steps); return the
        summary: final ``error`` (when ``evaluate`` is given), ``rounds``,
        ``bytes_per_worker``, ``worker_steps``, staleness, ``seconds`` (training time of this
        call, evaluations excluded; not checkpointed) and ``history``."""
        self.total_steps = check_int("steps", steps)
        if resume:
            if self.method.asynchronous and not self.simulate:
                raise ValueError(
                    "real asynchronous runs cannot resume (their order is not "
                    "reproducible); resume them in the simulator or start again"
                )
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs a run_dir")
            if self.checkpoint_path.exists():
                self.load_checkpoint()
        if self.is_master and not self.simulate:
            tic = time.perf_counter()
            self._serve()
            self.step = steps
            self.seconds += time.perf_counter() - tic
            return self._finish(float("nan"))
        bar = tqdm(
            total=steps,
            initial=self.step,
            desc=self.desc,
            dynamic_ncols=True,
            disable=not (self.progress and self.is_main),
        )
        loss = float("nan")
        try:
            tic = time.perf_counter()
            while self.step < steps:
                loss = self._tick(self.step)
                self.step += 1
                bar.update(1)
                if self.eval_every is not None and self.step % self.eval_every == 0 and self.step < steps:
                    self.seconds += time.perf_counter() - tic
                    self._record(loss)
                    tic = time.perf_counter()
                at_stop = stop_after is not None and self.step == stop_after
                if at_stop or (
                    self.checkpoint_every is not None
                    and self.step % self.checkpoint_every == 0
                    and self.step < steps
                    and not (self.method.asynchronous and not self.simulate)
                ):
                    self.seconds += time.perf_counter() - tic
                    self.save_checkpoint()
                    tic = time.perf_counter()
                if at_stop:
                    return {"stopped": self.step}
            self.seconds += time.perf_counter() - tic
        finally:
            bar.close()
        if self.method.asynchronous and not self.simulate:
            dist.send(torch.tensor([1, 0, self.step], dtype=torch.long), dst=0, group=self._p2p)
        return self._finish(loss)

    def _finish(self, loss: float) -> dict[str, Any]:
        if self.history and self.history[-1]["step"] == self.step:  # resumed a finished run
            final = self.history[-1]
        else:
            final = self._record(loss, final=True)
            if not (self.method.asynchronous and not self.simulate):
                self.save_checkpoint()
            elif self.is_master and self.checkpoint_path is not None:
                save_checkpoint(self.state_dict(), self.checkpoint_path)
        if self.metrics is not None:
            self.metrics.close()
        staleness = torch.tensor(self.staleness, dtype=torch.float64)
        return {
            **final,
            "worker_steps": self.step * self.method.workers,
            "staleness_mean": float(staleness.mean()) if len(staleness) else 0.0,
            "staleness_max": int(staleness.max()) if len(staleness) else 0,
            "seconds": self.seconds,
            "history": list(self.history),
        }
