"""The multi-scale generator and discriminator of Mathieu, Couprie & LeCun, "Deep multi-scale
video prediction beyond mean square error" (ICLR 2016), at a width a CPU can train.

Generator (their eq. 1): scales s_1 < … < s_K (image_size / 2^(K−k), i.e. 1/8 … 1 for K = 4);
X_k and Y_k are the frames resized to s_k, u_k bilinear up-sampling. Each scale refines the
up-sampled coarser prediction:

    Ŷ_1 = G'_1(X_1),   Ŷ_k = u_k(Ŷ_{k−1}) + G'_k(X_k, u_k(Ŷ_{k−1}))

in pixel space (clamped to [0, 1] in eval mode). G'_k is a ConvNet of four layers with
``width``, 2·``width``, ``width`` feature maps (the paper: 128, 256, 128) and kernels 3 at
the coarse scales, 5-3-3-5 at the two finest (the paper: up to 7-5-5-7). Optional latent
channels z (B, L) are broadcast over space and appended at every scale (the latent-variable
predictor, :mod:`genoise.video.latent`).

Discriminator: one ConvNet D_k per scale over (X_k, Y_k) → a logit (real future or the
generator's), three conv layers (the last two of stride 2), global average, linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.video.base import VideoPredictor, check_frames, check_latent
from genoise.video.losses import gradient_difference_loss, lp_loss, sum_scale


def resize(frames: Tensor, size: int) -> Tensor:
    """(B, T, C, H, W) → (B, T, C, size, size) by area averaging (down) or bilinear (up)."""
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, *frames.shape[2:])
    mode = {"mode": "area"} if size < frames.shape[-1] else {"mode": "bilinear", "align_corners": False}
    return F.interpolate(flat, size=(size, size), **mode).reshape(b, t, frames.shape[2], size, size)


def scale_targets(preds: Tensor | list[Tensor], future: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Pair each prediction (one tensor, or the generator's list over scales) with the true
    ``future`` resized to its side: the targets of the losses summed over the scales."""
    preds = preds if isinstance(preds, list) else [preds]
    return [(y, resize(future, y.shape[-1]) if y.shape[-1] != future.shape[-1] else future) for y in preds]


def scales_loss(preds: Tensor | list[Tensor], future: Tensor, p: float, *, reduction: str = "mean",
                gdl_weight: float | None = None, alpha: float = 1.0) -> Tensor:
    """Σ_k L_p(Ŷ_k, Y_k) (+ ``gdl_weight`` · L_gdl(Ŷ_k, Y_k) unless it is ``None``) over the
    pairs of :func:`scale_targets`; with ``reduction="sum"`` per-sample sums divided by
    :func:`~genoise.video.losses.sum_scale` (the paper's weighting of the scales and terms)."""
    total = future.new_zeros(())
    for y, target in scale_targets(preds, future):
        total = total + lp_loss(y, target, p, reduction)
        if gdl_weight is not None:
            total = total + gdl_weight * gradient_difference_loss(y, target, alpha, reduction)
    return total / sum_scale(future, reduction)


def scale_sizes(image_size: int, scales: int) -> list[int]:
    """Sides of the scales, coarse to fine: image_size / 2^(scales − 1), …, image_size."""
    sizes = [image_size // 2 ** (scales - 1 - k) for k in range(scales)]
    if image_size % 2 ** (scales - 1) or sizes[0] < 2:
        raise ValueError(f"image_size={image_size} cannot be halved {scales - 1} times into whole sides >= 2")
    return sizes


def _conv_stack(channels: list[int], kernels: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, kernel in enumerate(kernels):
        layers.append(nn.Conv2d(channels[i], channels[i + 1], kernel, padding=kernel // 2))
        if i < len(kernels) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MultiScaleGenerator(VideoPredictor):
    """Mathieu et al.'s multi-scale generator: ``context`` frames → the next ``horizon``.

    ``forward(frames, z=None, scales=False)`` returns (B, horizon, C, H, W) (clamped to [0, 1]
    in eval mode), or the list of every scale's prediction (coarse to fine) when ``scales``.
    """

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 4, horizon: int = 1,
                 scales: int = 4, width: int = 32, latent: int = 0) -> None:
        super().__init__(channels, image_size, context, horizon, scales=scales, width=width, latent=latent)
        for name, value in (("channels", channels), ("context", context), ("horizon", horizon),
                            ("scales", scales), ("width", width)):
            check_int(name, value, min=1)
        self.latent = check_int("latent", latent, min=0)
        self.sizes = scale_sizes(image_size, scales)
        inputs, outputs = context * channels, horizon * channels
        self.stages = nn.ModuleList()
        for k in range(scales):
            kernels = [5, 3, 3, 5] if k >= scales - 2 and scales > 1 else [3, 3, 3, 3]
            first = inputs + (outputs if k > 0 else 0) + latent
            self.stages.append(_conv_stack([first, width, 2 * width, width, outputs], kernels))

    def forward(self, frames: Tensor, z: Tensor | None = None, scales: bool = False) -> Tensor | list[Tensor]:
        self.check(frames)
        check_latent("MultiScaleGenerator", z, frames.shape[0], self.latent)
        b = frames.shape[0]
        prediction: Tensor | None = None
        out: list[Tensor] = []
        for size, stage in zip(self.sizes, self.stages, strict=True):
            parts = [resize(frames, size).reshape(b, -1, size, size)]
            coarse = None
            if prediction is not None:
                coarse = F.interpolate(prediction, size=(size, size), mode="bilinear", align_corners=False)
                parts.append(coarse)
            if z is not None:
                parts.append(z[:, :, None, None].expand(-1, -1, size, size))
            refined = stage(torch.cat(parts, 1))
            prediction = refined if coarse is None else coarse + refined
            out.append(self.finish(prediction).reshape(b, self.horizon, self.channels, size, size))
        return out if scales else out[-1]


class MultiScaleDiscriminator(nn.Module):
    """One discriminator per scale: D_k(X_k, Y_k) → logit (B,), high for a real future.

    ``forward(context, future)`` takes the full-size frames (B, context, C, H, W) and
    (B, horizon, C, H, W) — or a list of the future at every scale (the generator's
    ``scales=True`` output) — and returns the list of the K logits (B,)."""

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 4, horizon: int = 1,
                 scales: int = 4, width: int = 16) -> None:
        super().__init__()
        self.kwargs = {"channels": channels, "image_size": image_size, "context": context,
                       "horizon": horizon, "scales": scales, "width": width}
        self.channels, self.image_size, self.context, self.horizon = channels, image_size, context, horizon
        self.sizes = scale_sizes(image_size, scales)
        inputs = (context + horizon) * channels
        self.nets = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(inputs, width, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 1),
            )
            for _ in self.sizes
        )

    def forward(self, context: Tensor, future: Tensor | list[Tensor]) -> list[Tensor]:
        check_frames("MultiScaleDiscriminator", context, self.context, self.channels, self.image_size)
        futures = future if isinstance(future, list) else [resize(future, s) for s in self.sizes]
        if len(futures) != len(self.sizes):
            raise ValueError(f"MultiScaleDiscriminator expects {len(self.sizes)} scales, got {len(futures)}")
        b = context.shape[0]
        logits = []
        for size, net, y in zip(self.sizes, self.nets, futures, strict=True):
            check_frames("MultiScaleDiscriminator", y, self.horizon, self.channels, size)
            x = resize(context, size).reshape(b, -1, size, size)
            logits.append(net(torch.cat([x, y.reshape(b, -1, size, size)], 1)).squeeze(1))
        return logits
