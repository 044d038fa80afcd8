"""Backbones for the SSL recipes, from :mod:`genoise.nn`: the small ConvNet
(:class:`genoise.nn.ConvEncoder`), its grid-pooled variant (:class:`GridPoolConvEncoder`)
and the CIFAR ResNet-18 (:class:`genoise.nn.ResNet18Small`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_int
from genoise.nn import ConvEncoder, ResNet18Small

BACKBONES = ("conv", "resnet18")


class GridPoolConvEncoder(ConvEncoder):
    """:class:`~genoise.nn.ConvEncoder` with average pooling to a ``grid × grid`` map instead
    of global pooling, so the linear head sees where in the image a feature fired:

        h = W · vec(avgpool_{grid×grid}(block_depth ∘ … ∘ block_1 (x))) + b

    x (B, C, S, S) → h (B, out_dim); the head's input has ``width · 2**(depth-1) · grid²``
    dimensions (:attr:`pooled_dim`). ``grid=1`` is the plain ConvEncoder. Global pooling of
    the 4 × 4 map of a 28 × 28 digit discards the layout that tells a 6 from a 9; keeping a
    2 × 2 grid lifts the linear probe of the same network by several points on MNIST
    (docs/ssl.md).

    Examples
    --------
    >>> enc = GridPoolConvEncoder(1, 28, out_dim=512, grid=2)
    >>> enc(torch.rand(8, 1, 28, 28)).shape
    torch.Size([8, 512])
    """

    def __init__(self, in_channels: int, image_size: int, out_dim: int, width: int = 32,
                 depth: int = 3, grid: int = 2, variable_size: bool = False) -> None:
        super().__init__(in_channels, image_size, out_dim, width=width, depth=depth,
                         variable_size=variable_size)
        check_int("grid", grid)
        self.grid = grid
        self.min_size = grid * 2 ** (depth - 1) + 1  # the last map has at least grid × grid cells
        self.pooled_dim = self.pooled_dim * grid * grid
        self.head = nn.Linear(self.pooled_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.blocks(self.check_input(x)), self.grid).flatten(1))


def make_backbone(name: str, *, in_channels: int, image_size: int, out_dim: int = 128,
                  width: int = 32, pool_grid: int = 1) -> nn.Module:
    """``"conv"``: ``ConvEncoder(in_channels, image_size, out_dim, width)`` (3 stride-2 conv
    blocks, global pooling, linear head), or :class:`GridPoolConvEncoder` when
    ``pool_grid > 1`` (pooling to a ``pool_grid × pool_grid`` map) — both with
    ``variable_size=True``, so multi-crop local views run at their own, smaller size (Caron et
    al. 2020: that is what makes the extra views cheap); ``"resnet18"``: CIFAR
    ResNet-18 with 512-d features (``out_dim``, ``width`` and ``pool_grid`` ignored; 64
    channels in the first stage)."""
    check_choice("backbone", name, BACKBONES)
    if name == "resnet18":
        return ResNet18Small(in_channels=in_channels)
    if pool_grid > 1:
        return GridPoolConvEncoder(in_channels, image_size, out_dim, width=width, grid=pool_grid,
                                   variable_size=True)
    return ConvEncoder(in_channels, image_size, out_dim, width=width, variable_size=True)


@torch.no_grad()
def accepts_size(backbone: nn.Module, in_channels: int, size: int) -> bool:
    """Whether ``backbone`` runs on (2, in_channels, size, size) images (multi-crop local views
    need a backbone that is not tied to one image size)."""
    was_training = backbone.training
    backbone.eval()
    try:
        device = next(backbone.parameters()).device
        backbone(torch.zeros(2, in_channels, size, size, device=device))
        return True
    except ValueError:
        return False
    finally:
        backbone.train(was_training)
