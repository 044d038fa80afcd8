"""The averaging family of distributed training: local SGD, elastic averaging (EASGD,
EAMSGD), DiLoCo, gradient all-reduce (DDP) and the parameter-server rules of DOWNPOUR and
asynchronous EASGD — written once, over a :class:`Collective`, so the same update code runs
in p real processes (``torch.distributed``, one worker each) and in a simulated cluster
(p workers in one process, :mod:`genoise.train.cluster`).

A worker's state is one flat vector (its parameters and floating buffers, concatenated; with
``buffers="read"`` a round carries the parameters only, as torch's ``ModelAverager`` does, and
the buffers are averaged only when the center is read);
``rows`` is the (w, n) stack of the w workers this process holds (w = p in the simulator,
w = 1 in a real process). ``Collective.mean(rows)`` is the mean over all p workers:

- :class:`ProcessCollective`: ``rows[0] / p`` then one ``all_reduce(SUM)`` — the arithmetic
  of torch's ``model_averaging.utils.average_parameters`` and of DDP's default hook;
- :class:`SimulatedCollective`: ``(rows / p).sum(0)``; for p = 2 both are one rounding of
  ``x_0/2 + x_1/2``, so the simulator's centers equal the real run's bit for bit.

Synchronous rules (every τ local steps; each worker holds a copy of the center x̃):

- local SGD (Stich 2019; Lin et al. 2020):        x_i ← mean_j x_j
- EASGD (Zhang, Choromanska & LeCun 2015, Eq. 5–6), with α = ηρ and β = pα:
      x_i ← x_i − α (x_i − x̃),      x̃ ← (1 − β) x̃ + β · mean_j x_j
  (both right-hand sides use the values before the round); EAMSGD is the same round
  with Nesterov momentum in the local optimiser (their Algorithm 2).
- DiLoCo (Douillard et al. 2023): the outer gradient Δ = x̃ − mean_j x_j drives an outer
  Nesterov SGD step on x̃, then x_i ← x̃.
- DDP: gradients averaged at every step (``GradientAverager``).

Asynchronous rules (a master holds x̃; a worker talks to it every τ of its own steps):

- EASGD / EAMSGD (their Algorithm 1): d = α (x_i − x̃);  x_i ← x_i − d;  x̃ ← x̃ + d.
- DOWNPOUR (Dean et al. 2012, as in the EASGD paper): the worker pushes the sum of the
  gradients of its local steps, the master applies it with its own SGD step
  x̃ ← x̃ − η Σ g, the worker pulls x̃.

Step counting follows ``torch.distributed.algorithms.model_averaging.averagers.
PeriodicModelAverager``, which every synchronous averager here subclasses: a counter from
0, incremented after each optimiser step, communicates when ``counter ≥ warmup`` and
``(counter − warmup) % τ == 0`` — with warmup 0, after the 1st, (τ+1)-th, (2τ+1)-th …
optimiser step (pytorch/pytorch#74157 is the bug class of getting this wrong).
:class:`genoise.train.cluster.Cluster` passes warmup τ − 1, so its rounds come after steps
τ, 2τ, … and a run of a multiple of τ steps ends with a round.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

from genoise._checks import check_int

MASTER_RULES = ("downpour", "elastic")


class WorkerLostError(RuntimeError):
    """A collective or a master exchange failed because another worker stopped."""


# ---------------------------------------------------------------------- flat worker state
def state_tensors(model: nn.Module, buffers: bool = True) -> list[Tensor]:
    """A worker's state: its parameters, then its floating-point buffers (BatchNorm running
    statistics), in ``named_parameters`` / ``named_buffers`` order; ``buffers=False``: the
    parameters only (what a round carries under ``buffers="read"``)."""
    params = list(model.parameters())
    return [*params, *(b for b in model.buffers() if b.is_floating_point())] if buffers else params


def flatten(tensors: Iterable[Tensor]) -> Tensor:
    """One contiguous copy of ``tensors`` (the flattened buffer of one all-reduce)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def unflatten_(tensors: Iterable[Tensor], flat: Tensor) -> None:
    """Copy ``flat`` back into ``tensors`` in place (their storage is kept)."""
    tensors = list(tensors)
    with torch.no_grad():
        pieces = torch.split(flat, [t.numel() for t in tensors])
        torch._foreach_copy_(
            [t.data for t in tensors], [p.view_as(t) for p, t in zip(pieces, tensors, strict=True)]
        )


