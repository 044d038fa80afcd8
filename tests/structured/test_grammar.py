"""Grammars, the emission graph and the CTC topology against brute force."""

from __future__ import annotations

import itertools
import re

import pytest
import torch

from genoise.structured.ctc import ctc_loss
from genoise.structured.grammar import (
    amount_grammar,
    any_sequence,
    collapse,
    ctc_topology,
    digits_grammar,
    emission_graph,
)
from genoise.structured.graph import linear_graph
from genoise.structured.intersect import intersect
from genoise.structured.semiring import forward_score, viterbi

AMOUNT = re.compile(r"^(?:[1-9][0-9]*|[1-9][0-9]*\.[0-9]{2}|0\.[0-9]{2})$")


def _accepts(grammar, labels):
    graph = linear_graph(torch.tensor([labels]), num_labels=11)
    return bool(torch.isfinite(forward_score(intersect(graph, grammar), missing="ignore"))[0])


@pytest.mark.parametrize(
    "text", ["7", "120", "0.05", "12.50", "0", "01", "1.5", "1.234", ".12", "3..12", "10.00"]
)
def test_amount_grammar_is_the_generator_language(text):
    labels = [10 if ch == "." else int(ch) for ch in text]
    assert _accepts(amount_grammar(), labels) == bool(AMOUNT.match(text))


def test_digits_and_any_sequence_grammars():
    assert _accepts(digits_grammar(), [0, 3, 9]) and not _accepts(digits_grammar(), [1, 10, 2])
    assert _accepts(any_sequence(), [10, 10, 0])


def _brute(lp, language):
    """log Σ over frame sequences whose collapse satisfies ``language`` of Π p."""
    steps, _, classes = lp.shape
    total = []
    for seq in itertools.product(range(classes), repeat=steps):
        prev, out = -1, []
        for k in seq:
            if k != 0 and k != prev:
                out.append(k - 1)
            prev = k
        if language(out):
            total.append(sum(lp[t, 0, k] for t, k in enumerate(seq)))
    return torch.logsumexp(torch.stack(total), 0)


def test_ctc_topology_of_a_grammar_sums_exactly_its_frame_sequences():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(5, 1, 4, generator=g, dtype=torch.float64).log_softmax(-1)  # blank + labels 0..2
    from genoise.structured.graph import Graph

    grammar = Graph.from_arcs(3, [(0, 1, 1), (1, 1, 0), (1, 2, 2)], final=[1, 2])  # 1 0* 2?
    score = forward_score(intersect(emission_graph(lp), ctc_topology(grammar)))
    expected = _brute(lp, lambda out: bool(re.fullmatch(r"10*2?", "".join(map(str, out)))))
    assert score.item() == pytest.approx(expected.item())


def test_ctc_topology_of_one_sequence_is_ctc():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(7, 1, 4, generator=g, dtype=torch.float64).log_softmax(-1)
    target = torch.tensor([[1, 1, 2]])  # labels 1, 1, 2 = frame classes 2, 2, 3
    topology = ctc_topology(linear_graph(target))
    ours = -forward_score(intersect(emission_graph(lp), topology))
    reference = ctc_loss(lp, target + 1, torch.tensor([7]), torch.tensor([3]), reduction="none")
    torch.testing.assert_close(ours, reference)


def test_emission_graph_viterbi_is_the_greedy_path_and_collapse():
    g = torch.Generator().manual_seed(2)
    lp = torch.randn(6, 3, 5, generator=g).log_softmax(-1)
    lengths = torch.tensor([6, 4, 1])
    best = viterbi(emission_graph(lp, lengths))
    greedy = lp.argmax(-1).T
    for b, n in enumerate(lengths.tolist()):
        assert best.labels[b, :n].tolist() == greedy[b, :n].tolist()
    labels, counts = collapse(torch.tensor([[0, 2, 2, 0, 2, 3], [1, 1, 1, -1, -1, -1]]))
    assert labels.tolist() == [[1, 1, 2], [0, -1, -1]] and counts.tolist() == [3, 1]


def test_grammar_errors():
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        emission_graph(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="lengths must be"):
        emission_graph(torch.zeros(3, 2, 4), torch.tensor([4, 1]))
