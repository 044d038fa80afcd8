"""Loaders on real data: scikit-learn's digits always; MNIST and the CIFAR-10 subset when the
``shared_data`` folder is present (published counts and pixels as the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from genoise.data import load_dataset

# LeCun et al.'s MNIST training / test label counts (digits 0..9).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_digits_splits_partition_sklearn_digits_stratified():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    reference = sk_load_digits()
    assert train.images.shape[1:] == (1, 8, 8) and len(train.labels) + len(test.labels) == 1797
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    # the two splits hold exactly scikit-learn's (image, label) rows, as a multiset
    ours = np.concatenate([np.concatenate([d.images.flatten(1).numpy() * 16, d.labels[:, None].numpy()], 1)
                           for d in (train, test)])
    ref = np.concatenate([reference.data, reference.target[:, None]], 1)
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], ref[np.lexsort(ref.T)])
    fractions = torch.bincount(test.labels, minlength=10) / torch.bincount(
        torch.from_numpy(reference.target), minlength=10)
    assert torch.all((fractions - 0.25).abs() < 0.02)


def test_digits_is_deterministic():
    assert torch.equal(load_dataset("digits").images, load_dataset("digits").images)


def test_mnist_train_shape_and_label_counts(shared_data):
    if shared_data is None:
        pytest.skip("no shared data folder")
    train = load_dataset("mnist", "train", data_dir=shared_data)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.float32
    assert torch.bincount(train.labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) == 1.0


def test_mnist_test_label_counts(shared_data):
    if shared_data is None:
        pytest.skip("no shared data folder")
    test = load_dataset("mnist", "test", data_dir=shared_data)
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_cifar_subset_first_labels_and_pixels(shared_data):
    if shared_data is None:
        pytest.skip("no shared data folder")
    train = load_dataset("cifar10", "train", data_dir=shared_data)
    assert train.images.shape == (4000, 3, 32, 32)
    assert train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    first_red_row = (train.images[0, 0, 0, :9] * 255).round().long().tolist()
    assert first_red_row == [59, 43, 50, 68, 98, 119, 139, 145, 149]
    test = load_dataset("cifar10", "test", data_dir=shared_data)
    assert test.images.shape == (1000, 3, 32, 32) and int(test.labels.max()) <= 9
