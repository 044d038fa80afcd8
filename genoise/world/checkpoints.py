"""Checkpoints of the world networks: the forward model and the driving policies.

Every file is a :mod:`genoise.train.checkpoint` envelope — what :class:`genoise.train.Trainer`
writes as ``last.pt`` — ``{"kind", "config", "model": state_dict, "extra_state": {"card":
card}, …}``, where the **card** (:class:`ModelCard`) holds what the weights alone do not:
the network's constructor arguments (``kwargs``), the **observation format** it was trained
on (``obs_config``: ``obs_mode``, raster resolution, road, number of conditioning frames)
and, for a policy, its ``method``. A network is rebuilt from its checkpoint alone; loading it
for an environment with another observation format is a one-line ``ValueError`` naming the
checkpoint and the key that differs. (Files of earlier versions — ``forward_model.pt``,
``policies/<method>.pt`` of kind ``genoise-driving-policy-v1`` — are still read.)

A ``world-model-traffic`` run keeps its model in ``model/last.pt``; a ``world-mpur-traffic``
run its policies in ``policy/<method>/last.pt`` (and the model in ``model/last.pt`` unless it
reused another run's, ``model_run=``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from genoise.io import atomic_torch_save
from genoise.train.checkpoint import ModelCard  # noqa: F401 — re-exported (moved to genoise.train)
from genoise.world.forward import ForwardModel
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.policy import DrivingPolicy
from genoise.world.raster import RasterSpec

FORWARD_MODEL_KIND = "world-forward-model"
POLICY_KIND = "world-driving-policy"
LEGACY_POLICY_KIND = "genoise-driving-policy-v1"
_CHECKED = ("obs_mode", "raster", "road", "history")


def observation_config(env: HighwayTrafficEnv, history: int) -> dict[str, Any]:
    """What fixes the input format of a driving network: ``env.config()`` + ``history``."""
    return {**env.config(), "history": int(history)}


def _save(kind: str, network: torch.nn.Module, card: dict[str, Any], path: str | os.PathLike,
          config: Mapping[str, Any] | None) -> Path:
    envelope = {"format": 1, "kind": kind, "config": dict(config or {}), "step": 0,
                "model": network.state_dict(), "extra_state": {"card": card}}
    return atomic_torch_save(envelope, path)


def _read(path: str | os.PathLike, what: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(card, weights, whole file) of a checkpoint: an envelope or a file of earlier versions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, or not a torch file at all
        raise ValueError(f"not a genoise checkpoint: {path} ({type(err).__name__})") from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f"not a genoise checkpoint: {path}")
    if isinstance(checkpoint.get("extra_state"), dict):
        card, weights = checkpoint["extra_state"].get("card") or {}, checkpoint.get("model")
    else:  # earlier versions: the card's fields at the top level
        card, weights = checkpoint, checkpoint.get("state_dict")
    if not isinstance(card, dict) or "kwargs" not in card or weights is None:
        raise ValueError(f"{path} is not a {what} checkpoint (no constructor arguments)")
    return card, weights, checkpoint


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_obs(path: str | os.PathLike, trained: Mapping[str, Any], expect: Mapping[str, Any] | None,
               keys: tuple[str, ...] = _CHECKED) -> None:
    for key in keys:
        if expect is not None and key in expect and _plain(expect[key]) != _plain(trained.get(key)):
            raise ValueError(
                f"checkpoint {path} was trained for {key}={trained.get(key)!r} but the "
                f"environment gives {key}={expect[key]!r}"
            )


def check_finished(path: str | os.PathLike) -> Path:
    """Refuse, in one line, the checkpoint of a training that stopped before its last step
    (``--stop-after``, Ctrl-C, a crash): its network is not the trained one."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    step, total = checkpoint.get("step"), checkpoint.get("max_steps")
    if isinstance(step, int) and isinstance(total, int) and step < total:
        raise ValueError(f"{path} stopped at step {step} of {total}; finish it with "
                         "`genoise train … --resume` first")
    return Path(path)


