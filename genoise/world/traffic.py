"""Microscopic traffic on a multi-lane ring road: IDM car following and MOBIL lane changes,
vectorised over cars in numpy (the only Python loops run over lanes, never over cars).

Car following — Intelligent Driver Model (Treiber, Hennecke & Helbing, "Congested traffic
states in empirical observations and microscopic simulations", Phys. Rev. E 62, 2000)::

    a = a_max [1 - (v / v0)^delta - (s*(v, dv) / s)^2],
    s*(v, dv) = s0 + max(0, v T + v dv / (2 sqrt(a_max b)))

with ``s`` the bumper-to-bumper gap to the leader and ``dv = v - v_leader`` the approach rate.

Lane changes — MOBIL (Kesting, Treiber & Helbing, "General lane-changing model MOBIL for
car-following models", Transportation Research Record 1999, 2007). Car ``c`` moves to an
adjacent lane when the change is *safe* for the new follower ``n``::

    a~_n >= -b_safe

and *advantageous* once the politeness-weighted disadvantage of the old (``o``) and new
(``n``) followers is accounted for::

    (a~_c - a_c) + p [(a~_n - a_n) + (a~_o - a_o)] > a_threshold

where ``a~`` are accelerations after the change. The road is a ring (periodic boundary) of
length ``road_length`` so the density is a controlled parameter; every car exists for the
whole simulation, which makes every recording a fixed-shape array.

Integration is semi-implicit Euler with step ``dt``: ``v' = max(0, v + a dt)``,
``x' = x + v' dt``, ``y' = y + v_y dt`` — the ego car of the environment and the
pseudo-ego actions of the recorded data use the same rule, so actions recovered from a
trajectory reproduce it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

LANE_WIDTH = 3.7  # metres (US interstate lane)


@dataclass(frozen=True)
class RoadConfig:
    """Geometry and traffic density of the ring road.

    ``density`` is in cars per km per lane; ``truck_fraction`` of the drivers are long and
    slow. Parameter spread (uniform ranges) makes the traffic varied.
    """

    n_lanes: int = 4
    road_length: float = 500.0
    lane_width: float = LANE_WIDTH
    density: float = 40.0
    dt: float = 0.1
    truck_fraction: float = 0.08
    desired_speed: tuple[float, float] = (24.0, 34.0)
    time_headway: tuple[float, float] = (0.9, 1.8)
    max_accel: tuple[float, float] = (0.7, 1.6)
    comfort_brake: tuple[float, float] = (1.5, 2.5)
    min_gap: tuple[float, float] = (1.5, 2.5)
    politeness: tuple[float, float] = (0.0, 0.5)
    change_threshold: tuple[float, float] = (0.1, 0.3)
    safe_brake: float = 4.0
    keep_right_bias: float = 0.2  # m/s^2 added to the incentive for moving right (MOBIL's a_bias)
    accel_noise: float = 0.3  # std of i.i.d. acceleration noise (m/s^2), triggers stop-and-go waves
    lane_change_speed: float = 1.2  # m/s lateral while changing lane (about 3 s per change)
    decision_period: int = 10  # steps between MOBIL decisions of a driver (staggered)
    # a slow stretch of the right lane (start m, end m, speed cap m/s), like a merge zone:
    # it queues the right lane and makes drivers change lanes; None for a homogeneous ring
    bottleneck: tuple[float, float, float] | None = (200.0, 280.0, 6.0)

    @property
    def road_width(self) -> float:
        return self.n_lanes * self.lane_width

    def lane_center(self, lane: np.ndarray | int) -> np.ndarray:
        return (np.asarray(lane) + 0.5) * self.lane_width

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> RoadConfig:
        """The road of a saved ``asdict(road)`` (a manifest, a checkpoint's ``obs_config``):
        JSON/YAML lists become the tuples of the dataclass again."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


@dataclass
class Drivers:
    """Per-driver IDM/MOBIL parameters and car sizes, arrays of shape (N,)."""

    v0: np.ndarray
    T: np.ndarray
    a_max: np.ndarray
    b: np.ndarray
    s0: np.ndarray
    politeness: np.ndarray
    threshold: np.ndarray
    length: np.ndarray
    width: np.ndarray
    delta: float = 4.0

    def take(self, index: np.ndarray) -> Drivers:
        return Drivers(
            **{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "delta"},
            delta=self.delta,
        )

    def append(self, other: Drivers) -> Drivers:
        return Drivers(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
                if f.name != "delta"
            },
            delta=self.delta,
        )


