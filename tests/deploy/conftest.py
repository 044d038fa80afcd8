"""A LeNet-5 (ReLU) trained briefly on MNIST (3,000 images; scikit-learn's digits without
the data folder) shared by the deploy tests: quantisers need a trained network to be
judged on accuracy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genoise.data import ImageData, load_dataset
from genoise.data.paths import resolve_data_dir
from genoise.nn import LeNet5


@pytest.fixture(scope="session")
def small_lenet() -> tuple[LeNet5, ImageData, ImageData, float]:
    data_dir = resolve_data_dir(None)
    name = "mnist" if data_dir is not None and (data_dir / "mnist").is_dir() else "digits"
    train = load_dataset(name, "train", data_dir=data_dir, subset=3000 if name == "mnist" else 0, seed=0)
    test = load_dataset(name, "test", data_dir=data_dir, subset=1000 if name == "mnist" else 0, seed=0)
    torch.manual_seed(0)
    model = LeNet5(image_size=train.images.shape[-1], activation="relu")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(3 if name == "mnist" else 15):
        for idx in torch.randperm(train.images.shape[0], generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(train.images[idx]), train.labels[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = 100 * float((model(test.images).argmax(1) == test.labels).float().mean())
    return model, train, test, acc
