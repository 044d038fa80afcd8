"""Goal reaching in Two Rooms by planning in a JEPA's latent space, and the baselines run
in the same harness (random actions, goal-conditioned behaviour cloning, an oracle on the
true state).

Planning cost (after eb_jepa's ``repr_dist`` objective): with ẑ_0 = Enc(o_0), ẑ_{t+1} =
Pred(ẑ_t, a_t) and z_g = Enc(o_goal),

    C(a) = (1/H) Σ_{t=1}^{H} ‖ẑ_t − z_g‖₂        (``objective="sum"``; the reference sums)
    C(a) = ‖ẑ_H − z_g‖₂                          (``objective="last"``, "MPPI-last")

minimised over a ∈ [−m, m]^{H×2} by MPPI, CEM or projected Adam (:mod:`genoise.world.planners`);
every action is scaled back onto the disc ‖a‖ ≤ m = 2.45 before the model (and the arena)
see it. Receding horizon: ``replan_every`` = k actions of the plan are executed, then the
agent re-plans from the new observation, warm-started with the rest of the plan.

With ``distance="squared"`` each ‖ẑ_t − z_g‖₂ becomes ‖ẑ_t − z_g‖²₂ / D, the mean squared error
over the D coordinates that eb_jepa's ``ReprTargetDistMPCObjective`` computes (it sums the
horizon, we average it: the same ranking of plans). ``"l2"`` (the default) is the distance
itself; docs/jepa.md compares the two.

All E episodes of an evaluation run as one batch (planning problems (E, N, H, A)); the
reported planning time per episode is the controller's wall-clock time divided by E.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_positive
from genoise.world.planners import MPPI_SELECT, plan_actions
from genoise.world.two_rooms import (
    GEOMETRY,
    RoomsGeometry,
    clip_norm,
    detour,
    render,
    rollout_positions,
    room_of,
    sample_tasks,
    step_positions,
    success,
    success_by_detour,
)

METHODS = ("mppi", "cem", "gradient")
OBJECTIVES = ("sum", "last")
DISTANCES = ("l2", "squared")


@dataclass(frozen=True)
class Protocol:
    """The evaluation protocol, printed with every table (the reference's, eb_jepa
    ``eval.yaml`` + ``planning_mppi.yaml``, except ``horizon``/``iterations``/``samples``/
    ``replan_every``, which trade planning time on a CPU; see docs/jepa.md)."""

    episodes: int = 20
    max_steps: int = 200
    success_radius: float = 4.5
    max_norm: float = 2.45
    fixed_wall: bool = False
    goal: str = "start and goal uniform in opposite rooms, 2.6 px from the walls"
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("episodes", self.episodes, min=1)
        check_int("max_steps", self.max_steps, min=1)
        check_positive("success_radius", self.success_radius)
        check_positive("max_norm", self.max_norm)

    def describe(self) -> str:
        wall = "fixed wall" if self.fixed_wall else "random wall and door per episode"
        return (
            f"{self.episodes} episodes (task seed {self.seed}), {wall}; {self.goal}; "
            f"{self.max_steps} steps, ‖a‖ ≤ {self.max_norm}; success = final distance "
            f"< {self.success_radius} px (65 px world units)"
        )


@dataclass(frozen=True)
class PlannerConfig:
    method: str = "mppi"
    objective: str = "sum"
    horizon: int = 48
    iterations: int = 8
    samples: int = 200
    elites: int = 20
    replan_every: int = 4
    temperature: float = 10.0  # ≫ the cost differences: the elites' plain mean (eb_jepa's)
    init_std: float = 1.0
    lr: float = 0.3
    noise_beta: float = 2.0  # MPPI/CEM perturbations coloured along the horizon, PSD ∝ 1/f^β
    select: str = "best"  # MPPI: execute the cheapest sample ("best") or the weighted mean ("mean")
    distance: str = "l2"  # "squared": ‖ẑ_t − z_g‖² / D, eb_jepa's mean squared error

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("select", self.select, MPPI_SELECT)
        check_choice("distance", self.distance, DISTANCES)
        for name in ("horizon", "iterations", "samples", "elites", "replan_every"):
            check_int(name, getattr(self, name), min=1)
        if self.replan_every > self.horizon:
            raise ValueError(f"replan_every={self.replan_every} exceeds the horizon={self.horizon}")
        if self.elites > self.samples:
            raise ValueError(f"elites={self.elites} exceeds samples={self.samples}")
        check_positive("temperature", self.temperature)
        check_positive("init_std", self.init_std)
        check_positive("lr", self.lr)
        if not 0 <= self.noise_beta <= 4:
            raise ValueError(f"noise_beta must lie in [0, 4], got {self.noise_beta}")


class Controller(ABC):
    """Base: ``reset(tasks)`` then ``__call__(obs, positions, t) -> (E, k, 2)`` actions."""

    chunk = 1

    def reset(self, tasks: dict[str, Tensor], goal_obs: Tensor) -> None:
        self.tasks, self.goal_obs = tasks, goal_obs

    @abstractmethod
    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor: ...


def latent_rollout_cost(
    model: nn.Module, z0: Tensor, z_goal: Tensor, objective: str, max_norm: float, distance: str = "l2"
) -> Callable[[Tensor], Tensor]:
    """(E, N, H, A) candidate plans → (E, N) costs, unrolling ``model.predictor`` from the
    states z0 (E, state) and comparing their representations with z_goal (E, D) by the
    ``distance`` of :class:`PlannerConfig`."""
    check_choice("distance", distance, DISTANCES)

    def cost(actions: Tensor) -> Tensor:
        e, n = actions.shape[:2]
        z = model.represent(model.unroll(z0[:, None].expand(e, n, -1), clip_norm(actions, max_norm)))
        diff = z - z_goal[:, None, None]
        dist = diff.norm(dim=-1) if distance == "l2" else diff.square().mean(-1)
        return dist.mean(-1) if objective == "sum" else dist[..., -1]

    return cost


class LatentPlanner(Controller):
    """Receding-horizon planning in the latent space of an :class:`ActionConditionedJEPA`."""

    def __init__(
        self, model: nn.Module, config: PlannerConfig, max_norm: float = GEOMETRY.max_norm, seed: int = 0
    ) -> None:
        self.model, self.config, self.max_norm = model.eval(), config, max_norm
        self.generator = torch.Generator().manual_seed(seed)
        self.chunk = config.replan_every

    def reset(self, tasks: dict[str, Tensor], goal_obs: Tensor) -> None:
        super().reset(tasks, goal_obs)
        with torch.no_grad():
            self.z_goal = self.model.represent(self.model.encode(goal_obs))
        self.plan: Tensor | None = None

    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor:
        c, m = self.config, self.max_norm
        e, k = obs.shape[0], self.chunk
        if self.plan is None:
            warm = torch.randn(e, c.horizon, 2, generator=self.generator) * 0.1 * m
        else:  # the rest of the previous plan, padded with its last action
            rest = self.plan[:, k:] if k < c.horizon else self.plan[:, -1:]
            warm = torch.cat([rest, rest[:, -1:].expand(-1, c.horizon - rest.shape[1], -1)], 1)
        with torch.no_grad():
            z0 = self.model.encode(obs)
        cost = latent_rollout_cost(self.model, z0, self.z_goal, c.objective, m, c.distance)
        low, high = np.full(2, -m, np.float32), np.full(2, m, np.float32)
        if c.method == "mppi":
            options = dict(samples=c.samples, temperature=c.temperature, noise_std=c.init_std,
                           iterations=c.iterations, n_elites=c.elites, adapt_std=True,
                           noise_beta=c.noise_beta, select=c.select)
        elif c.method == "cem":
            options = dict(population=c.samples, n_elites=c.elites, iterations=c.iterations,
                           init_std=c.init_std, noise_beta=c.noise_beta)
        else:
            options = dict(iterations=c.iterations, lr=c.lr)
        # gradient descent differentiates through the predictor; the episodes run without grad
        with torch.enable_grad() if c.method == "gradient" else contextlib.nullcontext():
            self.plan, _ = plan_actions(c.method, cost, warm, low, high, generator=self.generator, **options)
        return clip_norm(self.plan[:, :k], m)


class TrueDynamicsPlanner(LatentPlanner):
    """The planner's ceiling: the same receding-horizon planner and cost, with the arena's
    exact physics (no bounce noise) as the model and the dot's position (world units) as the
    "representation" — C(a) = (1/H) Σ_t ‖p_t − p_goal‖. What it misses, the planner misses;
    what it reaches and the JEPA planner does not, the learned model gets wrong."""

    def __init__(self, config: PlannerConfig, geometry: RoomsGeometry = GEOMETRY, seed: int = 0) -> None:
        super().__init__(_Positions(geometry), config, geometry.max_norm, seed)

    def reset(self, tasks: dict[str, Tensor], goal_obs: Tensor) -> None:
        self.model.tasks = tasks
        self.model.here = tasks["goal"]
        super().reset(tasks, goal_obs)

    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor:
        self.model.here = positions
        return super().__call__(obs, positions, t)


class _Positions(nn.Module):
    """The model of :class:`TrueDynamicsPlanner`: ``encode`` returns the current true
    positions, ``unroll`` the exact physics of (E, N, H, 2) plans from them."""

    def __init__(self, geometry: RoomsGeometry) -> None:
        super().__init__()
        self.geometry = geometry

    def encode(self, obs: Tensor) -> Tensor:
        return self.here

    def represent(self, positions: Tensor) -> Tensor:
        return positions

    def unroll(self, z0: Tensor, actions: Tensor) -> Tensor:
        e, n, h, _ = actions.shape
        wall_x = self.tasks["wall_x"][:, None].expand(e, n).reshape(-1)
        door_y = self.tasks["door_y"][:, None].expand(e, n).reshape(-1)
        visited = rollout_positions(z0.reshape(-1, 2), actions.reshape(-1, h, 2), wall_x, door_y,
                                    geometry=self.geometry, bounce_std=0.0)
        return visited[:, 1:].reshape(e, n, h, 2)


class RandomController(Controller):
    """Uniform random actions in the disc ‖a‖ ≤ max_norm."""

    def __init__(self, max_norm: float = GEOMETRY.max_norm, seed: int = 0) -> None:
        self.max_norm, self.generator = max_norm, torch.Generator().manual_seed(seed)

    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor:
        e = obs.shape[0]
        angle = torch.rand(e, generator=self.generator) * 2 * torch.pi
        radius = self.max_norm * torch.rand(e, generator=self.generator).sqrt()
        return (torch.stack([angle.cos(), angle.sin()], -1) * radius[:, None]).unsqueeze(1)


class OracleController(Controller):
    """The upper bound: the true state and the map. Head for the door (1 px before the wall,
    on the door's axis), go through it, then straight to the goal, at full speed."""

    def __init__(self, geometry: RoomsGeometry = GEOMETRY) -> None:
        self.geometry = geometry

    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor:
        g, tasks = self.geometry, self.tasks
        wall_x, door_y, goal = tasks["wall_x"], tasks["door_y"], tasks["goal"]
        here, there = room_of(positions, wall_x), room_of(goal, wall_x)
        side = torch.where(here == 0, -1.0, 1.0)
        off = g.half_wall + 2.0
        near_door = torch.stack([wall_x + side * off, door_y], -1)
        beyond = torch.stack([wall_x - side * off, door_y], -1)
        aligned = ((positions - near_door).norm(dim=-1) < 1.0) | ((positions[:, 0] - wall_x).abs() <= off)
        target = torch.where(
            (here == there).unsqueeze(-1), goal, torch.where(aligned.unsqueeze(-1), beyond, near_door)
        )
        return clip_norm(target - positions, g.max_norm).unsqueeze(1)


class PolicyController(Controller):
    """A goal-conditioned policy π(o_t, o_goal) → a_t (GCBC), one action per step."""

    def __init__(self, policy: nn.Module, max_norm: float = GEOMETRY.max_norm) -> None:
        self.policy, self.max_norm = policy.eval(), max_norm

    def __call__(self, obs: Tensor, positions: Tensor, t: int) -> Tensor:
        with torch.no_grad():
            return clip_norm(self.policy(obs, self.goal_obs), self.max_norm).unsqueeze(1)


def run_episodes(
    controller: Controller,
    protocol: Protocol,
    image_size: int,
    geometry: RoomsGeometry = GEOMETRY,
    device: torch.device | str = "cpu",
    record: bool = False,
) -> dict:
    """Drive ``protocol.episodes`` tasks at once (seeded by ``protocol.seed``); returns the
    success rate, mean final distance, planning seconds per episode and, with ``record``,
    every position (E, T + 1, 2), every executed action (E, T, 2) and the tasks."""
    rng = np.random.default_rng(protocol.seed)
    tasks = sample_tasks(protocol.episodes, rng, fixed_wall=protocol.fixed_wall, geometry=geometry)
    wall_x, door_y = tasks["wall_x"], tasks["door_y"]
    bounce = torch.Generator().manual_seed(protocol.seed + 1)

    def observe(pos: Tensor) -> Tensor:
        return render(pos, wall_x, door_y, image_size, geometry).to(device)

    controller.reset(tasks, observe(tasks["goal"]))
    pos, trail, executed, spent, t = tasks["start"].clone(), [tasks["start"].clone()], [], 0.0, 0
    while t < protocol.max_steps:
        begin = time.perf_counter()
        chunk = controller(observe(pos), pos, t).detach().to("cpu", torch.float32)
        spent += time.perf_counter() - begin
        if chunk.shape[0] != pos.shape[0] or chunk.shape[-1] != 2:
            raise ValueError(
                f"controller returned actions of shape {tuple(chunk.shape)}, expected ({pos.shape[0]}, k, 2)"
            )
        for j in range(min(chunk.shape[1], protocol.max_steps - t)):
            action = clip_norm(chunk[:, j], protocol.max_norm)
            executed.append(action)
            pos = step_positions(
                pos,
                action,
                wall_x,
                door_y,
                geometry=geometry,
                generator=bounce,
            )
            trail.append(pos.clone())
            t += 1
    final = (pos - tasks["goal"]).norm(dim=-1)
    reached = success(pos, tasks["goal"], geometry)
    out = {
        "success": float(reached.float().mean()) * 100,
        "final_distance": float(final.mean()),
        "plan_seconds_per_episode": spent / protocol.episodes,
        "successes": reached.tolist(),
        "success_by_detour": success_by_detour(reached, detour(tasks)),
    }
    if record:
        out["positions"] = torch.stack(trail, 1)
        out["actions"] = torch.stack(executed, 1)
        out["tasks"] = tasks
    return out

