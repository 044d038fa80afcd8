"""The forward and Viterbi algorithms over a batch of acyclic graphs, with gradients.

For a graph with arc scores w_a and the set P of start-to-final paths:

* **forward** (log semiring): F = log Σ_{π∈P} exp(Σ_{a∈π} w_a), the negative free energy
  of the graph at inverse temperature 1 (LeCun et al. 1998, Section VI.C "forward
  algorithm"; LeCun et al. 2006, Section 6). ∂F/∂w_a = P(a ∈ π) under
  P(π) ∝ exp(score(π)): the **arc posterior**, computed exactly by one backward sweep
  (α_src + w_a + β_dst − F, the forward–backward algorithm).
* **Viterbi** (tropical semiring): V = max_{π∈P} Σ_{a∈π} w_a, with the best path by
  back-pointers; ∂V/∂w_a = 1 on the best path, 0 elsewhere (a sub-gradient at ties).

Both sweep the topological levels of :class:`~genoise.structured.graph.Schedule`: for each
level, one gather of the predecessors' scores, one add, one ``logsumexp`` (or ``max``) over
the padded incoming arcs, one scatter — vectorised over all states of the level and the
whole batch. The backward sweep is written out (``torch.autograd.Function``) instead of
letting autograd record every level, so memory stays O(states + arcs).

A graph without any start-to-final path has F = V = −∞: instead of returning that
silently, both raise :class:`NoPathError` naming the graphs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from genoise.structured.graph import EPSILON, Graph, Schedule, pack_left


class NoPathError(ValueError):
    """A graph of the batch has no path from its start state to a final state."""

    def __init__(self, graphs: list[int], what: str = "graph") -> None:
        self.graphs = graphs
        shown = ", ".join(map(str, graphs[:5])) + (" …" if len(graphs) > 5 else "")
        super().__init__(
            f"{what} {shown} of the batch has no path from start to a final state "
            f"(score -inf); {len(graphs)} graph(s) affected"
        )


def _gather(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` for a (K, n) index table (``index_select`` is several times faster
    than advanced indexing for these small gathers)."""
    return values.index_select(0, index.view(-1)).view(index.shape)


def _sweep_forward(w_ext: Tensor, schedule: Schedule, tropical: bool) -> tuple[Tensor, Tensor | None]:
    size = schedule.num_states + 1 + schedule.batch_size
    alpha = w_ext.new_full((size,), float("-inf"))
    alpha[schedule.start] = 0.0
    best = torch.full((size,), -1, dtype=torch.long, device=w_ext.device) if tropical else None
    for states, sources, arcs in schedule.forward_levels:
        candidates = _gather(alpha, sources) + _gather(w_ext, arcs)  # (K, n)
        if tropical:
            values, which = candidates.max(0)
            best.index_copy_(0, states, arcs.gather(0, which[None]).squeeze(0))
        else:
            values = torch.logsumexp(candidates, 0)
        alpha.index_copy_(0, states, values)
    return alpha, best


def _sweep_backward(w_ext: Tensor, alpha: Tensor, score: Tensor, grad: Tensor, graph: Graph) -> Tensor:
    """β by the backward sweep, and on the way every arc's gradient
    g_b · exp(α_src + w + β_dst − F_b) (each real arc is in exactly one row: its source's)."""
    schedule = graph.get_schedule()
    size = schedule.num_states + 1 + schedule.batch_size
    beta = w_ext.new_full((size,), float("-inf"))
    beta[schedule.superfinal] = 0.0
    ends = graph.state_offsets[1:]  # the graph of a state: searchsorted over the offsets, per level
    reached = torch.where(torch.isneginf(score), 0.0, score)  # graphs without a path get no gradient
    positive = bool((grad > 0).all())
    if positive:  # the usual case (a loss summed or averaged): fold g_b into the exponent
        reached = reached - torch.log(grad)
    lowest = torch.finfo(w_ext.dtype).min  # a row whose arcs are all −∞ keeps exp(−∞ − lowest) = 0
    grad_ext = torch.zeros_like(w_ext)
    for states, targets, arcs in schedule.backward_levels:
        partial = _gather(w_ext, arcs) + _gather(beta, targets)  # (K, n)
        top = partial.amax(0).clamp_min(lowest)
        shares = torch.exp(partial - top)  # one exponential serves β and the posteriors
        beta.index_copy_(0, states, top + torch.log(shares.sum(0)))
        owner = torch.searchsorted(ends, states, right=True)
        factor = torch.exp(top + alpha.index_select(0, states) - reached.index_select(0, owner))
        if not positive:
            factor = factor * grad.index_select(0, owner)
        grad_ext.index_copy_(0, arcs.view(-1), (shares * factor).view(-1))
    return grad_ext[: graph.num_arcs]


