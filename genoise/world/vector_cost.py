"""The driving cost of :mod:`genoise.world.costs` computed from a *vector* observation
(``obs_mode="vector"``: ego ``(y, v, v_y)`` then the ``k`` nearest cars' ``(dx, dy, dv, dv_y,
present)``), so that a model of vector observations (e.g.
:class:`~genoise.world.dynamics.MLPDynamics`) can be planned through — the fast mode for
experiments.

The raster costs take the maximum of a mask over the pixels of what is near; here the
nearest point of each thing is known in closed form. With ``gap(d, h) = relu(|d| − h)``
(distance from the ego centre to the nearest point of an extent of half-size ``h``):

- proximity (cars are not sized in the vector: ``car_length`` × ``car_width`` assumed)::

      C_proximity = max_k present_k · relu(1 − gap(dx_k, car_length/2) / d_safe(v))
                                    · relu(1 − gap(dy_k, car_width/2) / lateral_reach)

  with ``d_safe(v) = safe_time |v| + min_distance``; for cars behind (``dx_k < 0``) ``v`` is
  the rollout's initial speed when ``rear_speed == "initial"`` (see :mod:`~genoise.world.costs`).
- off-road: ``relu(1 − d_off / (lane_width / 2))``, ``d_off`` the distance from the ego centre
  to the nearest off-road point (``y < 0`` or ``y > road_width``; 0 once the centre is off).
- lane: ``max(0.5 · relu(1 − d_line / (lane_width / 2)), C_offroad)``, ``d_line`` the distance
  to the nearest lane boundary (dividers and edges) — the raster's lane channel holds
  0.5-intensity lines and 1.0 beyond the road, and its lane cost takes the maximum over both.

Total ``C = C_proximity + lane_weight · C_lane + offroad_weight · C_offroad``, as the raster
version (Henaff, Canziani & LeCun, ICLR 2019, Sec. 3).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise.world.costs import DEFAULT_COSTS, CostConfig, safe_distance
from genoise.world.neighbours import ROW
from genoise.world.traffic import RoadConfig


def vector_driving_cost(
    obs: Tensor,
    road: RoadConfig,
    config: CostConfig = DEFAULT_COSTS,
    initial_speed: Tensor | None = None,
    car_length: float = 4.6,
    car_width: float = 1.9,
) -> dict[str, Tensor]:
    """Costs of vector observations ``obs`` (..., 3 + 5k) → dict of (...) tensors
    (``proximity``, ``lane``, ``offroad``, ``total``).

    ``initial_speed`` (broadcastable to ``obs[..., 1]``) sets the rear reach when
    ``config.rear_speed == "initial"``."""
    if obs.shape[-1] < 3 or (obs.shape[-1] - 3) % len(ROW):
        raise ValueError(f"a vector observation has 3 + 5k entries, got last dimension {obs.shape[-1]}")
    y, v = obs[..., 0], obs[..., 1]
    cars = obs[..., 3:].unflatten(-1, (-1, len(ROW)))  # (..., k, 5)
    dx, dy, present = cars[..., 0], cars[..., 1], cars[..., 4]
    if not config.speed_gradient:
        v = v.detach()
    reach = safe_distance(v, config).unsqueeze(-1)
    if config.rear_speed == "initial" and initial_speed is not None:
        rear = safe_distance(initial_speed.detach(), config).expand_as(v)
        reach = torch.where(dx < 0, rear.unsqueeze(-1), reach)
    along = (1.0 - (dx.abs() - car_length / 2).clamp(min=0.0) / reach).clamp(min=0.0)
    across = (1.0 - (dy.abs() - car_width / 2).clamp(min=0.0) / config.lateral_reach).clamp(min=0.0)
    proximity = (present * along * across).amax(-1) if cars.shape[-2] else torch.zeros_like(y)
    half = config.lane_width / 2
    to_offroad = torch.minimum(y, road.road_width - y).clamp(min=0.0)
    offroad = (1.0 - to_offroad / half).clamp(min=0.0)
    boundaries = torch.arange(road.n_lanes + 1, dtype=obs.dtype, device=obs.device) * road.lane_width
    to_line = (y.unsqueeze(-1) - boundaries).abs().amin(-1)
    lane = torch.maximum(0.5 * (1.0 - to_line / half).clamp(min=0.0), offroad)
    costs = {"proximity": proximity, "lane": lane, "offroad": offroad}
    costs["total"] = proximity + config.lane_weight * lane + config.offroad_weight * offroad
    return costs
