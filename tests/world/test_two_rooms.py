"""Two Rooms: the arena's invariants (the dot never enters the wall and changes rooms only
through the door), the success test, rendering, the data generator's determinism and
knobs, the shards, and the environment's bad-input errors."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

import genoise.world  # noqa: F401  (registers genoise/TwoRooms-v0)
from genoise.world.two_rooms import (
    GEOMETRY,
    clip_norm,
    detour,
    in_wall,
    outside_arena,
    render,
    rollout_positions,
    sample_tasks,
    step_positions,
    stopped,
    success,
    success_by_detour,
)
from genoise.world.two_rooms_data import (
    RoomsDataConfig,
    contact_rate,
    crossing_rate,
    data_statistics,
    generate_trajectories,
    load_trajectories,
    write_trajectories,
)


def _wall_crossings(positions: torch.Tensor, wall_x: torch.Tensor, door_y: torch.Tensor) -> tuple[int, int]:
    """(segments that cross the wall's axis x = wall_x, those crossing it outside the door)."""
    a, b = positions[:, :-1], positions[:, 1:]
    sa, sb = a[..., 0] - wall_x[:, None], b[..., 0] - wall_x[:, None]
    cross = (sa * sb) < 0
    t = sa / torch.where(cross, sa - sb, torch.ones_like(sa))
    y = a[..., 1] + t * (b[..., 1] - a[..., 1])
    bad = cross & ((y - door_y[:, None]).abs() > GEOMETRY.door_half)
    return int(cross.sum()), int(bad.sum())


@pytest.mark.parametrize("scale", [1.0, 2.45])
def test_random_walks_never_enter_the_wall_and_cross_only_through_the_door(scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    n, steps = 3000, 60
    tasks = sample_tasks(n, np.random.default_rng(0))
    actions = clip_norm(torch.randn(n, steps, 2, generator=g) * scale, GEOMETRY.max_norm)
    # half the dots aim at the wall head-on to make contacts frequent
    actions[: n // 2, :, 0] = (
        torch.sign(tasks["wall_x"][: n // 2] - tasks["start"][: n // 2, 0])[:, None] * 2.4
    )
    positions = rollout_positions(tasks["start"], actions, tasks["wall_x"], tasks["door_y"], generator=g)
    assert not in_wall(positions, tasks["wall_x"][:, None], tasks["door_y"][:, None]).any()
    assert not outside_arena(positions).any()
    crossings, bad = _wall_crossings(positions, tasks["wall_x"], tasks["door_y"])
    assert crossings > 50  # the door is used...
    assert bad == 0  # ...and only the door


def test_a_dot_pushed_into_the_wall_stops_at_it_and_one_through_the_door_passes() -> None:
    wall_x, door_y = torch.tensor([32.0, 32.0]), torch.tensor([18.0, 18.0])
    start = torch.tensor([[30.0, 40.0], [30.0, 18.0]])
    action = torch.tensor([[2.4, 0.0], [2.4, 0.0]])
    moved = step_positions(start, action, wall_x, door_y, bounce_std=0.0)
    assert moved[0, 0] < 31.0 and moved[0, 0] == pytest.approx(30.7, abs=1e-5)  # stopped 0.3 before x = 31
    assert moved[1].tolist() == pytest.approx([32.4, 18.0])  # free in the door


def test_border_contact_bounces_back_inside() -> None:
    start = torch.tensor([[5.0, 30.0]])
    moved = step_positions(
        start, torch.tensor([[-2.4, 0.0]]), torch.tensor([32.0]), torch.tensor([18.0]), bounce_std=0.0
    )
    assert moved[0].tolist() == pytest.approx([GEOMETRY.lo + 0.3, 30.0])


def test_success_is_the_final_distance_below_the_radius() -> None:
    goal = torch.tensor([[10.0, 10.0], [10.0, 10.0]])
    final = torch.tensor([[14.4, 10.0], [14.6, 10.0]])
    assert success(final, goal).tolist() == [True, False]


def test_tasks_put_start_and_goal_in_opposite_rooms_away_from_the_walls() -> None:
    tasks = sample_tasks(500, np.random.default_rng(1))
    left_start = tasks["start"][:, 0] < tasks["wall_x"]
    left_goal = tasks["goal"][:, 0] < tasks["wall_x"]
    assert (left_start != left_goal).all()
    assert 0.35 < float(left_start.float().mean()) < 0.65
    for key in ("start", "goal"):
        gap = (tasks[key][:, 0] - tasks["wall_x"]).abs() - GEOMETRY.half_wall
        assert float(gap.min()) >= 2 * GEOMETRY.dot_std - 1e-5
        assert float(tasks[key].min()) >= GEOMETRY.lo + 2 * GEOMETRY.dot_std - 1e-5


def test_rendering_at_65_and_33_pixels() -> None:
    pos = torch.tensor([[20.0, 30.0]])
    wall_x, door_y = torch.tensor([32.0]), torch.tensor([18.0])
    big = render(pos, wall_x, door_y, 65)
    assert big.shape == (1, 2, 65, 65)
    assert big[0, 0, 30, 20] == 1.0  # the dot's centre (row y, column x)
    walls = big[0, 1]
    assert walls[40, 31:34].tolist() == [1.0, 1.0, 1.0] and walls[40, 30] == 0 and walls[40, 34] == 0
    assert walls[14:23, 32].sum() == 0 and walls[13, 32] == 1 and walls[23, 32] == 1  # the door
    assert walls[:, 4].min() == 1 and walls[:, 60].min() == 1  # the borders
    small = render(pos, wall_x, door_y, 33)
    assert small.shape == (1, 2, 33, 33)
    # the 33 px wall channel holds the same amount of wall as the 65 px one (area coverage)
    assert float(small[0, 1].sum()) * 4 == pytest.approx(float(walls.sum()), rel=0.06)


def test_generator_is_deterministic_and_its_knobs_act() -> None:
    config = RoomsDataConfig(n_trajectories=400, length=16, seed=3)
    a, b = generate_trajectories(config), generate_trajectories(config)
    for key in a:
        assert torch.equal(a[key], b[key])
    c = generate_trajectories(RoomsDataConfig(n_trajectories=400, length=16, seed=4))
    assert not torch.equal(a["positions"], c["positions"])
    assert a["positions"].shape == (400, 17, 2) and a["actions"].shape == (400, 16, 2)
    steps = a["actions"].norm(dim=-1)
    assert float(steps.min()) >= 0.2 and float(steps.max()) <= 1.8
    none = generate_trajectories(RoomsDataConfig(n_trajectories=400, cross_wall_rate=0.0, seed=3))
    many = generate_trajectories(RoomsDataConfig(n_trajectories=400, cross_wall_rate=1.0, seed=3))
    assert (
        crossing_rate(many["positions"], many["wall_x"])
        > crossing_rate(none["positions"], none["wall_x"]) + 0.4
    )
    fixed = generate_trajectories(RoomsDataConfig(n_trajectories=50, fixed_wall=True))
    assert set(fixed["wall_x"].tolist()) == {32.0} and set(fixed["door_y"].tolist()) == {18.0}
    # a smaller angle noise gives straighter walks
    straight = generate_trajectories(RoomsDataConfig(n_trajectories=400, angle_noise=0.01, seed=3))

    def turn(d):
        h = torch.atan2(d["actions"][..., 1], d["actions"][..., 0])
        return float(
            torch.remainder(h[:, 1:] - h[:, :-1] + torch.pi, 2 * torch.pi).sub(torch.pi).abs().mean()
        )

    assert turn(straight) < 0.5 * turn(a)


def test_wall_bumps_hit_the_middle_wall_outside_the_door() -> None:
    def stopped_at_wall(d):
        """(N, T) a step the middle wall cut short; and the dot's x never inside the wall."""
        p, a = d["positions"], d["actions"]
        cut = stopped(p[:, :-1], p[:, 1:], a)
        gap = (p[:, 1:, 0] - d["wall_x"][:, None]).abs()
        return cut & (gap <= GEOMETRY.half_wall + 2.5)

    base = RoomsDataConfig(n_trajectories=600, cross_wall_rate=0.0, seed=5)
    free = generate_trajectories(base)
    bumps = generate_trajectories(replace(base, wall_bump_rate=1.0))
    hit = stopped_at_wall(bumps).any(1).float().mean()
    assert float(hit) > 0.8 > 3 * float(stopped_at_wall(free).any(1).float().mean())
    # a bump stops the dot outside the door, on the side it came from: few room changes
    assert crossing_rate(bumps["positions"], bumps["wall_x"]) < 0.1
    assert not bool(
        in_wall(
            bumps["positions"].reshape(-1, 2),
            *(t.repeat_interleave(bumps["positions"].shape[1]) for t in (bumps["wall_x"], bumps["door_y"])),
        ).any()
    )
    # wall_bump_rate = 0 leaves the data of a seed unchanged (same random stream)
    again = generate_trajectories(replace(base, wall_bump_rate=0.0))
    assert torch.equal(again["positions"], free["positions"])
    mixed = generate_trajectories(RoomsDataConfig(n_trajectories=600, wall_bump_rate=0.3, seed=5))
    default = generate_trajectories(RoomsDataConfig(n_trajectories=600, seed=5))
    assert torch.equal(mixed["crossing"], default["crossing"])  # the crossing walks are kept
    with pytest.raises(ValueError, match=r"wall_bump_rate must lie in \[0, 1 - cross_wall_rate\]"):
        RoomsDataConfig(cross_wall_rate=0.35, wall_bump_rate=0.7)


def test_shards_round_trip_and_corruption_is_named(tmp_path) -> None:
    config = RoomsDataConfig(n_trajectories=250, length=8, seed=1)
    root = write_trajectories(tmp_path / "rooms", config, shard_size=100)
    assert sorted(p.name for p in root.glob("shard-*.pt")) == [
        "shard-00000.pt",
        "shard-00001.pt",
        "shard-00002.pt",
    ]
    loaded, direct = load_trajectories(root), generate_trajectories(config)
    for key in direct:
        assert torch.equal(loaded[key], direct[key])
    (root / "shard-00001.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"corrupt shard .*shard-00001\.pt"):
        load_trajectories(root)
    with pytest.raises(FileNotFoundError, match="not a Two Rooms data folder"):
        load_trajectories(tmp_path)


def test_bad_config_values_are_refused() -> None:
    with pytest.raises(ValueError, match="cross_wall_rate"):
        RoomsDataConfig(cross_wall_rate=1.5)
    with pytest.raises(ValueError, match="n_trajectories"):
        RoomsDataConfig(n_trajectories=0)


def test_environment_steps_renders_and_refuses_bad_input() -> None:
    env = gym.make("genoise/TwoRooms-v0", image_size=33).unwrapped
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 33, 33) and info["goal_observation"].shape == (2, 33, 33)
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
    assert reward == pytest.approx(-info["distance"]) and not terminated and not truncated
    assert env.render().shape == (65 * 4, 65 * 4, 3)
    with pytest.raises(ValueError, match=r"exceeds max_norm 2\.45"):
        env.step(np.array([2.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"goal .* inside the wall"):
        env.reset(options={"wall_x": 32, "door_y": 18, "goal": [32.0, 40.0]})
    with pytest.raises(ValueError, match=r"start .* outside the arena"):
        env.reset(options={"start": [1.0, 30.0]})
    with pytest.raises(ValueError, match="wall_x must lie in"):
        env.reset(options={"wall_x": 5})
    obs, info = env.reset(options={"wall_x": 32, "door_y": 18, "start": [10.0, 10.0], "goal": [50.0, 50.0]})
    assert info["position"].tolist() == [10.0, 10.0] and info["distance"] == pytest.approx(40 * 2**0.5)


def test_environment_truncates_after_max_steps() -> None:
    env = gym.make("genoise/TwoRooms-v0", image_size=33, max_steps=3).unwrapped
    env.reset(seed=1)
    flags = [env.step(np.zeros(2, np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_detour_is_the_extra_length_of_the_path_through_the_door() -> None:
    tasks = {
        "start": torch.tensor([[10.0, 30.0], [10.0, 30.0], [10.0, 10.0]]),
        "goal": torch.tensor([[50.0, 30.0], [50.0, 30.0], [50.0, 10.0]]),
        "wall_x": torch.tensor([30.0, 30.0, 30.0]),
        "door_y": torch.tensor([30.0, 45.0, 25.0]),
    }
    d = detour(tasks)
    assert d[0] == 0.0  # the straight line passes through the door's centre
    assert float(d[1]) == pytest.approx(2 * (20.0**2 + 15.0**2) ** 0.5 - 40.0)  # 50 − 40
    assert float(d[2]) == pytest.approx(2 * (20.0**2 + 15.0**2) ** 0.5 - 40.0)
    rng = np.random.default_rng(0)
    many = sample_tasks(500, rng)
    assert bool((detour(many) >= 0).all())


def test_success_by_detour_counts_every_task_once() -> None:
    successes = torch.tensor([True, False, True, True, False, False])
    detours = torch.tensor([0.5, 2.9, 3.0, 9.99, 10.0, 40.0])
    out = success_by_detour(successes, detours)
    assert list(out) == ["< 3", "3–10", "≥ 10"]
    assert [v["tasks"] for v in out.values()] == [2, 2, 2]
    assert [v["success"] for v in out.values()] == [50.0, 100.0, 0.0]
    assert success_by_detour(successes[:1], detours[:1])["≥ 10"] == {"success": None, "tasks": 0}


def test_contact_rate_counts_the_steps_a_wall_stops_and_data_statistics_follow_the_knobs() -> None:
    # a dot left of a middle wall at x = 32 (door at y = 18): two free steps, then one into the wall
    start = torch.tensor([[20.0, 50.0]])
    actions = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [20.0, 0.0]]])  # the last reaches past the wall
    wall_x, door_y = torch.tensor([32.0]), torch.tensor([18.0])
    positions = rollout_positions(start, actions, wall_x, door_y, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(positions[0, 2], torch.tensor([22.0, 50.0]))
    assert contact_rate(positions, actions) == pytest.approx(1 / 3)
    assert contact_rate(positions[:, :3], actions[:, :2]) == 0.0
    with pytest.raises(ValueError, match=r"positions \(N, T \+ 1, 2\) and actions \(N, T, 2\) do not match"):
        contact_rate(positions, actions[:, :1])
    # the knobs move what the data hold: built crossings change rooms, a wandering walk meets fewer walls
    base = RoomsDataConfig(seed=2)
    stats = {name: data_statistics(replace(base, **kw), n=1000) for name, kw in {
        "recipe": {}, "no_cross": {"cross_wall_rate": 0.0}, "cross": {"cross_wall_rate": 0.7},
        "wander": {"angle_noise": 1.0}}.items()}
    assert stats["cross"]["crossing"] > stats["recipe"]["crossing"] + 15 > stats["no_cross"]["crossing"] + 30
    assert stats["wander"]["wall_contacts"] < 0.6 * stats["recipe"]["wall_contacts"]
    assert 0 < stats["no_cross"]["wall_contacts"] < 100