def _check_paths(score: Tensor, what: str, missing: str) -> None:
    if missing == "ignore":
        return
    if missing != "raise":
        raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
    missing = torch.isneginf(score)
    if bool(missing.any()):
        raise NoPathError(missing.nonzero().flatten().tolist(), what)


class _ForwardScore(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, graph: Graph, what: str, missing: str) -> Tensor:
        schedule = graph.get_schedule()
        w_ext = schedule.extend(weight.detach(), graph.final.shape[0])
        alpha, _ = _sweep_forward(w_ext, schedule, tropical=False)
        score = alpha[schedule.superfinal]
        _check_paths(score, what, missing)
        ctx.graph, ctx.w_ext = graph, w_ext
        ctx.save_for_backward(alpha, score)
        return score

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        alpha, score = ctx.saved_tensors
        return _sweep_backward(ctx.w_ext, alpha, score, grad, ctx.graph), None, None, None


class _ViterbiScore(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, graph: Graph, what: str, missing: str) -> tuple[Tensor, Tensor]:
        schedule = graph.get_schedule()
        w_ext = schedule.extend(weight.detach(), graph.final.shape[0])
        alpha, best = _sweep_forward(w_ext, schedule, tropical=True)
        score = alpha[schedule.superfinal]
        _check_paths(score, what, missing)
        best[schedule.superfinal[torch.isneginf(score)]] = -1  # no path: an empty trace
        path = _trace(best, schedule, graph)
        ctx.graph = graph
        ctx.save_for_backward(path)
        ctx.mark_non_differentiable(path)
        return score, path

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor, _: Tensor) -> tuple[Tensor, None, None, None]:
        (path,) = ctx.saved_tensors
        graph: Graph = ctx.graph
        grad_weight = grad.new_zeros(graph.num_arcs)
        on_path = path >= 0
        rows = torch.arange(path.shape[0], device=path.device)[:, None].expand_as(path)
        grad_weight.index_put_((path[on_path],), grad[rows[on_path]], accumulate=True)
        return grad_weight, None, None, None


def _trace(best: Tensor, schedule: Schedule, graph: Graph) -> Tensor:
    """Follow the back-pointers from every super-final: (B, P) real arcs in path order, −1 padded."""
    state = schedule.superfinal
    steps = []
    for _ in range(len(schedule.forward_levels)):
        arc = best[state]
        alive = arc >= 0
        if not bool(alive.any()):
            break
        steps.append(torch.where(alive & (arc < graph.num_arcs), arc, -1))
        state = torch.where(alive, schedule.source_of(graph, arc), state)
    if not steps:
        return torch.full((schedule.batch_size, 0), -1, dtype=torch.long, device=best.device)
    path = torch.stack(steps[::-1], 1)
    return pack_left(path, path >= 0)[0]  # virtual final arcs and finished rows are −1


def forward_score(graph: Graph, *, what: str = "graph", missing: str = "raise") -> Tensor:
    """(B,) log Σ over start-to-final paths of exp(path score); differentiable in
    ``graph.weight`` (its gradient is the arc posteriors). A graph without a path raises
    :class:`NoPathError` (``what`` names the graphs in it), or with ``missing="ignore"``
    scores −inf and gets no gradient."""
    return _ForwardScore.apply(graph.weight, graph, what, missing)


class ViterbiResult(NamedTuple):
    """score : (B,) best path score (differentiable); path : (B, P) its arcs in order, −1
    padded; labels : (B, P) their non-ε labels, −1 padded; lengths : (B,) label counts."""

    score: Tensor
    path: Tensor
    labels: Tensor
    lengths: Tensor


def viterbi(graph: Graph, *, what: str = "graph", missing: str = "raise") -> ViterbiResult:
    """The best path of every graph (tropical semiring) and its labels (ε arcs dropped);
    ``missing`` as in :func:`forward_score` (an ignored graph has an empty path)."""
    score, path = _ViterbiScore.apply(graph.weight, graph, what, missing)
    labels = torch.where(path >= 0, graph.label[path.clamp_min(0)], EPSILON)
    labels, lengths = pack_left(labels, labels != EPSILON)
    return ViterbiResult(score, path, labels, lengths)


def viterbi_score(graph: Graph, *, what: str = "graph", missing: str = "raise") -> Tensor:
    """(B,) the best path score max_π score(π); its gradient is the best path's indicator."""
    return viterbi(graph, what=what, missing=missing).score


def arc_posteriors(graph: Graph) -> Tensor:
    """(A,) P(arc on the path) under P(π) ∝ exp(score(π)), per graph: ∂F/∂w."""
    weight = graph.weight.detach().requires_grad_(True)
    with torch.enable_grad():
        score = forward_score(graph.with_weight(weight))
        (grad,) = torch.autograd.grad(score.sum(), weight)
    return grad
