"""The check reader: segmentation transformer → recognition transformer → (grammar
composition) → Viterbi transformer, after LeCun, Bottou, Bengio & Haffner 1998 ("Gradient-
based learning applied to document recognition", Sections IV–VI and X).

* **Segmentation graph**: the heuristic over-segmenter of
  :mod:`~genoise.structured.segmentation` cuts the ink into pieces (connected components,
  split at the valleys of their vertical projection); states are the boundaries between
  consecutive pieces, arcs the candidate segments of one to ``max_span`` pieces.
* **Recognition transformer**: a classifier (LeNet-5 by default) scores every segment
  image for every class: the 11 symbols (digits and the separator) and a *rubbish* class
  for segments that are not one character (Section V.B: the recogniser must "reject"
  badly segmented characters). Each segment arc becomes 11 arcs of the **interpretation
  graph**, labelled by symbol and weighted by log P(symbol | segment); the rubbish class
  only takes probability away from them.
* **Composition** with a grammar (:mod:`~genoise.structured.grammar`) keeps the readings a
  check can carry; the **Viterbi transformer** returns the best one.

The reading's **confidence** is the discriminative forward score F(U ∩ ŷ) − F(U) =
log P(ŷ | x) (Section X: the check reader rejects below a threshold on this score). With a
``temperature`` T every arc score s is read as s / T before the two forward scores (the
Viterbi reading is the same at any T > 0): T = 1 is the model's posterior; as T → 0 the
confidence is decided by the runner-up path that reads another string (a margin); a large T
flattens the paths, so longer strings, with more of them, get lower confidence. The
temperature only re-ranks the readings for the reject curve (temperature scaling, Guo et al.,
ICML 2017, applied to the graph's paths).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_positive
from genoise.data.digit_strings import NUM_SYMBOLS
from genoise.nn.lenet import LeNet5
from genoise.structured.graph import Graph, linear_graph, offsets_of
from genoise.structured.intersect import intersect
from genoise.structured.segment_images import SCALES, character_pixels, crop_segments
from genoise.structured.segmentation import Pieces, Segments, find_pieces, segments
from genoise.structured.semiring import forward_score, viterbi

RUBBISH = NUM_SYMBOLS  # class 11: "not one character"
NUM_CLASSES = NUM_SYMBOLS + 1


@dataclass
class SegmentedBatch:
    """pieces, segments, their (M, 1, 28, 28) images, and (B,) states per string (pieces + 1)."""

    pieces: Pieces
    segs: Segments
    crops: Tensor
    num_states: Tensor


@dataclass
class Reading:
    """labels : (B, L) best readings, −1 padded; lengths : (B,); confidence : (B,) log P(ŷ | x)."""

    labels: Tensor
    lengths: Tensor
    confidence: Tensor


def interpretation_graph(
    log_probs: Tensor, segs: Segments, num_states: Tensor, num_symbols: int = NUM_SYMBOLS
) -> Graph:
    """Every segment arc i → j of string b, once per symbol v < ``num_symbols``, labelled v
    and weighted ``log_probs[m, v]``; start = state 0, final = the last state. Arc
    ``m · num_symbols + v`` is segment m read as v.

    log_probs : (M, C ≥ num_symbols) the recogniser's log-probabilities of the M segments
    num_states : (B,) states of every string's segmentation graph
    """
    offsets = offsets_of(num_states)
    m = torch.arange(segs.string.shape[0], device=log_probs.device).repeat_interleave(num_symbols)
    v = torch.arange(num_symbols, device=log_probs.device).repeat(segs.string.shape[0])
    base = offsets[segs.string[m]]
    return Graph(
        base + segs.start[m],
        base + segs.end[m],
        v,
        log_probs[m, v],
        offsets[:-1].clone(),
        offsets[1:] - 1,
        offsets,
    )


def segment_classes(
    segmented: SegmentedBatch, owner: Tensor, labels: Tensor, *, cover: float = 0.8, spill: float = 0.2
) -> Tensor:
    """The class of every segment for isolated-character training: symbol ``labels[b, k]``
    when the segment holds ≥ ``cover`` of character k's pixels and ≤ ``spill`` of every
    other character's, else ``RUBBISH`` (pixels by owner: :func:`character_pixels`)."""
    inside, total = character_pixels(segmented.segs, segmented.pieces, owner, labels.shape[1])
    share = inside.float() / total[segmented.segs.string].clamp_min(1).float()
    covered = share >= cover
    clean = ((share > spill) & ~covered).sum(1) == 0
    single = covered.sum(1) == 1
    symbol = labels[segmented.segs.string, covered.float().argmax(1)]
    return torch.where(single & clean, symbol, RUBBISH)


