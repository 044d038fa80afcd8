"""CIFAR-10 binary reader on handmade files: record layout, truncation, bad labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.data import load_cifar10, read_cifar_binary


def cifar_records(labels: list[int], seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    rows = [np.concatenate([[lab], px[0].ravel(), px[1].ravel(), px[2].ravel()]).astype(np.uint8)
            for lab, px in zip(labels, pixels, strict=True)]
    return b"".join(r.tobytes() for r in rows), pixels


def test_read_cifar_binary_decodes_label_and_rgb_planes(tmp_path):
    payload, pixels = cifar_records([3, 0, 9])
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(payload)
    data = read_cifar_binary(path)
    assert data.labels.tolist() == [3, 0, 9] and data.labels.dtype == torch.int64
    assert data.images.shape == (3, 3, 32, 32) and data.images.dtype == torch.float32
    np.testing.assert_allclose((data.images * 255).round().numpy(), pixels)
    # byte 1 of a record is the red pixel (0, 0); byte 1 + 1024 is the green pixel (0, 0)
    assert round(float(data.images[1, 1, 0, 0]) * 255) == payload[3073 + 1 + 1024]


def test_read_cifar_binary_truncated_names_file(tmp_path):
    payload, _ = cifar_records([1, 2])
    path = tmp_path / "cut.bin"
    path.write_bytes(payload[:-10])
    with pytest.raises(ValueError, match=r"cut.bin: 6136 bytes is not a whole number.*truncated"):
        read_cifar_binary(path)


def test_read_cifar_binary_label_above_nine_names_file(tmp_path):
    payload, _ = cifar_records([1, 10])
    path = tmp_path / "labels.bin"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=r"^\S*labels.bin: label 10 at index 1 is outside 0..9 "
                                         r"\(1 such label\(s\); corrupt label file\)$"):
        read_cifar_binary(path)


def test_read_cifar_binary_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.bin: 0 bytes"):
        read_cifar_binary(tmp_path / "empty.bin")


def test_load_cifar10_concatenates_official_batches_in_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    first, _ = cifar_records([1, 2], seed=1)
    second, _ = cifar_records([3], seed=2)
    (folder / "data_batch_1.bin").write_bytes(first)
    (folder / "data_batch_2.bin").write_bytes(second)
    (folder / "test_batch.bin").write_bytes(cifar_records([7])[0])
    assert load_cifar10(tmp_path, "train").labels.tolist() == [1, 2, 3]
    assert load_cifar10(tmp_path, "test").labels.tolist() == [7]


def test_load_cifar10_without_batches_names_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10"):
        load_cifar10(tmp_path, "train")
