"""Inference is minimisation: ŷ = argmin_y F(x, y) and z* = argmin_z E(x, y, z).

Three minimisers serve both (LeCun et al. 2006, §1-2):

* exhaustive search over a candidate set, batched (one call of the energy on B·K rows);
* gradient descent with any ``torch.optim`` optimiser and an optional projection;
* Langevin dynamics, which samples from the Gibbs distribution ∝ exp(-β F) instead of
  minimising:  v ← v - (ε/2) β ∇F(v) + σ ξ,  ξ ~ N(0, I),  σ = √ε by default
  (Welling & Teh 2011; Du & Mordatch 2019 for its use as an EBM sampler).

The last two live in :mod:`genoise.energy.minimize` (re-exported here). Shapes are checked
before anything is computed: candidates (K, *y_shape) and init (B, *y_shape) need a
feature dimension unless they are integer labels, and the energy must return (B,).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from genoise._checks import check_choice, check_finite
from genoise.energy.base import Energy, check_answers, check_energy_output, tile_pairs
from genoise.energy.minimize import EnergyFn, Projection, gradient_minimize, langevin_sample

__all__ = ["EnergyFn", "ExhaustiveResult", "Projection", "exhaustive_argmin", "gradient_minimize",
           "infer", "infer_latent", "langevin_sample"]


class ExhaustiveResult(NamedTuple):
    """Argmin over a candidate set: the best candidate per sample, its energy, its index."""

    value: Tensor
    energy: Tensor
    index: Tensor


def exhaustive_argmin(energies: Tensor, candidates: Tensor) -> ExhaustiveResult:
    """Pick, for every row of ``energies`` (B, K), the candidate (K, ...) of lowest energy."""
    if energies.ndim != 2 or energies.shape[1] != candidates.shape[0]:
        raise ValueError(f"energies must be (B, K={candidates.shape[0]}), got {tuple(energies.shape)}")
    best, index = energies.min(dim=1)
    return ExhaustiveResult(candidates[index], best, index)


_METHODS = ("exhaustive", "gradient", "langevin")


def _minimise(fn: EnergyFn, grid_energies: Callable[[Tensor], Tensor], *, method: str,
              candidates: Tensor | None, init: Tensor | None, **kwargs) -> Tensor:
    check_choice("method", method, _METHODS)
    if method == "exhaustive":
        if candidates is None:
            raise ValueError("method='exhaustive' needs candidates (K, ...)")
        if candidates.shape[0] == 0:
            raise ValueError("candidates is empty (K = 0)")
        if kwargs:
            raise ValueError(f"method='exhaustive' takes no {', '.join(sorted(kwargs))} argument(s)")
        return exhaustive_argmin(grid_energies(candidates), candidates).value
    if init is None:
        raise ValueError(f"method={method!r} needs an initial value init (B, ...)")
    check_finite("init", init)
    if method == "gradient":
        return gradient_minimize(fn, init, **kwargs)
    return langevin_sample(fn, init, **kwargs)


def infer(energy: Energy, x: Tensor | None = None, *, method: str = "exhaustive",
          candidates: Tensor | None = None, init: Tensor | None = None,
          beta: float = math.inf, batch_size: int | None = None, **kwargs) -> Tensor:
    """ŷ = argmin_y F_β(x, y).

    Parameters
    ----------
    energy : Energy
    x : Tensor (B, ...) or None
        The observed input; ``None`` for an unconditional model (give ``batch_size`` or
        ``init`` then).
    method : {"exhaustive", "gradient", "langevin"}
        ``exhaustive`` scores every candidate (K, *y_shape) for every sample in one
        batched call and returns the best; ``gradient`` runs :func:`gradient_minimize`
        from ``init`` (B, *y_shape) (kwargs: ``steps``, ``lr``, ``optimizer``,
        ``projection``); ``langevin`` runs :func:`langevin_sample` (kwargs: ``steps``,
        ``step_size``, ``noise_std``, ``generator``) and returns samples of P(y | x).
    beta : float
        Inverse temperature of the free energy over the latent, if the model has one.
        With ``method="langevin"`` a finite β is also the temperature of the sampled
        Gibbs distribution exp(-β F) (β = ∞, the default, samples at β = 1).

    Returns
    -------
    Tensor (B, *y_shape)

    Examples
    --------
    >>> import torch
    >>> from genoise.energy import FunctionEnergy, infer
    >>> e = FunctionEnergy(lambda y, x, z: ((y - x) ** 2).sum(-1))
    >>> x = torch.tensor([[0.3], [0.8]])
    >>> infer(e, x, candidates=torch.linspace(0, 1, 11)[:, None]).squeeze(-1)
    tensor([0.3000, 0.8000])
    """
    if x is not None:
        check_finite("x", x)
    if init is not None:
        check_answers("init", init, x=x)
    if candidates is not None and method == "exhaustive":
        check_answers("candidates", candidates, batch="K", x=x)
    if x is not None:
        batch = x.shape[0]
    elif init is not None:
        batch = init.shape[0]
    elif batch_size is not None:
        batch = batch_size
    else:
        raise ValueError("infer needs x, init or batch_size to know the batch size")

    owner = f"{type(energy).__name__}.free_energy"

    def fn(y: Tensor, x_rows: Tensor | None = x) -> Tensor:
        return check_energy_output(owner, energy.free_energy(y, x_rows, beta), y.shape[0], y=y, x=x_rows)

    def grid(cands: Tensor) -> Tensor:
        x_rep, y_rep = tile_pairs(x, cands, batch)
        return fn(y_rep, x_rep).reshape(batch, cands.shape[0])

    if method == "langevin" and math.isfinite(beta):
        kwargs.setdefault("beta", beta)
    return _minimise(fn, grid, method=method, candidates=candidates, init=init, **kwargs)


def infer_latent(energy: Energy, y: Tensor, x: Tensor | None = None, *,
                 method: str | None = None, candidates: Tensor | None = None,
                 init: Tensor | None = None, **kwargs) -> Tensor:
    """z* = argmin_z E(x, y, z) (or samples of P(z | x, y) with ``method="langevin"``).

    Uses the model's discrete latent set when ``candidates`` is not given and the model
    has one, otherwise gradient descent from ``init`` or :meth:`Energy.initial_latent`.
    """
    if not energy.has_latent:
        raise ValueError(f"{type(energy).__name__} has no latent variable (has_latent is False): "
                         "infer_latent minimises E(x, y, z) over z; use infer(energy, x) for y")
    check_answers("y", y, x=x)
    check_finite("y", y)
    if candidates is None:
        candidates = energy.latent_candidates(y, x)
    if method is None:
        method = "exhaustive" if candidates is not None else "gradient"
    if init is None and method != "exhaustive":
        init = energy.initial_latent(y, x)

    def fn(z: Tensor) -> Tensor:
        return energy._energy(y, x, z)

    def grid(cands: Tensor) -> Tensor:
        return energy.energies_over_latents(y, x, cands)

    return _minimise(fn, grid, method=method, candidates=candidates, init=init, **kwargs)
