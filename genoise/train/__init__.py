"""Training infrastructure: runs, the Trainer loop, checkpoints, distributed helpers."""

from genoise.train.run import Run, resolve_device

__all__ = ["Run", "resolve_device"]
