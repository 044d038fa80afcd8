"""Planners over a learned (or known) model, generic over continuous actions.

Each planner minimises ``J(a) = rollout_cost(a)`` over action sequences ``a`` of shape
(H, A) inside the box ``[low, high]``; ``rollout_cost`` maps a batch (B, H, A) to (B,)
costs (unroll the model from the current state, sum the cost). Receding-horizon control
(:class:`MPC`) re-plans at every step, warm-started with the shifted previous plan.

- ``plan_gradient`` — the Kelley-Bryson adjoint method as back-propagation through the
  unrolled model: projected Adam steps on ``a`` (``rollout_cost`` must be differentiable).
- ``plan_cem`` — cross-entropy method (Rubinstein 1999): sample from a diagonal Gaussian,
  refit it to the ``n_elites`` cheapest sequences.
- ``plan_mppi`` — model-predictive path integral control (Williams et al. 2017): move the
  mean to the exp(-J / temperature)-weighted average of sampled perturbations.

CEM and MPPI draw their perturbations white in time by default; ``noise_beta = β > 0``
draws them *coloured* along the horizon, with power spectral density ∝ 1/f^β (iCEM,
Pinneri et al. 2020): β = 2 gives smooth, Brownian-like sequences that explore detours
(around a wall) that independent per-step noise averages away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_choice, check_positive
from genoise.energy.infer import gradient_minimize

RolloutCost = Callable[[Tensor], Tensor]
MPPI_SELECT = ("best", "mean")  # what plan_mppi returns: the cheapest sample seen, or its final mean


def _bounds(low, high, device=None) -> tuple[Tensor, Tensor]:
    low = torch.as_tensor(np.asarray(low), dtype=torch.float32, device=device)
    high = torch.as_tensor(np.asarray(high), dtype=torch.float32, device=device)
    if low.shape != high.shape or bool((low >= high).any()):
        raise ValueError(
            f"action bounds must satisfy low < high elementwise, got {low.tolist()} / {high.tolist()}"
        )
    return low, high


def _batched(rollout_cost: RolloutCost, batched: bool) -> RolloutCost:
    """Planners work on E independent problems: candidates (E, N, H, A) → costs (E, N).
    An unbatched ``rollout_cost`` ((N, H, A) → (N,)) is wrapped as the case E = 1."""
    if batched:
        return rollout_cost
    return lambda actions: rollout_cost(actions[0]).unsqueeze(0)


def _check_costs(costs: Tensor, expected: tuple[int, ...]) -> Tensor:
    if tuple(costs.shape) != expected:
        raise ValueError(
            f"rollout_cost returned shape {tuple(costs.shape)}, expected {expected} "
            "(one cost per candidate sequence)"
        )
    return costs


def plan_gradient(
    rollout_cost: RolloutCost,
    init: Tensor,
    low,
    high,
    iterations: int = 30,
    lr: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """Gradient MPC: minimise ``rollout_cost`` by Adam on the action sequence, projecting
    onto the bounds after each step (:func:`genoise.energy.infer.gradient_minimize` with
    ``optimizer=Adam`` and the box as ``projection``), keeping the best plan seen.

    ``init`` is (H, A), with ``rollout_cost`` mapping (N, H, A) → (N,); or (E, H, A) for
    E independent problems, with ``rollout_cost`` mapping (E, N, H, A) → (E, N) (their
    summed cost has independent gradients, so they are optimised jointly). Returns the best
    plan among the ``iterations + 1`` evaluated (same shape as ``init``) and its cost
    (scalar or (E,))."""
    batched = init.ndim == 3
    cost_fn = _batched(rollout_cost, batched)
    low, high = _bounds(low, high, init.device)

    def box(plan: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(plan, high), low)

    start = box((init if batched else init.unsqueeze(0)).detach())
    best = [start.clone(), torch.full((start.shape[0],), float("inf"), device=start.device)]

    def plan_cost(plan: Tensor) -> Tensor:  # (E, H, A) -> (E,); remembers the best plan per problem
        cost = _check_costs(cost_fn(plan.unsqueeze(1)), (plan.shape[0], 1))[:, 0]
        better = cost.detach() < best[1]
        best[0] = torch.where(better.view(-1, 1, 1), plan.detach(), best[0])
        best[1] = torch.where(better, cost.detach(), best[1])
        return cost

    final = gradient_minimize(plan_cost, start, steps=int(iterations), lr=lr,
                              optimizer=torch.optim.Adam, projection=box)
    with torch.no_grad():
        plan_cost(final)
    return (best[0], best[1]) if batched else (best[0][0], best[1][0])


PLANNERS = ("gradient", "cem", "mppi")


def planner_options(method: str, samples: int, iterations: int) -> dict[str, float | int]:
    """The planner options used by the recipe, ``genoise plan`` and the benchmarks for a
    budget of ``samples`` candidate sequences per iteration (CEM keeps the best quarter,
    at least 2; MPPI at temperature 0.1; gradient MPC: Adam at lr 0.5)."""
    check_choice("method", method, PLANNERS)
    check_positive("samples", samples)
    check_positive("iterations", iterations)
    return {
        "gradient": dict(iterations=int(iterations), lr=0.5),
        "cem": dict(population=int(samples), n_elites=max(2, int(samples) // 4), iterations=int(iterations)),
        "mppi": dict(samples=int(samples), iterations=int(iterations), temperature=0.1),
    }[method]


def _init_mean(init_mean: Tensor | None, horizon: int, low: Tensor, high: Tensor) -> tuple[Tensor, bool]:
    if init_mean is None:
        return ((low + high) / 2).expand(1, horizon, -1).clone(), False
    batched = init_mean.ndim == 3
    mean = (
        init_mean.detach().clone() if batched else init_mean.detach().expand(horizon, -1).unsqueeze(0).clone()
    )
    return mean, batched


def _keep_best(candidates: Tensor, costs: Tensor, best: Tensor,
               best_cost: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per problem, replace ``best`` by this round's cheapest candidate if it beats
    ``best_cost``; also returns this round's lowest costs (E,)."""
    low_cost, arg = costs.min(1)
    better = low_cost < best_cost
    best = torch.where(better.view(-1, 1, 1), candidates[torch.arange(costs.shape[0]), arg], best)
    return best, torch.where(better, low_cost, best_cost), low_cost


