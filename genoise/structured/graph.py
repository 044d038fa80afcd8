"""Weighted acyclic graphs as tensors: the data structure of graph transformer networks
(LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition", Section IV; Hannun, Pratap, Kahn & Hsu 2020, "Differentiable weighted
finite-state transducers", for the modern form).

A :class:`Graph` is a *batch* of B graphs stored as one disjoint union, the way graph
libraries batch molecules (states of graph b are the contiguous range
``state_offsets[b] : state_offsets[b + 1]``): arcs ``src → dst`` with an integer
``label`` (``EPSILON`` = −1 for none) and a real ``weight`` that lives in the autograd
graph; one start state per graph and any number of final states. A path's **score** is
the sum of its arc weights (a log-probability, or minus an energy: path energy
E = −score); the forward and Viterbi algorithms of :mod:`genoise.structured.semiring`
reduce over all start-to-final paths.

The algorithms sweep the states in topological **levels** (Kahn's algorithm: a state's
level is the length of the longest path that reaches it), vectorised over every state of
a level and over the batch at once; :class:`Schedule` holds, per level, the padded table
of each state's incoming (and outgoing) arcs. A graph whose arcs form a cycle has no such
order and is refused with an error naming the graph.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_int, has_nan

EPSILON = -1  # label of an arc that reads / writes nothing

LevelTable = tuple[Tensor, Tensor, Tensor]  # (states (n,), neighbour states (K, n), arcs (K, n))


@dataclass
class Schedule:
    """The level-by-level plan of the forward and backward sweeps.

    Extended numbering: real states ``0 … S−1``, a *dummy* state ``S`` (score −∞) that pads
    the tables, and one *super-final* state ``S + 1 + b`` per graph reached from each of its
    final states by a virtual arc of weight 0. Extended arcs: the A real arcs, the dummy arc
    ``A`` (weight −∞), then one virtual arc per final state.

    forward_levels : per level in increasing order, (states, their arcs' sources, their
        incoming arcs), padded with the dummy; the last level holds the super-finals.
    backward_levels : per level in decreasing order, (states, their arcs' destinations,
        their outgoing arcs), padded with the dummy.
    """

    num_states: int
    num_arcs: int
    start: Tensor
    forward_levels: Sequence[LevelTable]
    backward_levels: Sequence[LevelTable]

    @property
    def batch_size(self) -> int:
        return int(self.start.shape[0])

    @property
    def superfinal(self) -> Tensor:
        return torch.arange(self.batch_size, device=self.start.device) + (self.num_states + 1)

    def source_of(self, graph: Graph, arcs: Tensor) -> Tensor:
        """The source state of extended arcs (real, dummy → S, virtual final → its final state)."""
        real = arcs.clamp(0, self.num_arcs - 1)
        finals = (arcs - self.num_arcs - 1).clamp(0, max(graph.final.shape[0] - 1, 0))
        source = torch.where(arcs < self.num_arcs, graph.src[real], self.num_states)
        return torch.where(arcs > self.num_arcs, graph.final[finals], source)

    def extend(self, weight: Tensor, num_final: int) -> Tensor:
        """Arc weights in the extended numbering: real, −∞ for the dummy, 0 per final."""
        return torch.cat([weight, weight.new_full((1,), float("-inf")), weight.new_zeros(num_final)])


@dataclass
class Graph:
    """A batch of weighted acyclic graphs (acceptors) as one disjoint union.

    Attributes
    ----------
    src, dst : (A,) long — arc endpoints (global state numbers)
    label : (A,) long — arc labels, ``EPSILON`` (−1) for none
    weight : (A,) float — arc scores (log-domain; gradients flow into them)
    start : (B,) long — the start state of every graph
    final : (F,) long — the final states of all graphs
    state_offsets : (B + 1,) long — graph b owns states ``state_offsets[b]:state_offsets[b+1]``
    arc_map : (A,) long or None — for a graph made by an operation (intersection), the arc
        of the original graph each arc comes from
    """

    src: Tensor
    dst: Tensor
    label: Tensor
    weight: Tensor
    start: Tensor
    final: Tensor
    state_offsets: Tensor
    arc_map: Tensor | None = field(default=None, repr=False, compare=False)
    schedule: Schedule | None = field(default=None, repr=False, compare=False)
    check: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.check:  # built by this package from validated inputs (e.g. ctc_graph)
            return
        num_arcs = self.src.shape[0]
        for name in ("src", "dst", "label", "weight"):
            tensor = getattr(self, name)
            if tensor.ndim != 1 or tensor.shape[0] != num_arcs:
                raise ValueError(
                    f"graph {name} must be a vector of {num_arcs} arcs, got shape {tuple(tensor.shape)}"
                )
        if not self.weight.is_floating_point():
            raise ValueError(f"graph weights must be floating point, got {self.weight.dtype}")
        if has_nan(self.weight) or bool((self.weight.detach() == float("inf")).any()):
            raise ValueError("graph weights contain NaN or +inf (use -inf for a forbidden arc)")
        n = self.num_states
        for name in ("src", "dst", "start", "final"):
            tensor = getattr(self, name)
            if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= n):
                raise ValueError(f"graph {name} holds a state outside 0..{n - 1}")
        if self.start.shape[0] != self.batch_size:
            raise ValueError(
                f"graph needs one start state per graph ({self.batch_size}), got {self.start.shape[0]}"
            )
        if self.label.numel() and int(self.label.min()) < EPSILON:
            raise ValueError(f"arc labels must be >= {EPSILON} (EPSILON), got {int(self.label.min())}")
        if torch.unique(self.final).numel() != self.final.numel():
            raise ValueError("graph final states repeat (a final state would count its paths twice)")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_arcs(
        cls,
        num_states: int,
        arcs: Sequence[tuple[int, int, int]] | Tensor,
        weight: Tensor | Sequence[float] | None = None,
        *,
        start: int = 0,
        final: Sequence[int] | int = (-1,),
    ) -> Graph:
        """One graph from ``(src, dst, label)`` triples (``final`` indices may be negative,
        counted from the last state; default: the last state)."""
        num_states = check_int("num_states", num_states, min=1)
        table = torch.as_tensor(arcs, dtype=torch.long).reshape(-1, 3)
        if weight is None:
            weight = torch.zeros(table.shape[0])
        weight = torch.as_tensor(weight) if not isinstance(weight, Tensor) else weight
        if not weight.is_floating_point():
            weight = weight.float()
        finals = torch.as_tensor([final] if isinstance(final, int) else list(final), dtype=torch.long)
        finals = torch.where(finals < 0, finals + num_states, finals)
        return cls(
            table[:, 0],
            table[:, 1],
            table[:, 2],
            weight,
            torch.tensor([start % num_states]),
            finals,
            torch.tensor([0, num_states]),
        )

    @property
    def batch_size(self) -> int:
        return int(self.state_offsets.shape[0]) - 1

    @property
    def num_states(self) -> int:
        return int(self.state_offsets[-1])

    @property
    def num_arcs(self) -> int:
        return int(self.weight.shape[0])

    @property
    def device(self) -> torch.device:
        return self.weight.device

    @cached_property
    def state_graph(self) -> Tensor:
        """(S,) the graph of every state (computed once per graph)."""
        sizes = self.state_offsets.diff()
        return torch.repeat_interleave(torch.arange(self.batch_size, device=sizes.device), sizes)

    @property
    def arc_graph(self) -> Tensor:
        """(A,) the graph of every arc."""
        return self.state_graph[self.src]

    def with_weight(self, weight: Tensor) -> Graph:
        """The same topology (and cached schedule) with other arc weights."""
        if weight.shape != self.weight.shape or not weight.is_floating_point():
            raise ValueError(
                f"new weights must be a float vector of {self.num_arcs} arcs, got "
                f"{tuple(weight.shape)} {weight.dtype}"
            )
        return replace(self, weight=weight, schedule=self.schedule, check=False)

    def to(self, device: torch.device | str) -> Graph:
        moved = {
            name: getattr(self, name).to(device)
            for name in ("src", "dst", "label", "weight", "start", "final", "state_offsets")
        }
        return Graph(**moved)

    def select(self, index: int) -> Graph:
        """Graph ``index`` of the batch as a batch of one (states renumbered from 0)."""
        index = check_int("index", index, min=0, max=self.batch_size - 1)
        lo, hi = int(self.state_offsets[index]), int(self.state_offsets[index + 1])
        arcs = (self.src >= lo) & (self.src < hi)
        finals = self.final[(self.final >= lo) & (self.final < hi)]
        return Graph(
            self.src[arcs] - lo,
            self.dst[arcs] - lo,
            self.label[arcs],
            self.weight[arcs],
            self.start[index : index + 1] - lo,
            finals - lo,
            torch.tensor([0, hi - lo], device=self.state_offsets.device),
        )

    def get_schedule(self) -> Schedule:
        """The level plan (built once per topology, then cached)."""
        if self.schedule is None:
            self.schedule = build_schedule(self)
        return self.schedule


def batch(graphs: Sequence[Graph]) -> Graph:
    """Concatenate graphs (each itself a batch) into one batch, in order."""
    if not graphs:
        raise ValueError("batch() needs at least one graph")
    state_shift = torch.cumsum(torch.tensor([0] + [g.num_states for g in graphs[:-1]]), 0).tolist()
    cat = torch.cat
    offsets = [graphs[0].state_offsets[:1]] + [
        g.state_offsets[1:] + s for g, s in zip(graphs, state_shift, strict=True)
    ]
    return Graph(
        cat([g.src + s for g, s in zip(graphs, state_shift, strict=True)]),
        cat([g.dst + s for g, s in zip(graphs, state_shift, strict=True)]),
        cat([g.label for g in graphs]),
        cat([g.weight for g in graphs]),
        cat([g.start + s for g, s in zip(graphs, state_shift, strict=True)]),
        cat([g.final + s for g, s in zip(graphs, state_shift, strict=True)]),
        cat(offsets),
    )


# ----------------------------------------------------------------------- scheduling
def topological_levels(num_states: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Kahn's algorithm, one frontier at a time: level[s] = longest path length reaching s.
    States on a cycle (never freed) get level −1."""
    indegree = np.bincount(dst, minlength=num_states)
    order = np.argsort(src, kind="stable")
    out_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=num_states))])
    level = np.full(num_states, -1, dtype=np.int64)
    frontier = np.flatnonzero(indegree == 0)
    depth = 0
    while frontier.size:
        level[frontier] = depth
        counts = out_ptr[frontier + 1] - out_ptr[frontier]
        first = np.repeat(out_ptr[frontier] - np.cumsum(counts) + counts, counts)
        arcs = order[first + np.arange(int(counts.sum()))]
        reached, hits = np.unique(dst[arcs], return_counts=True)
        indegree[reached] -= hits
        frontier = reached[indegree[reached] == 0]
        depth += 1
    return level


