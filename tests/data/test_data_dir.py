"""Data-folder resolution: explicit argument, then $GENOISE_DATA; never a silent fallback on a typo."""

from __future__ import annotations

import re

import pytest
import torch

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


@pytest.mark.parametrize(("name", "files"), [("mnist", "idx3-ubyte"), ("cifar10", "*.bin")])
def test_a_real_dataset_without_folder_names_genoise_data_and_the_files(monkeypatch, name, files):
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    with pytest.raises((ValueError, FileNotFoundError), match=rf"^{name} needs a data folder: set "
                                                              rf"GENOISE_DATA.*{re.escape(files)}"):
        load_dataset(name)


def test_subset_is_a_seeded_permutation_prefix():
    full = load_dataset("digits", "test")
    n = len(full.labels)
    a = load_dataset("digits", "test", subset=100, seed=3)
    b = load_dataset("digits", "test", subset=100, seed=3)
    assert torch.equal(a.images, b.images) and len(a.labels) == 100
    order = torch.randperm(n, generator=torch.Generator().manual_seed(3))[:100]
    assert torch.equal(a.images, full.images[order]) and torch.equal(a.labels, full.labels[order])
    other = load_dataset("digits", "test", subset=100, seed=4)
    assert not torch.equal(other.labels, a.labels)
    assert torch.equal(load_dataset("digits", "test", subset=n + 5).images, full.images)
    with pytest.raises(ValueError, match="subset must be an int >= 0"):
        load_dataset("digits", "test", subset=-5)


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("imagenet")
