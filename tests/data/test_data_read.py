"""Every reader records the file it read (``genoise.data.paths.record_read``), so a run's
``config.yaml`` can say which data it really used; a failed read records nothing."""

from __future__ import annotations

import numpy as np
import pytest

from genoise.data import load_digits, load_mnist, read_cifar_binary, read_idx
from genoise.data.babi import load_babi, parse_babi, task_file
from genoise.data.paths import data_reads
from tests.data.test_babi import STORY, _fake_babi
from tests.data.test_cifar_reader import cifar_records
from tests.data.test_idx_reader import idx_bytes, make_mnist_folder, write


@pytest.fixture(autouse=True)
def _fresh_reads():
    data_reads(clear=True)
    yield
    data_reads(clear=True)


def test_idx_and_mnist_record_both_files(tmp_path):
    path = write(tmp_path / "a-idx1-ubyte", idx_bytes(np.arange(3, dtype=np.uint8)))
    read_idx(path)
    assert data_reads() == [str(path)]
    make_mnist_folder(tmp_path / "mnist", 4, 4)
    load_mnist(tmp_path, "train")
    folder = tmp_path / "mnist"
    assert data_reads()[1:] == [str(folder / "train-images-idx3-ubyte.gz"),
                                str(folder / "train-labels-idx1-ubyte.gz")]


def test_cifar_babi_and_digits_record_their_source(tmp_path):
    payload, _ = cifar_records([1, 2])
    (tmp_path / "data_batch_1.bin").write_bytes(payload)
    read_cifar_binary(tmp_path / "data_batch_1.bin")
    story = tmp_path / "qa1.txt"
    story.write_text(STORY)
    parse_babi(story, 1)
    load_digits("test")
    assert data_reads() == [str(tmp_path / "data_batch_1.bin"), str(story), "sklearn digits"]


def test_load_babi_records_each_task_file_once(tmp_path):
    root = _fake_babi(tmp_path)
    load_babi(root, [1, 2], "en")
    load_babi(root, [1, 2], "en")
    expected = [str(task_file(root, t, split, "en")) for t in (1, 2) for split in ("train", "test")]
    assert data_reads() == expected


def test_a_failed_read_records_nothing(tmp_path):
    bad = tmp_path / "empty.txt"
    bad.write_text("")
    with pytest.raises(ValueError):
        parse_babi(bad)
    with pytest.raises(ValueError):
        read_idx(write(tmp_path / "short", b"\x00\x00"))
    assert data_reads() == []
