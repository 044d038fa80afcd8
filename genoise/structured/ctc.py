"""Connectionist temporal classification written as a graph (Graves, Fernández, Gomez &
Schmidhuber 2006, "Connectionist temporal classification: labelling unsegmented sequence
data with recurrent neural networks"), and forced alignment as its Viterbi path.

For a target y of length L, the CTC topology has the 2L + 1 "extended" labels
ℓ' = (blank, y₁, blank, y₂, …, y_L, blank). The alignment graph has a start state and
states (t, s) for frames t = 1 … T and positions s = 0 … 2L; an arc enters (t, s) from
(t−1, s) (stay), (t−1, s−1) (advance) and (t−1, s−2) (skip a blank, allowed when
ℓ'_s ≠ blank and ℓ'_s ≠ ℓ'_{s−2}); frame 1 is entered from the start into s = 0 or 1. The
arc into (t, s) carries the label ℓ'_s and the score log p_t(ℓ'_s); the final states are
(T, 2L) and (T, 2L − 1). Then

    CTC(x, y) = −log Σ_alignments Π_t p_t(ℓ'_{s_t}) = −forward_score(graph)

and its gradient, by the forward–backward sweep of :mod:`genoise.structured.semiring`, is
the state posterior per frame: the same numbers ``torch.nn.CTCLoss`` computes with its
hand-written recursion (checked to 1e-5 in the tests).

The generic schedule builder (Kahn's algorithm in NumPy) is too slow for graphs of
millions of arcs; the topology here is known, so :func:`ctc_graph` writes the level
tables directly, vectorised over (T, 3, B, 2L + 1). A target longer than its input can
produce (L + repeats > T) has no path and raises instead of returning inf.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise.structured.graph import Graph, Schedule, offsets_of
from genoise.structured.semiring import forward_score, viterbi


def _targets_2d(targets: Tensor, target_lengths: Tensor) -> Tensor:
    if targets.ndim == 2:
        return targets
    if targets.ndim != 1:
        raise ValueError(
            f"targets must be (B, L) padded or 1-D concatenated, got shape {tuple(targets.shape)}"
        )
    width = int(target_lengths.max()) if target_lengths.numel() else 0
    starts = torch.cumsum(target_lengths, 0) - target_lengths
    positions = torch.arange(width, device=targets.device)
    valid = positions < target_lengths[:, None]
    index = (starts[:, None] + positions).clamp_max(max(targets.shape[0] - 1, 0))
    return torch.where(valid, targets[index] if targets.numel() else index, 0)


def _check(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(B, L) targets, (B,) input and target lengths as long tensors on the device, checked."""
    if log_probs.ndim != 3 or not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be a (T, B, C) float tensor, got shape {tuple(log_probs.shape)}")
    steps, size, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"blank {blank} is outside the {classes} classes")
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.long, device=log_probs.device)
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long, device=log_probs.device)
    if input_lengths.shape != (size,) or target_lengths.shape != (size,):
        raise ValueError(
            f"input_lengths and target_lengths must be ({size},), got "
            f"{tuple(input_lengths.shape)} and {tuple(target_lengths.shape)}"
        )
    if (input_lengths < 1).any() or (input_lengths > steps).any():
        raise ValueError(f"input lengths must be in 1..{steps}, got {input_lengths.tolist()}")
    targets = _targets_2d(targets.to(log_probs.device).long(), target_lengths)
    if targets.shape[0] != size or (target_lengths > targets.shape[1]).any() or (target_lengths < 0).any():
        raise ValueError(
            f"targets {tuple(targets.shape)} do not match target_lengths {target_lengths.tolist()}"
        )
    valid = torch.arange(targets.shape[1], device=targets.device) < target_lengths[:, None]
    used = targets[valid]
    if used.numel() and (int(used.min()) < 0 or int(used.max()) >= classes or bool((used == blank).any())):
        raise ValueError(f"target labels must be in 0..{classes - 1} and differ from the blank {blank}")
    return targets, input_lengths, target_lengths


