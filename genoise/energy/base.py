"""The ``Energy`` abstraction: one scalar per sample, low when y is compatible with x.

LeCun, Chopra, Hadsell, Ranzato & Huang, "A Tutorial on Energy-Based Learning" (2006).
A model is E(x, y, z) -> R; the free energy marginalises the latent z,

    F_∞(x, y) = min_z E(x, y, z),      F_β(x, y) = -(1/β) log ∫ exp(-β E(x, y, z)) dz,

and inference is ŷ = argmin_y F(x, y) (see :mod:`genoise.energy.infer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genoise._checks import check_same_batch
from genoise.energy.functional import _check_beta, free_energy_from_energies
from genoise.energy.minimize import gradient_minimize


def _shape(tensor: Tensor | None) -> str:
    return "None" if tensor is None else str(tuple(tensor.shape))


def check_answers(name: str, y: Tensor, *, batch: str = "B", **context: Tensor | None) -> Tensor:
    """Raise ``ValueError`` unless ``y`` is (B, *y_shape) with a feature dimension.

    A 1-D floating-point y would pair each scalar with a whole row of x by broadcasting
    (``y - x`` with y (B,) and x (B, 1) is (B, B)) and still return B energies, so the
    slip goes unnoticed; only integer labels (:class:`~genoise.energy.ClassifierEnergy`)
    may be 1-D. ``context`` tensors are named in the message.
    """
    if not isinstance(y, Tensor):
        raise ValueError(f"{name} must be a tensor ({batch}, *y_shape), got {type(y).__name__}")
    if y.ndim == 0 or (y.ndim == 1 and y.is_floating_point()):
        shown = "".join(f", {k}: {_shape(v)}" for k, v in context.items() if v is not None)
        raise ValueError(f"{name} must be ({batch}, *y_shape) with a feature dimension, got shape "
                         f"{_shape(y)}{shown}; for scalar answers use {name}[:, None] "
                         "(only integer labels may be 1-D)")
    return y


def check_energy_output(owner: str, out: Tensor, batch: int, **inputs: Tensor | None) -> Tensor:
    """Raise ``ValueError`` unless ``out`` holds one energy per sample, shape (B,)."""
    if not isinstance(out, Tensor) or tuple(out.shape) != (batch,):
        got = _shape(out) if isinstance(out, Tensor) else type(out).__name__
        shown = ", ".join(f"{k}: {_shape(v)}" for k, v in inputs.items() if v is not None)
        raise ValueError(f"{owner} must return shape (B,) = ({batch},), got {got} ({shown}); "
                         "reduce the feature dimensions, e.g. .sum(-1)")
    return out


def tile_pairs(batch: Tensor | None, candidates: Tensor, batch_size: int) -> tuple[Tensor | None, Tensor]:
    """Pair every row of ``batch`` (B, ...) with every candidate (K, ...).

    Returns ``batch`` repeated to (B·K, ...) (each row K times in a row) and the
    candidates tiled to (B·K, ...), so that row b·K + k is (batch[b], candidates[k]).
    """
    k = candidates.shape[0]
    tiled = candidates.unsqueeze(0).expand(batch_size, *candidates.shape).reshape(
        batch_size * k, *candidates.shape[1:])
    if batch is None:
        return None, tiled
    return batch.repeat_interleave(k, dim=0), tiled


class Energy(nn.Module):
    """Base class of every energy model.

    Subclasses implement :meth:`energy`. Models with a latent variable set
    ``has_latent = True`` and provide either a discrete latent set
    (:meth:`latent_candidates`, exact marginalisation) or a sampler
    (:meth:`sample_latent`, Monte-Carlo marginalisation for finite β) together with
    :meth:`initial_latent` (gradient minimisation over z for β = ∞). Models with a
    closed-form or specialised minimiser over z (sparse coding: FISTA) override
    :meth:`free_energy` instead.

    Shapes: ``y`` (B, *y_shape), ``x`` (B, *x_shape) or ``None`` (unconditional),
    ``z`` (B, *z_shape) or ``None``; the energy is (B,).
    """

    has_latent: bool = False

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(x, y, z), one scalar per sample: shape (B,)."""
        raise NotImplementedError(f"{type(self).__name__} must implement energy(y, x, z)")

    def forward(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(x, y, z) (B,), with the shapes of ``y`` and of the result checked."""
        check_answers("y", y, x=x)
        return self._energy(y, x, z)

    def _energy(self, y: Tensor, x: Tensor | None, z: Tensor | None) -> Tensor:
        """:meth:`energy`, refusing a result that is not one scalar per sample."""
        return check_energy_output(f"{type(self).__name__}.energy", self.energy(y, x=x, z=z),
                                   y.shape[0], y=y, x=x, z=z)

    # ----------------------------------------------------------------- latent hooks
    def latent_candidates(self, y: Tensor, x: Tensor | None = None) -> Tensor | None:
        """The discrete latent set (K, *z_shape), or ``None`` for a continuous latent."""
        return None

    def sample_latent(self, num_samples: int, batch_size: int,
                      generator: torch.Generator | None = None) -> Tensor | None:
        """Samples z ~ q(z), shape (num_samples, batch_size, *z_shape), for the Monte-Carlo
        free energy; ``None`` if the model has no sampler."""
        return None

    def initial_latent(self, y: Tensor, x: Tensor | None = None) -> Tensor | None:
        """Starting point (B, *z_shape) for gradient minimisation over z."""
        return None

    # ----------------------------------------------------------------- free energy
    def energies_over_latents(self, y: Tensor, x: Tensor | None, candidates: Tensor) -> Tensor:
        """E(x, y, z_k) for every sample and every latent candidate: shape (B, K).

        One batched call of :meth:`energy` on (B·K) rows; no Python loop over candidates.
        """
        batch = y.shape[0]
        y_rep, z_rep = tile_pairs(y, candidates, batch)
        x_rep = None if x is None else x.repeat_interleave(candidates.shape[0], dim=0)
        return self._energy(y_rep, x_rep, z_rep).reshape(batch, candidates.shape[0])

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf, *,
                    num_samples: int = 256, generator: torch.Generator | None = None,
                    steps: int = 200, lr: float = 0.1) -> Tensor:
        """F_β(x, y), shape (B,).

        No latent: F = E(x, y). Discrete latent set: exact min (β = ∞) or
        -(1/β) logsumexp(-βE). Continuous latent: β = ∞ minimises E over z by gradient
        descent (``steps``, ``lr``, plain SGD) from :meth:`initial_latent`; finite β is the
        Monte-Carlo estimate -(1/β) log (1/S) Σ_s exp(-β E(x, y, z_s)) with z_s from
        :meth:`sample_latent` (``num_samples`` of them).
        """
        beta = _check_beta(beta)
        check_answers("y", y, x=x)
        check_same_batch(y=y, x=x)
        if not self.has_latent:
            return self._energy(y, x, None)
        candidates = self.latent_candidates(y, x)
        if candidates is not None:
            return free_energy_from_energies(self.energies_over_latents(y, x, candidates), beta)
        if math.isinf(beta):
            init = self.initial_latent(y, x)
            if init is None:
                raise ValueError(f"{type(self).__name__} has a continuous latent but no "
                                 "initial_latent(); the minimum over z needs a starting point")
            z = gradient_minimize(lambda v: self._energy(y, x, v), init, steps=steps, lr=lr)
            return self._energy(y, x, z)
        samples = self.sample_latent(num_samples, y.shape[0], generator)
        if samples is None:
            raise ValueError(f"{type(self).__name__} has a continuous latent but no "
                             "sample_latent(); finite-beta free energy needs one")
        s, b = samples.shape[:2]
        y_rep = y.unsqueeze(0).expand(s, *y.shape).reshape(s * b, *y.shape[1:])
        x_rep = None if x is None else x.unsqueeze(0).expand(s, *x.shape).reshape(s * b, *x.shape[1:])
        energies = self._energy(y_rep, x_rep, samples.reshape(s * b, *samples.shape[2:]))
        return free_energy_from_energies(energies.reshape(s, b).T, beta, mean=True)


class FunctionEnergy(Energy):
    """Wrap a plain function ``fn(y, x, z) -> (B,)`` as an :class:`Energy`.

    Handy for closed-form energies in tests and examples::

        quadratic = FunctionEnergy(lambda y, x=None, z=None: ((y - 1) ** 2).sum(-1))

    ``latent_candidates`` (K, *z_shape) gives a discrete latent set; ``has_latent=True``
    without it declares a continuous latent (minimised by :func:`~genoise.energy.infer_latent`
    from an ``init``).
    """

    def __init__(self, fn: Callable[..., Tensor], *, latent_candidates: Tensor | None = None,
                 has_latent: bool | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.has_latent = latent_candidates is not None if has_latent is None else bool(has_latent)
        if latent_candidates is not None and not self.has_latent:
            raise ValueError("latent_candidates given with has_latent=False")
        self._candidates = latent_candidates

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        return self.fn(y, x, z)

    def latent_candidates(self, y: Tensor, x: Tensor | None = None) -> Tensor | None:
        return self._candidates
