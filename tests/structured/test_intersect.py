"""Intersection against a hand-built product graph and against brute force."""

from __future__ import annotations

import pytest
import torch

from genoise.structured.grammar import amount_grammar
from genoise.structured.graph import Graph, all_but_graph, batch, linear_graph
from genoise.structured.intersect import intersect, repeat_graph
from genoise.structured.semiring import forward_score, viterbi
from tests.structured._graphs import enumerate_paths, path_scores, random_batch


def test_intersection_equals_hand_built_product():
    # G: 0 -a(0)-> 1 -b(1)-> 2, 0 -eps-> 1 ; A: q0 -a-> q1, q1 -b-> q1 (accepting q1), weighted
    g = Graph.from_arcs(
        3, [(0, 1, 0), (1, 2, 1), (0, 1, -1)], torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    )
    a = Graph.from_arcs(2, [(0, 1, 0), (1, 1, 1)], torch.tensor([0.25, -1.0], dtype=torch.float64), final=[1])
    product = intersect(g, a)
    # hand-built: (0,q0) -a-> (1,q1) [1.25]; (1,q1) -b-> (2,q1) [1.0]; eps: (0,q0)->(1,q0), (0,q1)->(1,q1)
    arcs = {
        (int(s), int(d), int(v), round(float(w), 6))
        for s, d, v, w in zip(product.src, product.dst, product.label, product.weight, strict=True)
    }
    names = {}
    states = product.num_states
    assert states == 5  # (0,q0) (0,q1) (1,q0) (1,q1) (2,q1)
    # map back: product state numbering is by g-state then q (compacted)
    for i, key in enumerate([(0, 0), (0, 1), (1, 0), (1, 1), (2, 1)]):
        names[key] = i
    expected = {
        (names[0, 0], names[1, 1], 0, 1.25),
        (names[1, 1], names[2, 1], 1, 1.0),
        (names[0, 0], names[1, 0], -1, 0.5),
        (names[0, 1], names[1, 1], -1, 0.5),
    }
    assert arcs == expected
    assert product.start.tolist() == [names[0, 0]] and product.final.tolist() == [names[2, 1]]
    assert forward_score(product).item() == pytest.approx(2.25)


def test_intersection_keeps_exactly_the_accepted_paths():
    graph = random_batch(11, sizes=(6, 5))
    auto = Graph.from_arcs(2, [(0, 0, 0), (0, 1, 1), (1, 1, 2), (1, 1, 3)], final=[1]).with_weight(
        torch.zeros(4, dtype=torch.float64)
    )
    product = intersect(graph, auto)
    for b in range(graph.batch_size):
        keep = []
        for path, score in zip(enumerate_paths(graph, b), path_scores(graph, b), strict=True):
            labels = [v for v in graph.label[path].tolist() if v >= 0]
            text = "".join(map(str, labels))
            import re

            if re.fullmatch(r"0*1[23]*", text):
                keep.append(score)
        if keep:
            assert forward_score(product, missing="ignore")[b].item() == pytest.approx(
                torch.logsumexp(torch.stack(keep), 0).item()
            )
        else:
            assert torch.isneginf(forward_score(product, missing="ignore")[b])


def test_linear_and_all_but_graphs_partition_the_paths():
    graph = random_batch(12, sizes=(7, 6))
    labels = torch.tensor([[1, 2, -1], [0, 3, 3]])
    right = forward_score(
        intersect(graph, linear_graph(labels, weight_dtype=torch.float64)), missing="ignore"
    )
    wrong = forward_score(
        intersect(graph, all_but_graph(labels, 4, weight_dtype=torch.float64)), missing="ignore"
    )
    torch.testing.assert_close(torch.logaddexp(right, wrong), forward_score(graph))


def test_gradients_flow_into_both_operands():
    g = Graph.from_arcs(3, [(0, 1, 0), (1, 2, 1), (0, 2, 1)], torch.zeros(3, dtype=torch.float64))
    a = Graph.from_arcs(2, [(0, 1, 0), (1, 1, 1), (0, 1, 1)], torch.zeros(3, dtype=torch.float64), final=[1])
    wg = torch.randn(3, dtype=torch.float64, requires_grad=True)
    wa = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: forward_score(intersect(g.with_weight(x), a.with_weight(y))), (wg, wa)
    )


def test_one_automaton_is_shared_by_the_batch():
    graph = random_batch(13, sizes=(5, 5, 5))
    auto = Graph.from_arcs(1, [(0, 0, v) for v in range(4)], torch.zeros(4, dtype=torch.float64), final=[0])
    torch.testing.assert_close(forward_score(intersect(graph, auto)), forward_score(graph))
    torch.testing.assert_close(forward_score(intersect(graph, repeat_graph(auto, 3))), forward_score(graph))


def test_grammar_filters_readings():
    # two readings of a two-segment string: "0" then "5" (leading zero: refused) or "1" "5"
    g = Graph.from_arcs(3, [(0, 1, 0), (0, 1, 1), (1, 2, 5)], torch.tensor([2.0, 0.0, 0.0]))
    assert viterbi(g).labels.tolist() == [[0, 5]]
    assert viterbi(intersect(g, amount_grammar())).labels.tolist() == [[1, 5]]


def test_intersection_errors():
    g = random_batch(1, sizes=(4, 4))
    with pytest.raises(ValueError, match="cannot intersect a batch of 2 graphs with 3"):
        intersect(g, batch([linear_graph(torch.tensor([[1]]))] * 3))
    eps = Graph.from_arcs(2, [(0, 1, -1)])
    with pytest.raises(ValueError, match="epsilon"):
        intersect(g, eps)
    with pytest.raises(ValueError, match=r"label 7 is outside the alphabet 0..3"):
        linear_graph(torch.tensor([[1, 7]]), num_labels=4)
