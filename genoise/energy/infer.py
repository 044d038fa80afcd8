"""Inference is minimisation: ŷ = argmin_y F(x, y) and z* = argmin_z E(x, y, z).

Three minimisers serve both (LeCun et al. 2006, §1-2):

* exhaustive search over a candidate set, batched (one call of the energy on B·K rows);
* gradient descent with any ``torch.optim`` optimiser and an optional projection;
* Langevin dynamics, which samples from the Gibbs distribution ∝ exp(-β F) instead of
  minimising:  v ← v - (ε/2) β ∇F(v) + σ ξ,  ξ ~ N(0, I),  σ = √ε by default
  (Welling & Teh 2011; Du & Mordatch 2019 for its use as an EBM sampler).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_positive
from genoise.energy.base import Energy, tile_pairs

EnergyFn = Callable[[Tensor], Tensor]
Projection = Callable[[Tensor], Tensor]


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


def gradient_minimize(fn: EnergyFn, init: Tensor, *, steps: int = 100, lr: float = 0.1,
                      optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
                      projection: Projection | None = None, **optimizer_kwargs) -> Tensor:
    """Minimise Σ_b fn(v)_b over v, starting at ``init`` (B, ...); returns v detached.

    Each sample's energy depends only on its own row, so minimising the sum minimises
    every sample independently. ``projection`` (e.g. ``lambda v: v.clamp(-1, 1)``) is
    applied after every step (projected gradient descent). The model's own parameters
    receive no gradient.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    check_positive("lr", lr)
    variable = init.detach().clone().requires_grad_(True)
    opt = optimizer([variable], lr=lr, **optimizer_kwargs)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            energy = fn(variable)
            (grad,) = torch.autograd.grad(energy.sum(), variable)
            variable.grad = grad
            opt.step()
            if projection is not None:
                with torch.no_grad():
                    variable.copy_(projection(variable))
    return variable.detach()


def langevin_sample(fn: EnergyFn, init: Tensor, *, steps: int = 60, step_size: float = 0.01,
                    noise_std: float | None = None, beta: float = 1.0,
                    generator: torch.Generator | None = None,
                    projection: Projection | None = None,
                    grad_clip: float | None = None) -> Tensor:
    """Run ``steps`` of (unadjusted) Langevin dynamics on exp(-β fn); returns samples.

    v ← v - (ε/2) β ∇fn(v) + σ ξ with ε = ``step_size`` and σ = ``noise_std``
    (default √ε, the exact Langevin diffusion; EBM practice often uses a smaller σ).
    ``grad_clip`` bounds each coordinate of the gradient, ``projection`` the samples.
    """
    check_positive("step_size", step_size)
    check_positive("beta", beta)
    sigma = math.sqrt(step_size) if noise_std is None else check_positive(
        "noise_std", noise_std, allow_zero=True)
    variable = init.detach().clone()
    with torch.enable_grad():
        for _ in range(steps):
            variable.requires_grad_(True)
            (grad,) = torch.autograd.grad(fn(variable).sum(), variable)
            if grad_clip is not None:
                grad = grad.clamp(-grad_clip, grad_clip)
            noise = torch.randn(variable.shape, generator=generator, dtype=variable.dtype,
                                device=variable.device)
            variable = (variable.detach() - 0.5 * step_size * beta * grad + sigma * noise)
            if projection is not None:
                variable = projection(variable)
    return variable.detach()


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
        batch = x.shape[0]
    elif init is not None:
        batch = init.shape[0]
    elif batch_size is not None:
        batch = batch_size
    else:
        raise ValueError("infer needs x, init or batch_size to know the batch size")

    def fn(y: Tensor) -> Tensor:
        return energy.free_energy(y, x, beta)

    if method == "langevin" and math.isfinite(beta):
        kwargs.setdefault("beta", beta)

    def grid(cands: Tensor) -> Tensor:
        x_rep, y_rep = tile_pairs(x, cands, batch)
        return energy.free_energy(y_rep, x_rep, beta).reshape(batch, cands.shape[0])

    return _minimise(fn, grid, method=method, candidates=candidates, init=init, **kwargs)


def infer_latent(energy: Energy, y: Tensor, x: Tensor | None = None, *,
                 method: str | None = None, candidates: Tensor | None = None,
                 init: Tensor | None = None, **kwargs) -> Tensor:
    """z* = argmin_z E(x, y, z) (or samples of P(z | x, y) with ``method="langevin"``).

    Uses the model's discrete latent set when ``candidates`` is not given and the model
    has one, otherwise gradient descent from ``init`` or :meth:`Energy.initial_latent`.
    """
    check_finite("y", y)
    if candidates is None:
        candidates = energy.latent_candidates(y, x)
    if method is None:
        method = "exhaustive" if candidates is not None else "gradient"
    if init is None and method != "exhaustive":
        init = energy.initial_latent(y, x)

    def fn(z: Tensor) -> Tensor:
        return energy.energy(y, x=x, z=z)

    def grid(cands: Tensor) -> Tensor:
        return energy.energies_over_latents(y, x, cands)

    return _minimise(fn, grid, method=method, candidates=candidates, init=init, **kwargs)