@dataclass
class TrafficState:
    """Positions and velocities of N cars. ``x`` is along the ring in [0, road_length),
    ``y`` the lateral centre (0 = right road edge), ``lane`` the lane the car drives in (its
    target during a lane change)."""

    x: np.ndarray
    y: np.ndarray
    v: np.ndarray
    vy: np.ndarray
    lane: np.ndarray
    accel: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step: int = 0

    def copy(self) -> TrafficState:
        return replace(self, **{k: np.copy(getattr(self, k)) for k in ("x", "y", "v", "vy", "lane", "accel")})


def sample_drivers(n: int, road: RoadConfig, rng: np.random.Generator) -> Drivers:
    """Draw ``n`` drivers with uniform parameter spread; a ``truck_fraction`` are trucks."""

    def uniform(bounds: tuple[float, float]) -> np.ndarray:
        return rng.uniform(bounds[0], bounds[1], size=n)

    truck = rng.random(n) < road.truck_fraction
    v0 = uniform(road.desired_speed)
    a_max = uniform(road.max_accel)
    v0[truck] = np.minimum(v0[truck], rng.uniform(22.0, 25.0, size=int(truck.sum())))
    a_max[truck] *= 0.6
    return Drivers(
        v0=v0,
        T=uniform(road.time_headway),
        a_max=a_max,
        b=uniform(road.comfort_brake),
        s0=uniform(road.min_gap),
        politeness=uniform(road.politeness),
        threshold=uniform(road.change_threshold),
        length=np.where(truck, rng.uniform(10.0, 14.0, size=n), rng.uniform(4.0, 5.2, size=n)),
        width=np.where(truck, 2.5, rng.uniform(1.7, 2.0, size=n)),
    )


def idm_acceleration(v: np.ndarray, gap: np.ndarray, approach: np.ndarray, drivers: Drivers) -> np.ndarray:
    """IDM acceleration (Treiber et al. 2000). ``gap`` may be ``inf`` (free road).

    Gaps at or below zero (an overlap) give the strongest braking the formula allows."""
    s_star = drivers.s0 + np.maximum(
        0.0, v * drivers.T + v * approach / (2.0 * np.sqrt(drivers.a_max * drivers.b))
    )
    gap = np.maximum(gap, 0.1)
    interaction = np.where(np.isfinite(gap), (s_star / gap) ** 2, 0.0)
    return drivers.a_max * (1.0 - (v / drivers.v0) ** drivers.delta - interaction)


def neighbours(
    x: np.ndarray, lane: np.ndarray, length: np.ndarray, n_lanes: int, road_length: float
) -> dict[str, np.ndarray]:
    """Leader and follower of every car in every lane on the ring.

    Returns arrays of shape (n_lanes, N): ``lead`` / ``follow`` (indices, -1 when the lane
    is empty) and ``lead_gap`` / ``follow_gap`` (bumper-to-bumper, ``inf`` when empty).
    Cars with ``lane < 0`` are invisible to everybody. A car is never its own neighbour
    unless it is alone in its lane (then it follows itself around the ring).
    """
    n = x.shape[0]
    out = {k: np.full((n_lanes, n), -1, dtype=np.int64) for k in ("lead", "follow")}
    out.update({k: np.full((n_lanes, n), np.inf) for k in ("lead_gap", "follow_gap")})
    for lane_id in range(n_lanes):
        members = np.flatnonzero(lane == lane_id)
        if members.size == 0:
            continue
        members = members[np.argsort(x[members], kind="stable")]
        xs = x[members]
        ahead = np.searchsorted(xs, x, side="right")
        lead = members[ahead % members.size]
        lead_x = xs[ahead % members.size] + np.where(ahead == members.size, road_length, 0.0)
        behind = np.searchsorted(xs, x, side="left") - 1
        follow = members[behind % members.size]
        follow_x = xs[behind % members.size] - np.where(behind < 0, road_length, 0.0)
        out["lead"][lane_id], out["follow"][lane_id] = lead, follow
        out["lead_gap"][lane_id] = lead_x - x - 0.5 * (length[lead] + length)
        out["follow_gap"][lane_id] = x - follow_x - 0.5 * (length[follow] + length)
    return out


def _gather(values: np.ndarray, index: np.ndarray, fill: float) -> np.ndarray:
    return np.where(index >= 0, values[np.maximum(index, 0)], fill)


