"""Hamiltonian Monte Carlo on exp(−β F(y)), vectorised over B independent chains.

Duane, Kennedy, Pendleton & Roweth, "Hybrid Monte Carlo" (Physics Letters B, 1987);
Neal, "MCMC using Hamiltonian dynamics" (Handbook of MCMC, 2011). With unit mass the
state (y, p) has the Hamiltonian

    H(y, p) = U(y) + ½‖p‖²,      U(y) = β fn(y),

and one iteration, for every chain at once,

1. draws a momentum p ~ N(0, I);
2. follows Hamilton's equations with L leapfrog steps of size ε (Neal 2011, eq. 5.18–5.20):
   p ← p − (ε/2) ∇U(y), then L times [y ← y + ε p; p ← p − ε ∇U(y)], the last momentum
   step halved;
3. accepts the end point (y', p') with probability min(1, exp(H(y, p) − H(y', p'))); a
   proposal whose energy is not finite (``fn`` may return +inf outside its domain) is rejected.

The leapfrog map is reversible and volume-preserving, so every iteration leaves
exp(−U) invariant exactly, whatever ε: the step size only sets the acceptance rate. It can
be tuned during a warm-up by dual averaging (:class:`DualAveraging`; Hoffman & Gelman,
"The No-U-Turn Sampler", JMLR 2014, Algorithm 5). Unlike the unadjusted
:func:`~genoise.energy.langevin_sample`, HMC has no discretisation bias.

:class:`PersistentHMCSampler` runs these chains persistently from a
:class:`~genoise.energy.ReplayBuffer` (Tieleman 2008), as :class:`PersistentLangevinSampler` does.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from genoise._checks import check_finite, check_int, check_positive, has_nan
from genoise.energy.base import Energy, check_answers, check_energy_output
from genoise.energy.minimize import EnergyFn, Projection, draw_noise
from genoise.energy.samplers import ReplayBuffer, as_energy_fn

__all__ = ["DualAveraging", "HMCResult", "PersistentHMCSampler", "hmc_sample"]


class HMCResult(NamedTuple):
    """Samples (B, *shape), detached; the mean Metropolis acceptance probability (over the
    iterations after adaptation, or over all of them if there was none; NaN for ``steps=0``);
    the final step size."""

    samples: Tensor
    accept_rate: float
    step_size: float


def _check_target_accept(target_accept: float) -> float:
    if isinstance(target_accept, bool) or not isinstance(target_accept, (int, float)) or not (
            0 < target_accept < 1):
        raise ValueError(f"target_accept must be a number in (0, 1), got {target_accept!r}")
    return float(target_accept)


class DualAveraging:
    """Step-size adaptation by dual averaging (Hoffman & Gelman 2014, §3.2 and Algorithm 5;
    Nesterov 2009), shared by all chains.

    With δ = ``target_accept`` and α_m the acceptance probability of iteration m (here the
    mean over the chains),

        H̄_m = (1 − 1/(m + t₀)) H̄_{m−1} + (δ − α_m) / (m + t₀)
        log ε_m = μ − (√m / γ) H̄_m
        log ε̄_m = m^{−κ} log ε_m + (1 − m^{−κ}) log ε̄_{m−1}

    from H̄₀ = 0, ε̄₀ = 1, μ = log(10 ε₀), with the paper's γ = 0.05, t₀ = 10, κ = 0.75.
    The iterate ε_m (:attr:`step_size`) is used while adapting; the average ε̄_m
    (:attr:`averaged_step_size`) is the step to freeze afterwards. log ε_m is kept in
    [−50, 50] so that a target that accepts everything cannot overflow it.
    """

    gamma, t0, kappa = 0.05, 10.0, 0.75

    def __init__(self, step_size: float, target_accept: float = 0.65) -> None:
        check_positive("step_size", step_size)
        self.target_accept = _check_target_accept(target_accept)
        self.mu = math.log(10 * step_size)
        self.count = 0
        self.h_bar = 0.0
        self.log_step = math.log(step_size)
        self.log_step_bar = 0.0

    @property
    def step_size(self) -> float:
        return math.exp(self.log_step)

    @property
    def averaged_step_size(self) -> float:
        return math.exp(self.log_step_bar)

    def update(self, accept_prob: float) -> float:
        """Record α_m (NaN counts as 0) and return the next step ε_m."""
        accept_prob = 0.0 if math.isnan(accept_prob) else accept_prob
        self.count += 1
        m = self.count
        weight = 1.0 / (m + self.t0)
        self.h_bar = (1 - weight) * self.h_bar + weight * (self.target_accept - accept_prob)
        self.log_step = min(max(self.mu - math.sqrt(m) / self.gamma * self.h_bar, -50.0), 50.0)
        eta = m ** -self.kappa
        self.log_step_bar = eta * self.log_step + (1 - eta) * self.log_step_bar
        return self.step_size

    def state_dict(self) -> dict[str, Any]:
        return {"target_accept": self.target_accept, "mu": self.mu, "count": self.count,
                "h_bar": self.h_bar, "log_step": self.log_step, "log_step_bar": self.log_step_bar}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("target_accept", "mu", "h_bar", "log_step", "log_step_bar"):
            setattr(self, key, float(state[key]))
        self.count = int(state["count"])


def _potential_and_grad(fn: EnergyFn, y: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """U(y) = β fn(y) (B,) and ∇U(y) (B, *shape), both detached."""
    with torch.enable_grad():
        variable = y.detach().requires_grad_(True)
        energy = check_energy_output("hmc_sample fn", fn(variable), y.shape[0], y=y)
        grad = None
        if energy.requires_grad:
            (grad,) = torch.autograd.grad(energy.sum(), variable, allow_unused=True)
    if grad is None:  # an energy that does not depend on y
        grad = torch.zeros_like(y)
    return beta * energy.detach(), beta * grad


def _kinetic(p: Tensor) -> Tensor:
    return 0.5 * p.flatten(1).pow(2).sum(1)


def _hmc_step(fn: EnergyFn, y: Tensor, potential: Tensor, grad: Tensor, *, step_size: float,
              leapfrog_steps: int, beta: float, generator: torch.Generator | None,
              projection: Projection | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One HMC iteration for all chains; returns (y, U(y), ∇U(y), acceptance probability (B,))."""
    momentum = draw_noise(tuple(y.shape), y, generator)
    start_h = potential + _kinetic(momentum)
    q, p, q_grad = y, momentum - 0.5 * step_size * grad, grad
    for i in range(leapfrog_steps):
        q = q + step_size * p
        if projection is not None:
            q = projection(q).detach()
        q_potential, q_grad = _potential_and_grad(fn, q, beta)
        p = p - (step_size if i < leapfrog_steps - 1 else 0.5 * step_size) * q_grad
    end_h = q_potential + _kinetic(p)
    # exp(min(0, H − H')): 1 from an infinite start, 0 (rejected) for a non-finite proposal
    accept_prob = torch.where(torch.isfinite(end_h), (start_h - end_h).clamp(max=0).exp(),
                              torch.zeros_like(end_h))
    accept = draw_noise(tuple(accept_prob.shape), accept_prob, generator, "uniform") < accept_prob
    rows = accept.view(-1, *[1] * (y.ndim - 1))
    return (torch.where(rows, q, y), torch.where(accept, q_potential, potential),
            torch.where(rows, q_grad, grad), accept_prob)


