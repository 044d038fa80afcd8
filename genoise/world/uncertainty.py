"""Model-predicted driving cost and its epistemic uncertainty (Henaff, Canziani & LeCun,
ICLR 2019, Sec. 3): the uncertainty of a forward model at an action sequence is the
variance of its predictions over ``M`` dropout masks, per step ``t``::

    u_cost[t]  = Var_m C(G_m(s, a, z)_t)
    u_state[t] = mean_j Var_m (s_m)_{t, j} / std_j^2
    u_image[t] = mean_pixels Var_m (x_m)_t

computed in one batched, differentiable pass (the batch is repeated ``M`` times with
dropout active). Penalising them keeps a planner or policy where the model was trained.

Two forms of the penalty ``U``:

- raw: ``U = sum_t (u_cost[t] + u_state[t])``;
- normalised (the paper's released code, pytorch-PPUU ``compute_uncertainty_batch``): each
  term is standardised by its mean and standard deviation per step on *data* actions
  (:func:`uncertainty_stats`) and hinged, ``U = sum_terms mean_t relu((u[t] - mean[t]) /
  std[t] - hinge)`` (``hinge = 0.5``) — zero while the policy is as certain as the data, and
  in units of the data's spread when it is not, whatever the absolute scale of the variances
  (1e-5 here against a cost ≈ 2);
- normalised robustly (``scale="robust"``, ours, beside the paper's): the same hinge with the
  per-step median and ``1.4826 × MAD`` (the median absolute deviation, scaled to equal the
  standard deviation on Gaussian data) in place of the mean and standard deviation. When a
  few data states carry most of the variance (a heavy tail), their mean and standard
  deviation are set by those few states and the hinge lets most unusual actions through;
  the median and the MAD describe the typical state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from genoise.world.costs import DEFAULT_COSTS, CostConfig, driving_cost
from genoise.world.forward import ForwardModel, rollout

TERMS = ("cost", "state", "image")


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


def uncertainty_terms(
    model: ForwardModel,
    images: Tensor,
    states: Tensor,
    actions: Tensor,
    z: Tensor | None = None,
    n_samples: int = 10,
    config: CostConfig = DEFAULT_COSTS,
) -> dict[str, Tensor]:
    """The per-step variances ``u_cost``, ``u_state``, ``u_image`` (each (B, T), see the module
    docstring) over ``n_samples`` dropout masks, differentiable w.r.t. ``actions`` (B, T, A).

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
    per_mask = lambda t: t.view(n_samples, b, *t.shape[1:]).var(0)  # noqa: E731
    return {
        "cost": per_mask(costs),
        "state": per_mask(pred_states / model.state_std).mean(-1),
        "image": per_mask(pred_images).flatten(2).mean(-1),
    }


@dataclass
class UncertaintyStats:
    """Centre and spread (T,) of each per-step variance of :func:`uncertainty_terms` on data
    actions: ``mean`` and ``std`` hold the mean and the standard deviation
    (``scale="std"``, the paper's) or the median and ``1.4826 × MAD`` (``scale="robust"``);
    ``as_dict`` / ``from_dict`` store them in a checkpoint (lists of floats)."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]
    scale: str = "std"

    def to(self, device: torch.device | str) -> UncertaintyStats:
        return UncertaintyStats({k: v.to(device) for k, v in self.mean.items()},
                                {k: v.to(device) for k, v in self.std.items()}, self.scale)

    def as_dict(self) -> dict:
        return {"mean": {k: v.tolist() for k, v in self.mean.items()},
                "std": {k: v.tolist() for k, v in self.std.items()}, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> UncertaintyStats:
        return cls({k: torch.tensor(v) for k, v in d["mean"].items()},
                   {k: torch.tensor(v) for k, v in d["std"].items()}, d.get("scale", "std"))


SCALES = ("std", "robust")
MAD_TO_STD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its standard deviation


def uncertainty_stats(
    model: ForwardModel,
    batches: Iterable[dict[str, Tensor]],
    n_samples: int = 10,
    config: CostConfig = DEFAULT_COSTS,
    generator: torch.Generator | None = None,
    scale: str = "std",
) -> UncertaintyStats:
    """Per-step centre and spread of the dropout variances for the *recorded* actions of
    ``batches`` (dicts with ``images``, ``states``, ``actions`` (B, T, A)), latents from the
    prior (pytorch-PPUU ``estimate_uncertainty_stats``: "an idea of what normal ranges are
    using actions the forward model was trained on"): the mean and standard deviation over
    the sequences (``scale="std"``, the paper's), or their median and ``1.4826 × MAD``
    (``scale="robust"``, a spread that a few heavy-tailed states do not set). The spread is
    floored at 1e-3 × the term's overall mean (and 1e-12): on states where no car is near,
    the cost has no variance at all."""
    if scale not in SCALES:
        raise ValueError(f"unknown uncertainty scale {scale!r}; use one of {', '.join(SCALES)}")
    collected: dict[str, list[Tensor]] = {k: [] for k in TERMS}
    with torch.no_grad():
        for batch in batches:
            b, t = batch["actions"].shape[:2]
            z = model.sample_prior((b, t), generator)
            terms = uncertainty_terms(model, batch["images"], batch["states"], batch["actions"], z,
                                      n_samples, config)
            for k in TERMS:
                collected[k].append(terms[k])
    if not collected["cost"]:
        raise ValueError("uncertainty_stats needs at least one batch")
    values = {k: torch.cat(v) for k, v in collected.items()}
    if scale == "robust":
        mean = {k: v.quantile(0.5, dim=0) for k, v in values.items()}
        spread = {k: MAD_TO_STD * (v - mean[k]).abs().quantile(0.5, dim=0) for k, v in values.items()}
    else:
        mean = {k: v.mean(0) for k, v in values.items()}
        spread = {k: v.std(0) for k, v in values.items()}
    std = {k: spread[k].clamp(min=max(1e-3 * float(v.mean()), 1e-12)) for k, v in values.items()}
    return UncertaintyStats(mean, std, scale)


def uncertainty_cost(
    model: ForwardModel,
    images: Tensor,
    states: Tensor,
    actions: Tensor,
    z: Tensor | None = None,
    n_samples: int = 10,
    config: CostConfig = DEFAULT_COSTS,
    stats: UncertaintyStats | None = None,
    hinge: float = 0.5,
) -> Tensor:
    """``U(a)`` of shape (B,), differentiable w.r.t. ``actions``: raw
    (``sum_t u_cost + u_state``) without ``stats``, normalised and hinged with them (module
    docstring; ``stats`` from :func:`uncertainty_stats` over the same horizon)."""
    terms = uncertainty_terms(model, images, states, actions, z, n_samples, config)
    if stats is None:
        return (terms["cost"] + terms["state"]).sum(-1)
    steps = actions.shape[1]
    if any(stats.mean[k].shape[0] < steps for k in TERMS):
        raise ValueError(f"the uncertainty stats cover {stats.mean['cost'].shape[0]} steps, "
                         f"fewer than the {steps} of the actions")
    total = actions.new_zeros(actions.shape[0])
    for k in TERMS:
        mean, std = stats.mean[k][:steps].to(actions), stats.std[k][:steps].to(actions)
        total = total + torch.relu((terms[k] - mean) / std - hinge).mean(-1)
    return total
