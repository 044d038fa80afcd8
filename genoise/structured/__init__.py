"""Structured prediction over graphs — graph transformer networks (LeCun, Bottou, Bengio &
Haffner 1998, "Gradient-based learning applied to document recognition", Parts IV–VI, X).

* :mod:`~genoise.structured.graph` — batches of weighted acyclic graphs as tensors;
* :mod:`~genoise.structured.semiring` — forward (log) and Viterbi (tropical) scores over
  topological levels, arc posteriors, best paths;
* :mod:`~genoise.structured.intersect` — composition with automata (grammars, label sequences);
* :mod:`~genoise.structured.ctc` — CTC as a graph (equal to ``nn.CTCLoss``), forced alignment;
* :mod:`~genoise.structured.losses` — Viterbi, discriminative Viterbi, forward, discriminative
  forward, and the margin losses over the best wrong path;
* :mod:`~genoise.structured.segmentation`, :mod:`~genoise.structured.segment_images`,
  :mod:`~genoise.structured.reader` — the segmentation graph, the segments' images, the
  recognition transformer and the check reader;
* :mod:`~genoise.structured.sdnn` — a sliding-window ConvNet trained with CTC;
* :mod:`~genoise.structured.experts` — check readers and SDNNs read together as a product of
  experts over whole readings;
* :mod:`~genoise.structured.grammar`, :mod:`~genoise.structured.evaluate`,
  :mod:`~genoise.structured.train`, :mod:`~genoise.structured.figures`.
"""

from genoise.structured.ctc import ctc_graph, ctc_loss, forced_align
from genoise.structured.evaluate import accepted_correct_at, edit_distance, reject_curve, string_scores
from genoise.structured.experts import Opinion, opinion, product_reading, read_with_experts
from genoise.structured.grammar import (
    amount_grammar,
    any_sequence,
    collapse,
    ctc_topology,
    digits_grammar,
    emission_graph,
)
from genoise.structured.graph import EPSILON, Graph, all_but_graph, batch, linear_graph
from genoise.structured.intersect import intersect, repeat_graph
from genoise.structured.losses import GRAPH_LOSSES, GraphLoss, constrained_graph, graph_loss
from genoise.structured.reader import RUBBISH, CheckReader, Reading, decode, interpretation_graph
from genoise.structured.sdnn import SDNN, sdnn_decode
from genoise.structured.segment_images import character_pixels, crop_segments
from genoise.structured.segmentation import find_cuts, find_pieces, segments
from genoise.structured.semiring import (
    NoPathError,
    ViterbiResult,
    arc_posteriors,
    forward_score,
    viterbi,
    viterbi_score,
)
from genoise.structured.train import read_strings, train_reader, train_sdnn

__all__ = [
    "EPSILON",
    "GRAPH_LOSSES",
    "RUBBISH",
    "SDNN",
    "CheckReader",
    "Graph",
    "GraphLoss",
    "NoPathError",
    "Opinion",
    "Reading",
    "ViterbiResult",
    "accepted_correct_at",
    "all_but_graph",
    "amount_grammar",
    "any_sequence",
    "arc_posteriors",
    "batch",
    "character_pixels",
    "collapse",
    "constrained_graph",
    "crop_segments",
    "ctc_graph",
    "ctc_loss",
    "ctc_topology",
    "decode",
    "digits_grammar",
    "edit_distance",
    "emission_graph",
    "find_cuts",
    "find_pieces",
    "forced_align",
    "forward_score",
    "graph_loss",
    "interpretation_graph",
    "intersect",
    "linear_graph",
    "opinion",
    "product_reading",
    "read_strings",
    "read_with_experts",
    "reject_curve",
    "repeat_graph",
    "sdnn_decode",
    "segments",
    "string_scores",
    "train_reader",
    "train_sdnn",
    "viterbi",
    "viterbi_score",
]
