"""Closed-loop driving evaluation (Henaff, Canziani & LeCun, ICLR 2019, Sec. 5): controllers
(:mod:`genoise.world.control`) drive held-out episodes of the simulator, every controller on
the same fixed seeds ``100000, 100001, …``; success = arriving at the end of the route
without collision, leaving the road or running out of time.

- :func:`evaluate_driving`: the episodes of one controller (rates, mean distance, outcomes,
  optionally the frames of one episode);
- :func:`evaluation_table`: several controllers → a markdown table (and GIF/PNG of one);
- :func:`driving_setting`: the environment of a trained run, rebuilt from its checkpoint.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genoise.world.control import Controller
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.raster import RasterSpec
from genoise.world.render import filmstrip, save_gif, save_png
from genoise.world.traffic import RoadConfig

EVAL_SEED = 100_000
ROW_NAMES = {
    "none": "no action (keep speed)",
    "idm": "IDM driver (replay)",
    "bc": "behaviour cloning",
    "gradient": "MPC-gradient",
    "cem": "CEM",
    "mppi": "MPPI",
    "mpur": "MPUR",
    "mpur_no_u": "MPUR without uncertainty",
    "mper": "MPER",
    "oracle_initial": "CEM on the true future (rear reach: initial speed)",
    "oracle_current": "CEM on the true future (rear reach: current speed, the paper's)",
}


def eval_seeds(n: int, start: int = EVAL_SEED) -> list[int]:
    """The fixed held-out episode seeds ``start, start + 1, …`` (same for every controller)."""
    return [start + i for i in range(int(n))]


def driving_setting(
    obs_config: Mapping[str, Any], config: Mapping[str, Any], **overrides: Any
) -> dict[str, Any]:
    """``HighwayTrafficEnv`` arguments for driving a trained network: the road and raster of
    the observation format it was trained on (a checkpoint's ``obs_config``), the episode
    settings ``route_length``, ``max_steps``, ``warmup`` of its run ``config`` where given,
    then ``overrides`` (``None`` values ignored)."""
    if "road" not in obs_config or "raster" not in obs_config:
        raise ValueError(f"the observation format names no road and raster: {dict(obs_config)}")
    kwargs: dict[str, Any] = {
        "road": RoadConfig.from_dict(obs_config["road"]),
        "raster": RasterSpec(**{k: tuple(v) for k, v in obs_config["raster"].items()}),
    }
    episode = ("route_length", "max_steps", "warmup")
    kwargs.update({k: config[k] for k in episode if config.get(k) is not None})
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs


def evaluate_driving(
    controller: Controller, seeds: list[int], env_kwargs: dict, history: int, record: int | None = None
) -> dict[str, Any]:
    """Closed-loop episodes on ``HighwayTrafficEnv(**env_kwargs)`` (one per seed).

    ``controller(env, images (k, 3, H, W), states (k, 3)) -> action``; the first frame is
    repeated to fill the history. Success = ``"arrived"`` (no collision, no off-road, within
    the time limit). Returns rates, mean distance, per-episode outcomes and, for the episode
    number ``record``, its rendered frames."""
    outcomes, distances, frames = [], [], []
    for number, seed in enumerate(seeds):
        env = HighwayTrafficEnv(**env_kwargs, render_mode="rgb_array" if number == record else None)
        obs, info = env.reset(seed=seed)
        images = deque([torch.as_tensor(obs["raster"])] * history, maxlen=history)
        states = deque([torch.as_tensor(obs["state"])] * history, maxlen=history)
        if number == record:
            frames.append(env.render())
        while True:
            action = np.asarray(controller(env, torch.stack(list(images)), torch.stack(list(states))))
            obs, _, terminated, truncated, info = env.step(
                np.clip(action, env.action_space.low, env.action_space.high)
            )
            images.append(torch.as_tensor(obs["raster"]))
            states.append(torch.as_tensor(obs["state"]))
            if number == record:
                frames.append(env.render())
            if terminated or truncated:
                break
        outcomes.append(info["termination"])
        distances.append(info["progress"])
    n = len(seeds)
    return {
        "success_rate": sum(o == "arrived" for o in outcomes) / n,
        "collision_rate": sum(o == "collision" for o in outcomes) / n,
        "offroad_rate": sum(o == "off_road" for o in outcomes) / n,
        "mean_distance": float(np.mean(distances)),
        "outcomes": outcomes,
        "frames": frames,
    }


def evaluation_table(
    controllers: dict[str, Any],
    seeds: list[int],
    env_kwargs: dict[str, Any],
    history: int,
    out_dir: Path | None = None,
    record: str | None = "mpur",
    log=None,
) -> dict[str, Any]:
    """Drive every controller on the same seeds; markdown table (rows in ``ROW_NAMES``
    order) and per-row results. The episode of ``record`` is saved as ``<record>_episode.gif``."""
    lines = [
        f"{len(seeds)} held-out episodes (seeds {seeds[0]}…{seeds[-1]}), route "
        f"{env_kwargs.get('route_length')} m, time limit {env_kwargs.get('max_steps')} steps, "
        "invisible-car mode.",
        "",
        "| controller | success % | collision % | off-road % | time limit % | mean distance (m) |",
        "|---|---|---|---|---|---|",
    ]
    results = {}
    order = [k for k in ROW_NAMES if k in controllers] + [k for k in controllers if k not in ROW_NAMES]
    for key in order:
        keep_frames = out_dir is not None and key == record
        outcome = evaluate_driving(
            controllers[key], seeds, env_kwargs, history, record=0 if keep_frames else None
        )
        frames = outcome.pop("frames")
        outcome["timeout_rate"] = sum(o == "time_limit" for o in outcome["outcomes"]) / len(seeds)
        results[key] = outcome
        lines.append(
            f"| {ROW_NAMES.get(key, key)} | {100 * outcome['success_rate']:.0f} | "
            f"{100 * outcome['collision_rate']:.0f} | {100 * outcome['offroad_rate']:.0f} | "
            f"{100 * outcome['timeout_rate']:.0f} | {outcome['mean_distance']:.1f} |"
        )
        if log is not None:
            log({f"eval/{key}/success": outcome["success_rate"]})
        if frames:
            save_gif(frames[::2], out_dir / f"{key}_episode.gif")
            save_png(filmstrip(frames, every=30), out_dir / f"{key}_episode.png")
    return {"table": "\n".join(lines) + "\n", "results": results}
