"""IDX reader on handmade files (raw and gzipped), including every corruption it must name."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from genoise.data import load_mnist, read_idx


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    """Independent IDX encoder: magic 00 00 type ndim, big-endian uint32 sizes, big-endian data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_byte]
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write(path: Path, payload: bytes) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_roundtrips_ubyte_images_raw_and_gzip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    out = read_idx(write(tmp_path / name, idx_bytes(images)), expected_ndim=3)
    assert out.dtype == np.uint8 and out.shape == (5, 4, 3)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(("type_byte", "values"), [
    (0x09, np.array([-128, -1, 0, 127])),
    (0x0B, np.array([-30000, 2, 30000])),
    (0x0C, np.array([-(2**31), 7, 2**31 - 1])),
    (0x0D, np.array([1.5, -2.25, 1e30])),
    (0x0E, np.array([np.pi, -1e300])),
])
def test_read_idx_decodes_big_endian_types(tmp_path, type_byte, values):
    out = read_idx(write(tmp_path / "v.idx", idx_bytes(values, type_byte)))
    np.testing.assert_array_equal(out, values.astype(out.dtype))
    assert out.dtype.byteorder in ("=", "|")


def test_read_idx_bad_magic_names_file(tmp_path):
    path = write(tmp_path / "bad-magic", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"bad-magic: bad IDX magic"):
        read_idx(path)


def test_read_idx_unknown_type_byte_is_bad_magic(tmp_path):
    path = write(tmp_path / "type", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"type.*bad IDX magic"):
        read_idx(path)


def test_read_idx_wrong_ndim_names_file(tmp_path):
    path = write(tmp_path / "labels-idx1", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match=r"labels-idx1: IDX file has 1 dimension\(s\), expected 3"):
        read_idx(path, expected_ndim=3)


@pytest.mark.parametrize("name", ["trunc", "trunc.gz"])
def test_read_idx_truncated_data_names_file(tmp_path, name):
    payload = idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3]
    with pytest.raises(ValueError, match=rf"{name}: IDX data has 13 bytes.*truncated"):
        read_idx(write(tmp_path / name, payload))


def test_read_idx_truncated_header_names_file(tmp_path):
    path = write(tmp_path / "short", b"\x00\x00\x08\x03" + b"\x00\x00\x00\x04")
    with pytest.raises(ValueError, match="short: truncated IDX header"):
        read_idx(path)


def test_read_idx_corrupt_gzip_names_file(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "notgzip.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match=r"cut.gz: corrupt gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(ValueError, match=r"notgzip.gz: corrupt gzip"):
        read_idx(tmp_path / "notgzip.gz")


def test_read_idx_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_idx(tmp_path / "nothere")


def make_mnist_folder(folder: Path, n_images: int, n_labels: int, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    rng = np.random.default_rng(1)
    write(folder / f"train-images-idx3-ubyte{ext}",
          idx_bytes(rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)))
    write(folder / f"train-labels-idx1-ubyte{ext}", idx_bytes(np.arange(n_labels, dtype=np.uint8) % 10))


def test_load_mnist_reads_handmade_folder_scaled_to_unit_interval(tmp_path):
    make_mnist_folder(tmp_path / "mnist", 12, 12)
    data = load_mnist(tmp_path, "train")
    raw = read_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    assert data.images.shape == (12, 1, 28, 28) and data.labels.tolist() == [i % 10 for i in range(12)]
    np.testing.assert_allclose(data.images[:, 0].numpy() * 255.0, raw, atol=1e-4)


def test_load_mnist_finds_raw_files_in_data_dir_itself(tmp_path):
    make_mnist_folder(tmp_path, 3, 3, gz=False)
    assert load_mnist(tmp_path, "train").images.shape == (3, 1, 28, 28)


def test_load_mnist_count_mismatch_names_file(tmp_path):
    make_mnist_folder(tmp_path / "mnist", 5, 4)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: 5 images but .* 4 labels"):
        load_mnist(tmp_path, "train")


@pytest.mark.parametrize(("labels", "type_byte", "message"), [
    ([0, 1, 10, 3], 0x08, r"label 10 at index 2 is outside 0\.\.9 \(1 such"),
    ([255, 1, 2, 200], 0x08, r"label 255 at index 0 is outside 0\.\.9 \(2 such"),
    ([0, -1, 2, 3], 0x09, r"label -1 at index 1 is outside 0\.\.9"),
    ([0.0, 1.0, 2.0, 3.0], 0x0D, r"labels have type float32, expected integers"),
])
def test_load_mnist_refuses_corrupt_label_values_naming_the_file(tmp_path, labels, type_byte, message):
    make_mnist_folder(tmp_path / "mnist", 4, 4)
    write(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", idx_bytes(np.array(labels), type_byte))
    with pytest.raises(ValueError, match=r"^\S*mnist/train-labels-idx1-ubyte\.gz: " + message):
        load_mnist(tmp_path, "train")


def test_load_mnist_count_mismatch_is_one_line_naming_both_files(tmp_path):
    make_mnist_folder(tmp_path / "mnist", 3, 5)
    with pytest.raises(ValueError, match=r"^\S*train-images-idx3-ubyte.gz: 3 images but "
                                         r"train-labels-idx1-ubyte.gz has 5 labels$"):
        load_mnist(tmp_path, "train")


def test_load_mnist_missing_split_file_names_it(tmp_path):
    make_mnist_folder(tmp_path / "mnist", 2, 2)
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.gz: missing"):
        load_mnist(tmp_path, "test")
