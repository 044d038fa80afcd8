"""Data sets (read from a user-given folder; nothing downloads) and toy generators."""

from genoise.data.datasets import (
    DATASETS,
    ImageData,
    load_cifar10,
    load_dataset,
    load_digits,
    load_mnist,
    read_cifar_binary,
)
from genoise.data.idx import read_idx
from genoise.data.paths import resolve_data_dir
from genoise.data.toys import TOYS, gaussian_mixture, make_toy, rings, spiral, toy_limits, two_moons

__all__ = [
    "DATASETS",
    "TOYS",
    "ImageData",
    "gaussian_mixture",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "make_toy",
    "read_cifar_binary",
    "read_idx",
    "resolve_data_dir",
    "rings",
    "spiral",
    "toy_limits",
    "two_moons",
]