class CheckReader(nn.Module):
    """Segmenter (fixed heuristics) + recognition transformer (trainable); see the module
    docstring. ``recognizer`` maps (M, 1, 28, 28) segment images to (M, 12) class scores.
    ``max_span``, ``valley``, ``smooth``, ``min_piece`` are the segmenter's
    (:func:`~genoise.structured.segmentation.find_pieces`); the defaults over-segment.
    ``scale`` is how a segment is normalised before the recogniser reads it
    (:func:`~genoise.structured.segment_images.crop_segments`): ``"segment"`` (its own ink box,
    MNIST's normalisation) or ``"string"`` (one factor per string: a segment keeps its size and
    height relative to the string's characters)."""

    def __init__(
        self,
        recognizer: nn.Module | None = None,
        *,
        max_span: int = 4,
        valley: float = 0.9,
        smooth: int = 1,
        min_piece: int = 3,
        scale: str = "segment",
    ) -> None:
        super().__init__()
        self.recognizer = recognizer if recognizer is not None else LeNet5(num_classes=NUM_CLASSES)
        self.max_span, self.valley, self.smooth, self.min_piece = max_span, valley, smooth, min_piece
        self.scale = check_choice("scale", scale, SCALES)

    def segment(self, images: Tensor, widths: Tensor | None = None) -> SegmentedBatch:
        """Pieces, segments and segment images of a batch of (B, 28, W) strings."""
        pieces = find_pieces(images, widths, valley=self.valley, smooth=self.smooth, min_piece=self.min_piece)
        segs = segments(pieces, self.max_span)
        crops = crop_segments(images, segs, pieces=pieces, scale=self.scale)
        return SegmentedBatch(pieces, segs, crops, pieces.counts + 1)

    def segment_classes(self, segmented: SegmentedBatch, owner: Tensor, labels: Tensor) -> Tensor:
        return segment_classes(segmented, owner, labels)

    def forward(self, images: Tensor, widths: Tensor | None = None) -> tuple[Graph, SegmentedBatch]:
        """The interpretation graphs U of a batch of (B, 28, W) strings, and their segmentation."""
        segmented = self.segment(images, widths)
        log_probs = F.log_softmax(self.recognizer(segmented.crops), dim=-1)
        return interpretation_graph(log_probs, segmented.segs, segmented.num_states), segmented

    @torch.no_grad()
    def read(self, images: Tensor, widths: Tensor | None = None, grammar: Graph | None = None,
             temperature: float = 1.0) -> Reading:
        """The Viterbi reading of every string (through ``grammar`` when given) and its
        confidence log P(ŷ | x) = F(U ∩ ŷ) − F(U) (at ``temperature``, module docstring)."""
        graph, _ = self(images, widths)
        return decode(graph, grammar, temperature)


def decode(graph: Graph, grammar: Graph | None = None, temperature: float = 1.0) -> Reading:
    """Viterbi reading of a batch of graphs (composed with ``grammar``) and its confidence,
    the arc scores divided by ``temperature`` (> 0) first."""
    return decode_lattice(graph, grammar, temperature)[0]


def decode_lattice(
    graph: Graph, grammar: Graph | None = None, temperature: float = 1.0
) -> tuple[Reading, Graph, Tensor]:
    """:func:`decode`'s reading, with the graph it read (U ∩ grammar, scores / T) and that
    graph's forward score F (B,): log P(y | x) of any reading y is F(that ∩ y) − F."""
    check_positive("temperature", temperature)
    if grammar is not None:
        graph = intersect(graph, grammar)
    if temperature != 1.0:
        graph = replace(graph, weight=graph.weight / temperature)
    best = viterbi(graph, what="string", missing="ignore")
    total = forward_score(graph, missing="ignore")
    confidence = reading_log_posterior(graph, total, best.labels, best.lengths)
    return Reading(best.labels, best.lengths, confidence), graph, total


def reading_log_posterior(graph: Graph, total: Tensor, labels: Tensor, lengths: Tensor) -> Tensor:
    """(B,) log P(y | x) = F(graph ∩ y) − F(graph) of the readings ``labels`` (B, L), −1
    padded, of ``lengths``; ``total`` = F(graph); −inf where the graph reads no path."""
    padded = torch.where(labels >= 0, labels, 0)
    chosen = forward_score(intersect(graph, linear_graph(padded, lengths)), missing="ignore")
    return torch.where(torch.isfinite(total), chosen - total, float("-inf"))
