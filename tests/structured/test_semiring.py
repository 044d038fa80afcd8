"""Forward and Viterbi scores against brute-force path enumeration; gradients against
finite differences and the enumerated posteriors."""

from __future__ import annotations

import pytest
import torch

from genoise.structured.graph import Graph, batch
from genoise.structured.semiring import NoPathError, arc_posteriors, forward_score, viterbi, viterbi_score
from tests.structured._graphs import enumerate_paths, path_scores, random_batch, random_dag


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_and_viterbi_equal_brute_force_enumeration(seed):
    graph = random_batch(seed, sizes=(5, 7, 4, 6))
    forward, best = forward_score(graph), viterbi(graph)
    for b in range(graph.batch_size):
        scores = path_scores(graph, b)
        assert forward[b].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-10)
        assert best.score[b].item() == pytest.approx(scores.max().item(), abs=1e-10)
        arcs = best.path[b][best.path[b] >= 0]
        assert graph.weight[arcs].sum().item() == pytest.approx(scores.max().item(), abs=1e-10)
        # the path is connected: start → … → a final state
        assert int(graph.src[arcs[0]]) == int(graph.start[b])
        assert bool((graph.dst[arcs[:-1]] == graph.src[arcs[1:]]).all())
        assert int(graph.dst[arcs[-1]]) in graph.final.tolist()


def test_viterbi_labels_drop_epsilons():
    graph = Graph.from_arcs(
        4, [(0, 1, 3), (1, 2, -1), (2, 3, 5), (0, 3, 1)], torch.tensor([1.0, 1.0, 1.0, 0.5])
    )
    best = viterbi(graph)
    assert best.labels.tolist() == [[3, 5]] and best.lengths.tolist() == [2]
    assert best.score.item() == pytest.approx(3.0)


def test_arc_posteriors_equal_enumerated_marginals():
    graph = random_batch(3)
    posterior = arc_posteriors(graph)
    expected = torch.zeros_like(posterior)
    for b in range(graph.batch_size):
        paths, scores = enumerate_paths(graph, b), path_scores(graph, b)
        probs = torch.softmax(scores, 0)
        for p, prob in zip(paths, probs, strict=True):
            expected[p] += prob
    torch.testing.assert_close(posterior, expected, atol=1e-10, rtol=0)


def test_forward_gradient_matches_finite_differences():
    graph = random_batch(4)
    weight = graph.weight.clone().requires_grad_(True)
    coefficients = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda w: (forward_score(graph.with_weight(w)) * coefficients).sum(), (weight,)
    )


def test_viterbi_gradient_is_best_path_indicator_and_matches_finite_differences():
    graph = random_batch(5)
    weight = graph.weight.clone().requires_grad_(True)
    best = viterbi(graph.with_weight(weight))
    (grad,) = torch.autograd.grad(best.score.sum(), weight)
    indicator = torch.zeros_like(grad)
    indicator[best.path[best.path >= 0]] = 1.0
    torch.testing.assert_close(grad, indicator)
    # away from ties the max is locally linear: finite differences agree
    assert torch.autograd.gradcheck(lambda w: viterbi_score(graph.with_weight(w)), (weight,), eps=1e-7)


def test_scores_are_batched_independently_of_batch_order():
    graphs = [random_dag(n, 2 * n, 10 + n) for n in (3, 6, 5)]
    together = forward_score(batch(graphs))
    alone = torch.cat([forward_score(g) for g in graphs])
    reversed_ = forward_score(batch(graphs[::-1])).flip(0)
    torch.testing.assert_close(together, alone)
    torch.testing.assert_close(together, reversed_)


def test_final_state_with_outgoing_arcs_counts_both_ends():
    # paths: [0→1] (1 is final) and [0→1→2]
    graph = Graph.from_arcs(3, [(0, 1, 0), (1, 2, 1)], torch.tensor([0.5, -1.0]), final=[1, 2])
    assert forward_score(graph).item() == pytest.approx(torch.logsumexp(torch.tensor([0.5, -0.5]), 0).item())


def test_no_path_raises_naming_the_graph_or_is_ignored():
    dead = Graph.from_arcs(3, [(0, 1, 0)], torch.tensor([0.0]), final=[2])
    both = batch([random_dag(4, 6, 0, dtype=torch.float32), dead])
    with pytest.raises(NoPathError, match="graph 1 of the batch has no path"):
        forward_score(both)
    with pytest.raises(NoPathError, match="graph 1"):
        viterbi(both)
    weight = both.weight.clone().requires_grad_(True)
    score = forward_score(both.with_weight(weight), missing="ignore")
    assert torch.isneginf(score[1]) and torch.isfinite(score[0])
    (grad,) = torch.autograd.grad(score[0], weight)
    assert torch.isfinite(grad).all()
    assert viterbi(both, missing="ignore").lengths[1].item() == 0
    with pytest.raises(ValueError, match="missing must be"):
        forward_score(both, missing="skip")


def test_cycle_and_bad_graphs_are_refused():
    cyclic = Graph.from_arcs(3, [(0, 1, 0), (1, 2, 0), (2, 1, 0)], final=[2])
    with pytest.raises(ValueError, match="graph 0 of the batch has a cycle"):
        forward_score(cyclic)
    into_start = Graph.from_arcs(3, [(0, 1, 0), (1, 0, 0), (1, 2, 0)], final=[2])
    with pytest.raises(ValueError, match=r"cycle|start state"):
        forward_score(into_start)
    with pytest.raises(ValueError, match=r"outside 0..2"):
        Graph.from_arcs(3, [(0, 5, 0)])
    with pytest.raises(ValueError, match="NaN"):
        Graph.from_arcs(2, [(0, 1, 0)], torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="final states repeat"):
        Graph.from_arcs(2, [(0, 1, 0)], final=[1, 1])
    with pytest.raises(ValueError, match="new weights"):
        Graph.from_arcs(2, [(0, 1, 0)]).with_weight(torch.zeros(3))
    with pytest.raises(ValueError, match=">= -1"):
        Graph.from_arcs(2, [(0, 1, -3)])


def test_minus_infinity_weight_forbids_an_arc():
    graph = Graph.from_arcs(3, [(0, 1, 0), (1, 2, 0), (0, 2, 1)], torch.tensor([0.0, 0.0, float("-inf")]))
    assert forward_score(graph).item() == pytest.approx(0.0)
    assert viterbi(graph).labels.tolist() == [[0, 0]]


def test_float32_on_larger_graph_matches_float64():
    graph = random_batch(7, sizes=(30, 25, 40))
    single = graph.with_weight(graph.weight.float())
    torch.testing.assert_close(forward_score(single).double(), forward_score(graph), atol=1e-4, rtol=0)
