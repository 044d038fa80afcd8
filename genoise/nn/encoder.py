"""A small convolutional encoder for 8×8 … 32×32 images (digits, MNIST, CIFAR-10).

``depth`` blocks of conv3×3(stride 2) → BatchNorm → ReLU halve the side and double the
width (``width``, 2·width, 4·width, …); global average pooling then a linear head map to
``out_dim``:

    h = W · mean_{i,j} block_depth ∘ … ∘ block_1 (x) + b,   x (B, C, S, S) → h (B, out_dim)

Stride-2 convolutions with padding 1 give ⌈S/2⌉ at each block, so any side ≥ 1 works
(8 → 4 → 2 → 1; 28 → 14 → 7 → 4; 32 → 16 → 8 → 4).
"""

from __future__ import annotations

from torch import Tensor, nn

from genoise._checks import check_image_batch, check_int


def conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """conv3×3 (no bias: BatchNorm follows) → BatchNorm2d → ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ConvEncoder(nn.Module):
    """Conv encoder (B, in_channels, image_size, image_size) → (B, out_dim).

    Parameters
    ----------
    in_channels, image_size : int
        Expected input; other shapes raise ``ValueError``.
    variable_size : bool
        Also accept square inputs of other sizes, down to :attr:`min_size` (global pooling
        does not care; multi-crop SSL feeds small local crops through the same encoder).
    out_dim : int
        Output width; also :attr:`feature_dim` (what an SSL projector or a linear probe
        sits on).
    width : int
        Channels of the first block; block k has ``width · 2**k``.
    depth : int
        Number of stride-2 blocks.

    Attributes
    ----------
    pooled_dim : int
        Width after global pooling (``width · 2**(depth-1)``), input of the linear head.

    Examples
    --------
    >>> enc = ConvEncoder(1, 28, out_dim=64)
    >>> enc(torch.rand(8, 1, 28, 28)).shape
    torch.Size([8, 64])
    """

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: int = 32,
                 depth: int = 3, variable_size: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("image_size", image_size),
                            ("out_dim", out_dim), ("width", width), ("depth", depth)):
            check_int(name, value)
        self.in_channels, self.image_size, self.out_dim = in_channels, image_size, out_dim
        self.variable_size, self.min_size = bool(variable_size), 2 ** (depth - 1) + 1
        widths = [width * 2**k for k in range(depth)]
        self.blocks = nn.Sequential(*(conv_block(c_in, c_out, stride=2)
                                      for c_in, c_out in zip([in_channels, *widths[:-1]], widths,
                                                             strict=True)))
        self.pooled_dim = widths[-1]
        self.head = nn.Linear(self.pooled_dim, out_dim)

    @property
    def feature_dim(self) -> int:
        return self.out_dim

    def check_input(self, x: Tensor) -> Tensor:
        """(B, in_channels, image_size, image_size), or any square size ≥ ``min_size`` when
        ``variable_size``; one-line ``ValueError`` otherwise."""
        owner = type(self).__name__
        if not self.variable_size:
            return check_image_batch(owner, x, self.in_channels, self.image_size)
        check_image_batch(owner, x, self.in_channels)
        if x.shape[2] != x.shape[3] or x.shape[2] < self.min_size:
            raise ValueError(f"{owner} expects square images of at least {self.min_size} × {self.min_size}, "
                             f"got {tuple(x.shape)}")
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.check_input(x)).mean(dim=(2, 3)))
