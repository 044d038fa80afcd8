"""Traffic-camera data set: round trip, pseudo-ego samples, bad shards, rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genoise.world.dataset import TrafficDataset, collect_traffic, load_shard, read_manifest
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import CARS, EGO
from genoise.world.render import filmstrip, save_gif, save_png
from genoise.world.traffic import simulate
from tests.world.conftest import ROAD


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-6) -> None:
    """numpy's assert_allclose on tensors (torch.testing's first call costs seconds)."""
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), atol=atol, rtol=1e-6)


@pytest.fixture(scope="module")
def traffic_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("traffic")
    collect_traffic(root, n_episodes=2, steps=100, seed=7, road=ROAD, warmup=20)
    return root


def test_shards_hold_the_simulation_split_by_time(traffic_dir) -> None:
    manifest = read_manifest(traffic_dir)
    assert [s["split"] for s in manifest["shards"]] == ["train", "val", "test"] * 2
    frames, drivers = simulate(ROAD, 100, np.random.default_rng([7, 1]), warmup=20)
    parts = [load_shard(traffic_dir, s) for s in manifest["shards"] if s["episode"] == 1]
    np.testing.assert_allclose(np.concatenate([p["x"] for p in parts]), frames["x"], rtol=1e-6)
    np.testing.assert_allclose(parts[0]["length"], drivers.length, rtol=1e-6)
    starts = [s["start"] for s in manifest["shards"] if s["episode"] == 1]
    assert (
        starts == sorted(starts)
        and sum(s["n_frames"] for s in manifest["shards"] if s["episode"] == 1) == 101
    )


def test_samples_are_consistent_pseudo_ego_sequences(traffic_dir) -> None:
    data = TrafficDataset(traffic_dir, "train", history=3, n_future=2)
    n_frames = sum(s["n_frames"] for s in data.manifest["shards"] if s["split"] == "train")
    assert len(data) == (n_frames - 2 * (3 - 1 + 2)) * 36
    batch = data.sample_batch(16, torch.Generator().manual_seed(0))
    assert batch["images"].shape == (16, 3, 3, 64, 16) and batch["target_images"].shape == (16, 2, 3, 64, 16)
    dt = data.dt
    # the actions integrate the ego state exactly (semi-implicit Euler, as in the env)
    v_prev = torch.cat([batch["states"][:, -1:, 1], batch["target_states"][:, :-1, 1]], 1)
    y_prev = torch.cat([batch["states"][:, -1:, 0], batch["target_states"][:, :-1, 0]], 1)
    assert_close(
        batch["target_states"][..., 1],
        (v_prev + batch["actions"][..., 0] * dt).clamp(min=0),
        atol=2e-4,
    )
    assert_close(batch["target_states"][..., 0], y_prev + batch["actions"][..., 1] * dt, atol=2e-4)
    # the ego channel is the pseudo-ego itself, centred; the car channel never contains it
    ego_mass = batch["images"][:, :, EGO].sum((-1, -2))
    shard, car = data.shards[0], data.index[0, 2]
    area = shard["length"][car] * shard["width"][car] / float(np.prod(data.raster.pixel))
    sample = data[0]
    assert float(sample["images"][0, EGO].sum()) == pytest.approx(float(area), rel=1e-4)
    assert (ego_mass > 0).all()
    assert float(batch["images"][:, :, CARS, 30:34, 7:9].max()) < 0.5  # nobody sits on the ego car


def test_sample_matches_the_next_sample(traffic_dir) -> None:
    data = TrafficDataset(traffic_dir, "test", history=2, n_future=1)
    # index rows are (shard, frame, car) in frame-major order: the same car one frame later
    row = data.index[0]
    later = torch.nonzero(
        (data.index[:, 0] == row[0]) & (data.index[:, 1] == row[1] + 1) & (data.index[:, 2] == row[2])
    ).item()
    a, b = data[0], data[later]
    assert_close(a["target_images"][0], b["images"][-1])
    assert_close(a["target_states"][0], b["states"][-1])


def relative(shard: dict, car: int, f: int, c: int, L: float, dt: float) -> tuple[float, ...]:
    """Car ``c`` relative to ``car`` at frame ``f``: dx (ring), dy, dv, dv_y; and car's v_y."""
    vy = (shard["y"][f] - shard["y"][f - 1]) / dt if f > 0 else np.zeros_like(shard["y"][f])
    dx = (shard["x"][f, c] - shard["x"][f, car] + L / 2) % L - L / 2
    dy = shard["y"][f, c] - shard["y"][f, car]
    return dx, dy, shard["v"][f, c] - shard["v"][f, car], vy[c] - vy[car], vy[car]


