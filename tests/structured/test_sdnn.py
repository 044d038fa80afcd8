"""The SDNN: frames per width, CTC training lowers the loss, decoding with and without a
grammar, confidence = log P(reading)."""

from __future__ import annotations

import pytest
import torch

from genoise.structured.ctc import ctc_loss
from genoise.structured.grammar import amount_grammar
from genoise.structured.sdnn import SDNN, frame_lengths, sdnn_decode


def test_sdnn_frames_every_four_columns():
    model = SDNN(width=4)
    out = model(torch.rand(3, 28, 100))
    assert out.shape == (25, 3, 12)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(25, 3))
    assert frame_lengths(torch.tensor([100, 41, 2]), 25).tolist() == [25, 10, 1]
    with pytest.raises(ValueError, match=r"\(B, 1, 28, W\)"):
        model(torch.rand(3, 32, 100))


def test_decode_greedy_and_through_grammar():
    # frames: blank, "0", blank, "5" → greedy reads 0 5 (leading zero); the grammar cannot
    lp = torch.full((4, 1, 12), -20.0)
    for t, k in enumerate([0, 1, 0, 6]):
        lp[t, 0, k] = 0.0
    lp[1, 0, 2] = -0.5  # "1" is the runner-up of frame 1
    lp = lp.log_softmax(-1)
    lengths = torch.tensor([4])
    greedy = sdnn_decode(lp, lengths)
    assert greedy.labels[0, :2].tolist() == [0, 5] and greedy.lengths.tolist() == [2]
    expected = -ctc_loss(lp, torch.tensor([[1, 6]]), lengths, torch.tensor([2]), reduction="none")
    torch.testing.assert_close(greedy.confidence, expected)
    constrained = sdnn_decode(lp, lengths, amount_grammar())
    assert constrained.labels[0, :2].tolist() == [1, 5]
    assert constrained.confidence.item() <= 1e-6  # a log-probability under the grammar


def test_a_temperature_is_refused_for_the_sdnn():
    from genoise.data.digit_strings import DigitStringConfig, digit_strings
    from genoise.structured.train import read_strings

    images = torch.zeros(10, 28, 28)
    images[:, 6:22, 10:16] = 1.0
    config = DigitStringConfig(min_length=3, max_length=3)
    strings = digit_strings(images, torch.arange(10), 2, config, seed=0)
    with pytest.raises(ValueError, match="temperature re-scores one check reader's graph"):
        read_strings(SDNN(width=4), strings, temperature=2.0)
    assert read_strings(SDNN(width=4), strings).labels.shape[0] == 2  # T = 1 reads as before