def _check_hmc_arguments(init: Tensor, steps: int, leapfrog_steps: int, step_size: float,
                         beta: float, target_accept: float) -> None:
    check_int("steps", steps, min=0)
    check_int("leapfrog_steps", leapfrog_steps, min=1)
    check_positive("step_size", step_size)
    check_positive("beta", beta)
    _check_target_accept(target_accept)
    _check_init("init", init)


def _check_init(name: str, init: Tensor) -> None:
    check_answers(name, init)
    if not init.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (B, *shape), got {init.dtype}")
    check_finite(name, init)


def _run_chains(fn: EnergyFn, init: Tensor, *, steps: int, leapfrog_steps: int, step_size: float,
                beta: float, generator: torch.Generator | None, projection: Projection | None,
                adaptation: DualAveraging | None, adapt_steps: int) -> HMCResult:
    """``steps`` HMC iterations; the first ``adapt_steps`` adapt the step size with
    ``adaptation`` (its iterate ε_m), the rest use ``step_size`` (or ε̄ once adapted)."""
    y = init.detach().clone()
    potential, grad = _potential_and_grad(fn, y, beta)
    if has_nan(potential):
        raise ValueError(f"fn returned {int(torch.isnan(potential).sum())} NaN energies at init")
    accept_probs: list[float] = []
    for iteration in range(steps):
        adapting = adaptation is not None and iteration < adapt_steps
        epsilon = adaptation.step_size if adapting else step_size
        y, potential, grad, accept_prob = _hmc_step(
            fn, y, potential, grad, step_size=epsilon, leapfrog_steps=leapfrog_steps, beta=beta,
            generator=generator, projection=projection)
        mean_prob = float(accept_prob.mean())
        if adapting:
            adaptation.update(mean_prob)
            step_size = adaptation.averaged_step_size
        if not adapting or adapt_steps == steps:
            accept_probs.append(mean_prob)
    accept_rate = sum(accept_probs) / len(accept_probs) if accept_probs else math.nan
    return HMCResult(y.detach(), accept_rate, step_size)


