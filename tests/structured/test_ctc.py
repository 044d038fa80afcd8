"""CTC written as a graph equals torch.nn.CTCLoss (value and gradient); forced alignment is
its Viterbi path."""

from __future__ import annotations

import itertools

import pytest
import torch

from genoise.structured.ctc import ctc_graph, ctc_loss, forced_align
from genoise.structured.graph import build_schedule
from genoise.structured.semiring import NoPathError, forward_score


def _case(seed: int, steps: int = 14, size: int = 6, classes: int = 5, width: int = 4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(steps, size, classes, generator=g, dtype=torch.float64)
    target_lengths = torch.randint(0, width + 1, (size,), generator=g)
    targets = torch.randint(1, classes, (size, width), generator=g)
    targets[0, :3] = torch.tensor([2, 2, 2])  # repeated labels need blanks between them
    target_lengths[0] = 3
    target_lengths[1] = 0  # the empty target: all blanks
    input_lengths = torch.randint(2 * width + 1, steps + 1, (size,), generator=g)
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_graph_ctc_equals_nn_ctcloss_value_and_gradient(seed, reduction):
    logits, targets, input_lengths, target_lengths = _case(seed)
    logits.requires_grad_(True)
    reference = torch.nn.functional.ctc_loss(
        logits.log_softmax(-1), targets, input_lengths, target_lengths, reduction=reduction
    )
    ours = ctc_loss(logits.log_softmax(-1), targets, input_lengths, target_lengths, reduction=reduction)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    (g_ref,) = torch.autograd.grad(reference.sum(), logits)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-5, rtol=0)


def test_concatenated_targets_and_float32():
    logits, targets, input_lengths, target_lengths = _case(3)
    flat = torch.cat([targets[b, : int(n)] for b, n in enumerate(target_lengths)])
    lp = logits.float().log_softmax(-1)
    torch.testing.assert_close(
        ctc_loss(lp, flat, input_lengths, target_lengths, reduction="none"),
        torch.nn.functional.ctc_loss(lp, targets, input_lengths, target_lengths, reduction="none"),
        atol=1e-4,
        rtol=1e-5,
    )


def test_prebuilt_schedule_equals_generic_schedule():
    logits, targets, input_lengths, target_lengths = _case(4)
    graph = ctc_graph(logits.log_softmax(-1), targets, input_lengths, target_lengths)
    generic = graph.with_weight(graph.weight)
    generic.schedule = build_schedule(generic)
    torch.testing.assert_close(forward_score(generic), forward_score(graph))


def test_forced_alignment_is_the_best_alignment_by_enumeration():
    g = torch.Generator().manual_seed(5)
    steps, classes = 6, 3
    lp = torch.randn(steps, 1, classes, generator=g, dtype=torch.float64).log_softmax(-1)
    target = torch.tensor([[1, 2]])
    frames, score = forced_align(lp, target, torch.tensor([steps]), torch.tensor([2]))

    def collapse(seq):
        out = [k for i, k in enumerate(seq) if k != 0 and (i == 0 or seq[i - 1] != k)]
        return out

    best = max(
        (sum(lp[t, 0, k].item() for t, k in enumerate(seq)), seq)
        for seq in itertools.product(range(classes), repeat=steps)
        if collapse(list(seq)) == [1, 2]
    )
    assert score.item() == pytest.approx(best[0])
    assert frames[0].tolist() == list(best[1])


def test_impossible_target_raises_instead_of_inf():
    lp = torch.randn(3, 1, 4).log_softmax(-1)
    with pytest.raises(NoPathError, match="target of sample 0"):
        ctc_loss(lp, torch.tensor([[1, 1, 2]]), torch.tensor([3]), torch.tensor([3]))  # needs 4 frames


def test_bad_ctc_input():
    lp = torch.randn(5, 2, 4).log_softmax(-1)
    with pytest.raises(ValueError, match="differ from the blank"):
        ctc_loss(lp, torch.tensor([[0, 1], [1, 2]]), torch.tensor([5, 5]), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match=r"must be in 0..3"):
        ctc_loss(lp, torch.tensor([[7, 1], [1, 2]]), torch.tensor([5, 5]), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match=r"input lengths must be in 1..5"):
        ctc_loss(lp, torch.tensor([[1, 1], [1, 2]]), torch.tensor([6, 5]), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        ctc_loss(lp[0], torch.tensor([[1]]), torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="reduction"):
        ctc_loss(
            lp, torch.tensor([[1, 1], [1, 2]]), torch.tensor([5, 5]), torch.tensor([2, 2]), reduction="avg"
        )
