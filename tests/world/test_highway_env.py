"""genoise/HighwayTraffic-v0: gym API, end conditions, actions, determinism, rasters."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import genoise.world  # noqa: F401  (registers the environment)
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import CARS, EGO, LANES, RasterSpec, lane_profile, rasterize_cars

SMALL = dict(
    road=dict(n_lanes=3, road_length=300.0, bottleneck=(100.0, 150.0, 6.0)),
    warmup=40,
    max_steps=60,
    route_length=100.0,
)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-6) -> None:
    """numpy's assert_allclose on tensors (torch.testing's first call costs seconds)."""
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), atol=atol, rtol=1e-6)


def small_env(**overrides) -> HighwayTrafficEnv:
    return HighwayTrafficEnv(**{**SMALL, **overrides})


def test_registered_and_spaces_match_observations() -> None:
    env = gym.make("genoise/HighwayTraffic-v0", **SMALL)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["raster"].shape == (3, 64, 16)
    assert info["termination"] is None
    obs, reward, _, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert env.observation_space.contains(obs) and reward == pytest.approx(-info["cost"])
    vec = gym.make("genoise/HighwayTraffic-v0", obs_mode="vector", n_neighbours=4, **SMALL)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3 + 5 * 4,) and vec.observation_space.contains(obs)


def test_same_seed_same_episode() -> None:
    runs = []
    for seed in (3, 3, 4):
        env = small_env()
        obs, _ = env.reset(seed=seed)
        frames = [obs["raster"]]
        for t in range(15):
            obs, *_ = env.step(np.array([0.5 * np.sin(t), 0.0], dtype=np.float32))
            frames.append(obs["raster"])
        runs.append(np.stack(frames))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_out_of_bounds_action_is_clipped_with_a_warning() -> None:
    env = small_env()
    env.reset(seed=0)
    v0 = env.ego["v"]
    with pytest.warns(UserWarning, match="outside the bounds"):
        _, _, _, _, info = env.step(np.array([100.0, 0.0]))
    assert info["action_clipped"]
    assert env.ego["v"] == pytest.approx(v0 + env.action_space.high[0] * env.road.dt)
    strict = small_env(strict_actions=True)
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="outside the bounds"):
        strict.step(np.array([0.0, -9.0]))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="2 values"):
        env.step(np.zeros(3))


def test_leaving_the_road_ends_the_episode() -> None:
    env = small_env()
    env.reset(seed=1)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(np.array([0.0, -2.0]))  # steer right
        if terminated or truncated:
            break
    if info["termination"] == "off_road":
        assert env.ego["y"] - env.ego["width"] / 2 < 0.0
        assert info["costs"]["offroad"] > 0
    else:  # a car in the lane to the right was hit first
        assert info["termination"] == "collision"


def test_collision_ends_the_episode() -> None:
    env = small_env()
    env.reset(seed=2)
    visible = np.flatnonzero(env._visible())
    target = visible[0]
    # put the ego car exactly one step behind the target car, in its lane, at its speed + 20 m/s
    env.ego.update(
        x=float(env.traffic.x[target] - env.drivers.length[target]),
        y=float(env.traffic.y[target]),
        v=float(env.traffic.v[target] + 20.0),
    )
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert terminated and info["termination"] == "collision"
    assert reward < 0


def test_arrival_and_time_limit() -> None:
    env = small_env()
    env.reset(seed=0)
    env.ego["progress"] = env.route_length - 1e-3
    _, _, terminated, truncated, info = env.step(env.expert_action())
    assert terminated and not truncated and info["termination"] == "arrived"
    env = small_env(max_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(env.expert_action())
    assert truncated and not terminated and info["termination"] == "time_limit"


def test_expert_replay_reproduces_the_ghost() -> None:
    env = small_env()
    env.reset(seed=4)
    e = env.ego_index
    for _ in range(20):
        env.step(env.expert_action())
    # driving the ghost's actions puts the ego car exactly where the ghost is
    assert env.ego["x"] == pytest.approx(env.traffic.x[e], abs=1e-4)
    assert env.ego["y"] == pytest.approx(env.traffic.y[e], abs=1e-4)


def test_invisible_cars_do_not_react_but_reactive_ones_do() -> None:
    outcomes = {}
    for reactive in (False, True):
        env = small_env(
            reactive=reactive,
            max_steps=150,
            road=dict(n_lanes=1, road_length=300.0, bottleneck=None, accel_noise=0.0),
        )
        env.reset(seed=0)
        info = {"termination": None}
        for _ in range(150):  # stand still in the lane
            _, _, terminated, truncated, info = env.step(np.array([-6.0, 0.0]))
            if terminated or truncated:
                break
        outcomes[reactive] = info["termination"]
    assert outcomes[False] == "collision"  # the replayed follower drives into us
    assert outcomes[True] == "time_limit"  # the IDM follower stops behind us


def test_car_raster_by_hand() -> None:
    spec = RasterSpec(shape=(8, 4), extent=(8.0, 4.0))  # 1 m pixels, row 0 = [3, 4] m ahead
    image = rasterize_cars(
        torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[2.0]]), torch.tensor([[1.0]]), spec
    )[0]
    expected = torch.zeros(8, 4)
    expected[2, 2] = expected[3, 2] = 1.0  # dx in [0, 2] -> rows 2, 3; dy in [0, 1] -> column 2
    assert_close(image, expected)
    shifted = rasterize_cars(
        torch.tensor([[1.0]]), torch.tensor([[0.25]]), torch.tensor([[2.0]]), torch.tensor([[1.0]]), spec
    )[0]
    assert_close(shifted[2], torch.tensor([0.0, 0.25, 0.75, 0.0]))


def test_lane_channel_by_hand() -> None:
    spec = RasterSpec(shape=(2, 4), extent=(2.0, 4.0))  # column centres at dy = -1.5, -0.5, 0.5, 1.5
    profile = lane_profile(torch.tensor([1.0]), spec, n_lanes=2, lane_width=2.0)[0]
    # absolute y of the centres: -0.5 (off road), 0.5, 1.5, 2.5; lane boundaries at 0, 2, 4
    assert_close(profile, torch.tensor([1.0, 0.25, 0.25, 0.25]))


def test_env_raster_channels_for_a_hand_placed_scene() -> None:
    env = small_env()
    env.reset(seed=0)
    env.ego.update(y=env.road.lane_center(1), length=4.0, width=2.0)
    # every visible car far away except one 10 m ahead in the ego lane
    keep = np.flatnonzero(env._visible())
    env.traffic.x[keep] = np.mod(env.ego["x"] + 150.0, env.road.road_length)
    env.traffic.x[keep[0]] = env.ego["x"] + 10.0
    env.traffic.y[keep[0]] = env.ego["y"]
    raster = env.raster()
    px_area = np.prod(env.spec_raster.pixel)
    car_area = env.drivers.length[keep[0]] * env.drivers.width[keep[0]]
    assert raster[CARS].sum() == pytest.approx(car_area / px_area, rel=1e-4)
    rows = np.arange(64) + 0.5
    dx_rows = (32 - rows) * env.spec_raster.pixel[0]
    centroid = (raster[CARS].sum(1) * dx_rows).sum() / raster[CARS].sum()
    assert centroid == pytest.approx(10.0, abs=1e-3)
    assert raster[EGO].sum() == pytest.approx(8.0 / px_area, rel=1e-4)
    assert raster[EGO, 32, 8] == 1.0 and raster[EGO, 0].sum() == 0
    # lane channel: ego in the middle lane of 3 (road 11.1 m wide), 1 m columns centred at ±0.5, ±1.5, …
    lanes = raster[LANES, 0]
    assert (raster[LANES] == lanes).all()  # a straight road: every row alike
    assert lanes[0] == lanes[15] == 1.0  # |dy| > 7 m is beyond the road edges (5.55 m)
    assert lanes[7] == lanes[8] == 0.0  # the ego lane itself
    np.testing.assert_allclose(lanes[[6, 9]], 0.5 * (1 - 0.35), rtol=1e-5)  # dividers at ±1.85 m


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="obs_mode"):
        HighwayTrafficEnv(obs_mode="pixels")
    with pytest.raises(ValueError, match="route_length"):
        HighwayTrafficEnv(route_length=1000.0)
    with pytest.raises(ValueError, match="reset"):
        small_env().step(np.zeros(2))


def test_vector_observation_lists_the_nearest_cars() -> None:
    env = small_env(obs_mode="vector", n_neighbours=3)
    obs, _ = env.reset(seed=5)
    keep = env._visible()
    L = env.road.road_length
    dx = np.mod(env.traffic.x[keep] - env.ego["x"] + L / 2, L) - L / 2
    dy = env.traffic.y[keep] - env.ego["y"]
    nearest = np.sort(np.hypot(dx, dy))[:3]
    rows = obs[3:].reshape(3, 5)
    np.testing.assert_allclose(np.hypot(rows[:, 0], rows[:, 1]), nearest, rtol=1e-5)
    assert (rows[:, 4] == 1).all()
    np.testing.assert_allclose(obs[:3], [env.ego["y"], env.ego["v"], env.ego["vy"]], rtol=1e-6)