def level_tables(
    level: np.ndarray,
    key_state: np.ndarray,
    other: np.ndarray,
    arc: np.ndarray,
    dummy_state: int,
    dummy_arc: int,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group arcs by the level of ``key_state`` and pad each state's arcs into a column:
    per level, (states (n,), others (K, n), arcs (K, n)). The (K, n) layout makes the
    reductions over a state's arcs elementwise operations across K contiguous rows."""
    order = np.lexsort((arc, key_state, level[key_state]))
    keys, arcs, others = key_state[order], arc[order], other[order]
    if keys.size == 0:
        return []
    new = np.concatenate([[True], keys[1:] != keys[:-1]])
    group = np.cumsum(new) - 1
    group_start = np.flatnonzero(new)
    rank = np.arange(keys.size) - group_start[group]
    states = keys[group_start]
    state_level = level[states]
    bounds = np.flatnonzero(np.concatenate([[True], state_level[1:] != state_level[:-1], [True]]))
    arc_bounds = np.searchsorted(group, bounds)  # arcs are sorted by group, groups by level
    tables = []
    for (lo, hi), (first, last) in zip(
        itertools.pairwise(bounds), itertools.pairwise(arc_bounds), strict=True
    ):
        column, depth = group[first:last] - lo, rank[first:last]
        width = int(depth.max()) + 1
        neighbours = np.full((width, hi - lo), dummy_state, dtype=np.int64)
        arc_table = np.full((width, hi - lo), dummy_arc, dtype=np.int64)
        neighbours[depth, column] = others[first:last]
        arc_table[depth, column] = arcs[first:last]
        tables.append((states[lo:hi], neighbours, arc_table))
    return tables


def build_schedule(graph: Graph) -> Schedule:
    """The level plan of ``graph``; refuses cycles and start states with incoming arcs."""
    n, num_arcs, b = graph.num_states, graph.num_arcs, graph.batch_size
    src, dst = graph.src.cpu().numpy(), graph.dst.cpu().numpy()
    final = graph.final.cpu().numpy()
    level = topological_levels(n, src, dst)
    if (level < 0).any():
        which = sorted(set(graph.state_graph.cpu().numpy()[level < 0].tolist()))
        raise ValueError(
            f"graph {which[0]} of the batch has a cycle (the forward and Viterbi "
            f"sweeps need an acyclic graph); {len(which)} graph(s) affected"
        )
    start = graph.start.cpu().numpy()
    if (level[start] != 0).any():
        bad = int(np.flatnonzero(level[start] != 0)[0])
        raise ValueError(f"the start state of graph {bad} has incoming arcs (a start state must be a source)")
    final_graph = graph.state_graph.cpu().numpy()[final]
    superfinal = n + 1 + final_graph
    top = int(level.max(initial=0)) + 1
    level_ext = np.concatenate([level, [-1], np.full(b, top)])
    ext_src = np.concatenate([src, final])
    ext_dst = np.concatenate([dst, superfinal])
    ext_arc = np.concatenate([np.arange(num_arcs), num_arcs + 1 + np.arange(final.size)])
    forward = level_tables(level_ext, ext_dst, ext_src, ext_arc, n, num_arcs)
    backward = level_tables(level_ext, ext_src, ext_dst, ext_arc, n, num_arcs)[::-1]
    device = graph.device

    def move(tables: list) -> list[LevelTable]:
        return [
            tuple(torch.from_numpy(np.ascontiguousarray(t)).to(device) for t in table) for table in tables
        ]

    return Schedule(n, num_arcs, graph.start.to(device), move(forward), move(backward))


# ----------------------------------------------------------------- small graph makers
def offsets_of(sizes: Tensor) -> Tensor:
    """(B + 1,) start of every block of a disjoint union with block sizes (B,), then the total."""
    return torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])


