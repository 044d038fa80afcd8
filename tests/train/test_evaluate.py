"""count_correct: the arg-max count by hand, batches, the training flag, a context per batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.train.evaluate import count_correct


def test_count_equals_the_argmax_count_in_any_batching():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    x, y = torch.randn(23, 5), torch.randint(0, 3, (23,))
    model.eval()
    expected = int((model(x).argmax(1) == y).sum())
    model.train()
    for batch_size in (1, 4, 23, 100):
        assert count_correct(model, x, y, batch_size=batch_size) == expected  # dropout off: eval mode
    assert model.training  # restored


def test_mode_wraps_every_forward_pass():
    class Counting:  # a reusable context manager, as a number format is
        entered = 0

        def __enter__(self):
            Counting.entered += 1

        def __exit__(self, *exc):
            return False

    model = nn.Linear(2, 2)
    count_correct(model, torch.randn(10, 2), torch.zeros(10, dtype=torch.long), batch_size=3, mode=Counting())
    assert Counting.entered == 4


def test_labels_must_match_images():
    with pytest.raises(ValueError, match="to match images"):
        count_correct(nn.Linear(2, 2), torch.randn(4, 2), torch.zeros(3, dtype=torch.long))
