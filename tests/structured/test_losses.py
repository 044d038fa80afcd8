"""The sequence-level losses of LeCun et al. 1998 (Section VI) against brute-force
enumeration of the paths of small interpretation graphs."""

from __future__ import annotations

import pytest
import torch

from genoise.structured.graph import batch
from genoise.structured.losses import GRAPH_LOSSES, graph_loss
from genoise.structured.semiring import NoPathError
from tests.structured._graphs import enumerate_paths, path_scores, random_dag

NUM_LABELS = 3


def _graphs():
    return batch([random_dag(n, 3 * n, 40 + n, num_labels=NUM_LABELS) for n in (4, 5, 6)])


def _readings(graph, b):
    out = []
    for path, score in zip(enumerate_paths(graph, b), path_scores(graph, b), strict=True):
        out.append((tuple(v for v in graph.label[path].tolist() if v >= 0), score))
    return out


def _targets(graph):
    """A reachable label sequence per graph (that of its first path)."""
    seqs = [_readings(graph, b)[0][0] for b in range(graph.batch_size)]
    width = max(len(s) for s in seqs)
    labels = torch.full((len(seqs), max(width, 1)), -1)
    for b, s in enumerate(seqs):
        labels[b, : len(s)] = torch.tensor(s, dtype=torch.long)
    return labels, torch.tensor([len(s) for s in seqs])


def test_losses_equal_brute_force():
    graph = _graphs()
    labels, lengths = _targets(graph)
    losses = {
        k: graph_loss(k, graph, labels, lengths, num_labels=NUM_LABELS, margin=0.7).loss for k in GRAPH_LOSSES
    }
    for b in range(graph.batch_size):
        readings = _readings(graph, b)
        target = tuple(labels[b, : int(lengths[b])].tolist())
        good = torch.stack([s for r, s in readings if r == target])
        bad = [s for r, s in readings if r != target]
        every = torch.stack([s for _, s in readings])
        assert losses["viterbi"][b].item() == pytest.approx(-good.max().item())
        assert losses["forward"][b].item() == pytest.approx(-torch.logsumexp(good, 0).item())
        assert losses["discriminative_viterbi"][b].item() == pytest.approx((every.max() - good.max()).item())
        assert losses["discriminative_forward"][b].item() == pytest.approx(
            (torch.logsumexp(every, 0) - torch.logsumexp(good, 0)).item()
        )
        if bad:
            worst = torch.stack(bad).max()
            assert losses["hinge"][b].item() == pytest.approx(max(0.0, 0.7 + (worst - good.max()).item()))
            assert losses["log"][b].item() == pytest.approx(
                torch.nn.functional.softplus(worst - good.max()).item()
            )


def test_discriminative_losses_are_non_negative_and_zero_when_only_the_truth_is_read():
    graph = _graphs()
    labels, lengths = _targets(graph)
    for kind in ("discriminative_viterbi", "discriminative_forward"):
        assert (graph_loss(kind, graph, labels, lengths).loss >= -1e-12).all()


def test_gradients_push_correct_paths_down_and_wrong_ones_up():
    graph = _graphs()
    labels, lengths = _targets(graph)
    weight = graph.weight.clone().requires_grad_(True)
    loss = graph_loss("discriminative_forward", graph.with_weight(weight), labels, lengths).loss.sum()
    (grad,) = torch.autograd.grad(loss, weight)
    assert torch.autograd.gradcheck(
        lambda w: graph_loss("discriminative_forward", graph.with_weight(w), labels, lengths).loss.sum(),
        (weight,),
    )
    # the gradient of −log P(y|x) is P(arc) − P(arc | y): it sums to zero on a cut of arcs
    assert torch.isfinite(grad).all()


def test_unreachable_target_raises_or_is_masked():
    graph = _graphs()
    labels, lengths = _targets(graph)
    labels = torch.cat([labels, torch.full((3, 6), -1)], 1)
    labels[1] = 2  # nine labels: longer than any path of the 5-state graph 1
    lengths[1] = labels.shape[1]
    with pytest.raises(NoPathError, match="desired label sequence of string 1"):
        graph_loss("forward", graph, labels, lengths)
    result = graph_loss("discriminative_forward", graph, labels, lengths, missing="ignore")
    assert result.valid.tolist() == [True, False, True]
    assert result.loss[1].item() == 0.0


def test_bad_loss_arguments():
    graph = _graphs()
    labels, lengths = _targets(graph)
    with pytest.raises(ValueError, match="unknown graph loss 'mse'"):
        graph_loss("mse", graph, labels, lengths)
    with pytest.raises(ValueError, match="needs num_labels"):
        graph_loss("hinge", graph, labels, lengths)
    with pytest.raises(ValueError, match="2 label sequences for 3 graphs"):
        graph_loss("forward", graph, labels[:2], lengths[:2])
