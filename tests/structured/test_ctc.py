"""CTC written as a graph equals torch.nn.CTCLoss (value and gradient); forced alignment is
its Viterbi path."""

from __future__ import annotations

import itertools

import pytest
import torch

from genoise.structured.ctc import ctc_graph, ctc_loss, forced_align
from genoise.structured.graph import build_schedule
from genoise.structured.semiring import NoPathError, forward_score, viterbi


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


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_prebuilt_schedule_equals_generic_schedule(seed):
    """The closed-form level tables (made lazily, frame by frame) against Kahn's schedule
    of the same arcs: forward score, its gradient (the backward tables), Viterbi path."""
    logits, targets, input_lengths, target_lengths = _case(seed)
    if seed == 6:
        input_lengths[:] = logits.shape[0]  # every input ends on the last frame
    graph = ctc_graph(logits.log_softmax(-1), targets, input_lengths, target_lengths)
    graph = graph.with_weight(graph.weight.requires_grad_(True))
    generic = graph.with_weight(graph.weight.detach().clone().requires_grad_(True))
    generic.schedule = build_schedule(generic)
    ours, reference = forward_score(graph), forward_score(generic)
    torch.testing.assert_close(ours, reference)
    upstream = torch.linspace(0.5, 2.0, ours.shape[0], dtype=ours.dtype)
    upstream[1] = -1.0  # a negative upstream gradient takes the unfolded path of the sweep
    (g_ours,) = torch.autograd.grad(ours, graph.weight, upstream)
    (g_ref,) = torch.autograd.grad(reference, generic.weight, upstream)
    torch.testing.assert_close(g_ours, g_ref)
    best, best_ref = viterbi(graph), viterbi(generic)
    torch.testing.assert_close(best.score, best_ref.score)
    assert torch.equal(best.labels, best_ref.labels)


def test_loss_never_builds_the_arc_arrays():
    """ctc_loss reads only the schedule and the weights: src, dst and label (3·T·B·(2L + 1)
    entries each) are made on first read, and then equal the grid they describe."""
    logits, targets, input_lengths, target_lengths = _case(7, steps=10, size=3, width=3)
    lp = logits.log_softmax(-1).requires_grad_(True)
    graph = ctc_graph(lp, targets, input_lengths, target_lengths)
    forward_score(graph).sum().backward()
    assert not {"src", "dst", "label"} & set(vars(graph))
    steps, size = lp.shape[:2]
    width = 2 * targets.shape[1] + 1
    assert graph.src.shape == graph.dst.shape == graph.label.shape == (steps * 3 * size * width,)
    dst = graph.dst.view(steps, 3, size, width)
    src = graph.src.view(steps, 3, size, width)
    live = graph.weight.view(steps, 3, size, width) > float("-inf")
    start = graph.start[None, None, :, None].expand_as(src)
    # a live arc enters frame 1 from the start, else a state of the frame before (same graph)
    assert torch.equal(src[0][live[0]], start[0][live[0]])
    offsets = graph.state_offsets
    owner = torch.searchsorted(offsets[1:], dst, right=True)
    assert torch.equal(torch.searchsorted(offsets[1:], src, right=True)[live], owner[live])
    assert bool((dst[1:] > src[1:])[live[1:]].all())
    blank_pos = torch.arange(width) % 2 == 0
    assert bool((graph.label.view(steps, 3, size, width)[..., blank_pos] == 0).all())
    with pytest.raises(IndexError):
        graph.get_schedule().forward_levels[steps + 1]
    assert len(graph.get_schedule().backward_levels[-2:]) == 2


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
