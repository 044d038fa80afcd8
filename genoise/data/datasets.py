"""Image data sets as in-memory tensors: scikit-learn's digits (always available),
MNIST (IDX files) and CIFAR-10 (official binary layout), from a user-given folder.

Every loader returns ``(images, labels)``: images float32 in [0, 1] of shape
(N, C, H, W), labels int64 (N,). Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_choice
from genoise.data.idx import read_idx
from genoise.data.paths import record_read, resolve_data_dir

DATASETS = ("digits", "mnist", "cifar10")


class ImageData(NamedTuple):
    images: Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: Tensor  # (N,) int64


def load_digits(split: str = "train", *, test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's bundled 8×8 digits (1,797 images, 16 grey levels), split by a
    seeded stratified shuffle into train / test."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    check_choice("split", split, ("train", "test"))
    bunch = sk_load_digits()
    index = np.arange(len(bunch.target))
    train_idx, test_idx = train_test_split(index, test_size=test_fraction, random_state=seed,
                                           stratify=bunch.target)
    chosen = train_idx if split == "train" else test_idx
    images = torch.from_numpy(bunch.images[chosen] / 16.0).float().unsqueeze(1)
    record_read("sklearn digits")
    return ImageData(images, torch.from_numpy(bunch.target[chosen]).long())


def _find(folder: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder / names[0]}: missing ({what})")


def load_mnist(data_dir: str | os.PathLike | None = None, split: str = "train") -> ImageData:
    """MNIST from ``<data_dir>/mnist/`` (or ``data_dir`` itself) in the original IDX files
    (``train-images-idx3-ubyte[.gz]`` …)."""
    check_choice("split", split, ("train", "test"))
    folder = _dataset_folder(data_dir, "mnist", "*-images*idx3-ubyte*")
    stem = "train" if split == "train" else "t10k"
    img_path = _find(folder, (f"{stem}-images-idx3-ubyte.gz", f"{stem}-images-idx3-ubyte",
                              f"{stem}-images.idx3-ubyte"), "MNIST images, IDX format")
    lab_path = _find(folder, (f"{stem}-labels-idx1-ubyte.gz", f"{stem}-labels-idx1-ubyte",
                              f"{stem}-labels.idx1-ubyte"), "MNIST labels, IDX format")
    images = read_idx(img_path, expected_ndim=3)
    labels = read_idx(lab_path, expected_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{img_path}: {images.shape[0]} images but {lab_path.name} has "
                         f"{labels.shape[0]} labels")
    check_class_labels(lab_path, labels, 10)
    return ImageData(torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
                     torch.from_numpy(labels.astype(np.int64)))


def check_class_labels(path: Path, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Raise ``ValueError`` naming ``path`` unless ``labels`` are integers in
    0..``num_classes``-1 (a corrupt label file would otherwise index out of the classes)."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels have type {labels.dtype}, expected integers (not a label file)")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{num_classes - 1}"
                         f" ({bad.size} such label(s); corrupt label file)")
    return labels


_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_binary(path: str | os.PathLike) -> ImageData:
    """One CIFAR-10 binary batch: records of 1 label byte + 3,072 pixel bytes (R, G, B
    planes, 32×32 row-major), as in the official ``data_batch_*.bin``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (CIFAR-10 binary batch)")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of "
                         f"{_CIFAR_RECORD}-byte CIFAR-10 records (truncated or corrupt)")
    records = raw.reshape(-1, _CIFAR_RECORD)
    labels = check_class_labels(path, records[:, 0].astype(np.int64), 10)
    images = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    record_read(str(path))
    return ImageData(torch.from_numpy(images), torch.from_numpy(labels))


def load_cifar10(data_dir: str | os.PathLike | None = None, split: str = "train") -> ImageData:
    """CIFAR-10 from ``<data_dir>/cifar10-subset/``, ``<data_dir>/cifar-10-batches-bin/``
    or ``data_dir`` itself: the official ``data_batch_{1..5}.bin`` / ``test_batch.bin``,
    or this checkout's ``train_*.bin`` / ``test_*.bin`` subset files."""
    check_choice("split", split, ("train", "test"))
    folder = None
    base = resolve_data_dir(data_dir)
    if base is None:
        raise ValueError("cifar10 needs a data folder: set GENOISE_DATA or pass --data-dir / "
                         "data_dir= (looked for *.bin in <data folder>/cifar-10-batches-bin/, "
                         "cifar10/, cifar10-subset/); dataset=digits is always available")
    for sub in ("cifar-10-batches-bin", "cifar10", "cifar10-subset", "."):
        candidate = base / sub
        if any(candidate.glob("*.bin")):
            folder = candidate
            break
    if folder is None:
        raise FileNotFoundError(f"{base}: no CIFAR-10 *.bin batches found (looked in "
                                "cifar-10-batches-bin/, cifar10/, cifar10-subset/)")
    if split == "train":
        files = sorted(folder.glob("data_batch_*.bin")) or sorted(folder.glob("train*.bin"))
    else:
        files = sorted(folder.glob("test_batch*.bin")) or sorted(folder.glob("test*.bin"))
    if not files:
        raise FileNotFoundError(f"{folder}: no CIFAR-10 {split} batch (*.bin) found")
    parts = [read_cifar_binary(f) for f in files]
    return ImageData(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def _dataset_folder(data_dir: str | os.PathLike | None, name: str, probe: str) -> Path:
    """``<base>/<name>`` or ``<base>`` itself, whichever holds a file matching the glob ``probe``."""
    base = resolve_data_dir(data_dir)
    if base is None:
        raise ValueError(f"{name} needs a data folder: set GENOISE_DATA or pass --data-dir / "
                         f"data_dir= (looked for {probe} in <data folder>/{name}/); "
                         "dataset=digits is always available")
    for candidate in (base / name, base):
        if any(candidate.glob(probe)):
            return candidate
    return base / name


def load_dataset(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None,
                 subset: int = 0, seed: int = 0) -> ImageData:
    """Load ``name`` ∈ {digits, mnist, cifar10}; ``subset > 0`` keeps the first ``subset``
    samples of a permutation seeded by ``seed`` (all of them when ``subset`` ≥ N).

    A data set that needs a data folder never falls back to another one silently: without
    ``GENOISE_DATA`` / ``data_dir`` the error names the variable and the files looked for.
    ``dataset=digits`` (scikit-learn's bundled 8×8 digits) is always available.
    """
    check_choice("dataset", name, DATASETS)
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 0:
        raise ValueError(f"subset must be an int >= 0 (0 = every sample), got {subset!r}")
    if name == "digits":
        data = load_digits(split)  # records "sklearn digits" itself
    else:
        data = load_mnist(data_dir, split) if name == "mnist" else load_cifar10(data_dir, split)
    if subset and subset < data.images.shape[0]:
        order = torch.randperm(data.images.shape[0], generator=torch.Generator().manual_seed(int(seed)))
        data = ImageData(data.images[order[:subset]], data.labels[order[:subset]])
    return data
