"""Small automata over labels (grammars), the emission graph of a frame classifier, and the
CTC topology that lets a grammar constrain a frame-level decoder.

The grammars read the alphabet of :mod:`genoise.data.digit_strings`: digits 0–9 and the
decimal separator (label 10). The check-amount grammar is the regular language the
generator draws from (LeCun et al. 1998, Section X: "the amount … must follow a
grammar"; composing the interpretation graph with it removes every reading a check
cannot carry)::

    [1-9][0-9]*  |  [1-9][0-9]*\\.[0-9][0-9]  |  0\\.[0-9][0-9]

States: 0 start; 1 integer part begun by 1–9 (accepting); 2 integer part "0"; 3 after
the separator; 4 one cent digit; 5 two cent digits (accepting).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise.data.digit_strings import NUM_SYMBOLS, SEPARATOR
from genoise.structured.graph import Graph, offsets_of, pack_left


def automaton(
    num_states: int, arcs: list[tuple[int, int, int]], accept: list[int], *, start: int = 0
) -> Graph:
    """An unweighted automaton (a batch of one) from ``(src, dst, label)`` triples."""
    return Graph.from_arcs(num_states, arcs, start=start, final=accept)


def amount_grammar() -> Graph:
    """The check-amount language of the module docstring (six states)."""
    digits, nonzero = range(10), range(1, 10)
    arcs = [(0, 1, d) for d in nonzero] + [(0, 2, 0)] + [(1, 1, d) for d in digits]
    arcs += [(1, 3, SEPARATOR), (2, 3, SEPARATOR)] + [(3, 4, d) for d in digits] + [(4, 5, d) for d in digits]
    return automaton(6, arcs, [1, 5])


def digits_grammar() -> Graph:
    """One or more digits (no separator): the language of ``mode="free"`` strings."""
    return automaton(2, [(0, 1, d) for d in range(10)] + [(1, 1, d) for d in range(10)], [1])


def any_sequence(num_labels: int = NUM_SYMBOLS) -> Graph:
    """Every sequence of at least one label (no grammar)."""
    return automaton(2, [(0, 1, v) for v in range(num_labels)] + [(1, 1, v) for v in range(num_labels)], [1])


def ctc_topology(grammar: Graph, blank: int = 0, shift: int = 1) -> Graph:
    """The automaton over *frame* labels whose CTC collapse (merge repeats, drop blanks) is
    a sentence of ``grammar``: states (q, last) with last = the label being repeated, or
    none after a blank. Output label v is frame label v + ``shift`` (the frame classifier's
    class 0 is the blank)."""
    if grammar.batch_size != 1:
        raise ValueError("ctc_topology needs a single grammar (a batch of one)")
    arcs_by_state: dict[int, list[tuple[int, int]]] = {}
    for s, d, v in zip(grammar.src.tolist(), grammar.dst.tolist(), grammar.label.tolist(), strict=True):
        arcs_by_state.setdefault(s, []).append((v, d))
    states: dict[tuple[int, int], int] = {}

    def number(q: int, last: int) -> int:
        return states.setdefault((q, last), len(states))

    start = number(int(grammar.start[0]), -1)
    arcs, frontier = [], [(int(grammar.start[0]), -1)]
    while frontier:  # build only the reachable (q, last) pairs (a small automaton, built once)
        q, last = frontier.pop()
        here = number(q, last)
        moves = [(blank, q, -1)] + ([(last + shift, q, last)] if last >= 0 else [])
        moves += [(v + shift, d, v) for v, d in arcs_by_state.get(q, []) if v != last]
        for frame_label, q_next, last_next in moves:
            new = (q_next, last_next) not in states
            arcs.append((here, number(q_next, last_next), frame_label))
            if new:
                frontier.append((q_next, last_next))
    accept = set(grammar.final.tolist())
    finals = [i for (q, _), i in states.items() if q in accept]
    return automaton(len(states), arcs, finals, start=start)


def emission_graph(log_probs: Tensor, lengths: Tensor | None = None) -> Graph:
    """Frame scores as a graph: for graph b a chain of T_b + 1 states with C parallel arcs
    per frame t, labelled c and weighted ``log_probs[t, b, c]`` ((T, B, C) as CTC)."""
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must be (T, B, C), got shape {tuple(log_probs.shape)}")
    steps, size, classes = log_probs.shape
    device = log_probs.device
    lengths = torch.full((size,), steps, device=device) if lengths is None else lengths.to(device).long()
    if lengths.shape != (size,) or (lengths < 1).any() or (lengths > steps).any():
        raise ValueError(f"lengths must be ({size},) in 1..{steps}")
    offsets = offsets_of(lengths + 1)
    frame, graph_of = (torch.arange(steps, device=device)[:, None] < lengths).nonzero(as_tuple=True)
    t, b = frame.repeat_interleave(classes), graph_of.repeat_interleave(classes)
    c = torch.arange(classes, device=device).repeat(frame.shape[0])
    src = offsets[b] + t
    return Graph(src, src + 1, c, log_probs[t, b, c], offsets[:-1].clone(), offsets[1:] - 1, offsets)


def collapse(frames: Tensor, blank: int = 0, shift: int = 1) -> tuple[Tensor, Tensor]:
    """CTC's many-to-one map on (B, T) frame labels (−1 = past the end): merge repeats, drop
    blanks, subtract ``shift``. Returns (B, L) labels padded with −1 and (B,) lengths."""
    previous = torch.cat([frames.new_full((frames.shape[0], 1), -1), frames[:, :-1]], 1)
    keep = (frames >= 0) & (frames != blank) & (frames != previous)
    return pack_left(frames - shift, keep)
