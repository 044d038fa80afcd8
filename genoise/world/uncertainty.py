"""Model-predicted driving cost and its epistemic uncertainty (Henaff, Canziani & LeCun,
ICLR 2019, Sec. 3): the uncertainty of a forward model at an action sequence is the
variance of its predictions over ``M`` dropout masks::

    U(a) = sum_t [ Var_m C(G_m(s, a, z)_t) + mean_j Var_m (s_m)_{t, j} / std_j^2 ]

computed in one batched, differentiable pass (the batch is repeated ``M`` times with
dropout active). Penalising ``U`` keeps a planner or policy where the model was trained.
"""

from __future__ import annotations

from torch import Tensor

from genoise.world.costs import DEFAULT_COSTS, CostConfig, driving_cost
from genoise.world.forward import ForwardModel, rollout


def predicted_cost(
    model: ForwardModel,
    images: Tensor,
    states: Tensor,
    actions: Tensor,
    z: Tensor | None = None,
    config: CostConfig = DEFAULT_COSTS,
) -> dict[str, Tensor]:
    """Roll the model out over actions (B, T, A) and cost the predicted rasters.

    Returns each cost term summed over time, shape (B,), plus ``"per_step"`` (B, T)."""
    pred_images, pred_states = rollout(model, images, states, actions, z)
    costs = driving_cost(pred_images, pred_states[..., 1], model.raster, config, states[:, -1, 1:2])
    out = {k: v.sum(-1) for k, v in costs.items()}
    out["per_step"] = costs["total"]
    return out


def uncertainty_cost(
    model: ForwardModel,
    images: Tensor,
    states: Tensor,
    actions: Tensor,
    z: Tensor | None = None,
    n_samples: int = 10,
    config: CostConfig = DEFAULT_COSTS,
) -> Tensor:
    """``U(a)`` of shape (B,) (see module docstring), differentiable w.r.t. ``actions``.

    Dropout is switched on for the call (and restored after)."""
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 to estimate a variance, got {n_samples}")
    b = actions.shape[0]
    was_training = model.training
    model.train()
    rep = lambda t: None if t is None else t.repeat(n_samples, *([1] * (t.ndim - 1)))  # noqa: E731
    images, states = rep(images), rep(states)
    pred_images, pred_states = rollout(model, images, states, rep(actions), rep(z))
    model.train(was_training)
    speed0 = states[:, -1, 1:2]
    costs = driving_cost(pred_images, pred_states[..., 1], model.raster, config, speed0)["total"]  # (M*B, T)
    cost_var = costs.view(n_samples, b, -1).var(0).sum(-1)
    state_var = (pred_states / model.state_std).view(n_samples, b, *pred_states.shape[1:]).var(0)
    return cost_var + state_var.mean(-1).sum(-1)

