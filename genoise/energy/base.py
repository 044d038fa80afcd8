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
        return self.energy(y, x=x, z=z)

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
        return self.energy(y_rep, x=x_rep, z=z_rep).reshape(batch, candidates.shape[0])

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
        check_same_batch(y=y, x=x)
        if not self.has_latent:
            return self.energy(y, x=x)
        candidates = self.latent_candidates(y, x)
        if candidates is not None:
            return free_energy_from_energies(self.energies_over_latents(y, x, candidates), beta)
        if math.isinf(beta):
            from genoise.energy.infer import infer_latent

            z = infer_latent(self, y, x, method="gradient", steps=steps, lr=lr)
            return self.energy(y, x=x, z=z)
        samples = self.sample_latent(num_samples, y.shape[0], generator)
        if samples is None:
            raise ValueError(f"{type(self).__name__} has a continuous latent but no "
                             "sample_latent(); finite-beta free energy needs one")
        s, b = samples.shape[:2]
        y_rep = y.unsqueeze(0).expand(s, *y.shape).reshape(s * b, *y.shape[1:])
        x_rep = None if x is None else x.unsqueeze(0).expand(s, *x.shape).reshape(s * b, *x.shape[1:])
        energies = self.energy(y_rep, x=x_rep, z=samples.reshape(s * b, *samples.shape[2:]))
        return free_energy_from_energies(energies.reshape(s, b).T, beta, mean=True)


class FunctionEnergy(Energy):
    """Wrap a plain function ``fn(y, x, z) -> (B,)`` as an :class:`Energy`.

    Handy for closed-form energies in tests and examples::

        quadratic = FunctionEnergy(lambda y, x=None, z=None: ((y - 1) ** 2).sum(-1))
    """

    def __init__(self, fn: Callable[..., Tensor], *, latent_candidates: Tensor | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.has_latent = latent_candidates is not None
        self._candidates = latent_candidates

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        return self.fn(y, x, z)

    def latent_candidates(self, y: Tensor, x: Tensor | None = None) -> Tensor | None:
        return self._candidates
