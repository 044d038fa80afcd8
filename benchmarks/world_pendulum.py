"""Model-based control on Pendulum-v1 with a model learned from random actions.

A residual MLP (genoise.world.dynamics.MLPDynamics) is fitted on transitions collected with
uniformly random torques; receding-horizon planners (gradient MPC = back-propagation through
the unrolled model, CEM, MPPI) then act on the real environment. Reference rows measured in
the same run: a random policy, and CEM planning with the true pendulum equations (oracle
model). Mean return over the same episode seeds for every row.

    python benchmarks/world_pendulum.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from genoise.world.dynamics import MLPDynamics, collect_random_transitions, model_rollout_cost, pendulum_cost
from genoise.world.planners import MPC


def true_pendulum(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's equations (g = 10, m = l = 1, dt = 0.05) on observations (cos, sin, thetadot)."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    thetadot = (obs[..., 2] + (3 * 10.0 / 2 * torch.sin(theta) + 3.0 * u) * 0.05).clamp(-8.0, 8.0)
    theta = theta + thetadot * 0.05
    return torch.stack([torch.cos(theta), torch.sin(theta), thetadot], -1)


def run_episodes(policy, seeds: list[int]) -> tuple[np.ndarray, float]:
    """Run len(seeds) Pendulum-v1 episodes in lock-step; ``policy`` maps (E, 3) → (E, 1)."""
    envs = [gym.make("Pendulum-v1") for _ in seeds]
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)])
    returns = np.zeros(len(seeds))
    start = time.perf_counter()
    for _ in range(200):
        actions = policy(obs)
        results = [env.step(a) for env, a in zip(envs, actions, strict=True)]
        obs = np.stack([r[0] for r in results])
        returns += [r[1] for r in results]
    return returns, time.perf_counter() - start


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 episodes, smaller model fit")
    parser.add_argument("--episodes", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_episodes = args.episodes or (4 if args.quick else 20)
    seeds = list(range(1000, 1000 + n_episodes))
    env = gym.make("Pendulum-v1")
    low, high = env.action_space.low, env.action_space.high

    start = time.perf_counter()
    data = collect_random_transitions(env, 5000 if args.quick else 20000, seed=0)
    model = MLPDynamics(3, 1, hidden=128)
    losses = model.fit(data, steps=1000 if args.quick else 3000, seed=0)
    fit_seconds = time.perf_counter() - start
    for p in model.parameters():
        p.requires_grad_(False)

    def planner(dynamics, method: str, options: dict):
        mpc = MPC(
            lambda obs: model_rollout_cost(dynamics, pendulum_cost, torch.as_tensor(obs)),
            low,
            high,
            horizon=25,
            method=method,
            options=options,
            batch=n_episodes,
            seed=0,
        )
        return lambda obs: mpc(obs)

    rng = np.random.default_rng(0)
    rows = [
        ("random policy", lambda obs: rng.uniform(low, high, size=(len(obs), 1)).astype(np.float32)),
        ("MPC-gradient (learned model)", planner(model, "gradient", dict(iterations=10, lr=0.3))),
        ("CEM (learned model)", planner(model, "cem", dict(population=100, n_elites=10, iterations=4))),
        ("MPPI (learned model)", planner(model, "mppi", dict(samples=100, iterations=3, temperature=0.5))),
        (
            "CEM (true equations, reference)",
            planner(true_pendulum, "cem", dict(population=100, n_elites=10, iterations=4)),
        ),
    ]
    lines = [
        f"Pendulum-v1, {n_episodes} episodes (seeds {seeds[0]}–{seeds[-1]}), 200 steps each; model fitted on "
        f"{data['obs'].shape[0]} random-action transitions in {fit_seconds:.0f} s (final normalised MSE "
        f"{losses[-1]:.2e}); horizon 25.",
        "",
        "| controller | mean return | std | min | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, policy in rows:
        returns, seconds = run_episodes(policy, seeds)
        lines.append(
            f"| {name} | {returns.mean():.1f} | {returns.std():.1f} | {returns.min():.1f} | {seconds:.0f} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    out = Path(__file__).parent / "results" / "world_pendulum.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
