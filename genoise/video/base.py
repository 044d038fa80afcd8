"""The interface every video predictor of :mod:`genoise.video` shares, and the recursive
roll-out built on it.

A predictor maps ``context`` frames to the next ``horizon`` frames::

    model(frames)  # (B, context, C, H, W) in [0, 1] -> (B, horizon, C, H, W)

Frames are predicted in pixel space with no squashing non-linearity (:meth:`VideoPredictor.
finish`): a sigmoid saturates on the black background that covers most of a Moving-MNIST
frame, and ℓ1 then stalls on an all-black prediction. In eval mode outputs are clamped to
[0, 1].

and predicts further by feeding its own output back (:func:`rollout`), as Mathieu, Couprie &
LeCun (ICLR 2016) score their "2nd frame, recursive" column.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def check_frames(owner: str, frames: Tensor, length: int | None, channels: int, size: int) -> Tensor:
    """Raise a one-line ``ValueError`` unless ``frames`` is a finite float tensor
    (B, length, channels, size, size) (any length if ``None``)."""
    want = f"(B, {length if length is not None else 'T'}, {channels}, {size}, {size})"
    if (
        not isinstance(frames, Tensor)
        or frames.ndim != 5
        or (length is not None and frames.shape[1] != length)
        or frames.shape[2] != channels
        or tuple(frames.shape[3:]) != (size, size)
    ):
        got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"{owner} expects frames of shape {want}, got {got}")
    if not frames.is_floating_point():
        raise ValueError(f"{owner} expects float frames in [0, 1], got dtype {frames.dtype}")
    return frames


def check_latent(owner: str, z: Tensor | None, batch: int, latent: int, *side: int) -> None:
    """Raise a one-line ``ValueError`` unless ``z`` is (batch, latent, *side) — ``side`` empty
    for a vector z, (s, s) for a map — or ``None`` when ``latent`` is 0 (no latent variable)."""
    wrong = z is not None and tuple(z.shape) != (batch, latent, *side)
    if (z is None) != (latent == 0) or wrong:
        want = "(B, " + ", ".join(str(n) for n in (latent, *side)) + ")" if latent else "no z"
        got = "none" if z is None else tuple(z.shape)
        raise ValueError(f"{owner}(latent={latent}) expects z {want}, got {got}")


class VideoPredictor(nn.Module):
    """Base of the predictors: stores the shape of what they read and write.

    Attributes
    ----------
    channels, image_size : the frames' channels and side (square frames)
    context : frames read by one call
    horizon : frames written by one call
    kwargs : the constructor's arguments (a checkpoint rebuilds the model from them)
    """

    def __init__(self, channels: int, image_size: int, context: int, horizon: int, **kwargs: Any) -> None:
        super().__init__()
        self.channels, self.image_size = int(channels), int(image_size)
        self.context, self.horizon = int(context), int(horizon)
        self.kwargs = {"channels": channels, "image_size": image_size, "context": context,
                       "horizon": horizon, **kwargs}

    def finish(self, frames: Tensor) -> Tensor:
        """The output: as is while training (gradients everywhere), clamped to [0, 1] in eval mode."""
        return frames if self.training else frames.clamp(0, 1)

    def check(self, frames: Tensor) -> Tensor:
        return check_frames(type(self).__name__, frames, self.context, self.channels, self.image_size)


def rollout(model: VideoPredictor, frames: Tensor, steps: int, **kwargs: Any) -> Tensor:
    """Predict ``steps`` frames recursively: each call reads the last ``model.context`` frames
    (observed, then predicted) and appends its ``model.horizon`` outputs. (B, steps, C, H, W)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    window = frames[:, -model.context :]
    out: list[Tensor] = []
    made = 0
    while made < steps:
        pred = model(window, **kwargs)
        out.append(pred)
        made += pred.shape[1]
        window = torch.cat([window, pred], 1)[:, -model.context :]
    return torch.cat(out, 1)[:, :steps]