def ring_bytes(numel: int, workers: int, itemsize: int = 4) -> int:
    """Bytes one worker sends in a ring all-reduce of ``numel`` items: 2(p − 1)/p · n · size
    (reduce-scatter then all-gather; Patarasuk & Yuan 2009)."""
    return 0 if workers == 1 else (2 * (workers - 1) * numel * itemsize) // workers


# ---------------------------------------------------------------------- collectives
class Traffic:
    """Communication counters of one worker: rounds and bytes it sent."""

    def __init__(self) -> None:
        self.rounds, self.bytes_sent = 0, 0

    def add(self, nbytes: int) -> None:
        self.rounds += 1
        self.bytes_sent += int(nbytes)

    def state_dict(self) -> dict[str, int]:
        return {"rounds": self.rounds, "bytes_sent": self.bytes_sent}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.rounds, self.bytes_sent = int(state["rounds"]), int(state["bytes_sent"])


class Collective:
    """Mean over the p workers of the rows a process holds; counts the traffic per worker."""

    size: int
    traffic: Traffic

    def mean(self, rows: Tensor, count: bool = True) -> Tensor:
        """The mean over the p workers; ``count=False``: a measurement, not a round."""
        raise NotImplementedError


class SimulatedCollective(Collective):
    """All p workers' rows are here: ``(rows / p).sum(0)``."""

    def __init__(self, size: int) -> None:
        self.size = check_int("workers", size)
        self.traffic = Traffic()

    def mean(self, rows: Tensor, count: bool = True) -> Tensor:
        if rows.ndim != 2 or rows.shape[0] != self.size:
            raise ValueError(
                f"the simulated collective needs the rows of all {self.size} workers, "
                f"got shape {tuple(rows.shape)}"
            )
        if count:
            self.traffic.add(ring_bytes(rows.shape[1], self.size, rows.element_size()))
        return (rows / self.size).sum(0)


class ProcessCollective(Collective):
    """One worker per process: ``rows[0] / p``, then ``all_reduce(SUM)`` over ``group``."""

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("ProcessCollective needs an initialised process group (torchrun)")
        self.group = group if group is not None else dist.group.WORLD
        self.size = dist.get_world_size(self.group)
        self.traffic = Traffic()

    def mean(self, rows: Tensor, count: bool = True) -> Tensor:
        if rows.ndim != 2 or rows.shape[0] != 1:
            raise ValueError(f"a process holds one worker's row, got shape {tuple(rows.shape)}")
        flat = rows[0] / self.size
        try:
            dist.all_reduce(flat, group=self.group)
        except (RuntimeError, dist.DistBackendError) as err:
            raise WorkerLostError(
                f"all-reduce of round {self.traffic.rounds + 1} failed: another "
                f"worker stopped ({str(err).splitlines()[0][:160]})"
            ) from err
        if count:
            self.traffic.add(ring_bytes(flat.numel(), self.size, flat.element_size()))
        return flat


def _group_of(collective: Collective) -> Any:
    # torch's ModelAverager stores a process group; the simulator has none, so it stores the
    # collective itself (the base class only keeps the reference).
    return collective.group if isinstance(collective, ProcessCollective) else collective


# ---------------------------------------------------------------------- synchronous rules
def take_mean_(rows: Tensor, collective: Collective) -> None:
    """Every row becomes the mean over the p workers (local SGD's parameters, DDP's gradients)."""
    rows.copy_(collective.mean(rows).expand_as(rows))


def elastic_round_(rows: Tensor, center: Tensor, alpha: float, mean: Tensor, beta: float) -> None:
    """One synchronous EASGD round in place: x_i ← x_i − α(x_i − x̃); x̃ ← x̃ + β(mean − x̃),
    both from the values before the round (``mean`` = mean_j x_j, computed by the caller)."""
    pull = (rows - center).mul_(alpha)
    center.add_((mean - center).mul_(beta))
    rows.sub_(pull)


