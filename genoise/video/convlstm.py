"""ConvLSTM video predictor: Shi et al., "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting" (NeurIPS 2015), with OpenSTL's patch-wise input
(space-to-depth by ``patch`` before the cells, depth-to-space after)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.video.base import VideoPredictor


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell (Shi et al. 2015, eq. 3, without the peephole terms ``W_c ∘ c``).

    One convolution of ``kernel`` × ``kernel`` (same padding) over ``[x, h]`` gives the four
    gates' pre-activations, split along channels in the order ``i, f, g, o``::

        i, f, g, o = split(W * [x, h] + b, 4)
        c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
        h' = σ(o) ⊙ tanh(c')

    Parameters
    ----------
    in_channels, hidden : channels of ``x`` and of ``h`` (and ``c``)
    kernel : odd side of the gate convolution
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int = 5) -> None:
        super().__init__()
        self.in_channels, self.hidden = check_int("in_channels", in_channels), check_int("hidden", hidden)
        if check_int("kernel", kernel) % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), got {kernel}")
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (B, in_channels, H, W), ``state`` = (h, c) each (B, hidden, H, W) or ``None``
        for zeros; returns the new (h, c)."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])
            state = (zeros, zeros)
        h, c = state
        i, f, g, o = self.conv(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTMPredictor(VideoPredictor):
    """Stacked ConvLSTM (Shi et al., NeurIPS 2015) predicting frames auto-regressively.

    Each frame is folded patch-wise, ``z_t = pixel_unshuffle(x_t, patch)`` (C, H, W) →
    (C·patch², H/patch, W/patch), as in OpenSTL's ConvLSTM. Layer ``l`` of the stack runs
    ``(h^l_t, c^l_t) = Cell_l(h^{l-1}_t, (h^l_{t-1}, c^l_{t-1}))`` with ``h^0_t = z_t``, and
    the output head reads the top layer::

        x̂_{t+1} = pixel_shuffle(W_out * h^L_t, patch)     (W_out a 1×1 conv)

    without a squashing non-linearity (clamped to [0, 1] in eval mode, as every
    :class:`VideoPredictor`).

    The ``context`` observed frames are read in turn; the prediction made after the last one
    is the first output, and each predicted frame is then fed back as the next input (no
    teacher forcing), for ``horizon`` outputs in all.

    Parameters
    ----------
    channels, image_size, context, horizon : see :class:`VideoPredictor`
    hidden : channels of each stacked cell (bottom first)
    kernel : odd side of the cells' gate convolutions
    patch : side of the space-to-depth patches (must divide ``image_size``)
    """

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 10, horizon: int = 10,
                 hidden: Sequence[int] = (64, 64), kernel: int = 5, patch: int = 4) -> None:
        for name, value in (("channels", channels), ("image_size", image_size), ("context", context),
                            ("horizon", horizon), ("kernel", kernel), ("patch", patch)):
            check_int(name, value)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or len(hidden) == 0:
            raise ValueError(f"hidden must be a non-empty sequence of channel counts, got {hidden!r}")
        hidden = tuple(check_int("hidden", h) for h in hidden)
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not divisible by patch {patch}")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), got {kernel}")
        super().__init__(channels, image_size, context, horizon, hidden=hidden, kernel=kernel, patch=patch)
        self.patch = patch
        folded = channels * patch * patch
        inputs = (folded, *hidden[:-1])
        self.cells = nn.ModuleList(ConvLSTMCell(a, b, kernel) for a, b in zip(inputs, hidden, strict=True))
        self.head = nn.Conv2d(hidden[-1], folded, 1)

    def step(self, frame: Tensor, states: list[tuple[Tensor, Tensor] | None]) -> Tensor:
        """Advance every cell by one frame (B, C, H, W), updating ``states`` in place; returns
        the predicted next frame (B, C, H, W)."""
        x = F.pixel_unshuffle(frame, self.patch)
        for layer, cell in enumerate(self.cells):
            states[layer] = cell(x, states[layer])
            x = states[layer][0]
        return self.finish(F.pixel_shuffle(self.head(x), self.patch))

    def forward(self, frames: Tensor) -> Tensor:
        """(B, context, C, H, W) in [0, 1] → (B, horizon, C, H, W), clamped to [0, 1] in eval mode."""
        frames = self.check(frames)
        states: list[tuple[Tensor, Tensor] | None] = [None] * len(self.cells)
        for t in range(self.context):
            pred = self.step(frames[:, t], states)
        out = [pred]
        for _ in range(self.horizon - 1):
            out.append(self.step(out[-1], states))
        return torch.stack(out, 1)
