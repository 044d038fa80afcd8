"""A ``Run``: the folder a job writes (``runs/<name>/``) and the context a recipe gets.

Layout: ``config.yaml`` (the resolved configuration), ``metrics.jsonl`` (one JSON row
per logged step), checkpoints, PNG plots, ``summary.json`` (final metrics). Every file
is written atomically (see :mod:`genoise.io`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from genoise.io import MetricsWriter, atomic_savefig, atomic_write_text


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/``None`` → CUDA when present, else CPU; otherwise validate the name."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; got {device!r}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available on this machine")
    return resolved


@dataclass
class Run:
    """Context handed to a recipe entry point.

    Attributes
    ----------
    dir : Path            the run folder (created)
    config : dict         the recipe's resolved configuration
    device : torch.device
    data_dir : Path|None  where real data sets live (``GENOISE_DATA`` / ``data_dir=``)
    resume : bool         continue from the last checkpoint in ``dir``
    progress : bool       show progress bars
    stop_after : int|None  every training loop stops (checkpoint, then ``RunInterrupted``)
                          after finishing this step (``genoise train --stop-after K``)
    writer : bool         False on torchrun's ranks > 0: the folder is rank 0's, nothing is
                          created and ``metrics`` is None
    """

    dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    tensorboard: bool = False
    stop_after: int | None = None
    writer: bool = True

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)
        self.metrics: MetricsWriter | None = None
        if self.writer:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.metrics = MetricsWriter(self.dir, tensorboard=self.tensorboard)

    @property
    def name(self) -> str:
        return self.dir.name

    def path(self, name: str) -> Path:
        """A path inside the run folder."""
        return self.dir / name

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        """Append a metrics row to ``metrics.jsonl``."""
        self.metrics.write(record, step=step)

    def config_as(self, cls: type) -> Any:
        """Build the dataclass ``cls`` from the keys of ``config`` it declares (others,
        such as ``seed`` or ``data_dir`` when it has no such field, are ignored)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in self.config.items() if k in fields})

    def save_config(self) -> Path:
        return atomic_write_text(self.path("config.yaml"),
                                 yaml.safe_dump(_plain(self.config), sort_keys=False))

    def save_figure(self, figure: Any, name: str, **kwargs: Any) -> Path:
        """Save a matplotlib figure as ``name`` (PNG by default) and close it."""
        import matplotlib.pyplot as plt

        kwargs.setdefault("dpi", 110)
        kwargs.setdefault("bbox_inches", "tight")
        out = atomic_savefig(figure, self.path(name), **kwargs)
        plt.close(figure)
        return out

    def save_summary(self, summary: dict[str, Any]) -> Path:
        return atomic_write_text(self.path("summary.json"),
                                 json.dumps(_plain(summary), indent=2) + "\n")

    def subrun(self, name: str, **overrides: Any) -> Run:
        """A child run in ``dir/name`` sharing device, data folder and flags."""
        fields = dict(config=self.config, device=self.device, data_dir=self.data_dir,
                      resume=self.resume, progress=self.progress, tensorboard=self.tensorboard,
                      stop_after=self.stop_after)
        fields.update(overrides)
        return Run(self.dir / name, **fields)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (os.PathLike, torch.device)):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
