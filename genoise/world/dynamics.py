"""A learned dynamics model for any ``gymnasium.Env`` with Box observations and continuous
actions — the generic half of the world-model stack (the driving model is
:class:`~genoise.world.forward.ForwardModel`).

``s[t+1] = s[t] + std_delta * f((s[t] - mean_s) / std_s, (a[t] - mean_a) / std_a)`` with an
MLP ``f`` fitted by least squares on transitions collected with random actions
("learning by observation"). :func:`model_rollout_cost` turns it and a differentiable cost
``c(s, a)`` into the ``rollout_cost`` the planners of :mod:`genoise.world.planners` take.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from genoise._checks import check_positive
from genoise.train.run import Run
from genoise.train.trainer import Trainer


def collect_random_transitions(env: gym.Env, n_steps: int, seed: int = 0) -> dict[str, Tensor]:
    """Run uniformly random actions for ``n_steps`` (resetting at episode ends).

    Returns ``obs`` (N, D), ``actions`` (N, A), ``next_obs`` (N, D) as float32 tensors."""
    if not isinstance(env.action_space, gym.spaces.Box) or not isinstance(
        env.observation_space, gym.spaces.Box
    ):
        raise ValueError(
            "collect_random_transitions needs Box observation and action spaces, got "
            f"{type(env.observation_space).__name__} / {type(env.action_space).__name__}"
        )
    check_positive("n_steps", n_steps)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {"obs": [], "actions": [], "next_obs": []}
    for _ in range(int(n_steps)):
        action = env.action_space.sample()
        next_obs, _, terminated, truncated, _ = env.step(action)
        rows["obs"].append(obs)
        rows["actions"].append(action)
        rows["next_obs"].append(next_obs)
        obs = env.reset()[0] if (terminated or truncated) else next_obs
    return {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in rows.items()}


class MLPDynamics(nn.Module):
    """Residual MLP dynamics ``s' = s + std_delta * f(norm(s), norm(a))``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 128, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim + action_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, obs_dim))
        for name, dim in (
            ("obs_mean", obs_dim),
            ("obs_std", obs_dim),
            ("action_mean", action_dim),
            ("action_std", action_dim),
            ("delta_mean", obs_dim),
            ("delta_std", obs_dim),
        ):
            self.register_buffer(name, torch.zeros(dim) if "mean" in name else torch.ones(dim))

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """Next observation (..., D) from observation (..., D) and action (..., A)."""
        x = torch.cat(
            [(obs - self.obs_mean) / self.obs_std, (action - self.action_mean) / self.action_std], -1
        )
        return obs + self.delta_mean + self.delta_std * self.net(x)

    def fit(
        self,
        data: dict[str, Tensor],
        steps: int = 2000,
        batch_size: int = 256,
        lr: float = 1e-3,
        *,
        seed: int = 0,
        run: Run | None = None,
        progress: bool = False,
    ) -> list[float]:
        """Least squares on normalised deltas, ``mean ||f(x) - (delta - mean_d) / std_d||^2``,
        by Adam with a cosine schedule on :class:`genoise.train.Trainer` (epochs of random
        mini-batches drawn without replacement, seeded by ``seed``; with ``run``, ``last.pt``
        and ``run.resume`` as every Trainer). Returns the mean loss of every 100 steps."""
        obs, actions, delta = data["obs"], data["actions"], data["next_obs"] - data["obs"]
        for name, value in (("obs", obs), ("action", actions), ("delta", delta)):
            getattr(self, f"{name}_mean").copy_(value.mean(0))
            getattr(self, f"{name}_std").copy_(value.std(0).clamp(min=1e-6))
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)

        def step_fn(model: MLPDynamics, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
            o, a, d = batch
            x = torch.cat(
                [(o - model.obs_mean) / model.obs_std, (a - model.action_mean) / model.action_std], -1
            )
            return (model.net(x) - (d - model.delta_mean) / model.delta_std).pow(2).mean()

        losses: list[float] = []
        Trainer(
            self, optimiser, step_fn, (obs, actions, delta), run=run, max_steps=int(steps),
            batch_size=min(int(batch_size), obs.shape[0]), scheduler=schedule, seed=int(seed), log_every=100,
            progress=progress, desc="dynamics model", kind="world-dynamics",
            config=run.config if run is not None else None,
            callbacks=[lambda trainer, step, row: losses.append(float(row["loss"]))],
        ).fit()
        return losses


def model_rollout_cost(model: nn.Module, cost, obs: Tensor, terminal_weight: float = 1.0):
    """``rollout_cost(actions) = sum_t c(s_t, a_t) + terminal_weight * c(s_H, 0)`` with
    ``s_0 = obs`` and ``s_{t+1} = model(s_t, a_t)``.

    ``obs`` is (D,) for one problem (actions (N, H, A) → (N,)) or (E, D) for E problems
    (actions (E, N, H, A) → (E, N))."""

    def rollout_cost(actions: Tensor) -> Tensor:
        state = obs.view(*obs.shape[:-1], *([1] * (actions.ndim - obs.ndim - 1)), obs.shape[-1])
        state = state.expand(*actions.shape[:-2], obs.shape[-1])
        total = actions.new_zeros(actions.shape[:-2])
        for t in range(actions.shape[-2]):
            total = total + cost(state, actions[..., t, :])
            state = model(state, actions[..., t, :])
        return total + terminal_weight * cost(state, torch.zeros_like(actions[..., 0, :]))

    return rollout_cost


def pendulum_cost(obs: Tensor, action: Tensor) -> Tensor:
    """Smooth surrogate of Pendulum-v1's cost ``theta^2 + 0.1 thetadot^2 + 0.001 u^2``:
    ``2 (1 - cos theta)`` replaces ``theta^2`` (equal to second order, no kink at ±pi)."""
    return 2.0 * (1.0 - obs[..., 0]) + 0.1 * obs[..., 2] ** 2 + 0.001 * action[..., 0] ** 2