def test_vector_mode_follows_the_nearest_cars_of_frame_t(traffic_dir) -> None:
    data = TrafficDataset(traffic_dir, "train", history=3, n_future=2, obs_mode="vector", n_neighbours=4)
    raster = TrafficDataset(traffic_dir, "train", history=3, n_future=2)
    indices = torch.tensor([0, 5, 777, len(data) - 1])
    batch, reference = data.get_batch(indices), raster.get_batch(indices)
    assert "images" not in batch and batch["vectors"].shape == (4, 3, 3 + 20)
    assert batch["target_vectors"].shape == (4, 2, 3 + 20)
    for key in ("states", "target_states", "actions"):
        assert_close(batch[key], reference[key])
    observed = torch.cat([batch["vectors"], batch["target_vectors"]], 1)
    L, dt = data.road.road_length, data.dt
    for i, (number, frame, car) in enumerate(data.index[indices].tolist()):  # slow reference, one car
        shard = {k: v.numpy().astype(np.float64) for k, v in data.shards[number].items()}
        others = [c for c in range(shard["x"].shape[1]) if c != car]

        # the 4 nearest at frame t (sorted there, as the environment's observation) ...
        nearest = sorted(others, key=lambda c: np.hypot(*relative(shard, car, frame, c, L, dt)[:2]))[:4]
        for j, f in enumerate(range(frame - 2, frame + 3)):  # ... followed through the window
            expected = np.array([[*relative(shard, car, f, c, L, dt)[:4], 1.0] for c in nearest]).ravel()
            np.testing.assert_allclose(observed[i, j, 3:].numpy(), expected, atol=2e-3)
            own_vy = relative(shard, car, f, car, L, dt)[4]
            np.testing.assert_allclose(observed[i, j, 2].item(), own_vy, atol=2e-3)
        now = observed[i, 2, 3:].view(4, 5)
        assert (now[1:, :2].norm(dim=1) >= now[:-1, :2].norm(dim=1) - 1e-4).all()


def test_vector_mode_trains_a_forward_model_in_seconds(traffic_dir) -> None:
    """The fast mode end to end: transitions → MLPDynamics, one step ahead on the test split
    at least 4× better than copying the last observation (≈ 5000 toy transitions, 1500 steps;
    ~100× on the full data set, benchmarks/world_vector.py)."""
    from genoise.world.dynamics import MLPDynamics

    kw = dict(history=1, n_future=1, obs_mode="vector", n_neighbours=3)
    train = TrafficDataset(traffic_dir, "train", **kw)
    data = train.transitions(chunk=500)
    assert data["obs"].shape == (len(train), 18) and data["actions"].shape == (len(train), 2)
    torch.manual_seed(0)
    model = MLPDynamics(18, 2, hidden=64)
    model.fit(data, steps=1500, batch_size=256, seed=0)
    test = TrafficDataset(traffic_dir, "test", **kw).transitions()
    with torch.no_grad():
        error = (model(test["obs"], test["actions"]) - test["next_obs"]).square().mean()
    copy_last = (test["obs"] - test["next_obs"]).square().mean()
    assert float(error) < 0.25 * float(copy_last), (float(error), float(copy_last))
    with pytest.raises(ValueError, match="obs_mode='vector'"):
        TrafficDataset(traffic_dir, "test").transitions()


def test_vector_mode_pads_with_absent_cars() -> None:
    from genoise.world.neighbours import nearest_cars

    dx, dy = torch.tensor([[3.0, -1.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0]])
    rows = nearest_cars(dx, dy, dx * 0 + 2, dy, 4, mask=torch.tensor([[True, True, False]]))
    np.testing.assert_array_equal(
        rows[0].numpy(), [[-1, 0, 2, 0, 1], [3, 0, 2, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    )
    with pytest.raises(ValueError, match="same shape"):
        nearest_cars(dx, dy[:, :2], dx, dy, 2)
    with pytest.raises(ValueError, match="obs_mode"):
        TrafficDataset("nowhere", obs_mode="pixels")


def test_missing_and_corrupt_shards_are_named(traffic_dir, tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(traffic_dir, copy)
    raw = bytearray((copy / "val_e001.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (copy / "val_e001.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"^corrupt shard .*val_e001\.npz: checksum mismatch[^\n]*$"):
        TrafficDataset(copy, "val")
    TrafficDataset(copy, "train")  # other splits are untouched
    (copy / "test_e000.npz").unlink()
    with pytest.raises(ValueError, match=r"^missing shard .*test_e000\.npz"):
        TrafficDataset(copy, "test")
    with pytest.raises(ValueError, match=r"manifest\.json is missing"):
        TrafficDataset(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="split"):
        TrafficDataset(copy, "dev")


def test_truncated_shard_with_forged_checksum_is_reported(traffic_dir, tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(traffic_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "train_e000.npz").write_bytes(b"not a zip file")
    entry = next(s for s in manifest["shards"] if s["file"] == "train_e000.npz")
    with pytest.raises(ValueError, match=r"^corrupt shard .*train_e000\.npz: "):
        load_shard(copy, entry, verify=False)


def test_episode_renders_to_png_and_gif(tmp_path) -> None:
    import imageio.v3 as iio

    env = HighwayTrafficEnv(
        road=ROAD,
        warmup=20,
        max_steps=10,
        route_length=100.0,
        render_mode="rgb_array",
    )
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(5):
        env.step(env.expert_action())
        frames.append(env.render())
    gif = iio.imread(save_gif(frames, tmp_path / "ep.gif"))
    png = iio.imread(save_png(filmstrip(frames, every=2), tmp_path / "ep.png"))
    assert gif.shape[0] == 6 and gif.shape[1:3] == frames[0].shape[:2]
    assert png.shape[1] == frames[0].shape[1]
    red = (frames[0][..., 0] > 200) & (frames[0][..., 1] < 80)
    cols = np.flatnonzero(red.any(0))
    assert red.sum() > 20 and abs(cols.mean() - frames[0].shape[1] / 2) < 3  # ego in the middle
