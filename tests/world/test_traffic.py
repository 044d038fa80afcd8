"""IDM / MOBIL traffic invariants (Treiber et al. 2000; Kesting et al. 2007)."""

from __future__ import annotations

import numpy as np
import pytest

from genoise.world.traffic import (
    Drivers,
    RoadConfig,
    TrafficState,
    idm_acceleration,
    neighbours,
    same_lane_overlaps,
    simulate,
    spawn_traffic,
    traffic_step,
)

QUIET = dict(bottleneck=None, accel_noise=0.0, keep_right_bias=0.0)


def make_drivers(n: int, **overrides: float) -> Drivers:
    values = dict(
        v0=30.0, T=1.5, a_max=1.0, b=2.0, s0=2.0, politeness=0.2, threshold=0.1, length=5.0, width=1.8
    )
    values.update(overrides)
    return Drivers(**{k: np.full(n, float(v)) for k, v in values.items()})


def make_state(x: list[float], lane: list[int], v: list[float], road: RoadConfig) -> TrafficState:
    lane_arr = np.array(lane)
    return TrafficState(
        x=np.array(x, dtype=float),
        y=road.lane_center(lane_arr).astype(float),
        v=np.array(v, dtype=float),
        vy=np.zeros(len(x)),
        lane=lane_arr,
        accel=np.zeros(len(x)),
    )


def test_idm_matches_the_formula_by_hand() -> None:
    drivers = make_drivers(1)
    v, gap, approach = 20.0, 30.0, 5.0
    s_star = 2.0 + 20.0 * 1.5 + 20.0 * 5.0 / (2 * np.sqrt(1.0 * 2.0))
    expected = 1.0 * (1 - (20 / 30) ** 4 - (s_star / 30) ** 2)
    got = idm_acceleration(np.array([v]), np.array([gap]), np.array([approach]), drivers)
    assert got[0] == pytest.approx(expected, rel=1e-12)
    free = idm_acceleration(np.array([v]), np.array([np.inf]), np.array([0.0]), drivers)
    assert free[0] == pytest.approx(1 - (20 / 30) ** 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("density", [20.0, 45.0])
def test_spawn_never_overlaps(seed: int, density: float) -> None:
    road = RoadConfig(density=density)
    state, drivers = spawn_traffic(road, np.random.default_rng(seed))
    assert same_lane_overlaps(state, drivers, road) == 0
    assert state.x.shape[0] == round(density * road.road_length / 1000) * road.n_lanes
    nb = neighbours(state.x, state.lane, drivers.length, road.n_lanes, road.road_length)
    own_gap = nb["lead_gap"][state.lane, np.arange(state.x.shape[0])]
    assert (own_gap >= drivers.s0).all()


def test_spawn_refuses_impossible_density() -> None:
    with pytest.raises(ValueError, match="density"):
        spawn_traffic(RoadConfig(density=90.0), np.random.default_rng(0))


def test_idm_decelerates_and_stops_behind_a_stopped_car() -> None:
    road = RoadConfig(n_lanes=1, road_length=2000.0, **QUIET)
    state = make_state([0.0], [0], [25.0], road)
    drivers = make_drivers(1)
    stopped = (np.array([150.0]), np.array([0]), np.array([0.0]), np.array([5.0]))  # an obstacle at 150 m
    speeds, gaps = [], []
    for _ in range(600):
        state = traffic_step(state, drivers, road, extra=stopped)
        speeds.append(state.v[0])
        gaps.append(150.0 - state.x[0] - 5.0)
    speeds = np.array(speeds)
    assert state.accel[0] < 0 or speeds[-1] < 0.05
    assert speeds[-1] < 0.5 and speeds[0] < 25.0
    assert min(gaps) > 0.5  # never hits the stopped car
    assert np.all(np.diff(speeds[:300]) <= 1e-9)  # monotone braking


def test_mobil_overtakes_a_slow_leader_when_the_other_lane_is_free() -> None:
    road = RoadConfig(n_lanes=2, road_length=1000.0, **QUIET)
    # car 0 right behind a slow car 1 in lane 0; lane 1 empty
    state = make_state([100.0, 115.0], [0, 0], [20.0, 5.0], road)
    drivers = make_drivers(2)
    after = traffic_step(state, drivers, road)
    assert after.lane[0] == 1 and after.vy[0] > 0  # starts moving left
    assert after.lane[1] == 0


def test_mobil_refuses_an_unsafe_change() -> None:
    road = RoadConfig(n_lanes=2, road_length=1000.0, **QUIET)
    # same, but a fast car 2 in lane 1 just behind: it would have to brake harder than b_safe
    state = make_state([100.0, 115.0, 92.0], [0, 0, 1], [20.0, 5.0, 30.0], road)
    drivers = make_drivers(3)
    after = traffic_step(state, drivers, road)
    assert after.lane[0] == 0


def test_mobil_stays_without_advantage() -> None:
    road = RoadConfig(n_lanes=2, road_length=1000.0, **QUIET)
    state = make_state([100.0, 400.0], [0, 1], [20.0, 20.0], road)  # free road ahead
    after = traffic_step(state, make_drivers(2), road)
    assert after.lane.tolist() == [0, 1]


def test_simulation_is_deterministic_and_collision_free() -> None:
    road = RoadConfig(n_lanes=3, road_length=300.0)
    a, drivers = simulate(road, 100, np.random.default_rng(5), warmup=100)
    b, _ = simulate(road, 100, np.random.default_rng(5), warmup=100)
    c, _ = simulate(road, 100, np.random.default_rng(6), warmup=100)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.allclose(a["x"], c["x"])
    for t in range(0, 101, 20):
        state = TrafficState(x=a["x"][t], y=a["y"][t], v=a["v"][t], vy=a["vy"][t], lane=a["lane"][t])
        assert same_lane_overlaps(state, drivers, road) == 0
    assert (a["v"] >= 0).all()


def test_road_config_survives_a_json_round_trip() -> None:
    import json
    from dataclasses import asdict

    road = RoadConfig(n_lanes=3, road_length=320.0, bottleneck=(10.0, 30.0, 4.0))
    saved = json.loads(json.dumps(asdict(road)))  # tuples come back as lists
    assert isinstance(saved["bottleneck"], list)
    assert RoadConfig.from_dict(saved) == road
    assert RoadConfig.from_dict({**asdict(RoadConfig()), "bottleneck": None}).bottleneck is None
