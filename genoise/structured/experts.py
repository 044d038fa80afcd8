"""Readers of two kinds as a product of experts over whole readings.

Every reader here gives a posterior over the readings y of a string image x, through the
grammar G when one is given: the check reader (:class:`~genoise.structured.reader.CheckReader`)
log P(y | x) = F(U ∩ G ∩ y) − F(U ∩ G) over the paths of its segmentation graph U (LeCun,
Bottou, Bengio & Haffner 1998, Section VI: the discriminative forward score), the SDNN
(:class:`~genoise.structured.sdnn.SDNN`) log P(y | x) = −CTC(y) − log P(G | x) over the
alignments of its frames. A *product of readers* scores a reading by the sum of their log
posteriors,

    S(y) = Σ_e log P_e(y | x),

a product of experts (Hinton 2002) over whole readings: a reading stays high only if every
reader gives it probability. Exact maximisation of S over all readings would need the
readers' lattices composed; the candidates here are the readers' own Viterbi readings (an
n-best rescoring, n = the number of readers). The product reads ŷ = argmax over the
candidates of S (ties: the earlier reader's) and gives S(ŷ) as its confidence, which ranks the
readings on the reject curve in place of one reader's log P(ŷ | x).

Readers that fail differently disagree on their errors: the check reader's confident errors
are a digit misread inside its segment, or a wrong cut; the SDNN reads the same ink without
cuts, so a reading it finds unlikely loses rank even when the graph is sure of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise.structured.graph import Graph
from genoise.structured.reader import CheckReader, Reading, decode_lattice, reading_log_posterior
from genoise.structured.sdnn import SDNN, ctc_log_posterior, frame_lengths, sdnn_decode_total


@dataclass
class Opinion:
    """One reader's view of a batch of strings: its own best ``reading`` and what it needs to
    give log P(y | x) of any other reading (:meth:`log_posterior`)."""

    reading: Reading
    graph: Graph | None  # the check reader's U (∩ G): readings are scored by intersection
    log_probs: Tensor | None  # the SDNN's (T, B, C) frames: readings are scored by CTC
    frames: Tensor | None
    total: Tensor  # (B,) log-normaliser: F(U ∩ G), log P(G | x) for the SDNN, or 0

    def log_posterior(self, labels: Tensor, lengths: Tensor) -> Tensor:
        """(B,) log P(y | x) of the readings ``labels`` (B, L), −1 padded, of ``lengths`` (B,);
        −inf where the reader cannot produce y (or reads no path at all)."""
        if self.graph is not None:
            return reading_log_posterior(self.graph, self.total, labels, lengths)
        return ctc_log_posterior(self.log_probs, self.frames, self.total, labels, lengths)


def opinion(model: nn.Module, images: Tensor, widths: Tensor, grammar: Graph | None = None) -> Opinion:
    """The :class:`Opinion` of a :class:`CheckReader` or an :class:`SDNN` on (B, 28, W) strings."""
    if isinstance(model, SDNN):
        log_probs = model(images)
        frames = frame_lengths(widths, log_probs.shape[0])
        reading, total = sdnn_decode_total(log_probs, frames, grammar)
        return Opinion(reading, None, log_probs, frames, total)
    if not isinstance(model, CheckReader):
        raise TypeError(f"a reader is a CheckReader or an SDNN, got {type(model).__name__}")
    reading, graph, total = decode_lattice(model(images, widths)[0], grammar)
    return Opinion(reading, graph, None, None, total)


def _stack_readings(readings: Sequence[Reading]) -> tuple[Tensor, Tensor]:
    """(C, B, L) labels (−1 padded to the longest) and (C, B) lengths of C readings."""
    width = max(1, *(r.labels.shape[1] for r in readings))
    labels = torch.stack([F.pad(r.labels, (0, width - r.labels.shape[1]), value=-1) for r in readings])
    return labels, torch.stack([r.lengths for r in readings])


def product_reading(opinions: Sequence[Opinion]) -> Reading:
    """The product of the readers' posteriors over their candidate readings (module docstring):
    the best candidate and its summed log posterior S(ŷ) as the confidence."""
    if not opinions:
        raise ValueError("a product of readers needs at least one reader")
    labels, lengths = _stack_readings([o.reading for o in opinions])
    scores = torch.stack([  # (C, B): candidate c scored by every reader; its own reader already
        # knows log P(ŷ | x), its reading's confidence: C(C − 1) evaluations instead of C²
        sum(o.reading.confidence if e == c else o.log_posterior(labels[c], lengths[c])
            for e, o in enumerate(opinions))
        for c in range(len(opinions))
    ])
    best = scores.argmax(0)  # the first maximum: ties go to the earlier reader
    rows = torch.arange(labels.shape[1], device=labels.device)
    return Reading(labels[best, rows], lengths[best, rows], scores[best, rows])


@torch.no_grad()
def read_with_experts(
    models: Sequence[nn.Module], images: Tensor, widths: Tensor, grammar: Graph | None = None
) -> Reading:
    """The product of ``models`` (check readers and SDNNs, in any mix) on a batch of strings."""
    for model in models:
        model.eval()
    return product_reading([opinion(m, images, widths, grammar) for m in models])
