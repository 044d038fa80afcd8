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

__all__ = [
    "DATASETS",
    "ImageData",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "read_cifar_binary",
    "read_idx",
    "resolve_data_dir",
]
