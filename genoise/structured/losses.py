"""Sequence-level losses over interpretation graphs (LeCun, Bottou, Bengio & Haffner 1998,
Section VI; LeCun, Chopra, Hadsell, Ranzato & Huang 2006, "A tutorial on energy-based
learning", Sections 2 and 6).

U is the interpretation graph of an input (every reading), C = U ∩ y its constrained
graph (the readings whose labels are the desired sequence y). With path energy
E(π) = −score(π), Viterbi V(G) = max_π score and forward F(G) = log Σ_π exp(score):

    viterbi                    −V(C)            (energy of the best correct path)
    discriminative_viterbi     V(U) − V(C)      (the generalised perceptron loss; ≥ 0)
    forward                    −F(C)            (free energy of the correct paths)
    discriminative_forward     F(U) − F(C)      (−log P(y | x): the NLL row of the loss table)
    hinge                      [m + V(W) − V(C)]₊,   W = U ∩ (every sequence but y)
    log                        log(1 + exp(V(W) − V(C)))

The non-discriminative losses only push the correct paths' energy down: with a trainable
recogniser whose scores are not normalised they can collapse (every path gets the same low
energy — Section VI.A); with a recogniser normalised over its classes, as here, they cannot
collapse but never push up a wrong segmentation. W's best path is the "most offending
incorrect answer" of the margin losses.

Every loss is per string, (B,). A string whose desired sequence its graph cannot produce
raises :class:`~genoise.structured.semiring.NoPathError` naming it, or, with
``missing="ignore"``, gets a loss of 0 and no gradient (``valid`` tells which).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from genoise.structured.graph import Graph, all_but_graph, linear_graph
from genoise.structured.intersect import intersect
from genoise.structured.semiring import forward_score, viterbi_score

GRAPH_LOSSES = ("viterbi", "discriminative_viterbi", "forward", "discriminative_forward", "hinge", "log")


class GraphLoss(NamedTuple):
    """loss : (B,) per string (0 where not valid); valid : (B,) the desired sequence is a
    path of the string's graph."""

    loss: Tensor
    valid: Tensor


def constrained_graph(
    graph: Graph, labels: Tensor, lengths: Tensor | None = None, num_labels: int | None = None
) -> Graph:
    """C = U ∩ y: the paths of ``graph`` whose labels are exactly ``labels[b]``."""
    return intersect(
        graph, linear_graph(labels, lengths, num_labels=num_labels, weight_dtype=graph.weight.dtype)
    )


def graph_loss(
    kind: str,
    graph: Graph,
    labels: Tensor,
    lengths: Tensor | None = None,
    *,
    num_labels: int | None = None,
    margin: float = 1.0,
    missing: str = "raise",
) -> GraphLoss:
    """The loss ``kind`` (one of :data:`GRAPH_LOSSES`) of every string of the batch."""
    if kind not in GRAPH_LOSSES:
        raise ValueError(f"unknown graph loss {kind!r}; choose one of {', '.join(GRAPH_LOSSES)}")
    if labels.shape[0] != graph.batch_size:
        raise ValueError(f"{labels.shape[0]} label sequences for {graph.batch_size} graphs")
    what = "desired label sequence of string"
    constrained = constrained_graph(graph, labels, lengths, num_labels)
    if kind in ("forward", "discriminative_forward"):
        good = forward_score(constrained, what=what, missing=missing)
    else:
        good = viterbi_score(constrained, what=what, missing=missing)
    valid = torch.isfinite(good)
    good = torch.where(valid, good, 0.0)
    if kind in ("viterbi", "forward"):
        return GraphLoss(torch.where(valid, -good, 0.0), valid)
    if kind == "discriminative_forward":
        loss = forward_score(graph) - good
    elif kind == "discriminative_viterbi":
        loss = viterbi_score(graph) - good
    else:
        if num_labels is None:
            raise ValueError(f"the {kind} loss needs num_labels (the alphabet of the wrong answers)")
        wrong = intersect(graph, all_but_graph(labels, num_labels, lengths, weight_dtype=graph.weight.dtype))
        worst = viterbi_score(wrong, missing="ignore")  # no wrong answer at all: nothing to push up
        gap = torch.where(torch.isfinite(worst), worst, good - 1e4) - good
        loss = torch.relu(margin + gap) if kind == "hinge" else torch.nn.functional.softplus(gap)
    return GraphLoss(torch.where(valid, loss, 0.0), valid)
