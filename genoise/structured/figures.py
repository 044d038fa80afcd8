"""The check reader's picture (LeCun et al. 1998, Fig. 23–25 in spirit): a string image, its
segmentation graph drawn over it (states at the cuts, one arc per candidate segment), the
Viterbi path through the interpretation graph highlighted and labelled with the symbols it
read."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from genoise.data.digit_strings import SYMBOLS
from genoise.structured.segmentation import Segments


def state_positions(segs: Segments, string: int) -> np.ndarray:
    """x position of every state of one string's segmentation graph: the left edge of the
    segments leaving it (the last state: the right edge of the segments entering it)."""
    mine = segs.string == string
    start, end = segs.start[mine].numpy(), segs.end[mine].numpy()
    x0, x1 = segs.x0[mine].numpy(), segs.x1[mine].numpy()
    count = int(end.max()) + 1
    position = np.full(count, np.nan)
    for state in range(count):  # a handful of states of one string, for a figure
        leaving, entering = x0[start == state], x1[end == state]
        position[state] = leaving.min() if leaving.size else entering.max()
    return position


def reading_figure(
    image: Tensor,
    segs: Segments,
    string: int,
    path_segments: list[int],
    labels: list[int],
    *,
    title: str = "",
    truth: str | None = None,
) -> Any:
    """Figure: the image of string ``string``, its segmentation graph (grey arcs) and the
    best path (``path_segments``: indices into ``segs``; red arcs labelled by ``labels``)."""
    import matplotlib.pyplot as plt

    mine = (segs.string == string).nonzero().flatten().tolist()
    position = state_positions(segs, string)
    width = image.shape[-1]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(4.0, width / 22), 4.2), gridspec_kw={"height_ratios": [1, 1.2]}, sharex=True
    )
    top.imshow(
        image.reshape(28, width).numpy(),
        cmap="gray_r",
        aspect="equal",
        extent=(-0.5, width - 0.5, 27.5, -0.5),
    )
    for x in position:
        top.axvline(x - 0.5, color="tab:blue", lw=0.8, alpha=0.6)
    top.set_yticks([])
    top.set_title(title + (f"  (truth {truth})" if truth is not None else ""), fontsize=9)
    chosen = set(path_segments)
    height = 1.0
    for m in mine:
        a, b = position[int(segs.start[m])], position[int(segs.end[m])]
        span = int(segs.end[m] - segs.start[m])
        xs = np.linspace(a, b, 30)
        ys = span * height * np.sin(np.pi * (xs - a) / max(b - a, 1e-9))
        on_path = m in chosen
        bottom.plot(
            xs - 0.5,
            ys,
            color="tab:red" if on_path else "0.7",
            lw=2.2 if on_path else 0.8,
            zorder=3 if on_path else 1,
        )
    for m, label in zip(path_segments, labels, strict=True):
        a, b = position[int(segs.start[m])], position[int(segs.end[m])]
        span = int(segs.end[m] - segs.start[m])
        bottom.text(
            (a + b) / 2 - 0.5,
            span * height + 0.25,
            SYMBOLS[label],
            ha="center",
            color="tab:red",
            fontsize=12,
            weight="bold",
        )
    bottom.scatter(position - 0.5, np.zeros_like(position), s=18, color="tab:blue", zorder=4)
    bottom.set_ylim(-0.4, 4.2)
    bottom.set_yticks([])
    bottom.set_xlabel("column (states = cuts; arcs = candidate segments; red = Viterbi path)", fontsize=8)
    figure.tight_layout()
    return figure


def path_segments(graph_path: Tensor, segment_of_arc: Tensor) -> list[int]:
    """Segment index of every arc of a Viterbi path (−1 padding dropped)."""
    arcs = graph_path[graph_path >= 0]
    return segment_of_arc[arcs].tolist()


def reject_curves_figure(curves: dict[str, tuple[Tensor, Tensor]], max_error: float = 0.01) -> Any:
    """The reject curves of several readers on the same strings (the check reader's operating
    point, LeCun et al. 1998, Section X): for every threshold on each reader's confidence, the
    share of all strings rejected (x) against the share read wrongly and accepted (y, log
    scale), with the ``max_error`` line; the legend gives each reader's accepted-and-correct
    share at that line. ``curves``: label → ((n,) confidence, (n,) bool correct)."""
    import matplotlib.pyplot as plt

    from genoise.structured.evaluate import accepted_correct_at, reject_curve

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (confidence, correct) in curves.items():
        rejected, error, _ = reject_curve(confidence, correct)
        point = accepted_correct_at(confidence, correct, max_error)
        floor = 0.5 / confidence.numel()  # no error at all: drawn at half a string
        ax.step(100 * rejected.numpy(), 100 * error.clamp_min(floor).numpy(), where="post",
                label=f"{label}: {100 * point.correct:.1f} % accepted & correct")
    ax.axhline(100 * max_error, color="grey", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("rejected (% of all strings)")
    ax.set_ylabel("accepted and read wrongly (% of all strings)")
    ax.set_xlim(0, 60)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
