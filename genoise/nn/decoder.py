"""A small convolutional decoder, the mirror of :class:`genoise.nn.ConvEncoder`.

A linear layer maps the code to a (width·2**(depth-1), s, s) grid with s = ⌈S / 2**depth⌉;
``depth`` blocks of transposed conv4×4(stride 2) → BatchNorm → ReLU double the side and
halve the width; a conv3×3 gives ``out_channels`` maps, centre-cropped to exactly S×S
(28 = 32 cropped by 2 on each side), then an optional sigmoid for images in [0, 1]:

    x̂ = σ(crop_S(conv ∘ up_depth ∘ … ∘ up_1(reshape(W z + b)))),   z (B, D) → x̂ (B, C, S, S)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genoise._checks import check_int, check_vector_batch


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """transposed conv4×4 stride 2 (side ×2) → BatchNorm2d → ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ConvDecoder(nn.Module):
    """Conv decoder (B, in_dim) → (B, out_channels, image_size, image_size).

    Parameters
    ----------
    in_dim : int
        Code width.
    out_channels, image_size : int
        Output image shape.
    width : int
        Channels of the last up-block (the first has ``width · 2**(depth-1)``).
    depth : int
        Number of up-sampling blocks.
    sigmoid : bool
        Squash the output into (0, 1) (for images in [0, 1]); ``False`` returns the
        unbounded pre-activation (e.g. for a Gaussian likelihood or logits).

    Examples
    --------
    >>> dec = ConvDecoder(16, 1, 28)
    >>> dec(torch.randn(8, 16)).shape
    torch.Size([8, 1, 28, 28])
    """

    def __init__(self, in_dim: int, out_channels: int, image_size: int, width: int = 32, depth: int = 3,
                 sigmoid: bool = True) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_channels", out_channels),
                            ("image_size", image_size), ("width", width), ("depth", depth)):
            check_int(name, value)
        self.in_dim, self.out_channels, self.image_size = in_dim, out_channels, image_size
        self.sigmoid = sigmoid
        widths = [width * 2**k for k in reversed(range(depth))]
        self.grid = math.ceil(image_size / 2**depth)
        self.stem = nn.Sequential(nn.Linear(in_dim, widths[0] * self.grid**2), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(up_block(c_in, c_out)
                                      for c_in, c_out in zip(widths, [*widths[1:], width], strict=True)))
        self.to_image = nn.Conv2d(width, out_channels, 3, padding=1)
        self.crop = (self.grid * 2**depth - image_size) // 2

    def forward(self, z: Tensor) -> Tensor:
        check_vector_batch("ConvDecoder", z, self.in_dim)
        h = self.stem(z).view(z.shape[0], -1, self.grid, self.grid)
        out = self.to_image(self.blocks(h))
        c, s = self.crop, self.image_size
        out = out[:, :, c:c + s, c:c + s]
        return torch.sigmoid(out) if self.sigmoid else out
