"""Checkpoint files: one dictionary per file, written atomically (temporary file in the
same folder, fsync, rename — :func:`genoise.io.atomic_torch_save`), so a crash or Ctrl-C
in the middle of a save leaves the previous checkpoint intact.

A :class:`~genoise.train.Trainer` checkpoint (``last.pt``) holds::

    {"format": 2, "kind": str, "config": dict, "step": int, "max_steps": int, "seed": int,
     "batch_size": int, "world_size": int, "divergence_reference": [|loss|, grad norm] | None,
     "model": state_dict, "optimizer": state_dict, "scheduler": state_dict | None,
     "extra_state": {name: state_dict}, "rng": [per-rank RNG states]}

Every training loop of genoise writes this envelope: ``format``, ``kind`` (what was
trained: ``"ssl-vicreg"``, ``"estimator-kmeans"``…), ``config`` and ``step``, then its own
state (``model``/``optimizer`` for gradient training, ``state`` for an estimator).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genoise.io import atomic_torch_save

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = 2


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically and return the path."""
    return atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu",
                    weights_only: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    ``weights_only=False`` by default because ``extra_state`` may hold arbitrary picklable
    objects (a replay buffer's NumPy arrays…): only load files you wrote yourself.
    Raises ``FileNotFoundError`` when absent and a one-line ``ValueError`` when unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # torch.load raises many types on garbage (pickle, zip, unicode…)
        detail = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"not a genoise checkpoint: {path} (unreadable: {type(err).__name__}"
                         f"{': ' + detail[:120] if detail else ''})") from err
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"not a genoise checkpoint: {path} (no 'step' entry)")
    return state


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel``/``DataParallel`` wrapper (or itself)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel,
                                              nn.DataParallel)) else model


class ModelCard:
    """What a checkpointed network needs besides its weights (its constructor ``kwargs``, the
    data format it was trained on…): a Trainer ``extra_state`` entry (``state_dict`` /
    ``load_state_dict`` of a plain dict)."""

    def __init__(self, **info: Any) -> None:
        self.info = dict(info)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.info)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.info = dict(state)
