"""Differentiable driving costs computed from an ego-centred raster, as in Henaff, Canziani
& LeCun (ICLR 2019) — they are computed from the *predicted* raster, so a planner or policy
can back-propagate them through an unrolled forward model.

With pixel centres ``dx_i`` (ahead) and ``dy_j`` (left) relative to the ego car:

- proximity cost — a mask that decays linearly with distance, its longitudinal reach
  growing with speed (``d_safe(v) = safe_time * |v| + min_distance``)::

      M_ij = relu(1 - |dx_i| / d_safe(v)) * relu(1 - |dy_j| / lateral_reach)
      C_proximity = max_ij M_ij * cars_ij

  With ``rear_speed="initial"`` the rows behind the ego (``dx_i < 0``) use
  ``d_safe(v_0)``, ``v_0`` the speed at the start of the rollout (given by the caller):
  a follower that does not see the ego keeps roughly its speed, so the distance it needs does
  not shrink when the ego brakes. With the paper's choice (``"current"``) braking shrinks
  the rear mask too, and a controller minimising the cost brakes to a stop in front of
  followers that cannot see it (measured with a planner on the simulator's true future,
  ``docs/world.md``).

- lane cost — lane dividers under the ego car, weighted by lateral closeness::

      L_ij = 1[|dx_i| <= ego_length / 2] * relu(1 - |dy_j| / (lane_width / 2))
      C_lane = max_ij L_ij * lanes_ij

- off-road cost — the same mask over the off-road area (lane-channel value 1.0; dividers
  are 0.5 and vanish under ``relu(2 x - 1)``)::

      C_offroad = max_ij L_ij * relu(2 lanes_ij - 1)

Total: ``C = C_proximity + lane_weight * C_lane + offroad_weight * C_offroad`` (the paper
uses lane weight 0.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genoise._checks import check_ndim
from genoise.world.raster import CARS, LANES, RasterSpec


@dataclass(frozen=True)
class CostConfig:
    safe_time: float = 1.5  # seconds of headway the proximity mask reaches
    min_distance: float = 6.0  # metres reached at standstill
    lateral_reach: float = 2.0  # metres: cars further sideways cost nothing
    ego_length: float = 4.6
    lane_width: float = 3.7
    lane_weight: float = 0.2
    offroad_weight: float = 1.0
    # False: no gradient through d_safe(v). Otherwise braking shrinks the mask, and a policy
    # trained through the model learns to brake hard and is rear-ended (measured).
    speed_gradient: bool = True
    # speed of the rear half of the proximity mask: "current" (the paper) or "initial"
    rear_speed: str = "current"

    def __post_init__(self) -> None:
        if self.rear_speed not in ("current", "initial"):
            raise ValueError(f"rear_speed must be 'current' or 'initial', got {self.rear_speed!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], lane_width: float) -> CostConfig:
        """The driving cost of a recipe configuration: keys ``lane_weight``,
        ``offroad_weight``, ``speed_gradient``, ``rear_speed`` (a missing key keeps the
        dataclass default, the paper's value) on a road of ``lane_width`` metres. The recipes,
        ``genoise plan`` and the benchmarks all build their cost here."""
        defaults = cls()
        return cls(
            lane_weight=float(config.get("lane_weight", defaults.lane_weight)),
            offroad_weight=float(config.get("offroad_weight", defaults.offroad_weight)),
            lane_width=float(lane_width),
            speed_gradient=bool(config.get("speed_gradient", defaults.speed_gradient)),
            rear_speed=str(config.get("rear_speed", defaults.rear_speed)),
        )


DEFAULT_COSTS = CostConfig()


def safe_distance(speed: Tensor, config: CostConfig = DEFAULT_COSTS) -> Tensor:
    """``d_safe(v) = safe_time · |v| + min_distance``: the reach of the proximity cost."""
    return config.safe_time * speed.abs() + config.min_distance


def _centres(spec: RasterSpec, device: torch.device) -> tuple[Tensor, Tensor]:
    row_lo, row_hi = spec.row_edges(device)
    col_lo, col_hi = spec.col_edges(device)
    return 0.5 * (row_lo + row_hi), 0.5 * (col_lo + col_hi)


def proximity_mask(
    speed: Tensor, spec: RasterSpec, config: CostConfig = CostConfig(), rear_speed: Tensor | None = None
) -> Tensor:
    """``M`` of shape (*speed.shape, H, W) (see module docstring); ``rear_speed``
    (broadcastable to ``speed``), if given, sets the reach of the rows behind the ego."""
    dx, dy = _centres(spec, speed.device)
    if not config.speed_gradient:
        speed = speed.detach()
    reach = safe_distance(speed, config).unsqueeze(-1)
    if rear_speed is not None:
        reach = torch.where(dx < 0, safe_distance(rear_speed.detach(), config).unsqueeze(-1), reach)
    along = (1.0 - dx.abs() / reach).clamp(min=0.0)  # (..., H)
    across = (1.0 - dy.abs() / config.lateral_reach).clamp(min=0.0)  # (W,)
    return along.unsqueeze(-1) * across


def lane_mask(
    spec: RasterSpec, config: CostConfig = CostConfig(), device: torch.device | None = None
) -> Tensor:
    """``L`` of shape (H, W) (see module docstring)."""
    dx, dy = _centres(spec, device)
    along = (dx.abs() <= config.ego_length / 2).float()
    across = (1.0 - dy.abs() / (config.lane_width / 2)).clamp(min=0.0)
    return along.unsqueeze(-1) * across


def _check_raster(raster: Tensor, spec: RasterSpec) -> None:
    if raster.ndim < 3 or tuple(raster.shape[-2:]) != tuple(spec.shape) or raster.shape[-3] < 2:
        raise ValueError(
            f"raster must have shape (..., 3, {spec.shape[0]}, {spec.shape[1]}), got {tuple(raster.shape)}"
        )


def proximity_cost(
    raster: Tensor,
    speed: Tensor,
    spec: RasterSpec,
    config: CostConfig = CostConfig(),
    rear_speed: Tensor | None = None,
) -> Tensor:
    """``max_ij M_ij(v) * cars_ij`` for rasters (..., 3, H, W) and speeds (...) → (...)."""
    _check_raster(raster, spec)
    if speed.shape != raster.shape[:-3]:
        raise ValueError(f"speed must have shape {tuple(raster.shape[:-3])}, got {tuple(speed.shape)}")
    mask = proximity_mask(speed, spec, config, rear_speed)
    return (mask * raster[..., CARS, :, :]).flatten(-2).amax(-1)


def lane_cost(raster: Tensor, spec: RasterSpec, config: CostConfig = CostConfig()) -> Tensor:
    """``max_ij L_ij * lanes_ij`` for rasters (..., 3, H, W) → (...)."""
    _check_raster(raster, spec)
    mask = lane_mask(spec, config, raster.device)
    return (mask * raster[..., LANES, :, :]).flatten(-2).amax(-1)


def offroad_cost(raster: Tensor, spec: RasterSpec, config: CostConfig = CostConfig()) -> Tensor:
    """``max_ij L_ij * relu(2 lanes_ij - 1)`` for rasters (..., 3, H, W) → (...)."""
    _check_raster(raster, spec)
    mask = lane_mask(spec, config, raster.device)
    return (mask * (2.0 * raster[..., LANES, :, :] - 1.0).clamp(min=0.0)).flatten(-2).amax(-1)


def driving_cost(
    raster: Tensor,
    speed: Tensor,
    spec: RasterSpec,
    config: CostConfig = CostConfig(),
    initial_speed: Tensor | None = None,
) -> dict[str, Tensor]:
    """All three costs and their weighted total ``"total"`` (each of shape (...)).

    ``initial_speed`` (broadcastable to ``speed``, e.g. (B, 1) for rollouts (B, T)) is the
    speed at the start of a rollout; it sets the rear reach when ``config.rear_speed ==
    "initial"`` (without it, the current speed is used)."""
    check_ndim("raster", raster, (3, 4, 5, 6))
    rear = initial_speed if config.rear_speed == "initial" else None
    costs = {
        "proximity": proximity_cost(raster, speed, spec, config, rear),
        "lane": lane_cost(raster, spec, config),
        "offroad": offroad_cost(raster, spec, config),
    }
    costs["total"] = (
        costs["proximity"] + config.lane_weight * costs["lane"] + config.offroad_weight * costs["offroad"]
    )
    return costs
