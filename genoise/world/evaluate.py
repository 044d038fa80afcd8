"""Saved driving policies and the driving evaluation of a run folder (``genoise eval
driving RUN_DIR``).

A policy checkpoint (``policies/<method>.pt`` in a ``world-mpur-traffic`` run) holds the
network's constructor arguments and weights, the **observation format** it was trained on
(``obs_mode``, raster resolution, road, number of conditioning frames) and the training
configuration; loading it for an environment with another format is a one-line
``ValueError`` naming the checkpoint and the key that differs.

:func:`evaluate_driving_run` reloads every saved policy of a run and drives the fixed
held-out episodes (seeds ``100000, 100001, …``, the same for every controller, as in the
recipe) next to the "no action" and "IDM driver" references.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from genoise.io import atomic_torch_save, atomic_write_text
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.policy import DrivingPolicy, evaluate_driving, expert, keep_speed, policy_controller
from genoise.world.raster import RasterSpec
from genoise.world.render import filmstrip, save_gif, save_png
from genoise.world.traffic import RoadConfig

KIND = "genoise-driving-policy-v1"
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
_CHECKED = ("obs_mode", "raster", "road", "history")


def eval_seeds(n: int, start: int = EVAL_SEED) -> list[int]:
    """The fixed held-out episode seeds ``start, start + 1, …`` (same for every controller)."""
    return [start + i for i in range(int(n))]


def observation_config(env: HighwayTrafficEnv, history: int) -> dict[str, Any]:
    """What fixes the input format of a driving policy: ``env.config()`` + ``history``."""
    return {**env.config(), "history": int(history)}


def save_policy(
    policy: DrivingPolicy,
    path: str | os.PathLike,
    obs_config: dict[str, Any],
    config: dict[str, Any] | None = None,
    method: str = "",
) -> Path:
    """Atomically write ``policy`` with its observation format and training config."""
    return atomic_torch_save(
        {
            "kind": KIND,
            "method": method,
            "kwargs": policy.kwargs,
            "state_dict": policy.state_dict(),
            "obs_config": dict(obs_config),
            "config": dict(config or {}),
        },
        path,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_policy(
    path: str | os.PathLike, expect_obs: dict[str, Any] | None = None
) -> tuple[DrivingPolicy, dict[str, Any]]:
    """Load a policy checkpoint → ``(policy in eval mode, checkpoint metadata)``.

    ``expect_obs`` (e.g. :func:`observation_config` of the evaluation environment) is
    compared key by key (obs_mode, raster, road, history) with the format the policy was
    trained on; a difference raises a one-line ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no policy checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated / not a torch file
        raise ValueError(f"corrupt policy checkpoint {path}: {type(err).__name__}: {err}") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != KIND:
        raise ValueError(f"{path} is not a driving-policy checkpoint (expected kind {KIND!r})")
    trained = checkpoint["obs_config"]
    for key in _CHECKED:
        if (
            expect_obs is not None
            and key in expect_obs
            and _plain(expect_obs[key]) != _plain(trained.get(key))
        ):
            raise ValueError(
                f"policy checkpoint {path} was trained for {key}={trained.get(key)!r} but the "
                f"environment gives {key}={expect_obs[key]!r}"
            )
    kwargs = dict(checkpoint["kwargs"])
    raster = RasterSpec(**{k: tuple(v) for k, v in kwargs["raster"].items()})
    stand_in = SimpleNamespace(
        history=kwargs["history"],
        raster=raster,
        state_dim=kwargs["state_dim"],
        state_mean=torch.zeros(kwargs["state_dim"]),
        state_std=torch.ones(kwargs["state_dim"]),
    )
    policy = DrivingPolicy(
        stand_in, np.asarray(kwargs["low"]), np.asarray(kwargs["high"]), kwargs["width"], kwargs["hidden"]
    )
    policy.load_state_dict(checkpoint["state_dict"])
    return policy.eval(), {k: v for k, v in checkpoint.items() if k not in ("state_dict", "kwargs")}


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


def evaluate_driving_run(
    run_dir: str | os.PathLike,
    episodes: int | None = None,
    seed_start: int = EVAL_SEED,
    methods: list[str] | None = None,
    references: bool = True,
    route_length: float | None = None,
    max_steps: int | None = None,
    env_overrides: dict[str, Any] | None = None,
    gif: bool = False,
    write: bool = True,
) -> dict[str, Any]:
    """Reload the policies saved in ``run_dir/policies/*.pt`` and evaluate them.

    Parameters
    ----------
    run_dir : a ``world-mpur-traffic`` run folder.
    episodes : number of held-out episodes (default: the run's ``eval_episodes``).
    seed_start : first episode seed (default 100000, as the recipe).
    methods : subset of the saved policies (default all).
    references : also drive "no action" and the IDM driver on the same seeds.
    route_length, max_steps : episode settings (default: the run's).
    env_overrides : extra ``HighwayTrafficEnv`` arguments (a different observation
        format is rejected with a one-line ``ValueError``).
    gif : write ``<method>_episode.gif`` of the first episode of the first policy.
    write : write ``evaluation_reloaded.md`` and ``evaluation_reloaded.json``.

    Returns ``{"table": markdown, "results": {row: rates, outcomes…}}``.
    """
    run_dir = Path(run_dir)
    files = sorted((run_dir / "policies").glob("*.pt"))
    if not files:
        raise ValueError(
            f"no trained policies in {run_dir / 'policies'} (train with `genoise train world-mpur-traffic`)"
        )
    meta = torch.load(files[0], map_location="cpu", weights_only=False)
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ValueError(f"{files[0]} is not a driving-policy checkpoint (expected kind {KIND!r})")
    config, trained = meta["config"], meta["obs_config"]
    road = RoadConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in trained["road"].items()})
    raster = RasterSpec(**{k: tuple(v) for k, v in trained["raster"].items()})
    env_kwargs = dict(
        road=road,
        raster=raster,
        route_length=float(route_length if route_length is not None else config.get("route_length", 200.0)),
        max_steps=int(max_steps if max_steps is not None else config.get("max_steps", 400)),
        warmup=int(config.get("warmup", 300)),
    )
    env_kwargs.update(env_overrides or {})
    history = int(trained["history"])
    expect = observation_config(HighwayTrafficEnv(**env_kwargs), history)
    controllers: dict[str, Any] = {"none": keep_speed, "idm": expert} if references else {}
    for path in files:
        if methods is not None and path.stem not in methods:
            continue
        policy, _ = load_policy(path, expect_obs=expect)
        controllers[path.stem] = policy_controller(policy)
    if methods is not None and (missing := set(methods) - set(controllers)):
        raise ValueError(f"no saved policy for {sorted(missing)} in {run_dir / 'policies'}")
    seeds = eval_seeds(episodes if episodes is not None else config.get("eval_episodes", 20), seed_start)
    first = next((k for k in controllers if k not in ("none", "idm")), None)
    out = evaluation_table(
        controllers, seeds, env_kwargs, history, out_dir=run_dir if gif else None, record=first
    )
    if write:
        import json

        atomic_write_text(run_dir / "evaluation_reloaded.md", out["table"])
        atomic_write_text(
            run_dir / "evaluation_reloaded.json",
            json.dumps(
                {
                    "seeds": seeds,
                    "env": {**env_kwargs, "road": asdict(road), "raster": asdict(raster)},
                    "results": out["results"],
                },
                indent=1,
                default=str,
            )
            + "\n",
        )
    return out