def ctc_graph(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, *, blank: int = 0
) -> Graph:
    """The batch of CTC alignment graphs (module docstring), with its schedule built in.

    log_probs : (T, B, C) log-probabilities per frame (as ``nn.CTCLoss``)
    targets : (B, L) padded, or 1-D concatenated; input_lengths, target_lengths : (B,)

    The arcs are the whole (T, 3, B, 2L_max + 1) grid of (frame, move, graph, position),
    so every array is a reshape and nothing is compacted: a move the topology forbids (a
    skip between equal labels, a position or frame past a graph's length) stays in the grid
    as an arc of weight −∞ (reading the start state where the grid has no source; padding
    positions are one extra *sink* state per graph that no path uses).
    """
    targets, input_lengths, target_lengths = _check(log_probs, targets, input_lengths, target_lengths, blank)
    device = log_probs.device
    steps, size, _ = log_probs.shape
    width = 2 * targets.shape[1] + 1
    ext = torch.full((size, width), blank, dtype=torch.long, device=device)
    ext[:, 1::2] = targets
    ext_len = 2 * target_lengths + 1
    offsets = offsets_of(2 + input_lengths * ext_len)
    num_states = int(offsets[-1])
    start, sink = offsets[:-1], offsets[1:] - 1
    dummy = num_states  # the schedule's padding state

    t = torch.arange(steps, device=device)[:, None, None]  # frame t + 1
    s = torch.arange(width, device=device)[None, None, :]
    live = (t < input_lengths[:, None]) & (s < ext_len[:, None])  # (T, B, S)
    numbered = start[:, None] + 1 + t * ext_len[:, None] + s
    state = torch.where(live, numbered, sink[:, None])  # padding → the sink
    skip_ok = torch.zeros(size, width, dtype=torch.bool, device=device)
    skip_ok[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    first = t == 0
    arc_ok = torch.stack(
        [live & (~first | (s == 0)), live & (s >= 1) & (~first | (s == 1)), live & ~first & skip_ok[None]], 1
    )  # (T, 3, B, S): move k = stay, advance, skip
    prev = start[None, :, None].expand(steps, size, width + 2).clone()  # off the grid: the start
    prev[1:, :, 2:] = torch.where(live, numbered, start[:, None])[:-1]
    sources = torch.stack([prev[:, :, 2:], prev[:, :, 1:-1], prev[:, :, :-2]], 1)  # (T, 3, B, S)
    emission = log_probs.gather(2, ext[None].expand(steps, size, width))  # (T, B, S)
    num_arcs = arc_ok.numel()
    arc_id = torch.arange(num_arcs, device=device).view(arc_ok.shape)

    last = start + input_lengths * ext_len  # (T, 2L): the last position
    two = target_lengths > 0  # (T, 2L − 1) is final too
    present = torch.stack([torch.ones_like(two), two], 1)
    counts = present.sum(1)
    first_final = num_arcs + 1 + torch.cumsum(counts, 0) - counts
    ends = torch.stack([last, last - 1], 1)
    graph = Graph(
        sources.flatten(),
        state[:, None].expand(-1, 3, -1, -1).flatten(),
        ext[None, None].expand(steps, 3, -1, -1).flatten(),
        torch.where(arc_ok, emission[:, None], float("-inf")).flatten(),
        start,
        ends[present],
        offsets,
        check=False,
    )

    # forward tables (K = 3, n = B·S): the sources of (t, s); a forbidden arc weighs −∞
    superfinal = num_states + 1 + torch.arange(size, device=device)
    forward_levels = [(state[k].flatten(), sources[k].flatten(1), arc_id[k].flatten(1)) for k in range(steps)]
    forward_levels.append(
        (
            superfinal,
            torch.where(present, ends, dummy).T.contiguous(),
            torch.where(
                present, first_final[:, None] + torch.arange(2, device=device), num_arcs
            ).T.contiguous(),
        )
    )
    # backward tables (K = 4): (t, s) → (t + 1, s + k) by move k (arc id + 3·B·S + k·(B·S + 1)),
    # then (row 3) its final arc
    plane = size * width
    out_arcs = torch.empty((steps, 4, size, width), dtype=torch.long, device=device)
    out_states = torch.empty((steps, 4, size, width), dtype=torch.long, device=device)
    for k in range(3):  # fill each move's table, then pad its last frame and last k positions
        out_arcs[:-1, k, :, : width - k] = arc_id[:-1, 0, :, : width - k] + (3 * plane + k * (plane + 1))
        out_states[:-1, k, :, : width - k] = state[1:, :, k:]
        out_arcs[:-1, k, :, width - k :] = num_arcs
        out_states[:-1, k, :, width - k :] = dummy
    out_arcs[-1, :3] = num_arcs
    out_states[-1, :3] = dummy
    out_arcs[:, 3] = num_arcs
    out_states[:, 3] = dummy
    rows = torch.arange(size, device=device)
    out_arcs[input_lengths - 1, 3, rows, ext_len - 1] = first_final
    out_arcs[(input_lengths - 1)[two], 3, rows[two], (ext_len - 2)[two]] = first_final[two] + 1
    out_states[input_lengths - 1, 3, rows, ext_len - 1] = superfinal
    out_states[(input_lengths - 1)[two], 3, rows[two], (ext_len - 2)[two]] = superfinal[two]
    backward_levels = [
        (state[k].flatten(), out_states[k].flatten(1), out_arcs[k].flatten(1))
        for k in range(steps - 1, -1, -1)
    ]
    start_arcs = torch.stack([arc_id[0, 0, :, 0], arc_id[0, 1, :, 1]])  # frame 1: s = 0 by stay, 1 by advance
    backward_levels.append((start, state[0, :, :2].T.contiguous(), start_arcs))
    graph.schedule = Schedule(num_states, num_arcs, start, forward_levels, backward_levels)
    return graph


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    *,
    blank: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """−log p(y | x) by the forward algorithm over :func:`ctc_graph`; ``reduction`` as
    ``torch.nn.CTCLoss`` (``mean`` divides each loss by its target length, then averages)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    graph = ctc_graph(log_probs, targets, input_lengths, target_lengths, blank=blank)
    loss = -forward_score(graph, what="target of sample")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    lengths = torch.as_tensor(target_lengths, device=loss.device).clamp_min(1).to(loss.dtype)
    return (loss / lengths).mean()


def forced_align(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, *, blank: int = 0
) -> tuple[Tensor, Tensor]:
    """The best CTC alignment (Viterbi over :func:`ctc_graph`): (B, T) frame labels (−1 past
    each input's length) and (B,) its log-probability."""
    graph = ctc_graph(log_probs.detach(), targets, input_lengths, target_lengths, blank=blank)
    best = viterbi(graph, what="target of sample")
    frames = torch.full(
        (log_probs.shape[1], log_probs.shape[0]), -1, dtype=torch.long, device=log_probs.device
    )
    width = best.path.shape[1]
    frames[:, :width] = torch.where(best.path >= 0, graph.label[best.path.clamp_min(0)], -1)
    return frames, best.score
