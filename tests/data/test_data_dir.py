"""Data-folder resolution: explicit argument, then $GENOISE_DATA; never a silent fallback on a typo."""

from __future__ import annotations

import pytest

from genoise.data import load_dataset, resolve_data_dir


def test_explicit_folder_wins_over_environment(tmp_path, monkeypatch):
    other = tmp_path / "env"
    other.mkdir()
    monkeypatch.setenv("GENOISE_DATA", str(other))
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(None) == other
    assert resolve_data_dir("") == other


def test_missing_explicit_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"data_dir points to .*typo.*not a folder"):
        resolve_data_dir(tmp_path / "typo")


def test_missing_environment_folder_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOISE_DATA", str(tmp_path / "gone"))
    with pytest.raises(ValueError, match=r"GENOISE_DATA points to .*gone"):
        resolve_data_dir()


def test_no_folder_at_all_gives_none(monkeypatch):
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    assert resolve_data_dir() is None


def test_mnist_without_folder_is_an_error_unless_fallback(monkeypatch, capsys):
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    with pytest.raises(ValueError, match="mnist needs a data folder"):
        load_dataset("mnist")
    data = load_dataset("mnist", "test", fallback=True)
    assert data.images.shape[1:] == (1, 8, 8)
    assert "digits" in capsys.readouterr().err


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("imagenet")
