"""Driving policies trained through the unrolled forward model (Henaff, Canziani & LeCun,
ICLR 2019), behaviour cloning, and the closed-loop evaluation on the simulator.

- MPUR: ``min_pi E_z sum_t [C(G(s_t, pi(s_t), z_t))] + lambda_U * U(pi)`` — the policy
  acts inside the stochastic model, ``z`` drawn from the prior, ``U`` the dropout variance
  of the predicted cost (:func:`genoise.world.uncertainty.uncertainty_cost`).
- MPUR without ``U`` (``lambda_U = 0``): the paper's ablation.
- MPER: make the model's rollout under the policy match the expert's future states.
- Behaviour cloning: regress the expert's action.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor, nn

from genoise.world.costs import DEFAULT_COSTS, CostConfig, driving_cost
from genoise.world.forward import ForwardModel, _conv_encoder, ego_step
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import EGO
from genoise.world.uncertainty import uncertainty_cost


class DrivingPolicy(nn.Module):
    """``pi(images (B, k, 3, H, W), states (B, k, S)) -> action (B, 2)`` inside the box
    ``[low, high]`` (which must contain 0): ``a = tanh(r) * (high if r > 0 else -low)``, so
    a zero output keeps speed and lane even for an asymmetric box (acceleration in
    ``[-6, 3]``: mapping ``tanh`` onto the box's centre would start every policy braking at
    1.5 m/s²). State normalisation copied from the forward model."""

    def __init__(
        self, model: ForwardModel, low: np.ndarray, high: np.ndarray, width: int = 16, hidden: int = 128
    ) -> None:
        super().__init__()
        if not (np.all(np.asarray(low) <= 0) and np.all(np.asarray(high) >= 0)):
            raise ValueError(f"the action box must contain 0, got low={list(low)} high={list(high)}")
        self.history, self.raster = model.history, model.raster
        self.kwargs = dict(
            history=model.history,
            raster=asdict(model.raster),
            state_dim=model.state_dim,
            low=[float(v) for v in np.asarray(low)],
            high=[float(v) for v in np.asarray(high)],
            width=width,
            hidden=hidden,
        )
        h, w = model.raster.shape
        flat = 2 * width * (h // 8) * (w // 8)
        self.encoder = nn.Sequential(_conv_encoder(3 * model.history, width), nn.Linear(flat, hidden))
        self.state_encoder = nn.Linear(model.state_dim * model.history, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.register_buffer("state_mean", model.state_mean.clone())
        self.register_buffer("state_std", model.state_std.clone())
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, images: Tensor, states: Tensor) -> Tensor:
        b = images.shape[0]
        s = ((states - self.state_mean) / self.state_std).reshape(b, -1)
        raw = self.head(self.encoder(images.reshape(b, -1, *images.shape[-2:])) + self.state_encoder(s))
        squashed = torch.tanh(raw)
        return squashed * torch.where(squashed > 0, self.high, -self.low)


def unroll_policy(
    policy: DrivingPolicy, model: ForwardModel, images: Tensor, states: Tensor, horizon: int, z: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Let the policy drive inside the model for ``horizon`` steps: actions (B, T, 2),
    predicted rasters (B, T, 3, H, W) and states (B, T, S). With an ``ego_kinematics``
    model the other cars' future is predicted once (it does not depend on the actions) and
    each step shifts it by the ego's deviation, as :func:`genoise.world.forward.rollout`."""
    reference = None
    if model.kinematics is not None:
        with torch.no_grad():  # action-independent; the model is frozen during policy training
            reference = model.reference_future(images, states, horizon, z)
        dt = float(model.kinematics["dt"])
        y0, v0 = states[:, -1, 0], states[:, -1, 1]
        speed, y, along, ego = v0, y0, torch.zeros_like(v0), images[:, -1, EGO]
    actions, pred_images, pred_states = [], [], []
    for t in range(horizon):
        action = policy(images, states)
        if reference is None:
            image, state = model(images, states, action, None if z is None else z[:, t])
        else:  # one step of kinematic_rollout (the same integrator and composition)
            speed, y = ego_step(speed, y, action, dt)
            along = along + (speed - v0) * dt
            image = model.compose(reference[:, t], along, y - y0, y, ego)
            state = torch.stack([y, speed, action[:, 1]], -1)
        actions.append(action)
        pred_images.append(image)
        pred_states.append(state)
        images = torch.cat([images[:, 1:], image.unsqueeze(1)], 1)
        states = torch.cat([states[:, 1:], state.unsqueeze(1)], 1)
    return torch.stack(actions, 1), torch.stack(pred_images, 1), torch.stack(pred_states, 1)


