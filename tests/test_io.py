"""Crash-safe output: a failed write leaves the old file, and no folder it had to create."""

from __future__ import annotations

import pytest

from genoise.io import atomic_output, atomic_write_text


def test_a_failed_write_keeps_the_old_file(tmp_path) -> None:
    target = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError, match="exporter failed"), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("exporter failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_removes_the_folders_it_created(tmp_path) -> None:
    target = tmp_path / "run" / "export" / "model.onnx"
    with pytest.raises(RuntimeError), atomic_output(target):
        raise RuntimeError("exporter failed")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_something_else_wrote_into_stays(tmp_path) -> None:
    target = tmp_path / "export" / "model.onnx"
    with pytest.raises(RuntimeError), atomic_output(target):
        (tmp_path / "export" / "other.txt").write_text("kept")
        raise RuntimeError("exporter failed")
    assert (tmp_path / "export" / "other.txt").read_text() == "kept"


def test_a_successful_write_creates_its_folders(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
