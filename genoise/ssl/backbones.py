"""Backbones for the SSL recipes, from :mod:`genoise.nn`: the small ConvNet
(:class:`genoise.nn.ConvEncoder`) and the CIFAR ResNet-18 (:class:`genoise.nn.ResNet18Small`)."""

from __future__ import annotations

import torch
from torch import nn

from genoise._checks import check_choice
from genoise.nn import ConvEncoder, ResNet18Small

BACKBONES = ("conv", "resnet18")


def make_backbone(name: str, *, in_channels: int, image_size: int, out_dim: int = 128,
                  width: int = 32) -> nn.Module:
    """``"conv"``: ``ConvEncoder(in_channels, image_size, out_dim, width)`` (3 stride-2 conv
    blocks, global pooling, linear head); ``"resnet18"``: CIFAR ResNet-18 with 512-d
    features (``out_dim`` and ``width`` ignored; 64 channels in the first stage)."""
    check_choice("backbone", name, BACKBONES)
    if name == "conv":
        return ConvEncoder(in_channels, image_size, out_dim, width=width)
    return ResNet18Small(in_channels=in_channels)


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