def mpur_loss(
    policy: DrivingPolicy,
    model: ForwardModel,
    batch: dict[str, Tensor],
    horizon: int,
    u_weight: float = 0.05,
    n_dropout: int = 10,
    config: CostConfig = DEFAULT_COSTS,
    generator: torch.Generator | None = None,
    action_weight: float = 0.0,
) -> dict[str, Tensor]:
    """MPUR objective on a batch of initial contexts (``u_weight = 0``: the ablation).
    The model is run without dropout for the cost and with ``n_dropout`` masks for ``U``;
    ``action_weight * mean ||a / a_scale||^2`` regularises the actions (``a_scale`` the
    half-width of the action box)."""
    model.eval()
    b = batch["images"].shape[0]
    z = model.sample_prior((b, horizon), generator)
    actions, images, states = unroll_policy(policy, model, batch["images"], batch["states"], horizon, z)
    speed0 = batch["states"][:, -1, 1:2]
    cost = driving_cost(images, states[..., 1], model.raster, config, speed0)["total"].sum(-1).mean()
    out = {"cost": cost, "uncertainty": cost.new_zeros(())}
    if u_weight > 0:
        out["uncertainty"] = uncertainty_cost(
            model, batch["images"], batch["states"], actions, z, n_dropout, config
        ).mean()
    scale = (policy.high - policy.low) / 2
    out["action"] = (actions / scale).pow(2).sum(-1).mean()
    out["loss"] = cost + u_weight * out["uncertainty"] + action_weight * out["action"]
    return out


