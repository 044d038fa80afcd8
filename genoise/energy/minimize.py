"""Minimisers over a tensor: projected gradient descent and Langevin dynamics.

They take the energy as a plain callable ``fn(v) -> (B,)``, so that both
:mod:`genoise.energy.base` (the minimum over a continuous latent) and
:mod:`genoise.energy.infer` (ŷ = argmin_y F) use them without importing each other.

* gradient descent with any ``torch.optim`` optimiser and an optional projection
  (projected gradient descent; Bertsekas, *Nonlinear Programming*, §2.3);
* Langevin dynamics, which samples from the Gibbs distribution ∝ exp(-β F) instead of
  minimising:  v ← v - (ε/2) β ∇F(v) + σ ξ,  ξ ~ N(0, I),  σ = √ε by default
  (Welling & Teh 2011; Du & Mordatch 2019 for its use as an EBM sampler).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genoise._checks import check_positive

EnergyFn = Callable[[Tensor], Tensor]
Projection = Callable[[Tensor], Tensor]


def draw_noise(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None,
               kind: str = "gaussian") -> Tensor:
    """Noise of ``shape`` with the dtype and device of ``like``: standard Gaussian,
    uniform on [0, 1) or Rademacher (±1). Drawn on the generator's device and then moved, so a
    CPU generator drives chains that live on a GPU (the same numbers as on the CPU)."""
    device = like.device if generator is None else generator.device
    if kind == "gaussian":
        noise = torch.randn(shape, generator=generator, dtype=like.dtype, device=device)
    elif kind == "uniform":
        noise = torch.rand(shape, generator=generator, dtype=like.dtype, device=device)
    else:
        bits = torch.randint(0, 2, shape, generator=generator, device=device)
        noise = bits.to(like.dtype).mul_(2).sub_(1)
    return noise.to(like.device)


def gradient_minimize(fn: EnergyFn, init: Tensor, *, steps: int = 100, lr: float = 0.1,
                      optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
                      projection: Projection | None = None, keep_best: bool = False,
                      **optimizer_kwargs) -> Tensor:
    """Minimise Σ_b fn(v)_b over v, starting at ``init`` (B, ...); returns v detached.

    Each sample's energy depends only on its own row, so minimising the sum minimises
    every sample independently. ``optimizer`` is any ``torch.optim`` class (SGD, Adam, …;
    extra keyword arguments go to it), ``projection`` (e.g. ``lambda v: v.clamp(-1, 1)``)
    is applied after every step (projected gradient descent). ``keep_best=True`` returns,
    per sample, the iterate of lowest energy seen (``init`` and the final one included)
    instead of the last one: with a large step or Adam the last iterate need not be the
    best (planning by gradient, as in MPC). The model's own parameters receive no gradient.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    check_positive("lr", lr)
    variable = init.detach().clone().requires_grad_(True)
    opt = optimizer([variable], lr=lr, **optimizer_kwargs)
    best, best_energy = variable.detach().clone(), None

    def remember(energy: Tensor) -> None:
        nonlocal best_energy
        energy = energy.detach()
        if best_energy is None:
            better = torch.ones_like(energy, dtype=torch.bool)
            best_energy = energy
        else:
            better = energy < best_energy
            best_energy = torch.where(better, energy, best_energy)
        best.copy_(torch.where(better.view(-1, *[1] * (best.ndim - 1)), variable.detach(), best))

    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            energy = fn(variable)
            if keep_best:
                remember(energy)
            (grad,) = torch.autograd.grad(energy.sum(), variable)
            variable.grad = grad
            opt.step()
            if projection is not None:
                with torch.no_grad():
                    variable.copy_(projection(variable))
        if keep_best:
            remember(fn(variable))
            return best
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
            noise = draw_noise(tuple(variable.shape), variable, generator)
            variable = (variable.detach() - 0.5 * step_size * beta * grad + sigma * noise)
            if projection is not None:
                variable = projection(variable)
    return variable.detach()
