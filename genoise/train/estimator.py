"""``fit_estimator``: the training loop of the classical estimators (PCA, K-means, GMM,
dictionary learning), the iterative counterpart of :class:`~genoise.train.Trainer`.

An iteration of the estimator's own algorithm (a Lloyd step, an EM step, a minibatch of
dictionary learning, the one SVD of PCA) is a step: the loop logs a metrics row per step,
shows a progress bar named ``desc``, checkpoints the estimator in ``last.pt`` (at the end,
after step ``run.stop_after`` and every minute; Ctrl-C keeps the last of those) and resumes
from it bit-for-bit. An estimator exposes

* ``init_fit(y, generator)``: validate ``y``, set up the fit (draw initial values from
  ``generator``, the only source of randomness of the fit);
* ``fit_step(y) -> dict``: one iteration; returns the scalars to log and sets
  ``converged_`` (True: the fit is finished). An estimator whose ``converged_`` keeps
  another meaning (:class:`~genoise.latent.GaussianMixture`: scikit-learn's "the best EM
  run converged") sets ``finished_`` instead, which the loop reads first;
* ``state_dict()`` / ``load_state_dict(state)``: everything the next steps depend on,
  except ``y`` and the generator (the loop checkpoints the generator itself).

The checkpoint has the envelope of every genoise loop, with ``"state"`` in place of the
model and optimiser::

    {"format", "kind", "config", "step", "finished", "seed", "state", "rng": {"generator"}}
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from genoise.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from genoise.train.run import Run
from genoise.train.trainer import RunInterrupted

_CHECKPOINT_SECONDS = 60.0  # between periodic checkpoints (the final state is always written)


class IterativeEstimator(Protocol):
    converged_: bool

    def init_fit(self, y: Any, generator: torch.Generator) -> None: ...

    def fit_step(self, y: Any) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def is_finished(estimator: Any) -> bool:
    """The estimator's end-of-fit flag: ``finished_`` when it has one, else ``converged_``."""
    finished = getattr(estimator, "finished_", None)
    return bool(estimator.converged_ if finished is None else finished)


def run_steps(estimator: IterativeEstimator, y: Any, generator: torch.Generator,
              max_steps: int | None = None) -> int:
    """``init_fit`` then ``fit_step`` until finished (or ``max_steps``), without files:
    what an estimator's own ``fit(y)`` does. Returns the number of steps."""
    estimator.init_fit(y, generator)
    steps = 0
    while not is_finished(estimator) and (max_steps is None or steps < max_steps):
        estimator.fit_step(y)
        steps += 1
    return steps


def _check_steps(max_steps: Any) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    return max_steps


def _load(estimator: IterativeEstimator, run: Run, kind: str,
          generator: torch.Generator) -> tuple[int, bool]:
    """Restore the estimator and the generator from ``run``'s ``last.pt``: (step, finished)."""
    path = run.path(CHECKPOINT_NAME)
    state = load_checkpoint(path)
    if state.get("kind") != kind or "state" not in state:
        raise ValueError(f"{path} holds a {state.get('kind')!r} checkpoint, not {kind!r}; "
                         f"resume the run that wrote it or train into a new folder")
    estimator.load_state_dict(state["state"])
    generator.set_state(state["rng"]["generator"])
    run.metrics.truncate_after(int(state["step"]))
    return int(state["step"]), bool(state["finished"])


def _save(estimator: IterativeEstimator, run: Run, *, kind: str, step: int, finished: bool,
          seed: int, generator: torch.Generator) -> None:
    save_checkpoint({"format": CHECKPOINT_FORMAT, "kind": kind, "config": dict(run.config), "step": step,
                     "finished": finished, "seed": seed, "state": estimator.state_dict(),
                     "rng": {"generator": generator.get_state()}}, run.path(CHECKPOINT_NAME))


def _scalars(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in row.items()}


def fit_estimator(estimator: IterativeEstimator, y: Any, *, run: Run | None = None, max_steps: int,
                  desc: str, kind: str, seed: int = 0) -> dict[str, Any]:
    """Fit ``estimator`` on ``y`` step by step, logging, checkpointing and resuming in ``run``.

    Parameters
    ----------
    estimator : an object with ``init_fit``, ``fit_step``, ``state_dict``, ``load_state_dict``
    y : the training data, passed unchanged to ``init_fit`` and every ``fit_step``
    run : Run, optional
        Its folder gets a metrics row per step and ``last.pt``; with ``run.resume`` the fit
        continues from ``last.pt`` (a finished fit is restored and returns at once); with
        ``run.stop_after == step`` the loop writes ``last.pt`` and raises
        :class:`~genoise.train.RunInterrupted`. Without a run nothing is written.
    max_steps : int      upper bound on the steps (e.g. ``n_init * max_iter``). A fit cut short by
        it is not finished (``"finished": False``, and so in ``last.pt``): a resume with a
        larger ``max_steps`` continues it.
    desc : str           progress-bar label, e.g. ``"k-means"``
    kind : str           checkpoint kind, e.g. ``"estimator-kmeans"``; resuming checks it
    seed : int           seeds the generator handed to ``init_fit``

    Returns the last metrics row with ``"step"`` and ``"finished"`` (only those two when
    nothing was left to do).
    """
    max_steps = _check_steps(max_steps)
    generator = torch.Generator().manual_seed(int(seed))
    estimator.init_fit(y, generator)
    step, finished = 0, False
    if run is not None and run.resume and run.path(CHECKPOINT_NAME).exists():
        step, finished = _load(estimator, run, kind, generator)
    finished = finished or is_finished(estimator)
    stop_after = getattr(run, "stop_after", None)
    progress = run.progress if run is not None else False
    bar = tqdm(total=max_steps, initial=step, desc=desc, dynamic_ncols=True, leave=False,
               disable=not progress or finished)
    row: dict[str, Any] = {}
    saved_at = time.monotonic()
    try:
        while not finished and step < max_steps:
            row = _scalars(estimator.fit_step(y))
            step += 1
            finished = is_finished(estimator)
            bar.update(1)
            if row:
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if isinstance(v, float)},
                                refresh=False)
            if run is None:
                continue
            run.log(row, step=step)
            due = time.monotonic() - saved_at > _CHECKPOINT_SECONDS
            if finished or due or step in (stop_after, max_steps):
                _save(estimator, run, kind=kind, step=step, finished=finished, seed=seed,
                      generator=generator)
                saved_at = time.monotonic()
            if step == stop_after:
                raise RunInterrupted(step, run.path(CHECKPOINT_NAME))
    finally:
        bar.close()
    if run is not None and not run.path(CHECKPOINT_NAME).exists():
        _save(estimator, run, kind=kind, step=step, finished=finished, seed=seed, generator=generator)
    return {"step": step, "finished": finished, **row}
