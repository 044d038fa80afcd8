"""Backbones and heads: MLP, LeNet-5, a small conv encoder/decoder, a CIFAR ResNet-18 and
SSL projectors. Every network checks its input shape and raises a one-line ``ValueError``
naming the expected and the received shape."""

from genoise.nn.decoder import ConvDecoder
from genoise.nn.encoder import ConvEncoder
from genoise.nn.heads import Projector, projector
from genoise.nn.lenet import C3_TABLE, LeNet5, ScaledTanh
from genoise.nn.mlp import ACTIVATIONS, MLP, make_activation
from genoise.nn.resnet import ResNet18Small

__all__ = [
    "ACTIVATIONS",
    "C3_TABLE",
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "LeNet5",
    "Projector",
    "ResNet18Small",
    "ScaledTanh",
    "make_activation",
    "projector",
]
