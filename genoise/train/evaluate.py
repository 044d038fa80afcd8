"""Counting a classifier's right answers on held-out images, the one evaluation every image
recipe shares (test accuracy of a deployed LeNet-5, test error of an averaged center)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU when it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def count_correct(
    model: nn.Module, images: Tensor, labels: Tensor, *, batch_size: int = 1000, mode: Any = None
) -> int:
    """How many of ``images`` (N, …) ``model`` classifies as ``labels`` (N,) by the arg-max of its
    scores: eval mode, no gradient, in batches of ``batch_size`` moved to the model's device,
    each forward pass inside the context manager ``mode`` when given (e.g. a number format).
    The model's training flag is restored."""
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be ({images.shape[0]},) to match images, got {tuple(labels.shape)}")
    was_training = model.training
    model.eval()
    device, correct = model_device(model), 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):  # batches bound the memory, not a loop per sample
            with mode if mode is not None else nullcontext():
                scores = model(images[start : start + batch_size].to(device))
            correct += int((scores.argmax(1).cpu() == labels[start : start + batch_size].cpu()).sum())
    model.train(was_training)
    return correct
