"""Where a Two Rooms JEPA is wrong about the world, measured on held-out states.

Planning in a learned latent space fails when the planner finds actions whose *predicted*
outcome is good and whose real outcome is not. In Two Rooms the failure that matters is a
predictor that lets the dot walk through the middle wall: a straight line through the
wall is then the cheapest plan, and the agent ends pressed against the wall (docs/jepa.md).
Two measurements locate it:

- :func:`wall_hallucination` — from states ``distance`` units in front of the wall and at
  least ``door_clearance`` from the door, ``steps`` actions of norm ``speed`` straight into
  the wall. The physics stops the dot at the wall. The probe (a linear map z → (x, y))
  decodes (i) the **model's rollout** ẑ_k = Pred(ẑ_{k−1}, a_k) from ẑ_0 = Enc(o_0) and (ii)
  the encodings of the **true** states Enc(o_k). The fraction of episodes whose final
  decoded position lies beyond the wall's axis, (i) against (ii), separates the
  predictor's error from the probe's own.
- :func:`transition_errors` — the one-step prediction error ‖Pred(z_t, a_t) − z_{t+1}‖² / D
  on held-out data transitions, split into those that touch the middle wall (the dot is
  stopped or deflected) and the free ones: a predictor that has not learnt that the wall
  blocks has a much larger error on the first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_int, check_positive
from genoise.world.jepa import ActionConditionedJEPA
from genoise.world.jepa_train import denormalise_positions
from genoise.world.two_rooms import (
    GEOMETRY,
    RoomsGeometry,
    render,
    rollout_positions,
    sample_layouts,
    stopped,
)


def wall_states(
    n: int,
    distance: float,
    door_clearance: float,
    rng: np.random.Generator,
    geometry: RoomsGeometry = GEOMETRY,
) -> dict[str, Tensor]:
    """``n`` random walls and, for each, a start ``distance`` units in front of the wall's
    face (left or right room at random) with |y − door_y| ≥ ``door_clearance``, and the unit
    direction pointing at the wall. Raises if no y in the arena is that far from the door."""
    g = geometry
    wall_x, door_y = sample_layouts(n, rng, geometry=g)
    lo, hi = g.lo + 2 * g.dot_std, g.hi - 2 * g.dot_std
    below = (door_y - door_clearance - lo).clamp(min=0)  # room for y under the door
    above = (hi - door_y - door_clearance).clamp(min=0)  # and above it
    if bool(((below + above) <= 0).any()):
        raise ValueError(f"door_clearance={door_clearance} leaves no y in the arena for some doors")
    u = torch.from_numpy(rng.random((n, 2))).float()
    offset = u[:, 0] * (below + above)
    y = torch.where(offset < below, lo + offset, door_y + door_clearance + (offset - below))
    side = torch.where(u[:, 1] < 0.5, -1.0, 1.0)  # -1: left room, heading +x
    x = wall_x + side * (g.half_wall + distance)
    start = torch.stack([x, y], -1)
    if bool(((x < g.lo) | (x > g.hi)).any()):
        raise ValueError(f"distance={distance} puts starts outside the arena")
    heading = torch.stack([-side, torch.zeros(n)], -1)
    return {"start": start, "heading": heading, "wall_x": wall_x, "door_y": door_y, "side": side}


@torch.no_grad()
def wall_hallucination(
    model: ActionConditionedJEPA,
    *,
    n: int = 200,
    distance: float = 6.0,
    door_clearance: float = 15.0,
    steps: int = 12,
    speed: float = 1.0,
    seed: int = 0,
    geometry: RoomsGeometry = GEOMETRY,
) -> dict[str, float]:
    """Fraction of ``n`` straight pushes into the wall whose final position, decoded by the
    probe, lies beyond the wall's axis: ``model`` (from the predictor's rollout) and
    ``encoder`` (from the encodings of the true states, the probe's own error), plus the
    true fraction (0 by the physics) and the mean decoded overshoot past the wall's face."""
    check_int("n", n, min=1)
    check_int("steps", steps, min=1)
    check_positive("speed", speed)
    check_positive("distance", distance)
    rng = np.random.default_rng(seed)
    s = wall_states(n, distance, door_clearance, rng, geometry)
    actions = (s["heading"] * speed)[:, None].expand(n, steps, 2).contiguous()
    gen = torch.Generator().manual_seed(seed)
    true = rollout_positions(s["start"], actions, s["wall_x"], s["door_y"], geometry=geometry, generator=gen)
    size = model.config.image_size
    z0 = model.encode(render(s["start"], s["wall_x"], s["door_y"], size, geometry))
    rolled = denormalise_positions(model.probe(model.represent(model.unroll(z0, actions)[:, -1])))
    true_states = model.encode(render(true[:, -1], s["wall_x"], s["door_y"], size, geometry))
    encoded = denormalise_positions(model.probe(model.represent(true_states)))

    def beyond(pos: Tensor) -> Tensor:  # past the wall's axis, on the far side
        return (pos[:, 0] - s["wall_x"]) * s["side"] < 0

    face = s["wall_x"] + s["side"] * geometry.half_wall
    overshoot = ((face - rolled[:, 0]) * s["side"]).clamp(min=0)
    return {
        "model": float(beyond(rolled).float().mean()),
        "encoder": float(beyond(encoded).float().mean()),
        "true": float(beyond(true[:, -1]).float().mean()),
        "model_overshoot": float(overshoot.mean()),
        "n": n,
        "speed": float(speed),
        "steps": steps,
    }


@torch.no_grad()
def transition_errors(
    model: ActionConditionedJEPA,
    data: dict[str, Tensor],
    *,
    n: int = 2000,
    seed: int = 0,
    geometry: RoomsGeometry = GEOMETRY,
) -> dict[str, float]:
    """One-step prediction error per dimension of the representation z (what the planning
    cost compares; the state itself for the ``mlp`` and ``gru`` predictors) on ``n`` random
    transitions of ``data``
    (trajectories: ``positions`` (N, T + 1, 2), ``actions`` (N, T, 2), ``wall_x``, ``door_y``),
    for transitions that touch the middle wall (the step is shorter than the action: the
    dot was stopped) and for free ones away from every wall; their ratio."""
    check_int("n", n, min=1)
    gen = torch.Generator().manual_seed(seed)
    count, length = data["actions"].shape[:2]
    rows = torch.randint(0, count, (n,), generator=gen)
    t = torch.randint(0, length, (n,), generator=gen)
    p0, p1 = data["positions"][rows, t], data["positions"][rows, t + 1]
    a = data["actions"][rows, t]
    wall_x, door_y = data["wall_x"][rows], data["door_y"][rows]
    cut = stopped(p0, p1, a)
    gap = torch.minimum((p0[:, 0] - wall_x).abs(), (p1[:, 0] - wall_x).abs())
    near_wall = gap <= geometry.half_wall + 2.5
    crossed = (p0[:, 0] - wall_x).sign() != (p1[:, 0] - wall_x).sign()
    wall = cut & (near_wall | crossed)
    free = ~cut
    size = model.config.image_size
    z0 = model.encode(render(p0, wall_x, door_y, size, geometry))
    z1 = model.encode(render(p1, wall_x, door_y, size, geometry))
    err = (model.represent(model.step(z0, a)) - model.represent(z1)).square().mean(-1)
    wall_err = float(err[wall].mean()) if bool(wall.any()) else float("nan")
    free_err = float(err[free].mean()) if bool(free.any()) else float("nan")
    return {
        "wall": wall_err,
        "free": free_err,
        "ratio": wall_err / free_err if free_err > 0 else float("nan"),
        "wall_transitions": int(wall.sum()),
        "free_transitions": int(free.sum()),
    }