# ---------------------------------------------------------------------- forward model
def save_forward_model(model: ForwardModel, path: str | os.PathLike,
                       obs_config: Mapping[str, Any] | None = None) -> Path:
    """Atomically write ``model`` with its constructor arguments and observation format."""
    obs = dict(obs_config or {"obs_mode": "raster", "raster": model.kwargs["raster"]})
    return _save(FORWARD_MODEL_KIND, model, {"kwargs": model.kwargs, "obs_config": obs}, path, None)


def find_forward_model(run_dir: str | os.PathLike) -> Path:
    """The forward-model checkpoint of a ``world-model-traffic`` run folder: ``model/last.pt``
    (``forward_model.pt`` in runs of earlier versions)."""
    run_dir = Path(run_dir)
    for candidate in (run_dir / "model" / "last.pt", run_dir / "forward_model.pt"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no forward model in {run_dir} (looked for model/last.pt and "
                            "forward_model.pt; train one with `genoise train world-model-traffic`)")


def forward_model_card(path: str | os.PathLike) -> dict[str, Any]:
    """The card (``kwargs``, ``obs_config`` with the road) of a forward-model checkpoint."""
    return _read(path, "forward-model")[0]


def load_forward_model(path: str | os.PathLike, expect_obs: Mapping[str, Any] | None = None) -> ForwardModel:
    """Rebuild the forward model of a checkpoint (on the CPU, in training mode); if
    ``expect_obs`` (e.g. ``env.config()``) disagrees with its ``obs_mode`` or ``raster``,
    raise a one-line ``ValueError``."""
    card, weights, _ = _read(path, "forward-model")
    _check_obs(path, card.get("obs_config") or {}, expect_obs, ("obs_mode", "raster"))
    kwargs = dict(card["kwargs"])
    kwargs["raster"] = RasterSpec(**{k: tuple(v) for k, v in kwargs["raster"].items()})
    model = ForwardModel(**kwargs)
    model.load_state_dict(weights)
    return model


# ---------------------------------------------------------------------- policies
def save_policy(policy: DrivingPolicy, path: str | os.PathLike, obs_config: Mapping[str, Any],
                config: Mapping[str, Any] | None = None, method: str = "") -> Path:
    """Atomically write ``policy`` with its observation format, method and training config."""
    card = {"kwargs": policy.kwargs, "obs_config": dict(obs_config), "method": method}
    return _save(POLICY_KIND, policy, card, path, config)


def find_policies(run_dir: str | os.PathLike) -> dict[str, Path]:
    """``{method: checkpoint}`` of a ``world-mpur-traffic`` run folder: ``policy/<method>/last.pt``
    (``policies/<method>.pt`` in runs of earlier versions), sorted by method."""
    run_dir = Path(run_dir)
    found = {p.stem: p for p in (run_dir / "policies").glob("*.pt")}
    found.update({p.parent.name: p for p in (run_dir / "policy").glob("*/last.pt")})
    return dict(sorted(found.items()))


def load_policy(path: str | os.PathLike,
                expect_obs: Mapping[str, Any] | None = None) -> tuple[DrivingPolicy, dict[str, Any]]:
    """Load a policy checkpoint → ``(policy in eval mode, metadata)`` (metadata: ``kind``,
    ``method``, ``obs_config``, ``config``).

    ``expect_obs`` (e.g. :func:`observation_config` of the evaluation environment) is
    compared key by key (obs_mode, raster, road, history) with the format the policy was
    trained on; a difference raises a one-line ``ValueError``."""
    card, weights, checkpoint = _read(path, "policy")
    kind = checkpoint.get("kind")
    if kind not in (POLICY_KIND, LEGACY_POLICY_KIND):
        raise ValueError(f"{path} is not a driving-policy checkpoint (kind {kind!r}, "
                         f"expected {POLICY_KIND!r})")
    trained = card.get("obs_config") or {}
    _check_obs(path, trained, expect_obs)
    policy = DrivingPolicy.from_kwargs(card["kwargs"])
    policy.load_state_dict(weights)
    meta = {"kind": kind, "method": card.get("method", ""), "obs_config": trained,
            "config": dict(checkpoint.get("config") or {})}
    return policy.eval(), meta
