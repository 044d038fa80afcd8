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
millions of arcs; the topology here is known and the same at every frame, so each level
table is an affine function of the frame (``base + t·delta`` over (K, B, 2L + 1), with
the rows of ended inputs redirected), made when a sweep reaches it; the arc arrays
(``src``, ``dst``, ``label``) are made only if read (the loss never reads them). A target
longer than its input can produce (L + repeats > T) has no path and raises instead of
returning inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

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


class _Lattice:
    """The CTC grid of a batch in closed form: every level table is ``base + t·delta`` (one
    ``torch.add`` of (K, B, S) integer tables), with the rows of the graphs whose input has
    ended redirected; no integer table of size T·B·S exists before a sweep reaches it.

    State of (frame t + 1, position s) of graph b: ``start_b + 1 + t·(2L_b + 1) + s``, or
    the graph's *sink* past its lengths. Arc of (t, move k, b, s): ``t·3BS + k·BS + b·S + s``.
    """

    def __init__(
        self, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, steps: int, blank: int
    ):
        device = targets.device
        size = targets.shape[0]
        self.steps, self.size, self.width = steps, size, 2 * targets.shape[1] + 1
        self.plane = size * self.width
        self.num_arcs = steps * 3 * self.plane
        self.input_lengths = input_lengths
        self.shortest = int(input_lengths.min()) if size else steps
        self.last_frames = set((input_lengths - 1).tolist())
        ext = torch.full((size, self.width), blank, dtype=torch.long, device=device)
        ext[:, 1::2] = targets
        self.ext = ext
        ext_len = 2 * target_lengths + 1
        self.ext_len = ext_len
        self.offsets = offsets_of(2 + input_lengths * ext_len)
        self.num_states = int(self.offsets[-1])
        self.start, self.sink = self.offsets[:-1], self.offsets[1:] - 1
        dummy = self.num_states  # the schedule's padding state
        self.dummy = dummy
        s = torch.arange(self.width, device=device)
        first, step = self.start[:, None] + 1, ext_len[:, None]
        on_grid = s < step  # (B, S)
        sink, start = (
            self.sink[:, None].expand(size, self.width),
            self.start[:, None].expand(size, self.width),
        )
        # states of frame t + 1
        self.state_base = torch.where(on_grid, first + s, sink)
        self.state_delta = torch.where(on_grid, step, 0)
        # forward: the source of move k into (t + 1, s) is (t, s − k), or the start off the grid
        shifted = [(s - k).clamp_min(0) for k in range(3)]
        valid = torch.stack([(s >= k) & (s - k < step) for k in range(3)])  # (3, B, S)
        self.source_base = torch.where(valid, torch.stack([first - step + x for x in shifted]), start)
        self.source_delta = torch.where(valid, step, 0)
        self.first_sources = start.expand(3, size, self.width).contiguous().view(3, -1)
        # backward: move k leaves (t + 1, s) for (t + 2, s + k), by arc (t + 1, k, b, s + k)
        inside = torch.stack([s + k < self.width for k in range(3)] + [s < 0])[:, None]  # (4, 1, S)
        ahead = torch.stack([s + k for k in range(3)] + [s])[:, None]  # (4, 1, S)
        reach = inside & (ahead < step)
        self.target_base = torch.where(reach, first + step + ahead, torch.where(inside, sink, dummy))
        self.target_delta = torch.where(reach, step, 0)
        self.target_dead = torch.where(inside, sink, dummy)  # into an ended input: the sink
        rows = torch.arange(size, device=device)[:, None]
        moves = torch.arange(4, device=device)[:, None, None] * self.plane
        arc_next = 3 * self.plane + moves + rows * self.width + ahead
        self.arc_base = torch.where(inside, arc_next, self.num_arcs).view(4, -1)
        self.arc_delta = torch.where(inside, 3 * self.plane, 0).expand(4, size, self.width).reshape(4, -1)
        # the final states (T_b, 2L_b) and (T_b, 2L_b − 1) and their virtual arcs
        self.two = target_lengths > 0
        present = torch.stack([torch.ones_like(self.two), self.two], 1)
        counts = present.sum(1)
        self.first_final = self.num_arcs + 1 + torch.cumsum(counts, 0) - counts
        last = self.start + input_lengths * ext_len
        self.ends = torch.stack([last, last - 1], 1)
        self.present = present
        self.superfinal = self.num_states + 1 + torch.arange(size, device=device)

    def states(self, t: int) -> Tensor:
        out = torch.add(self.state_base, self.state_delta, alpha=t)
        if t >= self.shortest:
            out = torch.where((t >= self.input_lengths)[:, None], self.sink[:, None], out)
        return out.view(-1)

    def forward_level(self, t: int) -> tuple[Tensor, Tensor, Tensor]:
        if t == self.steps:  # the super-finals, from the final states by the virtual arcs
            arcs = self.first_final[:, None] + torch.arange(2, device=self.first_final.device)
            return (
                self.superfinal,
                torch.where(self.present, self.ends, self.dummy).T.contiguous(),
                torch.where(self.present, arcs, self.num_arcs).T.contiguous(),
            )
        sources = self.sources(t)
        arcs = torch.arange(t * 3 * self.plane, (t + 1) * 3 * self.plane, device=sources.device)
        return self.states(t), sources, arcs.view(3, -1)

    def sources(self, t: int) -> Tensor:
        """(3, B·S): the source of each move into frame t + 1."""
        if t == 0:
            return self.first_sources
        sources = torch.add(self.source_base, self.source_delta, alpha=t)
        if t - 1 >= self.shortest:
            sources = torch.where((t - 1 >= self.input_lengths)[:, None], self.start[:, None], sources)
        return sources.view(3, -1)

    def backward_level(self, t: int) -> tuple[Tensor, Tensor, Tensor]:
        if t < 0:  # the start states, left by the arcs into (1, 0) and (1, 1)
            s0 = self.state_base[:, :2].T.contiguous()
            rows = torch.arange(self.size, device=s0.device) * self.width
            return self.start, s0, torch.stack([rows, rows + self.plane + 1])
        if t == self.steps - 1:
            targets = torch.full((4, self.size, self.width), self.dummy, device=self.ext.device)
            arcs = torch.full((4, self.plane), self.num_arcs, device=self.ext.device)
        else:
            targets = torch.add(self.target_base, self.target_delta, alpha=t)
            if t + 1 >= self.shortest:
                targets = torch.where((t + 1 >= self.input_lengths)[:, None], self.target_dead, targets)
            arcs = torch.add(self.arc_base, self.arc_delta, alpha=t)
        if t in self.last_frames:  # row 3: the virtual arcs of the final states
            ending = (self.input_lengths - 1 == t).nonzero().flatten()
            arcs3 = arcs.view(4, self.size, self.width)[3]
            tails = self.ext_len[ending] - 1
            targets[3, ending, tails] = self.superfinal[ending]
            arcs3[ending, tails] = self.first_final[ending]
            two = ending[self.two[ending]]
            targets[3, two, self.ext_len[two] - 2] = self.superfinal[two]
            arcs3[two, self.ext_len[two] - 2] = self.first_final[two] + 1
        return self.states(t), targets.view(4, -1), arcs


