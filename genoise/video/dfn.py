"""Dynamic filter network: De Brabandere, Jia, Tuytelaars & Van Gool, "Dynamic Filter
Networks" (NeurIPS 2016) — a network that predicts, for every pixel, the local filter that
moves the last frame into the next one, instead of drawing the next frame itself.

One step, for the frames ``x_{t-w+1} … x_t`` of a window of ``w``::

    W_t = softmax_o f_θ(x_{t-w+1}, …, x_t)            (B, K², H, W): a distribution per pixel
    x̂_{t+1}(p) = Σ_{o ∈ {-r…r}²} W_t(p, o) · x_t(p + o),      K = 2r + 1

and the ``horizon`` frames come by feeding each prediction back (the gradient flows through
every step). Every predicted pixel is a convex combination of the K × K neighbourhood of the
previous frame, so a digit translated by at most ``r`` pixels per frame is moved without
being redrawn: the prediction stays as sharp as its filters are peaked, and an uncertain
motion shows as a spread filter (a local blur) rather than a grey cloud. Moving MNIST moves
a digit by at most 4 pixels a frame (3.6, floored), so ``kernel = 9`` covers it.

``f_θ`` is a small U-Net: two 3 × 3 convolutions at full resolution, two stride-2 stages,
``blocks`` residual 3 × 3 convolutions at 1/4 resolution with dilations 1, 2, 4, 8, … (the
receptive field spans the frame, so a digit "knows" the walls), and two upsampling stages
that read the matching encoder features (skips), then a 1 × 1 convolution to the K² logits.

With ``latent = L > 0`` the filter network also reads a latent z at every step:
``f_θ(x_{t-w+1}, …, x_t, z)``. A vector z (B, L) is broadcast over space as L extra input
channels; with ``latent_map`` z is a map (B, L, H/4, W/4), projected by a 1 × 1 convolution and
added at quarter resolution before the residual blocks, so each region of the frame has its
own latent (SV2P's spatial latent, Babaeizadeh et al. 2018). One z per predicted sequence
picks one future (the latent-variable predictor of :mod:`genoise.video.latent` with
``backbone="dfn"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.video.base import VideoPredictor, check_latent


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3×3 conv, GroupNorm, SiLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                         nn.GroupNorm(math.gcd(cout, 8), cout), nn.SiLU())


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = _conv(channels, channels, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def apply_filters(frame: Tensor, weights: Tensor) -> Tensor:
    """``out(p) = Σ_o weights(p, o) · frame(p + o)`` for frame (B, C, H, W) and weights
    (B, K², H, W) (the offsets o in row-major order over the K × K window, zero padding)."""
    B, C, H, W = frame.shape
    k2 = weights.shape[1]
    k = math.isqrt(k2)
    if k * k != k2 or k % 2 == 0 or weights.shape[0] != B or tuple(weights.shape[2:]) != (H, W):
        raise ValueError(f"weights must be (B, K², H, W) with K odd matching frame {tuple(frame.shape)}, "
                         f"got {tuple(weights.shape)}")
    patches = F.unfold(frame, k, padding=k // 2).view(B, C, k2, H, W)
    return (patches * weights.unsqueeze(1)).sum(2)


class DynamicFilterPredictor(VideoPredictor):
    """A dynamic filter network predicting ``horizon`` frames recursively (module docstring).

    Parameters
    ----------
    channels, image_size, context, horizon : see :class:`VideoPredictor` (``context`` frames
        are read; the filter network sees the last ``window`` of them)
    window : frames the filter network reads at each step (2 give the velocity)
    width : channels at full and half resolution
    hidden : channels at quarter resolution
    kernel : side K of the per-pixel filters (odd)
    blocks : residual blocks at quarter resolution
    latent : channels of the latent z read by the filter network (0: none; ``forward`` then
        takes no z)
    latent_map : z is a map (B, latent, H/4, W/4) instead of a vector (B, latent)
    """

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 10, horizon: int = 10,
                 window: int = 3, width: int = 16, hidden: int = 64, kernel: int = 9,
                 blocks: int = 4, latent: int = 0, latent_map: bool = False) -> None:
        for name, value in (("channels", channels), ("image_size", image_size), ("context", context),
                            ("horizon", horizon), ("window", window), ("width", width),
                            ("hidden", hidden), ("kernel", kernel), ("blocks", blocks)):
            check_int(name, value)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        if window > context:
            raise ValueError(f"window ({window}) must be <= context ({context})")
        if image_size % 4:
            raise ValueError(f"image_size {image_size} is not divisible by 4 (two stride-2 stages)")
        check_int("latent", latent, min=0)
        if latent_map and not latent:
            raise ValueError("latent_map needs latent > 0")
        extra: dict = {"latent": latent} if latent else {}  # checkpoints without z keep their kwargs
        if latent_map:
            extra["latent_map"] = True
        super().__init__(channels, image_size, context, horizon, window=window, width=width,
                         hidden=hidden, kernel=kernel, blocks=blocks, **extra)
        self.window, self.latent, self.latent_map = window, latent, bool(latent_map)
        self.full = nn.Sequential(_conv(channels * window + (0 if latent_map else latent), width),
                                  _conv(width, width))
        self.down_half = _conv(width, width, stride=2)
        self.down_quarter = nn.Sequential(_conv(width, hidden, stride=2),
                                          *(_Residual(hidden, 2 ** (i % 4)) for i in range(blocks)))
        self.up_half = _conv(hidden + width, width)
        self.up_full = _conv(2 * width, width)
        self.latent_in = nn.Conv2d(latent, hidden, 1) if latent_map else None
        self.logits = nn.Conv2d(width, kernel * kernel, 1)
        nn.init.normal_(self.logits.weight, std=1e-3)  # start near a uniform local blur
        nn.init.zeros_(self.logits.bias)

    @property
    def latent_side(self) -> tuple[int, ...]:
        """The shape of z after (B, latent): () for a vector, (H/4, W/4) for a map."""
        return (self.image_size // 4,) * 2 if self.latent_map else ()

    def filters(self, frames: Tensor, z: Tensor | None = None) -> Tensor:
        """(B, window, C, H, W) (and z: (B, latent), or (B, latent, H/4, W/4) with ``latent_map``)
        → the per-pixel filters (B, K², H, W), each summing to 1."""
        x = frames.flatten(1, 2)
        if z is not None and not self.latent_map:
            x = torch.cat([x, z[:, :, None, None].expand(-1, -1, *x.shape[-2:])], 1)
        f1 = self.full(x)
        f2 = self.down_half(f1)
        if self.latent_in is None:
            h = self.down_quarter(f2)
        else:
            h = self.down_quarter[1:](self.down_quarter[0](f2) + self.latent_in(z))
        h = self.up_half(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), f2], 1))
        h = self.up_full(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), f1], 1))
        return self.logits(h).softmax(1)

    def forward(self, frames: Tensor, z: Tensor | None = None) -> Tensor:
        """(B, context, C, H, W) in [0, 1] (and z when ``latent`` > 0, see :meth:`filters`) →
        (B, horizon, C, H, W)."""
        frames = self.check(frames)
        check_latent("DynamicFilterPredictor", z, frames.shape[0], self.latent, *self.latent_side)
        window = list(frames[:, -self.window:].unbind(1))
        out: list[Tensor] = []
        for _ in range(self.horizon):
            nxt = apply_filters(window[-1], self.filters(torch.stack(window, 1), z))
            out.append(nxt)
            window = [*window[1:], nxt]
        return self.finish(torch.stack(out, 1))
