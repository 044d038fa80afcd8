"""Driving policies trained through the unrolled forward model (Henaff, Canziani & LeCun,
ICLR 2019) and their training losses. (The controllers that drive the simulator are in
:mod:`genoise.world.control`, the closed-loop evaluation in :mod:`genoise.world.evaluate`.)

- MPUR: ``min_pi E_z sum_t [C(G(s_t, pi(s_t), z_t))] + lambda_U * U(pi)`` — the policy
  acts inside the stochastic model, ``z`` drawn from the prior or (as in the paper) inferred
  from the posterior of the recorded sequence that starts at the same context
  (:func:`genoise.world.forward.posterior_noise`), ``U`` the dropout variance of the predicted
  cost, raw or normalised by its range on data and hinged
  (:func:`genoise.world.uncertainty.uncertainty_cost`).
- MPUR without ``U`` (``lambda_U = 0``): the paper's ablation.
- MPER: make the model's rollout under the policy match the expert's future states.
- Behaviour cloning: regress the expert's action.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor, nn

from genoise.world.costs import DEFAULT_COSTS, CostConfig, driving_cost
from genoise.world.forward import ForwardModel, conv_encoder, ego_step, posterior_noise
from genoise.world.raster import EGO, RasterSpec
from genoise.world.uncertainty import UncertaintyStats, uncertainty_cost

LATENTS = ("prior", "posterior")


class DrivingPolicy(nn.Module):
    """``pi(images (B, k, 3, H, W), states (B, k, S)) -> action (B, 2)`` inside the box
    ``[low, high]`` (which must contain 0): ``a = tanh(r) * (high if r > 0 else -low)``, so
    a zero output keeps speed and lane even for an asymmetric box (acceleration in
    ``[-6, 3]``: mapping ``tanh`` onto the box's centre would start every policy braking at
    1.5 m/s²).

    Parameters
    ----------
    history : k, the number of conditioning frames.
    raster : the raster resolution of the observations.
    state_dim : S, the size of the ego state.
    low, high : the action box (A = 2).
    width, hidden : channels of the raster encoder (:func:`~genoise.world.forward.conv_encoder`)
        and size of the hidden code.

    The states are normalised by the buffers ``state_mean`` / ``state_std`` (0 / 1 until set;
    :meth:`from_model` copies the forward model's).
    """

    def __init__(
        self,
        history: int,
        raster: RasterSpec,
        state_dim: int,
        low: np.ndarray,
        high: np.ndarray,
        width: int = 16,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        if not (np.all(np.asarray(low) <= 0) and np.all(np.asarray(high) >= 0)):
            raise ValueError(f"the action box must contain 0, got low={list(low)} high={list(high)}")
        self.history, self.raster = int(history), raster
        self.kwargs = dict(
            history=int(history),
            raster=asdict(raster),
            state_dim=int(state_dim),
            low=[float(v) for v in np.asarray(low)],
            high=[float(v) for v in np.asarray(high)],
            width=width,
            hidden=hidden,
        )
        self.encoder = conv_encoder(3 * history, width, raster.shape, hidden)
        self.state_encoder = nn.Linear(state_dim * history, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.register_buffer("low", torch.as_tensor(np.asarray(low), dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(np.asarray(high), dtype=torch.float32))

    @classmethod
    def from_model(
        cls, model: ForwardModel, low: np.ndarray, high: np.ndarray, width: int = 16, hidden: int = 128
    ) -> DrivingPolicy:
        """A policy for the observations of ``model`` (its history, raster and state size),
        with the model's state normalisation."""
        policy = cls(model.history, model.raster, model.state_dim, low, high, width, hidden)
        policy.state_mean.copy_(model.state_mean)
        policy.state_std.copy_(model.state_std)
        return policy.to(model.state_mean.device)

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> DrivingPolicy:
        """Rebuild from the saved :attr:`kwargs` (the raster as a dict, the box as lists)."""
        kwargs = dict(kwargs)
        kwargs["raster"] = RasterSpec(**{k: tuple(v) for k, v in kwargs["raster"].items()})
        kwargs["low"], kwargs["high"] = np.asarray(kwargs["low"]), np.asarray(kwargs["high"])
        return cls(**kwargs)

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
    each step shifts it by the ego's deviation, as :func:`genoise.world.forward.rollout`;
    an ``action_conditioned`` one predicts it step by step, each step reading the action the
    policy just chose (gradients flow through both)."""
    reference = None
    kinematic = model.reference_frame  # a learned car motion steps in the ego's frame, as the full model
    if kinematic and not model.action_conditioned:
        with torch.no_grad():  # action-independent; the model is frozen during policy training
            reference = model.reference_future(images, states, horizon, z)
    if kinematic:
        dt = float(model.kinematics["dt"])
        y0, v0 = states[:, -1, 0], states[:, -1, 1]
        speed, y, along, ego = v0, y0, torch.zeros_like(v0), images[:, -1, EGO]
        ref_images, ref_states = images, states  # the reference ego's histories
    actions, pred_images, pred_states = [], [], []
    for t in range(horizon):
        action = policy(images, states)
        z_t = None if z is None else z[:, t]
        if not kinematic:
            image, state = model(images, states, action, z_t)
        else:  # one step of kinematic_rollout (the same integrator and composition)
            if reference is None:  # action-conditioned: the other cars' step reads this action
                cars, ref_images, ref_states = model.reference_step(ref_images, ref_states, action, z_t)
            else:
                cars = reference[:, t]
            speed, y = ego_step(speed, y, action, dt)
            along = along + (speed - v0) * dt
            image = model.compose(cars, along, y - y0, y, ego)
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
    latents: str = "prior",
    u_stats: UncertaintyStats | None = None,
    u_hinge: float = 0.5,
) -> dict[str, Tensor]:
    """MPUR objective on a batch of initial contexts (``u_weight = 0``: the ablation).
    The model is run without dropout for the cost and with ``n_dropout`` masks for ``U``
    (raw, or normalised by ``u_stats`` and hinged at ``u_hinge``);
    ``action_weight * mean ||a / a_scale||^2`` regularises the actions (``a_scale`` the
    half-width of the action box). ``latents="posterior"`` infers ``z`` from the batch's
    recorded future (which must cover ``horizon`` steps) instead of the prior."""
    if latents not in LATENTS:
        raise ValueError(f"latents must be one of {', '.join(LATENTS)}, got {latents!r}")
    model.eval()
    b = batch["images"].shape[0]
    if latents == "posterior" and model.nz > 0:
        if batch["actions"].shape[1] < horizon:
            raise ValueError(f"posterior latents need {horizon} recorded future steps, "
                             f"the batch has {batch['actions'].shape[1]}")
        future = {k: batch[k][:, :horizon] for k in ("actions", "target_images", "target_states")}
        z = posterior_noise(model, {**batch, **future}, generator)
    else:
        z = model.sample_prior((b, horizon), generator)
    actions, images, states = unroll_policy(policy, model, batch["images"], batch["states"], horizon, z)
    speed0 = batch["states"][:, -1, 1:2]
    cost = driving_cost(images, states[..., 1], model.raster, config, speed0)["total"].sum(-1).mean()
    out = {"cost": cost, "uncertainty": cost.new_zeros(())}
    if u_weight > 0:
        out["uncertainty"] = uncertainty_cost(
            model, batch["images"], batch["states"], actions, z, n_dropout, config, u_stats, u_hinge
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