class RowAverager(PeriodicModelAverager):
    """A ``PeriodicModelAverager`` over flat worker rows and a :class:`Collective`.

    ``average_rows(rows)`` advances the step counter and, when due, runs the round on the
    (w, n) rows in place; ``average_parameters(params)`` is torch's interface (one worker
    per process: flatten, round, write back), so ``PostLocalSGDOptimizer`` can drive it.
    """

    name = "localsgd"

    def __init__(self, period: int, collective: Collective, warmup_steps: int = 0) -> None:
        check_int("tau", period)
        check_int("warmup_steps", warmup_steps, min=0)
        with warnings.catch_warnings():  # period 1 is a legitimate row of the tables
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(period=period, warmup_steps=warmup_steps, process_group=_group_of(collective))
        self.collective = collective

    def due(self) -> bool:
        """Whether the call for the current counter communicates (torch's rule)."""
        return self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0

    def average_rows(self, rows: Tensor) -> bool:
        due = self.due()
        if due:
            self.round_(rows)
        self.step += 1
        return due

    def round_(self, rows: Tensor) -> None:
        """Local SGD: every worker takes the mean."""
        take_mean_(rows, self.collective)

    def average_parameters(self, params: Iterable[Any]) -> None:  # type: ignore[override]
        tensors = [t for item in params for t in (item["params"] if isinstance(item, Mapping) else [item])]
        rows = self.tick(lambda: flatten(tensors)[None])
        if rows is not None:
            unflatten_(tensors, rows[0])

    def tick(self, rows_of: Callable[[], Tensor]) -> Tensor | None:
        """Advance the counter after one optimiser step; when due, run the round on
        ``rows_of()`` (built only then) and return the updated rows to write back."""
        if not self.due():
            self.step += 1
            return None
        rows = rows_of()
        self.average_rows(rows)
        return rows

    @property
    def reported(self) -> Tensor | None:
        """The state whose test error is reported when the averager keeps one (the center);
        ``None``: the workers' mean."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])


class ElasticAverager(RowAverager):
    """Synchronous EASGD / EAMSGD (Zhang, Choromanska & LeCun, "Deep learning with elastic
    averaging SGD", NeurIPS 2015, Eq. 5–6): see the module docstring.

    ``alpha`` is the elastic pull α = ηρ with 0 < α < 1, and the center moves with
    β = pα < 1 (the paper's stability condition; the paper's runs use β = 0.9). The center
    starts at ``center`` (the workers' common initial state)."""

    name = "easgd"

    def __init__(
        self, period: int, collective: Collective, center: Tensor, alpha: float, warmup_steps: int = 0
    ) -> None:
        super().__init__(period, collective, warmup_steps)
        check_elastic(alpha, collective.size)
        self.alpha, self.beta = float(alpha), float(alpha) * collective.size
        self.center = center.detach().clone()

    def round_(self, rows: Tensor) -> None:
        elastic_round_(rows, self.center, self.alpha, self.collective.mean(rows), self.beta)

    @property
    def reported(self) -> Tensor:
        return self.center

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "center": self.center.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        self.center.copy_(state["center"])


class DiLoCoAverager(RowAverager):
    """DiLoCo's outer step (Douillard et al., "DiLoCo: Distributed Low-Communication Training
    of Language Models", 2023, Algorithm 1): Δ = x̃ − mean_j x_j is the outer gradient of
    ``torch.optim.SGD(lr=outer_lr, momentum=outer_momentum, nesterov=True)`` on x̃, then
    every worker restarts from x̃ (inner optimiser AdamW, kept per worker)."""

    name = "diloco"

    def __init__(
        self,
        period: int,
        collective: Collective,
        center: Tensor,
        outer_lr: float = 0.7,
        outer_momentum: float = 0.9,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(period, collective, warmup_steps)
        if not 0 < outer_lr or not 0 <= outer_momentum < 1:
            raise ValueError(
                f"DiLoCo needs outer_lr > 0 and 0 <= outer_momentum < 1, got {outer_lr}, {outer_momentum}"
            )
        self.center = center.detach().clone().requires_grad_(False)
        self.outer = torch.optim.SGD(
            [self.center], lr=outer_lr, momentum=outer_momentum, nesterov=outer_momentum > 0
        )

    def round_(self, rows: Tensor) -> None:
        mean = self.collective.mean(rows)
        self.center.grad = self.center - mean
        self.outer.step()
        self.center.grad = None
        rows.copy_(self.center.expand_as(rows))

    @property
    def reported(self) -> Tensor:
        return self.center

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "center": self.center.clone(), "outer": self.outer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        with torch.no_grad():
            self.center.copy_(state["center"])
        self.outer.load_state_dict(state["outer"])


class GradientAverager:
    """DDP's arithmetic, one flattened all-reduce per step: every worker's gradient becomes
    the mean gradient (``rows`` are the flat gradients)."""

    name = "ddp"

    def __init__(self, collective: Collective) -> None:
        self.collective = collective
        self.step = 0

    def average_rows(self, rows: Tensor) -> bool:
        take_mean_(rows, self.collective)
        self.step += 1
        return True

    @property
    def reported(self) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])


def check_elastic(alpha: float, workers: int) -> None:
    """EASGD's stability rule: 0 < α < 1 and β = pα < 1 (one line naming the rule)."""
    if not 0 < alpha < 1:
        raise ValueError(f"elastic alpha must be in (0, 1), got {alpha}")
    if workers * alpha >= 1:
        raise ValueError(
            f"elastic beta = workers * alpha = {workers} * {alpha} = {workers * alpha:g} "
            ">= 1: the center update is unstable (Zhang et al. 2015 need beta < 1)"
        )


# ---------------------------------------------------------------------- asynchronous rules
class Master:
    """The master's state and rules of the asynchronous methods (shared by the simulator and
    rank 0 of a real run): the center x̃, a version counter (exchanges applied) and, for
    DOWNPOUR, its SGD step on the pushed gradient sums.

    ``rule`` is ``"elastic"`` (asynchronous EASGD and EAMSGD: the master's side of
    d = α(x_i − x̃), x̃ ← x̃ + d) or ``"downpour"``."""

    def __init__(
        self,
        rule: str,
        center: Tensor,
        *,
        alpha: float = 0.0,
        lr: float = 0.0,
        workers: int = 1,
        n_params: int | None = None,
    ) -> None:
        if rule not in MASTER_RULES:
            raise ValueError(f"unknown master rule {rule!r}; expected one of {MASTER_RULES}")
        self.rule, self.alpha = rule, float(alpha)
        if rule == "elastic":
            check_elastic(alpha, workers)
        self.center = center.detach().clone()
        self.n_params = center.numel() if n_params is None else int(n_params)
        self.version = 0
        # DOWNPOUR: SGD on the parameters' part of x̃ (a view); buffers are taken as pushed
        self._params = self.center[: self.n_params]
        self.optimizer = torch.optim.SGD([self._params], lr=lr) if rule == "downpour" else None

    def exchange(self, payload: Tensor) -> Tensor:
        """Apply one worker's message and return the reply. Elastic: the message is the
        worker's state x_i, x̃ ← x̃ + α(x_i − x̃), the reply is x̃ before the exchange.
        DOWNPOUR: the message is the worker's gradient sum Σg (then its buffers), x̃ takes
        one SGD step x̃ ← x̃ − η Σg, the reply is x̃ after it."""
        self.version += 1
        if self.optimizer is None:
            before = self.center.clone()
            self.center.add_((payload - before).mul_(self.alpha))
            return before
        self._params.grad = payload[: self.n_params]
        self.optimizer.step()
        self._params.grad = None
        self.center[self.n_params :] = payload[self.n_params :]
        return self.center.clone()

    def state_dict(self) -> dict[str, Any]:
        state = {"center": self.center.clone(), "version": self.version}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.center.copy_(state["center"])
        self.version = int(state["version"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])


def worker_reply_(rule: str, worker: Tensor, reply: Tensor, alpha: float) -> None:
    """What a worker does with the master's reply: the elastic pull with the center before
    the exchange (EASGD: the same d = α(x_i − x̃) as the master's), or take the center
    (DOWNPOUR)."""
    if rule == "downpour":
        worker.copy_(reply)
    else:
        worker.sub_((worker - reply).mul_(alpha))