def mobil_targets(
    state: TrafficState,
    drivers: Drivers,
    road: RoadConfig,
    nb: dict[str, np.ndarray],
    own_accel: np.ndarray,
    deciding: np.ndarray,
) -> np.ndarray:
    """MOBIL decision (Kesting et al. 2007) for the cars in ``deciding``: the new lane of
    every car (its current lane when it does not change)."""
    n = state.x.shape[0]
    cars = np.arange(n)
    lane = state.lane
    own = np.clip(lane, 0, road.n_lanes - 1)
    best_gain = np.full(n, -np.inf)
    target = lane.copy()
    # the old follower o: its acceleration now (behind c) and after c leaves (behind c's leader)
    old_follow = nb["follow"][own, cars]
    a_o = _gather(own_accel, old_follow, 0.0)
    o_drivers = drivers.take(np.maximum(old_follow, 0))
    old_gap_after = nb["follow_gap"][own, cars] + drivers.length + nb["lead_gap"][own, cars]
    lead_now = nb["lead"][own, cars]
    a_o_after = idm_acceleration(
        _gather(state.v, old_follow, 0.0),
        old_gap_after,
        _gather(state.v, old_follow, 0.0) - _gather(state.v, lead_now, 0.0),
        o_drivers,
    )
    a_o_after = np.where((old_follow >= 0) & (old_follow != cars), a_o_after, 0.0)
    a_o = np.where((old_follow >= 0) & (old_follow != cars), a_o, 0.0)
    for side in (-1, 1):
        new_lane = lane + side
        valid = deciding & (lane >= 0) & (new_lane >= 0) & (new_lane < road.n_lanes) & (state.vy == 0)
        nl = np.clip(new_lane, 0, road.n_lanes - 1)
        lead, follow = nb["lead"][nl, cars], nb["follow"][nl, cars]
        lead_gap, follow_gap = nb["lead_gap"][nl, cars], nb["follow_gap"][nl, cars]
        a_c_new = idm_acceleration(state.v, lead_gap, state.v - _gather(state.v, lead, 0.0), drivers)
        f_drivers = drivers.take(np.maximum(follow, 0))
        v_f = _gather(state.v, follow, 0.0)
        a_n_new = np.where(follow >= 0, idm_acceleration(v_f, follow_gap, v_f - state.v, f_drivers), 0.0)
        a_n = _gather(own_accel, follow, 0.0)
        safe = (a_n_new >= -road.safe_brake) & (lead_gap > drivers.s0) & (follow_gap > 1.0)
        gain = a_c_new - own_accel + drivers.politeness * ((a_n_new - a_n) + (a_o_after - a_o))
        gain = gain + (road.keep_right_bias if side < 0 else -road.keep_right_bias)
        better = valid & safe & (gain > drivers.threshold) & (gain > best_gain)
        best_gain = np.where(better, gain, best_gain)
        target = np.where(better, new_lane, target)
    return target


def traffic_step(
    state: TrafficState,
    drivers: Drivers,
    road: RoadConfig,
    rng: np.random.Generator | None = None,
    extra: tuple[np.ndarray, ...] | None = None,
) -> TrafficState:
    """Advance the traffic by ``road.dt``. With ``rng``, every driver's acceleration gets
    i.i.d. Gaussian noise of std ``road.accel_noise`` (imperfect drivers; without it the
    ring settles into uniform flow).

    ``extra = (x, lane, v, length)`` adds cars that everybody sees (the ego car in reactive
    mode) but that the model does not move. Returns a new state (the input is unchanged).
    """
    n = state.x.shape[0]
    x, lane, v, length = state.x, state.lane, state.v, drivers.length
    all_drivers = drivers
    if extra is not None:
        ex, elane, ev, elength = (np.atleast_1d(np.asarray(a, dtype=float)) for a in extra)
        x, lane = np.concatenate([x, ex]), np.concatenate([lane, elane.astype(lane.dtype)])
        v, length = np.concatenate([v, ev]), np.concatenate([length, elength])
        proxy = drivers.take(np.zeros(ex.shape[0], dtype=np.int64))
        proxy.length = elength
        all_drivers = drivers.append(proxy)
    nb = neighbours(x, lane, length, road.n_lanes, road.road_length)
    own = np.clip(lane, 0, road.n_lanes - 1)
    cars = np.arange(x.shape[0])
    lead = nb["lead"][own, cars]
    follow_drivers = all_drivers
    if road.bottleneck is not None:
        start, end, cap = road.bottleneck
        slow = (lane == 0) & (x >= start) & (x <= end)
        follow_drivers = replace(
            all_drivers, v0=np.where(slow, np.minimum(all_drivers.v0, cap), all_drivers.v0)
        )
    accel = idm_acceleration(v, nb["lead_gap"][own, cars], v - _gather(v, lead, 0.0), follow_drivers)
    full_state = TrafficState(
        x=x,
        y=np.concatenate([state.y, np.zeros(x.shape[0] - n)]),
        v=v,
        vy=np.concatenate([state.vy, np.zeros(x.shape[0] - n)]),
        lane=lane,
    )
    deciding = ((state.step + cars) % road.decision_period == 0) & (cars < n)
    new_lane = mobil_targets(full_state, all_drivers, road, nb, accel, deciding)[:n]
    accel = accel[:n]
    if rng is not None and road.accel_noise > 0:
        accel = accel + road.accel_noise * rng.standard_normal(n)
    v_next = np.maximum(0.0, state.v + accel * road.dt)
    # lateral motion towards the centre of the (possibly new) lane at a fixed speed
    offset = road.lane_center(np.maximum(new_lane, 0)) - state.y
    vy = np.clip(offset / road.dt, -road.lane_change_speed, road.lane_change_speed)
    vy = np.where(state.lane >= 0, vy, 0.0)
    return TrafficState(
        x=np.mod(state.x + v_next * road.dt, road.road_length),
        y=state.y + vy * road.dt,
        v=v_next,
        vy=np.where(np.abs(offset) < 1e-9, 0.0, vy),
        lane=np.where(state.lane >= 0, new_lane, state.lane),
        accel=(v_next - state.v) / road.dt,
        step=state.step + 1,
    )