def mper_loss(policy: DrivingPolicy, model: ForwardModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """MPER: squared error between the model's rollout under the policy and the expert's
    future (states normalised, plus raster MSE); needs ``batch`` with ``n_future = T``."""
    model.eval()
    horizon = batch["actions"].shape[1]
    _, images, states = unroll_policy(policy, model, batch["images"], batch["states"], horizon, None)
    state_error = ((states - batch["target_states"]) / model.state_std).pow(2).mean()
    image_error = (images - batch["target_images"]).pow(2).mean()
    return {"loss": state_error + image_error, "state_error": state_error, "image_error": image_error}


def bc_loss(policy: DrivingPolicy, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Behaviour cloning: ``||pi(s_t) - a_t||^2`` with the expert's (normalised) action."""
    scale = (policy.high - policy.low) / 2
    error = ((policy(batch["images"], batch["states"]) - batch["actions"][:, 0]) / scale).pow(2).mean()
    return {"loss": error}


Controller = Callable[[HighwayTrafficEnv, Tensor, Tensor], np.ndarray]


def policy_controller(policy: nn.Module) -> Controller:
    """Wrap a network ``pi(images, states)`` as a controller of the evaluation loop."""

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        with torch.no_grad():
            return policy(images.unsqueeze(0), states.unsqueeze(0))[0].numpy()

    return act


def evaluate_driving(
    controller: Controller, seeds: list[int], env_kwargs: dict, history: int, record: int | None = None
) -> dict:
    """Closed-loop episodes on ``HighwayTrafficEnv(**env_kwargs)`` (one per seed).

    ``controller(env, images (k, 3, H, W), states (k, 3)) -> action``; the first frame is
    repeated to fill the history. Success = ``"arrived"`` (no collision, no off-road, within
    the time limit). Returns rates, mean distance, per-episode outcomes and, for the episode
    number ``record``, its rendered frames."""
    outcomes, distances, frames = [], [], []
    for number, seed in enumerate(seeds):
        env = HighwayTrafficEnv(**env_kwargs, render_mode="rgb_array" if number == record else None)
        obs, info = env.reset(seed=seed)
        images = deque([torch.as_tensor(obs["raster"])] * history, maxlen=history)
        states = deque([torch.as_tensor(obs["state"])] * history, maxlen=history)
        if number == record:
            frames.append(env.render())
        while True:
            action = np.asarray(controller(env, torch.stack(list(images)), torch.stack(list(states))))
            obs, _, terminated, truncated, info = env.step(
                np.clip(action, env.action_space.low, env.action_space.high)
            )
            images.append(torch.as_tensor(obs["raster"]))
            states.append(torch.as_tensor(obs["state"]))
            if number == record:
                frames.append(env.render())
            if terminated or truncated:
                break
        outcomes.append(info["termination"])
        distances.append(info["progress"])
    n = len(seeds)
    return {
        "success_rate": sum(o == "arrived" for o in outcomes) / n,
        "collision_rate": sum(o == "collision" for o in outcomes) / n,
        "offroad_rate": sum(o == "off_road" for o in outcomes) / n,
        "mean_distance": float(np.mean(distances)),
        "outcomes": outcomes,
        "frames": frames,
    }


def keep_speed(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
    """The "no action" row: zero acceleration, zero lateral velocity."""
    return np.zeros(2, dtype=np.float32)


def expert(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
    """The "IDM driver itself" row: replay the ghost driver's action (invisible mode)."""
    action = env.expert_action()
    return np.zeros(2, dtype=np.float32) if action is None else action


def episode_mpc_controller(
    make_rollout_cost: Callable,
    observe: Callable[[HighwayTrafficEnv], object],
    horizon: int,
    method: str = "cem",
    options: dict | None = None,
    seed: int = 0,
) -> Controller:
    """A receding-horizon controller (:class:`genoise.world.planners.MPC` within the
    environment's action box) that starts a fresh planner, seeded with ``seed``, at every
    episode, so an episode's outcome does not depend on the episodes driven before it.
    ``make_rollout_cost`` receives ``observe(env)`` at every step."""
    from genoise.world.planners import MPC

    state: dict[str, MPC] = {}

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        if env.steps == 0 or "mpc" not in state:
            low, high = env.action_space.low, env.action_space.high
            state["mpc"] = MPC(make_rollout_cost, low, high, horizon=horizon, method=method,
                               options=options or {}, seed=seed)
        return state["mpc"](observe(env))

    return act


def planner_controller(
    model: ForwardModel,
    method: str,
    low: np.ndarray,
    high: np.ndarray,
    horizon: int = 10,
    options: dict | None = None,
    config: CostConfig = DEFAULT_COSTS,
    seed: int = 0,
) -> Controller:
    """Receding-horizon planning over the learned driving model (gradient MPC, CEM or MPPI):
    the rollout cost of a candidate action sequence is the paper's cost of the predicted
    rasters (latent z = 0, dropout off)."""
    from genoise.world.planners import MPC
    from genoise.world.uncertainty import predicted_cost

    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)

    def make_rollout_cost(context: tuple[Tensor, Tensor]):
        images, states = context

        def rollout_cost(actions: Tensor) -> Tensor:
            n = actions.shape[0]
            return predicted_cost(
                model, images.expand(n, *images.shape), states.expand(n, *states.shape), actions, None, config
            )["total"]

        return rollout_cost

    mpc = MPC(make_rollout_cost, low, high, horizon=horizon, method=method, options=options or {}, seed=seed)

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        if env.steps == 0:
            mpc.reset()
        return mpc((images, states))

    return act