def colored_noise(shape: tuple[int, ...], beta: float, generator: torch.Generator | None = None) -> Tensor:
    """Standard Gaussian noise of ``shape`` (..., H, A), coloured along the horizon axis H:
    power spectral density ∝ 1/f^β (β = 0: white), every (…, A) series rescaled to unit
    variance (the sampling of Pinneri et al. 2020, via the real FFT)."""
    *lead, h, a = shape
    if beta == 0 or h < 2:
        return torch.randn(*shape, generator=generator)
    freqs = torch.fft.rfftfreq(h)
    scale = freqs.clamp(min=1.0 / h).pow(-beta / 2)  # the f = 0 term gets the lowest frequency's weight
    spectrum = torch.complex(
        torch.randn(*lead, a, freqs.numel(), generator=generator),
        torch.randn(*lead, a, freqs.numel(), generator=generator),
    ) * scale
    series = torch.fft.irfft(spectrum, n=h)  # (..., A, H)
    series = (series - series.mean(-1, keepdim=True)) / series.std(-1, keepdim=True).clamp(min=1e-12)
    return series.transpose(-1, -2).contiguous()


def plan_cem(
    rollout_cost: RolloutCost,
    horizon: int,
    low,
    high,
    population: int = 200,
    n_elites: int = 20,
    iterations: int = 5,
    init_mean: Tensor | None = None,
    init_std: float = 0.5,
    generator: torch.Generator | None = None,
    noise_beta: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy method. ``init_std`` is relative to the half-width of the bounds;
    ``init_mean`` (H, A) or (E, H, A) (batched problems, as in :func:`plan_gradient`);
    ``noise_beta``: coloured noise (:func:`colored_noise`)."""
    low, high = _bounds(low, high)
    half = (high - low) / 2
    mean, batched = _init_mean(init_mean, horizon, low, high)
    cost_fn = _batched(rollout_cost, batched)
    std = (init_std * half).expand_as(mean).clone()
    e = mean.shape[0]
    best, best_cost = mean.clone(), torch.full((e,), float("inf"))
    with torch.no_grad():
        for _ in range(iterations):
            noise = colored_noise((e, population, *mean.shape[1:]), noise_beta, generator)
            samples = torch.maximum(torch.minimum(mean.unsqueeze(1) + std.unsqueeze(1) * noise, high), low)
            samples[:, 0] = mean
            costs = _check_costs(cost_fn(samples), (e, population))
            order = torch.argsort(costs, dim=1)
            elite = torch.gather(samples, 1, order[:, :n_elites, None, None].expand(-1, -1, *mean.shape[1:]))
            best, best_cost, _ = _keep_best(samples, costs, best, best_cost)
            mean, std = elite.mean(1), elite.std(1).clamp(min=1e-3 * float(half.min()))
    return (best, best_cost) if batched else (best[0], best_cost[0])


def plan_mppi(
    rollout_cost: RolloutCost,
    horizon: int,
    low,
    high,
    samples: int = 200,
    temperature: float = 1.0,
    noise_std: float = 0.5,
    iterations: int = 3,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
    n_elites: int | None = None,
    adapt_std: bool = False,
    noise_beta: float = 0.0,
    select: str = "best",
) -> tuple[Tensor, Tensor]:
    """MPPI: ``mean <- sum_i w_i a_i`` with ``w ∝ exp(-(J_i - min J) / temperature)``;
    returns the better of the final mean and the best sample.

    ``noise_std`` is relative to the half-width of the bounds. With ``n_elites = K`` only
    the K cheapest samples are weighted, and with ``adapt_std`` the sampling std becomes
    their weighted standard deviation (the MPPI of eb_jepa's planner). ``noise_beta``:
    perturbations coloured along the horizon (:func:`colored_noise`). ``select="mean"``
    returns the final weighted mean instead of the cheapest sample seen: the sample wins by
    its noise as much as by its cost, and executing a noisy plan jitters the system (a dot
    that reached its goal wanders off it)."""
    check_choice("select", select, MPPI_SELECT)
    low, high = _bounds(low, high)
    half = (high - low) / 2
    mean, batched = _init_mean(init_mean, horizon, low, high)
    cost_fn = _batched(rollout_cost, batched)
    e = mean.shape[0]
    std = (noise_std * half).expand_as(mean).clone()
    best, best_cost = mean.clone(), torch.full((e,), float("inf"))
    with torch.no_grad():
        for _ in range(iterations + 1):
            noise = colored_noise((e, samples, *mean.shape[1:]), noise_beta, generator) * std.unsqueeze(1)
            candidates = torch.maximum(torch.minimum(mean.unsqueeze(1) + noise, high), low)
            candidates[:, 0] = mean  # the current mean is always evaluated
            costs = _check_costs(cost_fn(candidates), (e, samples))
            best, best_cost, low_cost = _keep_best(candidates, costs, best, best_cost)
            if n_elites is not None:
                costs, order = torch.topk(costs, min(int(n_elites), samples), dim=1, largest=False)
                index = order[:, :, None, None].expand(-1, -1, *mean.shape[1:])
                candidates = torch.gather(candidates, 1, index)
            weights = torch.softmax(-(costs - low_cost.unsqueeze(1)) / temperature, 1)[..., None, None]
            mean = (weights * candidates).sum(1)
            if adapt_std:
                spread = (weights * (candidates - mean.unsqueeze(1)).square()).sum(1).sqrt()
                std = spread.clamp(min=1e-3 * float(half.min()))
        if select == "mean":
            best, best_cost = mean, _check_costs(cost_fn(mean.unsqueeze(1)), (e, 1))[:, 0]
    return (best, best_cost) if batched else (best[0], best_cost[0])


def plan_actions(method: str, rollout_cost: RolloutCost, init: Tensor, low, high, *,
                 generator: torch.Generator | None = None, **options) -> tuple[Tensor, Tensor]:
    """Plan with ``method`` ∈ :data:`PLANNERS` from the warm start ``init`` ((H, A) or
    (E, H, A)): gradient descent starts there, CEM and MPPI centre their first samples on it.
    ``options`` go to the planner. Returns (plan, cost) as the planner does."""
    if method == "gradient":
        return plan_gradient(rollout_cost, init, low, high, **options)
    if method not in PLANNERS:
        raise ValueError(f"method must be 'gradient', 'cem' or 'mppi', got {method!r}")
    planner = plan_cem if method == "cem" else plan_mppi
    return planner(rollout_cost, init.shape[-2], low, high, init_mean=init, generator=generator, **options)


@dataclass
class MPC:
    """Receding-horizon controller: at each step build ``rollout_cost`` for the current
    observation, plan ``horizon`` actions (warm start: previous plan shifted by one), and
    return the first action.

    ``method`` is ``"gradient"``, ``"cem"`` or ``"mppi"``; ``options`` go to the planner.
    With ``batch = E``, the controller drives E independent systems at once (observations
    stacked, ``rollout_cost`` batched as in :func:`plan_gradient`) and returns (E, A).
    """

    make_rollout_cost: Callable[[object], RolloutCost]
    low: np.ndarray
    high: np.ndarray
    horizon: int = 20
    method: str = "cem"
    options: dict = field(default_factory=dict)
    seed: int = 0
    batch: int | None = None

    def __post_init__(self) -> None:
        if self.method not in PLANNERS:
            raise ValueError(f"method must be 'gradient', 'cem' or 'mppi', got {self.method!r}")
        self.generator = torch.Generator().manual_seed(self.seed)
        self.reset()

    def reset(self) -> None:
        self.plan: Tensor | None = None

    def __call__(self, observation: object) -> np.ndarray:
        rollout_cost = self.make_rollout_cost(observation)
        low, high = _bounds(self.low, self.high)
        shape = (self.horizon, low.numel()) if self.batch is None else (self.batch, self.horizon, low.numel())
        if self.plan is None:
            # around the zero action (clipped into the box), not the box's centre: for a
            # driving box such as [-6, 3] m/s² the centre would be a 1.5 m/s² brake
            rest = torch.maximum(torch.minimum(torch.zeros_like(low), high), low)
            warm = rest + 0.1 * (high - low) * torch.randn(*shape, generator=self.generator)
        else:  # shift the previous plan by one step, repeating its last action
            warm = torch.cat([self.plan[..., 1:, :], self.plan[..., -1:, :]], -2)
        self.plan, _ = plan_actions(self.method, rollout_cost, warm, low, high, generator=self.generator,
                                    **self.options)
        return self.plan[..., 0, :].numpy().astype(np.float32)