def hmc_sample(fn: Energy | EnergyFn, init: Tensor, *, steps: int = 10, leapfrog_steps: int = 10,
               step_size: float = 0.1, beta: float = 1.0, generator: torch.Generator | None = None,
               adapt_steps: int = 0, target_accept: float = 0.65,
               projection: Projection | None = None) -> HMCResult:
    """Run ``steps`` HMC iterations on exp(−β fn(y)) from ``init``, one chain per row.

    Parameters
    ----------
    fn : callable ``fn(y) -> (B,)`` or Energy
        The energy; an unconditional :class:`Energy` is sampled through its free energy.
    init : Tensor (B, *shape)
        Starting points, floating point and finite.
    steps : int >= 0
        HMC iterations (momentum draw, leapfrog trajectory, Metropolis test).
    leapfrog_steps : int >= 1
        L, leapfrog steps per trajectory (Neal 2011, §5.4.2: trajectory length L·ε).
    step_size : float > 0
        ε, the leapfrog step; the initial ε₀ when adapting.
    beta : float > 0
        Inverse temperature: the target is ∝ exp(−β fn(y)).
    generator : torch.Generator, optional
        Draws the momenta and the Metropolis uniforms (on ``init``'s device).
    adapt_steps : int in [0, steps]
        The first ``adapt_steps`` iterations tune ε by dual averaging (Hoffman & Gelman 2014,
        Algorithm 5) towards a mean acceptance probability ``target_accept``; they move the
        chains too (so they are warm-up, not exact MCMC). ε is then frozen at the averaged ε̄.
    target_accept : float in (0, 1)
        δ of the dual averaging (0.65 is optimal for HMC in high dimension; Neal 2011, §5.4.4).
    projection : callable, optional
        Applied to the position after every leapfrog step (e.g. a clamp to the pixel range),
        as in :func:`~genoise.energy.langevin_sample`. The chain stays exact only where it
        does not move the point; to confine a chain exactly, let ``fn`` return +inf outside.

    Returns
    -------
    HMCResult
        ``samples`` (B, *shape) detached, ``accept_rate`` (mean acceptance probability
        min(1, exp(−ΔH)) over chains and over the non-adaptation iterations, or over all if
        every iteration adapts; NaN when ``steps=0``) and the final ``step_size``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> scales = torch.linspace(0.5, 1.0, 50)  # N(0, diag(scales²))
    >>> result = hmc_sample(lambda y: 0.5 * ((y / scales) ** 2).sum(-1), torch.zeros(200, 50),
    ...                     steps=200, adapt_steps=100, generator=g)
    >>> result.samples.shape, abs(result.accept_rate - 0.65) < 0.05
    (torch.Size([200, 50]), True)
    """
    _check_hmc_arguments(init, steps, leapfrog_steps, step_size, beta, target_accept)
    adapt_steps = check_int("adapt_steps", adapt_steps, min=0, max=steps)
    adaptation = DualAveraging(step_size, target_accept) if adapt_steps else None
    return _run_chains(as_energy_fn(fn), init, steps=steps, leapfrog_steps=leapfrog_steps,
                       step_size=float(step_size), beta=float(beta), generator=generator,
                       projection=projection, adaptation=adaptation, adapt_steps=adapt_steps)