class _Levels(Sequence):
    """A read-only sequence of level tables made on demand by ``make(index)``."""

    def __init__(self, count: int, make) -> None:
        self.count, self.make = count, make

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if not -self.count <= index < self.count:
            raise IndexError(f"level {index} of {self.count}")
        return self.make(index % self.count)


class _CTCGraph(Graph):
    """A CTC alignment graph whose arc arrays (``src``, ``dst``, ``label``: 3·T·B·(2L + 1)
    entries each) are made on first use: the loss needs only the schedule and the weights."""

    @classmethod
    def of(cls, lattice: _Lattice, weight: Tensor) -> _CTCGraph:
        graph = cls.__new__(cls)
        graph.lattice, graph.weight = lattice, weight
        graph.start, graph.final = lattice.start, lattice.ends[lattice.present]
        graph.state_offsets, graph.arc_map, graph.check = lattice.offsets, None, False
        steps = lattice.steps
        graph.schedule = Schedule(
            lattice.num_states,
            lattice.num_arcs,
            lattice.start,
            _Levels(steps + 1, lattice.forward_level),
            _Levels(steps + 1, lambda i: lattice.backward_level(steps - 1 - i)),
        )
        return graph

    @cached_property
    def src(self) -> Tensor:
        return torch.stack([self.lattice.sources(t) for t in range(self.lattice.steps)]).flatten()

    @cached_property
    def dst(self) -> Tensor:
        lattice = self.lattice
        states = torch.stack([lattice.states(t) for t in range(lattice.steps)])  # (T, B·S)
        return states[:, None].expand(-1, 3, -1).flatten()

    @cached_property
    def label(self) -> Tensor:
        return self.lattice.ext.view(-1).repeat(3 * self.lattice.steps)


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
    positions are one extra *sink* state per graph that no path uses). The level tables
    are affine in the frame (:class:`_Lattice`) and made when a sweep reaches them; the arc
    arrays ``src``, ``dst``, ``label`` when first read.
    """
    targets, input_lengths, target_lengths = _check(log_probs, targets, input_lengths, target_lengths, blank)
    steps = log_probs.shape[0]
    lattice = _Lattice(targets, input_lengths, target_lengths, steps, blank)
    device, size, width, ext = log_probs.device, lattice.size, lattice.width, lattice.ext
    t = torch.arange(steps, device=device)[:, None, None]
    s = torch.arange(width, device=device)[None, None, :]
    live = (t < input_lengths[:, None]) & (s < lattice.ext_len[:, None])  # (T, B, S)
    skip_ok = torch.zeros(size, width, dtype=torch.bool, device=device)
    skip_ok[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    first = t == 0
    arc_ok = torch.stack(
        [live & (~first | (s == 0)), live & (s >= 1) & (~first | (s == 1)), live & ~first & skip_ok[None]], 1
    )  # (T, 3, B, S): move k = stay, advance, skip
    emission = log_probs.gather(2, ext[None].expand(steps, size, width))  # (T, B, S)
    weight = torch.where(arc_ok, emission[:, None], float("-inf")).flatten()
    return _CTCGraph.of(lattice, weight)


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