def pack_left(values: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """The kept entries of every row of (B, L) ``values`` moved to the front in order, −1
    after them, trimmed to the longest row; and (B,) how many each row kept."""
    lengths = keep.sum(1)
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    packed = torch.where(keep, values, -1).gather(1, order)
    return packed[:, : int(lengths.max()) if lengths.numel() else 0], lengths


def check_label_batch(labels: Tensor, lengths: Tensor | None, num_labels: int | None = None) -> Tensor:
    """(B, L) padded label sequences → their lengths, with one-line errors."""
    if labels.ndim != 2 or labels.dtype not in (torch.long, torch.int32, torch.int64):
        raise ValueError(f"labels must be a (B, L) integer tensor, got {tuple(labels.shape)} {labels.dtype}")
    if lengths is None:
        lengths = (labels >= 0).sum(1)
    if lengths.shape != (labels.shape[0],) or (lengths < 0).any() or (lengths > labels.shape[1]).any():
        raise ValueError(f"label lengths must be (B,) in 0..{labels.shape[1]}, got {lengths.tolist()}")
    valid = torch.arange(labels.shape[1], device=labels.device) < lengths[:, None]
    used = labels[valid]
    if used.numel() and (int(used.min()) < 0 or (num_labels is not None and int(used.max()) >= num_labels)):
        bad = int(used.min()) if int(used.min()) < 0 else int(used.max())
        raise ValueError(f"label {bad} is outside the alphabet 0..{(num_labels or 0) - 1}")
    return lengths.long()


def linear_graph(
    labels: Tensor,
    lengths: Tensor | None = None,
    *,
    num_labels: int | None = None,
    weight_dtype: torch.dtype = torch.float32,
) -> Graph:
    """The acceptor of exactly one label sequence per batch element: a chain of L_b + 1
    states with arcs ``j → j+1`` labelled ``labels[b, j]`` (weights 0)."""
    lengths = check_label_batch(labels, lengths, num_labels)
    offsets = offsets_of(lengths + 1)
    positions = torch.arange(labels.shape[1], device=labels.device)
    valid = positions < lengths[:, None]
    b, j = valid.nonzero(as_tuple=True)
    src = offsets[b] + j
    return Graph(
        src,
        src + 1,
        labels[b, j].long(),
        torch.zeros(src.shape[0], dtype=weight_dtype, device=labels.device),
        offsets[:-1].clone(),
        offsets[1:] - 1,
        offsets,
    )


def all_but_graph(
    labels: Tensor, num_labels: int, lengths: Tensor | None = None, weight_dtype: torch.dtype = torch.float32
) -> Graph:
    """The acceptor of every label sequence *except* ``labels[b]`` (a cyclic automaton).

    States ``0 … L`` count the matched prefix, state L+1 is "deviated" (loops on every
    label). ``j → j+1`` on y_j; ``j → L+1`` on any other label and from L on any label;
    every state but L accepts. Intersected with an interpretation graph it leaves the
    wrong answers only: its best path is the "most offending incorrect answer" of the
    margin losses (LeCun et al. 2006, "A tutorial on energy-based learning", Section 2.2).
    """
    lengths = check_label_batch(labels, lengths, num_labels)
    device = labels.device
    sizes = lengths + 2
    offsets = offsets_of(sizes)
    big_l = labels.shape[1]
    j = torch.arange(big_l + 1, device=device)
    v = torch.arange(num_labels, device=device)
    padded = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], 1).clamp_min(-1)
    in_chain = j[None, :] <= lengths[:, None]  # states 0..L
    match = (j[None, :, None] < lengths[:, None, None]) & (padded[:, :, None] == v)  # (B, L+1, V)
    b_m, j_m, v_m = match.nonzero(as_tuple=True)
    b_d, j_d, v_d = (in_chain[:, :, None] & ~match).nonzero(as_tuple=True)
    b_s, v_s = torch.ones(labels.shape[0], num_labels, dtype=torch.bool, device=device).nonzero(as_tuple=True)
    sink = offsets[:-1] + lengths + 1
    src = torch.cat([offsets[b_m] + j_m, offsets[b_d] + j_d, sink[b_s]])
    dst = torch.cat([offsets[b_m] + j_m + 1, sink[b_d], sink[b_s]])
    label = torch.cat([v_m, v_d, v_s])
    accept = torch.arange(int(offsets[-1]), device=device)
    accept = accept[accept != torch.repeat_interleave(offsets[:-1] + lengths, sizes)]
    return Graph(
        src,
        dst,
        label,
        torch.zeros(src.shape[0], dtype=weight_dtype, device=device),
        offsets[:-1].clone(),
        accept,
        offsets,
    )