class PersistentHMCSampler:
    """Persistent chains of HMC (Tieleman 2008) from a :class:`~genoise.energy.ReplayBuffer`.

    Each call draws starting points from ``buffer``, runs ``steps`` iterations of
    :func:`hmc_sample` on exp(−β F(y)), writes the samples back and returns them (detached:
    they are the contrastive answers ŷ of the loss), as
    :class:`~genoise.energy.PersistentLangevinSampler` does with Langevin dynamics.

    Step-size adaptation (``adapt=True``) is *continuous*: one dual averaging
    (:class:`DualAveraging`) runs across all calls, every iteration being an adaptation
    iteration that moves with the iterate ε_m. Restarting it on every call from the current
    step would bias short calls (its first iterates try 10 ε), and ε̄ would settle well below
    the target acceptance; the continuous iterate converges (its noise shrinks like 1/√m).
    After a large change of the energy, :meth:`restart_adaptation` starts afresh from the
    current :attr:`step_size`. The adaptation's state is part of :meth:`state_dict`.

    Parameters
    ----------
    energy : Energy or callable ``fn(y) -> (B,)``
        An unconditional :class:`Energy` (its free energy is used) or any energy function.
    buffer : ReplayBuffer
        Its generator also drives the momenta and the Metropolis tests.
    steps, leapfrog_steps, step_size, beta, target_accept, projection
        As in :func:`hmc_sample` (``step_size`` is the initial ε₀ when adapting).
    adapt : bool
        Tune ε towards ``target_accept`` by dual averaging, continuously.

    Attributes
    ----------
    last_accept_rate : float
        Mean acceptance probability of the last call (NaN before the first).

    Examples
    --------
    >>> import torch
    >>> from genoise.energy.samplers import ReplayBuffer, uniform_init
    >>> g = torch.Generator().manual_seed(0)
    >>> sampler = PersistentHMCSampler(lambda y: 0.5 * (y ** 2).sum(-1),
    ...                                ReplayBuffer(100, uniform_init(2), generator=g), steps=5)
    >>> sampler.sample(16).shape
    torch.Size([16, 2])
    """

    def __init__(self, energy: Energy | EnergyFn, buffer: ReplayBuffer, *, steps: int = 10,
                 leapfrog_steps: int = 10, step_size: float = 0.1, beta: float = 1.0,
                 adapt: bool = True, target_accept: float = 0.65,
                 projection: Projection | None = None) -> None:
        check_int("steps", steps, min=0)
        check_int("leapfrog_steps", leapfrog_steps, min=1)
        check_positive("step_size", step_size)
        check_positive("beta", beta)
        self.energy = energy
        self.buffer = buffer
        self.steps = steps
        self.leapfrog_steps = leapfrog_steps
        self.beta = float(beta)
        self.projection = projection
        self._step_size = float(step_size)
        self.target_accept = _check_target_accept(target_accept)
        self.adaptation = DualAveraging(step_size, target_accept) if adapt else None
        self.last_accept_rate = math.nan

    @property
    def step_size(self) -> float:
        """The current ε: the averaged ε̄ once adaptation has run, else the fixed step."""
        if self.adaptation is not None and self.adaptation.count:
            return self.adaptation.averaged_step_size
        return self._step_size

    def restart_adaptation(self) -> None:
        """Start a new dual averaging from the current :attr:`step_size`."""
        self._step_size = self.step_size
        self.adaptation = DualAveraging(self._step_size, self.target_accept)

    def sample(self, batch_size: int) -> Tensor:
        """Draw, run the chains, write back; returns samples (B, *shape), detached."""
        start, index = self.buffer.sample(batch_size)
        _check_init("buffer samples", start)
        result = _run_chains(
            as_energy_fn(self.energy), start, steps=self.steps, leapfrog_steps=self.leapfrog_steps,
            step_size=self._step_size, beta=self.beta, generator=self.buffer.generator,
            projection=self.projection, adaptation=self.adaptation,
            adapt_steps=self.steps if self.adaptation is not None else 0)
        self.buffer.update(index, result.samples)
        self.last_accept_rate = result.accept_rate
        return result.samples

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "step_size": self._step_size,
                "adaptation": None if self.adaptation is None else self.adaptation.state_dict(),
                "last_accept_rate": self.last_accept_rate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self._step_size = float(state["step_size"])
        self.last_accept_rate = float(state.get("last_accept_rate", math.nan))
        if state.get("adaptation") is None:
            self.adaptation = None
        else:
            self.adaptation = DualAveraging(self._step_size, self.target_accept)
            self.adaptation.load_state_dict(state["adaptation"])
