"""Offline Two Rooms trajectories (the data of PLDM, Sobal et al. 2025), seeded and sharded.

A trajectory is a wall, a start and ``length`` random-walk actions (eb_jepa's
``data_config.yaml``): the heading starts uniform and turns by Von Mises(0, κ = 1 /
``angle_noise``) increments at each step; the step length is N(1, 0.4²) truncated to
[0.2, 1.8] (the reference's ``truncnorm``; its README says U[0.2, 1.8]). A fraction
``cross_wall_rate`` (0.35) of the trajectories is built to pass through the door: a walk
biased to ±x within ±45° is anchored so that it reaches a point in the door at a random
step. A fraction ``wall_bump_rate`` (0 by default, as the reference's ``data_config.yaml``)
is built the same way to hit the middle wall's face at a point outside the door (eb_jepa's
``generate_wall_bump_state_and_actions`` also bumps into the borders half of the time; ours
bumps only the middle wall). The dot then moves with the arena's physics (bounces included).

The knobs PLDM studies are the arguments: number of trajectories, length, wall-crossing
rate, action noise; and the wall-bump rate. Trajectories are stored as positions, actions
and walls (images are rendered from them when a batch is drawn: a few MB instead of GB),
in shards of ``shard_size`` with ``manifest.json`` (the knobs, the shard files and their
SHA-256), like the traffic data of :mod:`genoise.world.dataset`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_int, check_positive
from genoise.io import atomic_torch_save, atomic_write_text, sha256_file
from genoise.io import read_manifest as read_json_manifest
from genoise.world.two_rooms import (
    GEOMETRY,
    RoomsGeometry,
    in_wall,
    rollout_positions,
    sample_layouts,
    stopped,
)

MANIFEST = "manifest.json"
FORMAT = "genoise-two-rooms-1"


@dataclass(frozen=True)
class RoomsDataConfig:
    n_trajectories: int = 4000
    length: int = 16
    cross_wall_rate: float = 0.35
    wall_bump_rate: float = 0.0
    angle_noise: float = 0.2
    step_mean: float = 1.0
    step_std: float = 0.4
    step_low: float = 0.2
    step_high: float = 1.8
    fixed_wall: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("n_trajectories", self.n_trajectories, min=1)
        check_int("length", self.length, min=1)
        if not 0 <= self.cross_wall_rate <= 1:
            raise ValueError(f"cross_wall_rate must lie in [0, 1], got {self.cross_wall_rate}")
        if not 0 <= self.wall_bump_rate <= 1 - self.cross_wall_rate:
            raise ValueError(
                f"wall_bump_rate must lie in [0, 1 - cross_wall_rate] = [0, {1 - self.cross_wall_rate:g}], "
                f"got {self.wall_bump_rate}"
            )
        check_positive("angle_noise", self.angle_noise)
        if not 0 < self.step_low < self.step_high:
            raise ValueError(f"need 0 < step_low < step_high, got {self.step_low}, {self.step_high}")


def _truncated_normal(
    rng: np.random.Generator, shape: tuple[int, ...], mean: float, std: float, low: float, high: float
) -> np.ndarray:
    out = rng.normal(mean, std, shape)
    bad = (out < low) | (out > high)
    while bad.any():  # rejection, vectorised over the rejected entries
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < low) | (out > high)
    return out


def random_walk_actions(
    n: int, length: int, rng: np.random.Generator, config: RoomsDataConfig, heading: np.ndarray | None = None
) -> np.ndarray:
    """(n, length, 2) Von Mises random-walk actions (heading persists, turns by ~1/√κ)."""
    start = rng.uniform(0, 2 * math.pi, n) if heading is None else heading
    turns = rng.vonmises(0.0, 1.0 / config.angle_noise, (n, length - 1))
    angles = start[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(turns, 1)], 1)
    steps = _truncated_normal(
        rng, (n, length), config.step_mean, config.step_std, config.step_low, config.step_high
    )
    return np.stack([np.cos(angles), np.sin(angles)], -1) * steps[..., None]


def _walk_along_x(
    toward_left: np.ndarray, length: int, rng: np.random.Generator, config: RoomsDataConfig
) -> np.ndarray:
    """Random walks whose first heading is ±x within ±45° (−x where ``toward_left``)."""
    m = toward_left.shape[0]
    heading = rng.uniform(-math.pi / 4, math.pi / 4, m) + np.where(toward_left, math.pi, 0.0)
    return random_walk_actions(m, length, rng, config, heading=heading)


def _anchor(
    start: np.ndarray,
    actions: np.ndarray,
    rows: np.ndarray,
    walk: np.ndarray,
    target: np.ndarray,
    at: np.ndarray,
    wall_x: Tensor,
    door_y: Tensor,
    g: RoomsGeometry,
) -> None:
    """Give the trajectories ``rows`` the actions ``walk`` and a start from which the free
    walk would be at ``target`` after ``at`` steps (clipped to the arena; a start clipped
    into the wall is stepped out of it along x)."""
    before = np.cumsum(walk, 1)[np.arange(walk.shape[0]), at - 1]
    start[rows] = np.clip(target - before, g.lo + 0.01, g.hi - 0.01)
    actions[rows] = walk
    fix = in_wall(torch.from_numpy(start[rows]).float(), wall_x[rows], door_y[rows], g).numpy()
    if fix.any():
        index = np.flatnonzero(rows)[fix]
        start[index, 0] = np.where(
            start[index, 0] < wall_x.numpy()[index],
            wall_x.numpy()[index] - g.half_wall - 0.5,
            wall_x.numpy()[index] + g.half_wall + 0.5,
        )


def generate_trajectories(
    config: RoomsDataConfig,
    geometry: RoomsGeometry = GEOMETRY,
) -> dict[str, Tensor]:
    """Generate ``config.n_trajectories`` trajectories: ``positions`` (N, T + 1, 2),
    ``actions`` (N, T, 2), ``wall_x``, ``door_y`` (N,), ``crossing`` (N,) bool (built to
    cross). A pure function of ``config`` (seeded NumPy and torch generators)."""
    g, n, length = geometry, config.n_trajectories, config.length
    rng = np.random.default_rng(config.seed)
    wall_x, door_y = sample_layouts(n, rng, fixed=config.fixed_wall, geometry=g)
    kind = rng.random(n)
    crossing = kind < config.cross_wall_rate
    bumping = (kind >= config.cross_wall_rate) & (kind < config.cross_wall_rate + config.wall_bump_rate)
    # free trajectories: a start uniform in the arena, moved out of the wall into a random room
    start = rng.uniform(g.lo, g.hi, (n, 2))
    inside = in_wall(torch.from_numpy(start).float(), wall_x, door_y, g).numpy()
    side = rng.random(n) < 0.5
    left = rng.uniform(g.lo, wall_x.numpy() - g.half_wall)
    right = rng.uniform(wall_x.numpy() + g.half_wall, g.hi)
    start[:, 0] = np.where(inside, np.where(side, left, right), start[:, 0])
    actions = random_walk_actions(n, length, rng, config)
    # crossing trajectories: a walk heading ±x (within ±45°) through a point of the door
    m = int(crossing.sum())
    if m:
        toward_left = rng.random(m) < 0.5
        walk = _walk_along_x(toward_left, length, rng, config)
        door_x = wall_x.numpy()[crossing] + rng.uniform(-g.half_wall, g.half_wall, m)
        door_pt = door_y.numpy()[crossing] + np.clip(rng.normal(0, 1.4, m), -g.door_half, g.door_half)
        at = rng.integers(1, length, m)
        _anchor(start, actions, crossing, walk, np.stack([door_x, door_pt], -1), at, wall_x, door_y, g)
    # wall bumps: the same walks aimed at a point of the middle wall's face outside the door
    m = int(bumping.sum())
    if m:
        toward_left = rng.random(m) < 0.5
        walk = _walk_along_x(toward_left, length, rng, config)
        face = wall_x.numpy()[bumping] + np.where(toward_left, 1.0, -1.0) * (g.half_wall + 0.01)
        door = door_y.numpy()[bumping]
        below, above = door - g.door_half - g.lo, g.hi - door - g.door_half  # wall y outside the door
        offset = rng.random(m) * (below + above)
        wall_pt = np.where(offset < below, g.lo + offset, door + g.door_half + (offset - below))
        at = rng.integers(1, length, m)
        _anchor(start, actions, bumping, walk, np.stack([face, wall_pt], -1), at, wall_x, door_y, g)
    generator = torch.Generator().manual_seed(config.seed)
    actions_t = torch.from_numpy(actions).float()
    positions = rollout_positions(
        torch.from_numpy(start).float(), actions_t, wall_x, door_y, geometry=g, generator=generator
    )
    return {
        "positions": positions,
        "actions": actions_t,
        "wall_x": wall_x,
        "door_y": door_y,
        "crossing": torch.from_numpy(crossing),
    }


def crossing_rate(positions: Tensor, wall_x: Tensor) -> float:
    """Fraction of trajectories whose dot changes room at least once."""
    side = positions[..., 0] >= wall_x.unsqueeze(-1)
    return float((side != side[:, :1]).any(1).float().mean())


def contact_rate(positions: Tensor, actions: Tensor, tol: float = 1e-3) -> float:
    """Fraction of transitions that meet a wall or the border
    (:func:`~genoise.world.two_rooms.stopped`: the dot does not move by its action)."""
    if positions.ndim != 3 or actions.shape != (positions.shape[0], positions.shape[1] - 1, 2):
        raise ValueError(f"positions (N, T + 1, 2) and actions (N, T, 2) do not match: "
                         f"{tuple(positions.shape)} and {tuple(actions.shape)}")
    return float(stopped(positions[:, :-1], positions[:, 1:], actions, tol).float().mean())


def data_statistics(config: RoomsDataConfig, n: int = 4000) -> dict[str, float]:
    """What a data setting holds, measured on ``n`` trajectories drawn with ``config``'s knobs and
    seed: the fraction that change room (``crossing``) and the fraction of transitions that
    meet a wall or the border (``wall_contacts``, :func:`contact_rate`), both in %."""
    data = generate_trajectories(replace(config, n_trajectories=n))
    return {"crossing": 100 * crossing_rate(data["positions"], data["wall_x"]),
            "wall_contacts": 100 * contact_rate(data["positions"], data["actions"])}


def write_trajectories(
    root: str | Path, config: RoomsDataConfig, shard_size: int = 10_000, geometry: RoomsGeometry = GEOMETRY
) -> Path:
    """Generate and write the data set to ``root`` (shards ``shard-00000.pt`` … and
    ``manifest.json`` last, each written atomically); returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = generate_trajectories(config, geometry)
    shards = []
    for k, begin in enumerate(range(0, config.n_trajectories, shard_size)):
        name = f"shard-{k:05d}.pt"
        part = {key: value[begin : begin + shard_size].clone() for key, value in data.items()}
        atomic_torch_save(part, root / name)
        shards.append({"file": name, "n": int(part["actions"].shape[0]), "sha256": sha256_file(root / name)})
    manifest = {
        "format": FORMAT,
        "config": asdict(config),
        "geometry": geometry.to_dict(),
        "shards": shards,
        "crossing_rate": crossing_rate(data["positions"], data["wall_x"]),
    }
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2))
    return root


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"not a Two Rooms data folder (no {MANIFEST}): {root}")
    return read_json_manifest(path, FORMAT)


def load_trajectories(root: str | Path, verify: bool = True) -> dict[str, Tensor]:
    """Read every shard listed in ``root/manifest.json`` (SHA-256 checked) and concatenate."""
    root = Path(root)
    manifest = read_manifest(root)
    parts = []
    for shard in manifest["shards"]:
        path = root / shard["file"]
        if not path.is_file():
            raise FileNotFoundError(f"missing shard {path} listed in {root / MANIFEST}")
        if verify and sha256_file(path) != shard["sha256"]:
            raise ValueError(f"corrupt shard {path}: SHA-256 differs from the manifest")
        parts.append(torch.load(path, weights_only=True))
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
