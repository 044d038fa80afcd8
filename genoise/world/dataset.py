"""The "traffic camera" data set: every car's trajectory from simulated traffic, and a
loader that turns every car into a pseudo-ego (as Henaff, Canziani & LeCun, ICLR 2019,
do with the NGSIM I-80 recordings).

On disk (``collect_traffic``)::

    out_dir/manifest.json          format, road configuration, dt, seed, and per shard:
                                   file, split, episode, first frame, shapes, sha256
    out_dir/<split>_e<k>.npz       compressed arrays x, y, v (T, N) float32,
                                   lane (T, N) int8, length, width (N,) float32

Each simulated episode is cut in time into train / val / test blocks (default 70/15/15 %),
so the splits never share a moment of traffic.

A sample for car ``c`` at frame ``t`` (``TrafficDataset.get_batch``): the ego-centred
rasters and ego states ``(y, v, v_y)`` of frames ``t-k+1 … t``, the actions
``a_s = ((v[s+1] - v[s]) / dt, (y[s+1] - y[s]) / dt)`` for ``s = t … t+F-1`` and the
``F`` following rasters and states (``F = n_future``; 1 for one-step training).
With ``obs_mode="vector"`` the rasters are replaced by the environment's vector observation
(ego state followed by the ``n_neighbours`` nearest cars' ``(dx, dy, dv, dv_y, present)``,
:func:`genoise.world.neighbours.nearest_cars`), with no rasterising: the fast mode for
experiments. The cars are the nearest ones *at frame t* (the last conditioning frame, where
the vector equals the environment's observation) and the same cars fill every other frame of
the sample, so that a model's target follows the objects it was given (re-sorting every
frame would swap rows whenever two cars change rank). The other cars' lateral speed is the
finite difference of their recorded ``y``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_choice, check_positive
from genoise.io import atomic_write, atomic_write_text, sha256_file
from genoise.io import read_manifest as read_json_manifest
from genoise.world.neighbours import nearest_order, neighbour_rows
from genoise.world.raster import RasterSpec, ego_raster
from genoise.world.traffic import RoadConfig, simulate

FORMAT = "genoise-traffic-v1"
SPLITS = ("train", "val", "test")
ARRAYS = ("x", "y", "v", "lane", "length", "width")


def collect_traffic(
    out_dir: str | os.PathLike,
    n_episodes: int = 4,
    steps: int = 1200,
    seed: int = 0,
    road: RoadConfig | None = None,
    warmup: int = 300,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    progress: bool = False,
) -> Path:
    """Simulate ``n_episodes`` independent traffic episodes of ``steps`` steps (after
    ``warmup``), split each in time, write the shards and ``manifest.json``.

    Returns the manifest path. Episode ``k`` uses ``numpy.random.default_rng([seed, k])``,
    so the data set is a function of ``seed``.
    """
    road = road or RoadConfig()
    check_positive("n_episodes", n_episodes)
    check_positive("steps", steps)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.round(np.cumsum([0.0, *fractions]) * (steps + 1)).astype(int)
    shards = []
    episodes = range(int(n_episodes))
    if progress:
        from tqdm import tqdm

        episodes = tqdm(episodes, desc="collect traffic")
    for episode in episodes:
        frames, drivers = simulate(road, int(steps), np.random.default_rng([seed, episode]), warmup=warmup)
        for split, start, stop in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
            arrays = {
                "x": frames["x"][start:stop].astype(np.float32),
                "y": frames["y"][start:stop].astype(np.float32),
                "v": frames["v"][start:stop].astype(np.float32),
                "lane": frames["lane"][start:stop],
                "length": drivers.length.astype(np.float32),
                "width": drivers.width.astype(np.float32),
            }
            name = f"{split}_e{episode:03d}.npz"
            atomic_write(out / name, lambda handle, a=arrays: np.savez_compressed(handle, **a))
            shards.append(
                {
                    "file": name,
                    "split": split,
                    "episode": episode,
                    "start": int(start),
                    "n_frames": int(stop - start),
                    "n_cars": int(frames["x"].shape[1]),
                    "shapes": {k: list(v.shape) for k, v in arrays.items()},
                    "sha256": sha256_file(out / name),
                }
            )
    manifest = {
        "format": FORMAT,
        "road": asdict(road),
        "dt": road.dt,
        "seed": seed,
        "steps": steps,
        "warmup": warmup,
        "fractions": list(fractions),
        "shards": shards,
    }
    return atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise ValueError(f"no traffic data set at {root}: {path} is missing (run `genoise world collect`)")
    return read_json_manifest(path, FORMAT)


def load_shard(root: str | os.PathLike, entry: dict[str, Any], verify: bool = True) -> dict[str, np.ndarray]:
    """Read one shard, checking existence, checksum and array shapes (one-line errors)."""
    path = Path(root) / entry["file"]
    if not path.is_file():
        raise ValueError(f"missing shard {path} (listed in manifest.json)")
    if verify and sha256_file(path) != entry["sha256"]:
        raise ValueError(f"corrupt shard {path}: checksum mismatch with manifest.json")
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in ARRAYS}
    except Exception as err:  # zipfile / pickle / key errors all mean a bad file
        raise ValueError(f"corrupt shard {path}: {type(err).__name__}: {err}") from err
    for key, shape in entry["shapes"].items():
        if list(arrays[key].shape) != shape:
            raise ValueError(
                f"corrupt shard {path}: array {key!r} has shape {arrays[key].shape}, "
                f"manifest says {tuple(shape)}"
            )
    return arrays


class TrafficDataset(torch.utils.data.Dataset):
    """Pseudo-ego sequences from a collected traffic data set.

    Parameters
    ----------
    root : folder written by :func:`collect_traffic`.
    split : "train" | "val" | "test".
    history : number of conditioning frames ``k`` (the paper uses 20).
    n_future : number of future frames / actions ``F`` per sample.
    raster : resolution of the ego-centred rasters.
    obs_mode : "raster" (``images``, ``target_images``) or "vector" (``vectors``,
        ``target_vectors`` (B, T, 3 + 5·n_neighbours), as the environment's vector mode).
    n_neighbours : cars per vector observation.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        history: int = 4,
        n_future: int = 1,
        raster: RasterSpec | None = None,
        obs_mode: str = "raster",
        n_neighbours: int = 6,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        check_positive("history", history)
        check_positive("n_future", n_future)
        check_positive("n_neighbours", n_neighbours)
        self.obs_mode = check_choice("obs_mode", obs_mode, ("raster", "vector"))
        self.n_neighbours = int(n_neighbours)
        self.root, self.split, self.history, self.n_future = Path(root), split, int(history), int(n_future)
        self.raster = raster or RasterSpec()
        self.manifest = read_manifest(root)
        self.road = RoadConfig.from_dict(self.manifest["road"])
        self.dt = float(self.manifest["dt"])
        entries = [s for s in self.manifest["shards"] if s["split"] == split]
        if not entries:
            raise ValueError(f"{self.root}/manifest.json lists no {split!r} shard")
        shards = [load_shard(root, entry) for entry in entries]
        index = []
        for number, shard in enumerate(shards):
            n_frames, n_cars = shard["x"].shape
            frames = np.arange(self.history - 1, n_frames - self.n_future)
            grid = np.stack(np.meshgrid(frames, np.arange(n_cars), indexing="ij"), -1).reshape(-1, 2)
            index.append(np.column_stack([np.full(len(grid), number), grid]))
        if sum(len(i) for i in index) == 0:
            raise ValueError(
                f"{split!r} shards are shorter than history + n_future = "
                f"{self.history + self.n_future} frames"
            )
        self.index = torch.as_tensor(np.concatenate(index), dtype=torch.long)  # (S, 3): shard, frame, car
        self.shards = [{k: torch.as_tensor(v.astype(np.float32)) for k, v in s.items()} for s in shards]

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, item: int) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.get_batch(torch.tensor([item])).items()}

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        return self.get_batch(torch.randint(len(self), (batch_size,), generator=generator))

    def _frames(self, shard: dict[str, Tensor], frames: Tensor, car: Tensor) -> tuple[Tensor, Tensor]:
        """Observations of car ``car`` (B,) at ``frames`` (B, T) — rasters (B, T, 3, H, W) or
        vectors (B, T, 3 + 5n) — and its states (B, T, 3)."""
        b, t = frames.shape
        x, y, v = shard["x"][frames], shard["y"][frames], shard["v"][frames]  # (B, T, N)
        cars = car.view(b, 1, 1).expand(b, t, 1)
        ego_x, ego_y, ego_v = (a.gather(-1, cars).squeeze(-1) for a in (x, y, v))
        previous_y = shard["y"][(frames - 1).clamp(min=0)]
        vy = torch.where((frames > 0).unsqueeze(-1), (y - previous_y) / self.dt, torch.zeros_like(y))
        ego_vy = vy.gather(-1, cars).squeeze(-1)
        states = torch.stack([ego_y, ego_v, ego_vy], -1)
        length = self.road.road_length
        dx = torch.remainder(x - ego_x.unsqueeze(-1) + length / 2, length) - length / 2
        dy = y - ego_y.unsqueeze(-1)
        n = x.shape[-1]
        mask = torch.ones(b, t, n).scatter_(-1, cars, 0.0)
        if self.obs_mode == "vector":  # the cars nearest at frame t, followed through the window
            rel_v, rel_vy = v - ego_v.unsqueeze(-1), vy - ego_vy.unsqueeze(-1)
            now = self.history - 1
            order, present = nearest_order(dx[:, now], dy[:, now], self.n_neighbours, mask[:, now].bool())
            expand = lambda a: a.unsqueeze(1).expand(-1, t, -1)  # noqa: E731
            rows = neighbour_rows(dx, dy, rel_v, rel_vy, expand(order), expand(present), self.n_neighbours)
            return torch.cat([states, rows.flatten(-2)], -1), states
        flat = lambda a: a.reshape(b * t, *a.shape[2:])  # noqa: E731
        ego_len = shard["length"][car].repeat_interleave(t)
        ego_wid = shard["width"][car].repeat_interleave(t)
        images = ego_raster(
            flat(ego_y),
            ego_len,
            ego_wid,
            flat(dx),
            flat(dy),
            shard["length"].expand(b * t, n),
            shard["width"].expand(b * t, n),
            self.raster,
            self.road.n_lanes,
            self.road.lane_width,
            mask=flat(mask),
        )
        return images.view(b, t, *images.shape[1:]), states

    def get_batch(self, indices: Tensor) -> dict[str, Tensor]:
        """Samples ``indices`` (B,) → ``images`` (B, k, 3, H, W), ``states`` (B, k, 3),
        ``actions`` (B, F, 2), ``target_images`` (B, F, 3, H, W), ``target_states`` (B, F, 3)
        (``vectors`` / ``target_vectors`` (B, ·, 3 + 5n) instead of the images in vector mode)."""
        rows = self.index[indices]
        obs = "images" if self.obs_mode == "raster" else "vectors"
        out: dict[str, list[Tensor]] = {
            k: [] for k in (obs, "states", "actions", f"target_{obs}", "target_states", "order")
        }
        for number in rows[:, 0].unique().tolist():  # one pass per shard, vectorised inside
            chosen = torch.nonzero(rows[:, 0] == number).squeeze(-1)
            shard, t, car = self.shards[number], rows[chosen, 1], rows[chosen, 2]
            offsets = torch.arange(-self.history + 1, self.n_future + 1)
            frames = t.unsqueeze(-1) + offsets
            observations, states = self._frames(shard, frames, car)
            future = frames[:, self.history - 1 :]  # frames t … t+F
            v = shard["v"][future].gather(-1, car.view(-1, 1, 1).expand(-1, future.shape[1], 1)).squeeze(-1)
            y = shard["y"][future].gather(-1, car.view(-1, 1, 1).expand(-1, future.shape[1], 1)).squeeze(-1)
            actions = torch.stack([(v[:, 1:] - v[:, :-1]) / self.dt, (y[:, 1:] - y[:, :-1]) / self.dt], -1)
            out[obs].append(observations[:, : self.history])
            out["states"].append(states[:, : self.history])
            out[f"target_{obs}"].append(observations[:, self.history :])
            out["target_states"].append(states[:, self.history :])
            out["actions"].append(actions)
            out["order"].append(chosen)
        order = torch.argsort(torch.cat(out.pop("order")))
        return {k: torch.cat(v)[order] for k, v in out.items()}

    def transitions(self, chunk: int = 20_000) -> dict[str, Tensor]:
        """Every sample as one transition ``obs`` (S, D), ``actions`` (S, 2), ``next_obs``
        (S, D) — the last conditioning frame, the first action and the frame after it — the
        input of :meth:`genoise.world.dynamics.MLPDynamics.fit`. Vector mode only (rasters of
        every sample would not fit in memory)."""
        if self.obs_mode != "vector":
            raise ValueError("transitions() needs obs_mode='vector' (all rasters would not fit in memory)")
        parts: dict[str, list[Tensor]] = {"obs": [], "actions": [], "next_obs": []}
        for start in range(0, len(self), int(chunk)):
            batch = self.get_batch(torch.arange(start, min(start + int(chunk), len(self))))
            parts["obs"].append(batch["vectors"][:, -1])
            parts["actions"].append(batch["actions"][:, 0])
            parts["next_obs"].append(batch["target_vectors"][:, 0])
        return {k: torch.cat(v) for k, v in parts.items()}
