"""A space-displacement neural network (SDNN): a ConvNet replicated over the width of a string
image, trained without segmentation (LeCun, Bottou, Bengio & Haffner 1998, Section VII;
here with the CTC loss of Graves et al. 2006, ``torch.nn.CTCLoss``, in place of the
paper's HMM-style graph).

The network sees a 28-row string (B, 1, 28, W) and emits one frame of class scores every
``stride`` = 4 columns, (T = ⌊W / 4⌋, B, 1 + 11): class 0 is CTC's blank, class v + 1 is
symbol v (digits, separator). Its receptive field (about 36 columns) covers one digit and
its neighbours' edges: the convolutional replication of a character recogniser.

Decoding: the best frame path (greedy) collapsed, or — with a grammar — the Viterbi path of
the frame emissions composed with the grammar's CTC topology
(:func:`~genoise.structured.grammar.ctc_topology`). Confidence: log P(ŷ | x) = −CTC(ŷ)
(minus the grammar's total forward score when decoding through one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise.data.digit_strings import NUM_SYMBOLS
from genoise.structured.grammar import collapse, ctc_topology, emission_graph
from genoise.structured.graph import Graph
from genoise.structured.intersect import intersect
from genoise.structured.reader import Reading
from genoise.structured.semiring import forward_score, viterbi

STRIDE = 4


class SDNN(nn.Module):
    """Conv(5×5, w) → pool 2 → Conv(5×5, 2w) → pool 2 → Conv(7×5, 8w) over the whole height
    → Conv(1×3, 8w) → Conv(1×1, 12): frames of class scores every 4 columns."""

    def __init__(self, width: int = 16, num_classes: int = NUM_SYMBOLS + 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 8 * width, (7, 5), padding=(0, 2)),
            nn.ReLU(),
            nn.Conv2d(8 * width, 8 * width, (1, 3), padding=(0, 1)),
            nn.ReLU(),
            nn.Conv2d(8 * width, num_classes, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        """(B, 28, W) or (B, 1, 28, W) strings → (T, B, C) frame log-probabilities."""
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.shape[1:3] != (1, 28):
            raise ValueError(f"SDNN expects (B, 1, 28, W) string images, got shape {tuple(images.shape)}")
        scores = self.features(images)[:, :, 0]  # (B, C, T)
        return F.log_softmax(scores.permute(2, 0, 1), dim=-1)


def frame_lengths(widths: Tensor, steps: int) -> Tensor:
    """(B,) frames covering each string's valid width."""
    return (widths // STRIDE).clamp(1, steps)


def sdnn_decode(log_probs: Tensor, lengths: Tensor, grammar: Graph | None = None) -> Reading:
    """Best reading of every string (module docstring) and its confidence log P(ŷ | x)."""
    return sdnn_decode_total(log_probs, lengths, grammar)[0]


def sdnn_decode_total(
    log_probs: Tensor, lengths: Tensor, grammar: Graph | None = None
) -> tuple[Reading, Tensor]:
    """:func:`sdnn_decode`'s reading and the log-normaliser (B,) of its confidence: log P(G | x),
    the frames' total mass on the grammar's readings (0 without a grammar), so that
    log P(y | x) = −CTC(y) − it for any reading y."""
    steps = log_probs.shape[0]
    if grammar is None:
        frames = log_probs.argmax(-1).T.clone()
        frames[torch.arange(steps, device=frames.device)[None] >= lengths[:, None]] = -1
        labels, counts = collapse(frames)
        total = torch.zeros(log_probs.shape[1], dtype=log_probs.dtype, device=log_probs.device)
    else:
        decoding = intersect(emission_graph(log_probs, lengths), ctc_topology(grammar))
        best = viterbi(decoding, what="string", missing="ignore")
        labels, counts = collapse(best.labels)
        total = forward_score(decoding, missing="ignore")
    if labels.shape[1] == 0:
        labels = labels.new_full((labels.shape[0], 1), -1)
    return Reading(labels, counts, ctc_log_posterior(log_probs, lengths, total, labels, counts)), total


def ctc_log_posterior(
    log_probs: Tensor, frames: Tensor, total: Tensor, labels: Tensor, lengths: Tensor
) -> Tensor:
    """(B,) log P(y | x) = −CTC(y) − ``total`` of the readings ``labels`` (B, L), −1 padded, of
    ``lengths``, from (T, B, C) frame log-probabilities over ``frames`` (B,) frames; −inf where
    ``total`` is (no reading of the grammar fits the frames)."""
    targets = torch.where(labels >= 0, labels + 1, 1)
    chosen = -F.ctc_loss(log_probs, targets, frames, lengths, reduction="none", zero_infinity=False)
    return torch.where(torch.isfinite(total), chosen - total, float("-inf"))
