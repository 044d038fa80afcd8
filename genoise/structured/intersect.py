"""Intersection (composition of acceptors) of a batch of graphs with a batch of automata.

The product of graph G (acyclic) and automaton A (any, cycles allowed: a grammar, the
"every sequence but y" acceptor) has states (g, q); an arc g → g' labelled l pairs with
every arc q → q' of A with the same label into (g, q) → (g', q'), weight w_g + w_q; an
ε arc of G moves G alone ((g, q) → (g', q) for every q). Start (g₀, q₀); finals: final in
both. The product of an acyclic G with anything is acyclic, so the forward and Viterbi
sweeps apply. This is the "composition transformer" of LeCun et al. 1998, Section IV.E
(there between an interpretation graph and a grammar or the desired label sequence),
restricted to acceptors.

Vectorised: G's arcs find their partners by one ``searchsorted`` over A's arcs sorted by
(graph, label); pairs are expanded with ``repeat_interleave``; states are numbered
g · Q_max + q and compacted with ``unique``. Weights are gathered from both inputs, so the
product is differentiable in both; ``arc_map`` names the arc of G behind every product arc.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise.structured.graph import EPSILON, Graph


def _expand(lo: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """For rows with ranges [lo_i, lo_i + counts_i): (row of each element, element)."""
    rows = torch.repeat_interleave(torch.arange(lo.shape[0], device=lo.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return rows, lo[rows] + torch.arange(rows.shape[0], device=lo.device) - first[rows]


def repeat_graph(graph: Graph, batch_size: int) -> Graph:
    """A batch of one graph repeated ``batch_size`` times (e.g. one grammar for a batch)."""
    if graph.batch_size != 1:
        raise ValueError(f"repeat_graph needs a batch of one graph, got {graph.batch_size}")
    n, device = graph.num_states, graph.device
    shift = torch.arange(batch_size, device=device) * n

    def tile(t: Tensor) -> Tensor:
        return (t[None, :] + shift[:, None]).flatten()

    return Graph(
        tile(graph.src),
        tile(graph.dst),
        graph.label.repeat(batch_size),
        graph.weight.repeat(batch_size),
        graph.start + shift,
        tile(graph.final),
        torch.arange(batch_size + 1, device=device) * n,
    )


def intersect(graph: Graph, automaton: Graph) -> Graph:
    """The product acceptor of ``graph[b]`` and ``automaton[b]`` for every b (an automaton
    batch of one is used for every graph). ``automaton`` may not have ε arcs."""
    if automaton.batch_size == 1 and graph.batch_size > 1:
        automaton = repeat_graph(automaton, graph.batch_size)
    if automaton.batch_size != graph.batch_size:
        raise ValueError(
            f"cannot intersect a batch of {graph.batch_size} graphs with {automaton.batch_size} automata"
        )
    if bool((automaton.label == EPSILON).any()):
        raise ValueError("the automaton of an intersection may not have epsilon arcs")
    device = graph.device
    a_offsets = automaton.state_offsets.to(device)
    q_sizes = a_offsets.diff()
    q_max = int(q_sizes.max()) if q_sizes.numel() else 1
    g_graph, a_graph = graph.arc_graph, automaton.arc_graph
    num_keys = int(torch.cat([graph.label, automaton.label, graph.label.new_zeros(1)]).max()) + 2
    a_key = a_graph * num_keys + automaton.label
    a_order = torch.argsort(a_key, stable=True)
    sorted_key = a_key[a_order]

    labelled = (graph.label != EPSILON).nonzero().flatten()
    g_key = g_graph[labelled] * num_keys + graph.label[labelled]
    lo = torch.searchsorted(sorted_key, g_key, side="left")
    hi = torch.searchsorted(sorted_key, g_key, side="right")
    rows, pos = _expand(lo, hi - lo)
    g_arc, a_arc = labelled[rows], a_order[pos]

    def local(q: Tensor, b: Tensor) -> Tensor:
        return q - a_offsets[b]

    pair_src = graph.src[g_arc] * q_max + local(automaton.src[a_arc], a_graph[a_arc])
    pair_dst = graph.dst[g_arc] * q_max + local(automaton.dst[a_arc], a_graph[a_arc])
    pair_weight = graph.weight[g_arc] + automaton.weight[a_arc]

    eps = (graph.label == EPSILON).nonzero().flatten()
    e_rows, q = _expand(torch.zeros_like(eps), q_sizes[g_graph[eps]])
    e_arc = eps[e_rows]
    eps_src, eps_dst = graph.src[e_arc] * q_max + q, graph.dst[e_arc] * q_max + q

    start = graph.start * q_max + local(automaton.start, torch.arange(graph.batch_size, device=device))
    f_graph = graph.state_graph[graph.final]
    af_graph = automaton.state_graph[automaton.final]
    af_order = torch.argsort(af_graph, stable=True)
    af_lo = torch.searchsorted(af_graph[af_order], f_graph, side="left")
    af_hi = torch.searchsorted(af_graph[af_order], f_graph, side="right")
    f_rows, f_pos = _expand(af_lo, af_hi - af_lo)
    af = automaton.final[af_order[f_pos]]
    final = graph.final[f_rows] * q_max + local(af, af_graph[af_order[f_pos]])

    src = torch.cat([pair_src, eps_src])
    dst = torch.cat([pair_dst, eps_dst])
    used, inverse = torch.unique(torch.cat([src, dst, start, final]), return_inverse=True)
    n_arcs = src.shape[0]
    src, dst = inverse[:n_arcs], inverse[n_arcs : 2 * n_arcs]
    start_c = inverse[2 * n_arcs : 2 * n_arcs + start.shape[0]]
    final_c = inverse[2 * n_arcs + start.shape[0] :]
    bounds = graph.state_offsets.to(device) * q_max
    offsets = torch.searchsorted(used, bounds)
    origin = torch.cat([g_arc, e_arc])
    return Graph(
        src,
        dst,
        graph.label[origin],
        torch.cat([pair_weight, graph.weight[e_arc]]),
        start_c,
        final_c,
        offsets,
        arc_map=origin if graph.arc_map is None else graph.arc_map[origin],
    )
