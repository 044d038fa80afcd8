"""Traffic-camera data set: round trip, pseudo-ego samples, bad shards, CLI, rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genoise.world.cli import collect_main
from genoise.world.dataset import TrafficDataset, collect_traffic, load_shard, read_manifest
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import CARS, EGO
from genoise.world.render import filmstrip, save_gif, save_png
from genoise.world.traffic import RoadConfig, simulate

ROAD = RoadConfig(n_lanes=3, road_length=300.0)


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


def test_collect_cli_writes_a_loadable_dataset(tmp_path, capsys) -> None:
    code = collect_main(
        [
            str(tmp_path / "d"),
            "--episodes",
            "1",
            "--steps",
            "60",
            "--warmup",
            "10",
            "--lanes",
            "2",
            "--length",
            "200",
            "--no-progress",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[0])["split"] == "train" and lines[-1].startswith("wrote")
    data = TrafficDataset(tmp_path / "d", "train", history=2)
    assert data.road.n_lanes == 2 and len(data) > 0


def test_episode_renders_to_png_and_gif(tmp_path) -> None:
    import imageio.v3 as iio

    env = HighwayTrafficEnv(
        road=dict(n_lanes=3, road_length=300.0),
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


def test_plan_command_names_a_missing_model(tmp_path) -> None:
    from genoise.world.cli import plan_main

    with pytest.raises(ValueError, match=r"no forward model at .*forward_model\.pt"):
        plan_main([str(tmp_path), "--planner", "cem"])
