"""Small graphs and a brute-force path enumerator shared by the structured tests."""

from __future__ import annotations

import torch

from genoise.structured.graph import Graph, batch


def random_dag(
    num_states: int, num_arcs: int, seed: int, num_labels: int = 4, dtype: torch.dtype = torch.float64
) -> Graph:
    """A random acyclic graph (arcs go from lower to higher state numbers, parallel arcs
    allowed), start 0, finals: the last state and one random other."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_states - 1, (num_arcs,), generator=g)
    dst = src + 1 + (torch.rand(num_arcs, generator=g) * (num_states - 1 - src)).long()
    # a spine 0 → 1 → … guarantees a path
    spine = torch.arange(num_states - 1)
    src, dst = torch.cat([spine, src]), torch.cat([spine + 1, dst])
    labels = torch.randint(-1, num_labels, (src.shape[0],), generator=g)
    weight = torch.randn(src.shape[0], generator=g, dtype=dtype)
    other = int(torch.randint(1, num_states - 1, (1,), generator=g))
    arcs = torch.stack([src, dst, labels], 1)
    return Graph.from_arcs(num_states, arcs, weight, final=[num_states - 1, other])


def random_batch(seed: int = 0, sizes: tuple[int, ...] = (5, 7, 4)) -> Graph:
    return batch([random_dag(n, 2 * n, seed + i) for i, n in enumerate(sizes)])


def enumerate_paths(graph: Graph, index: int) -> list[list[int]]:
    """Every start-to-final path of graph ``index`` as a list of (global) arc indices."""
    lo, hi = int(graph.state_offsets[index]), int(graph.state_offsets[index + 1])
    finals = {int(f) for f in graph.final if lo <= int(f) < hi}
    out: dict[int, list[int]] = {}
    for a in range(graph.num_arcs):
        out.setdefault(int(graph.src[a]), []).append(a)
    paths: list[list[int]] = []

    def walk(state: int, arcs: list[int]) -> None:
        if state in finals:
            paths.append(arcs)
        for a in out.get(state, []):
            walk(int(graph.dst[a]), [*arcs, a])

    walk(int(graph.start[index]), [])
    return paths


def path_scores(graph: Graph, index: int) -> torch.Tensor:
    return torch.stack(
        [graph.weight[p].sum() if p else graph.weight.new_zeros(()) for p in enumerate_paths(graph, index)]
    )
