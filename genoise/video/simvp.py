"""SimVP video predictor: Gao, Tan, Wu & Li, "SimVP: Simpler yet Better Video Prediction"
(CVPR 2022) — a per-frame CNN encoder, a CNN translator over the frames stacked along
channels, and a per-frame CNN decoder; no recurrence."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.video.base import VideoPredictor


def _block(cin: int, cout: int, stride: int, transpose: bool = False) -> nn.Sequential:
    """3×3 conv (a transposed one to upsample by ``stride`` 2 if ``transpose``), GroupNorm, SiLU."""
    if transpose and stride == 2:
        conv: nn.Module = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
    else:
        conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
    return nn.Sequential(conv, nn.GroupNorm(math.gcd(cout, 2), cout), nn.SiLU())


class _Inception(nn.Module):
    """Inception-lite residual block: ``x + SiLU(GN(Σ_k G_k * (W_1 * x)))``, ``G_k`` grouped
    k × k convolutions (k = 3, 5, 7) and ``W_1`` a 1×1 convolution."""

    def __init__(self, channels: int, kernels: tuple[int, ...] = (3, 5, 7), groups: int = 8) -> None:
        super().__init__()
        groups = math.gcd(channels, groups)
        self.reduce = nn.Conv2d(channels, channels, 1)
        self.branches = nn.ModuleList(
            nn.Conv2d(channels, channels, k, padding=k // 2, groups=groups) for k in kernels)
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.reduce(x)
        return x + F.silu(self.norm(sum(branch(y) for branch in self.branches)))


class SimVP(VideoPredictor):
    """SimVP (Gao et al., CVPR 2022): encoder, translator, decoder, all convolutional.

    With ``S = spatial`` and strides 1, 2, 1, 2, … (so ``spatial_layers = 4`` maps 64 → 16)::

        e^1_t = Enc_1(x_t),  z_t = Enc_{2..N}(e^1_t)                   per frame, S channels
        [ẑ_1 … ẑ_horizon] = Trans([z_1 … z_context])                  frames stacked on channels
        x̂_j = W_out * Dec_N([Dec_{1..N-1}(ẑ_j), e^1_context])         per predicted frame

    ``Trans`` is a 1×1 conv (context·S → ``temporal``), ``temporal_layers`` inception-lite
    residual blocks, and a 1×1 conv (``temporal`` → horizon·S), so ``horizon`` may differ
    from ``context``. ``Dec`` mirrors ``Enc`` (transposed convs upsample); its last layer reads
    the first encoder layer's features of the last context frame (SimVP's skip connection,
    which pairs frame j with input frame j; here every output reads the last observed frame,
    which also holds when ``horizon != context``). ``W_out`` is a 1×1 conv; there is no
    squashing non-linearity (the output is clamped to [0, 1] in eval mode).

    Parameters
    ----------
    channels, image_size, context, horizon : see :class:`VideoPredictor`
    spatial : channels of the per-frame encoder / decoder
    temporal : channels of the translator
    spatial_layers : encoder (and decoder) layers; ``image_size`` must be divisible by
        ``2 ** (spatial_layers // 2)``
    temporal_layers : inception-lite blocks of the translator
    """

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 10, horizon: int = 10,
                 spatial: int = 32, temporal: int = 128, spatial_layers: int = 4,
                 temporal_layers: int = 4) -> None:
        for name, value in (("channels", channels), ("image_size", image_size), ("context", context),
                            ("horizon", horizon), ("spatial", spatial), ("temporal", temporal),
                            ("spatial_layers", spatial_layers), ("temporal_layers", temporal_layers)):
            check_int(name, value)
        factor = 2 ** (spatial_layers // 2)
        if image_size % factor:
            raise ValueError(f"image_size {image_size} is not divisible by {factor} "
                             f"(the downsampling of {spatial_layers} spatial layers)")
        super().__init__(channels, image_size, context, horizon, spatial=spatial, temporal=temporal,
                         spatial_layers=spatial_layers, temporal_layers=temporal_layers)
        self.spatial = spatial
        strides = [1 + i % 2 for i in range(spatial_layers)]
        self.encoder = nn.ModuleList(
            _block(channels if i == 0 else spatial, spatial, s) for i, s in enumerate(strides))
        self.translator = nn.Sequential(
            nn.Conv2d(context * spatial, temporal, 1),
            *(_Inception(temporal) for _ in range(temporal_layers)),
            nn.Conv2d(temporal, horizon * spatial, 1))
        last = spatial_layers - 1
        self.decoder = nn.ModuleList(
            _block(spatial * (2 if i == last else 1), spatial, s, transpose=True)
            for i, s in enumerate(reversed(strides)))
        self.readout = nn.Conv2d(spatial, channels, 1)

    def forward(self, frames: Tensor) -> Tensor:
        """(B, context, C, H, W) in [0, 1] → (B, horizon, C, H, W), clamped to [0, 1] in eval mode."""
        frames = self.check(frames)
        B, T, C, H, W = frames.shape
        x = self.encoder[0](frames.flatten(0, 1))
        skip = x.unflatten(0, (B, T))[:, -1]
        for block in self.encoder[1:]:
            x = block(x)
        z = self.translator(x.reshape(B, T * self.spatial, *x.shape[-2:]))
        z = z.reshape(B * self.horizon, self.spatial, *x.shape[-2:])
        for block in self.decoder[:-1]:
            z = block(z)
        skip = skip.unsqueeze(1).expand(-1, self.horizon, -1, -1, -1).flatten(0, 1)
        z = self.decoder[-1](torch.cat([z, skip], 1))
        return self.finish(self.readout(z)).reshape(B, self.horizon, C, H, W)