def spawn_traffic(road: RoadConfig, rng: np.random.Generator) -> tuple[TrafficState, Drivers]:
    """Place ``density * road_length`` cars per lane, evenly spaced with jitter, never
    overlapping (every bumper-to-bumper gap >= the follower's ``s0``), at a speed that
    is safe for the spacing (``min(v0, gap / T)``)."""
    per_lane = max(1, round(road.density * road.road_length / 1000.0))
    n = per_lane * road.n_lanes
    drivers = sample_drivers(n, road, rng)
    lane = np.repeat(np.arange(road.n_lanes), per_lane)
    spacing = road.road_length / per_lane
    slot = (
        np.tile(np.arange(per_lane), road.n_lanes) * spacing
        + rng.uniform(0, spacing, size=road.n_lanes)[lane]
    )
    # jitter inside the slot, leaving room for the longest car and the largest s0
    room = spacing - 14.0 - road.min_gap[1]
    if room < 0:
        raise ValueError(
            f"density={road.density} cars/km/lane is too high to place trucks without overlap; "
            f"use at most {1000.0 / (14.0 + road.min_gap[1]):.0f}"
        )
    x = np.mod(slot + rng.uniform(0, room, size=n), road.road_length)
    gap = spacing - 14.0 - road.min_gap[1]
    v = np.minimum(drivers.v0, np.maximum(gap, 1.0) / drivers.T) * rng.uniform(0.8, 1.0, size=n)
    state = TrafficState(
        x=x, y=road.lane_center(lane).astype(float), v=v, vy=np.zeros(n), lane=lane, accel=np.zeros(n)
    )
    return state, drivers


def same_lane_overlaps(state: TrafficState, drivers: Drivers, road: RoadConfig) -> int:
    """Number of pairs of cars that overlap physically (rectangles on the ring)."""
    dx = np.abs(state.x[:, None] - state.x[None, :])
    dx = np.minimum(dx, road.road_length - dx)
    dy = np.abs(state.y[:, None] - state.y[None, :])
    hit = (dx < 0.5 * (drivers.length[:, None] + drivers.length[None, :])) & (
        dy < 0.5 * (drivers.width[:, None] + drivers.width[None, :])
    )
    np.fill_diagonal(hit, False)
    return int(hit.sum() // 2)


def simulate(
    road: RoadConfig,
    n_steps: int,
    rng: np.random.Generator,
    *,
    warmup: int = 300,
    state: TrafficState | None = None,
    drivers: Drivers | None = None,
) -> tuple[dict[str, np.ndarray], Drivers]:
    """Spawn (unless ``state`` is given), warm up for ``warmup`` steps, then record
    ``n_steps + 1`` frames. Returns ``{x, y, v, vy, lane}`` arrays of shape (T+1, N)."""
    if state is None or drivers is None:
        state, drivers = spawn_traffic(road, rng)
    for _ in range(warmup):
        state = traffic_step(state, drivers, road, rng)
    frames = {k: np.empty((n_steps + 1, state.x.shape[0]), dtype=np.float64) for k in ("x", "y", "v", "vy")}
    frames["lane"] = np.empty((n_steps + 1, state.x.shape[0]), dtype=np.int8)
    for t in range(n_steps + 1):
        for key in frames:
            frames[key][t] = getattr(state, key)
        if t < n_steps:
            state = traffic_step(state, drivers, road, rng)
    return frames, drivers
