"""Heuristic over-segmentation of strings of handwritten digits: the candidate cuts, the ink
pieces, the segmentation graph's arcs and the segments' MNIST-like images of LeCun, Bottou,
Bengio & Haffner (1998), "Gradient-based learning applied to document recognition" (Proc.
IEEE 86(11); Part V, "Multiple object recognition: heuristic over-segmentation": cuts "at
minima of the vertical projection" and "between connected components").

**Cuts** (:func:`find_cuts`). A string image (28 rows, any width; characters may touch or
overlap) is reduced to its vertical projection p[x] = the summed intensity of the pixels of
column x above ``threshold`` (the ink; columns at or beyond a string's valid width count as
blank). Cuts are column *boundaries* (a cut at x separates column x − 1 from column x), taken
as:

1. the left edge of the ink (its first ink column) and its right edge (one past its last);
2. the middle of every run of blank columns between ink: a run of blank columns
   [s, e) gets one cut at ⌊(s + e) / 2⌋, which splits the gap into two halves of equal width,
   the right half one column wider when the gap width e − s is odd;
3. inside a run of ink, the valleys where two touching characters meet: local minima of the
   projection smoothed by a centred moving average of ``smooth`` columns (q ≤ both
   neighbours; a flat-bottomed minimum of columns [s, e) counts once, at ⌊(s + e) / 2⌋) whose
   value is below ``valley`` × the smaller of the maxima of q on either side of it within
   its run of ink. A valley is kept only at least ``min_piece`` columns away from the cuts
   of 1–2 and from the other kept valleys: of valley candidates closer than ``min_piece``,
   the deepest (the leftmost on a tie) suppresses the others (one non-maximum-suppression
   pass, so kept valleys are pairwise ≥ ``min_piece`` apart). The cuts of 1–2 are always kept.

**Pieces** (:func:`find_pieces`). Neighbouring digits whose ink boxes overlap have no blank
column between them; where their strokes do not touch they are still separate connected
components, so the pieces are sets of ink pixels rather than column ranges.
``mode="components"``: the 8-connected components of the ink (components of fewer than
``min_pixels`` pixels are dropped as specks), each split at the valleys (rule 3, on the
component's own projection) so that touching digits are still cut; ``mode="columns"``: the
ink between consecutive cuts (the pieces the cuts define). A string's pieces are numbered
0, 1, … by their ink centre of mass x, left to right. (On strings of MNIST test digits, pixels
above 0.1, the strokes of neighbours overlapping by 2, 3, 4 columns touch in 85, 92, 96 % of
the pairs, and in 45 % of the abutting ones: most overlaps still need a valley cut.)

**Segments** (:func:`segments`). A candidate segment is a run of 1 to ``max_span``
consecutive pieces, i.e. an arc i → j (i < j ≤ i + ``max_span``) of the segmentation graph.
Its states are the cuts (ordered left to right; cut i and i + 1 bound piece i), or, with
pieces, the numbers 0 … P (P pieces; arc i → j holds pieces i … j − 1).

The segments' images are cut out by :mod:`genoise.structured.segment_images`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_int, check_ndim, check_positive

PIECE_MODES = ("components", "columns")


@dataclass
class Cuts:
    """Candidate cuts of a batch of n strings.

    positions : (n, C) long — the cut columns of each string, increasing, padded with −1;
        the first is the left edge of the ink, the last its right edge (exclusive)
    counts : (n,) long — the number of cuts of each string (≥ 2)
    """

    positions: Tensor
    counts: Tensor


@dataclass
class Pieces:
    """Ink pieces of a batch of n strings (P = the most pieces of a string).

    map : (n, H, W) long — the piece of every pixel, −1 off the pieces (no ink, a dropped
        speck, beyond the width); string b's pieces are 0 … counts[b] − 1, ordered left to
        right by their ink centre of mass x (ties: by first column)
    counts : (n,) long — the number of pieces of each string (≥ 1)
    x0 : (n, P) long — the first ink column of each piece, padded with −1
    x1 : (n, P) long — one past its last ink column, padded with −1
    """

    map: Tensor
    counts: Tensor
    x0: Tensor
    x1: Tensor


@dataclass
class Segments:
    """M candidate segments (arcs of the segmentation graphs), sorted by string, start, end.

    string : (M,) long — the string each segment belongs to
    start : (M,) long — its source state: from :class:`Cuts`, the index of its first cut;
        from :class:`Pieces`, the number of its first piece
    end : (M,) long — its target state, start < end ≤ start + max_span: the index of its last
        cut, or one past its last piece (it holds pieces start … end − 1)
    x0, x1 : (M,) long — its column range [x0, x1) in the string image
    """

    string: Tensor
    start: Tensor
    end: Tensor
    x0: Tensor
    x1: Tensor


def check_strings(name: str, images: Tensor) -> Tensor:
    """``images`` (n, H, W) or (n, 1, H, W), float, finite, ≥ 0 → (n, H, W)."""
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"{name} must be (n, H, W) or (n, 1, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of intensities, got {images.dtype}")
    check_finite(name, images)
    if images.numel() and float(images.min()) < 0:
        raise ValueError(f"{name} must be >= 0 (ink intensities), got a minimum of {float(images.min())}")
    return images


def _ink(x: Tensor, widths: Tensor | None, threshold: float) -> Tensor:
    """(n, H, W) bool: the pixels above ``threshold`` in columns < ``widths``; every string needs one."""
    n, _, W = x.shape
    check_positive("threshold", threshold, allow_zero=True)
    ink = x > threshold
    if widths is not None:
        widths = torch.as_tensor(widths, device=x.device)
        check_ndim("widths", widths, 1)
        if widths.shape[0] != n:
            raise ValueError(f"widths has {widths.shape[0]} entries for {n} string images")
        if widths.is_floating_point() or widths.dtype == torch.bool:
            raise ValueError(f"widths must be integers, got {widths.dtype}")
        if n and (int(widths.min()) < 1 or int(widths.max()) > W):
            raise ValueError(
                f"widths must be in [1, {W}] (the image width), got values from "
                f"{int(widths.min())} to {int(widths.max())}"
            )
        ink &= (torch.arange(W, device=x.device) < widths[:, None])[:, None, :]
    empty = (~ink.flatten(1).any(1)).nonzero()
    if empty.numel():
        raise ValueError(f"string image {int(empty[0, 0])} is empty (no ink above threshold {threshold})")
    return ink


def _run_middles(mask: Tensor) -> Tensor:
    """(n, L) bool → (n, L) bool, True at ⌊(s + e) / 2⌋ of every maximal run [s, e) of True."""
    off = mask.new_zeros(mask.shape[0], 1)
    before = torch.cat([off, mask[:, :-1]], 1)
    after = torch.cat([mask[:, 1:], off], 1)
    row, first = (mask & ~before).nonzero(as_tuple=True)
    _, last = (mask & ~after).nonzero(as_tuple=True)  # row-major: pairs with ``first``
    out = torch.zeros_like(mask)
    out[row, (first + last + 1) // 2] = True
    return out


def _run_cummax(values: Tensor, mask: Tensor) -> Tensor:
    """Left-to-right running maximum of ``values`` (n, L) in [0, 1], restarted at every run of
    True in ``mask`` (meaningful on the run's columns): one ``cummax`` of run id × 2 + value."""
    before = torch.cat([mask.new_zeros(mask.shape[0], 1), mask[:, :-1]], 1)
    run = (mask & ~before).cumsum(1).double() * 2
    return torch.cummax(run + torch.where(mask, values, 0), 1).values - run


def _cut_mask(p: Tensor, min_piece: int, valley: float, smooth: int) -> Tensor:
    """The cuts (rules 1–3 of the module docstring) of projections ``p`` (N, W) ≥ 0, each with
    some ink (p > 0), as an (N, W + 1) bool mask over the column boundaries."""
    N, W = p.shape
    device = p.device
    col = torch.arange(W, device=device)
    ink = p > 0
    # 1–2: the ink's edges and the middles of the blank runs between them (boundaries 0..W)
    left = ink.to(torch.uint8).argmax(1)
    right = W - ink.flip(1).to(torch.uint8).argmax(1)
    rows = torch.arange(N, device=device)
    fixed = torch.zeros(N, W + 1, dtype=torch.bool, device=device)
    fixed[rows, left] = True
    fixed[rows, right] = True
    inside = (col >= left[:, None]) & (col < right[:, None])
    fixed[:, :W] |= _run_middles(inside & ~ink)

    # 3: valleys of the smoothed projection inside runs of ink
    q = F.avg_pool1d(p[:, None], smooth, stride=1, padding=smooth // 2, count_include_pad=True)[:, 0, :W]
    q = (q / q.amax(1, keepdim=True)).double()  # scale-free: per-row maximum 1
    pad = F.pad(q, (1, 1), value=float("inf"))
    minimum = _run_middles(ink & (q <= pad[:, :-2]) & (q <= pad[:, 2:]))
    side = torch.minimum(_run_cummax(q, ink), _run_cummax(q.flip(1), ink.flip(1)).flip(1))
    found = F.pad(minimum & (q < valley * side), (0, 1))  # (N, W + 1) boundaries

    # at least min_piece columns from the fixed cuts ...
    bound = torch.arange(W + 1, device=device)
    before = torch.cummax(torch.where(fixed, bound, -W - 1), 1).values
    after = torch.cummin(torch.where(fixed, bound, 2 * W + 2).flip(1), 1).values.flip(1)
    found &= (bound - before >= min_piece) & (after - bound >= min_piece)
    # ... and from each other: the deepest candidate within min_piece − 1 columns wins
    if min_piece > 1 and bool(found.any()):
        k = min_piece - 1
        depth = torch.where(found, F.pad(q, (0, 1)), float("inf"))
        lower = F.pad(depth, (k, 0), value=float("inf")).unfold(1, k, 1)[:, : W + 1].amin(-1)
        upper = F.pad(depth, (0, k), value=float("inf")).unfold(1, k, 1)[:, 1 : W + 2].amin(-1)
        found &= (depth < lower) & (depth <= upper)
    return fixed | found


def _check_cut_options(min_piece: int, valley: float, smooth: int) -> None:
    check_int("min_piece", min_piece, min=1)
    check_positive("valley", valley)
    check_int("smooth", smooth, min=1)


def find_cuts(
    images: Tensor,
    widths: Tensor | None = None,
    *,
    threshold: float = 0.1,
    min_piece: int = 3,
    valley: float = 0.5,
    smooth: int = 3,
) -> Cuts:
    """Candidate cuts of string images (the rules of the module docstring), vectorised over the batch.

    Parameters
    ----------
    images : (n, H, W) or (n, 1, H, W) float ≥ 0 — the string images (ink bright on black)
    widths : (n,) integer in [1, W], optional — the valid width of each string; columns at or
        beyond it are ignored (batch padding)
    threshold : a pixel above it is ink
    min_piece : minimum distance in columns between a valley cut and any other cut
    valley : a local minimum of the smoothed projection is a cut if below ``valley`` × the
        smaller of the maxima on either side of it within its run of ink
    smooth : width of the centred moving average applied to the projection before the valley
        search (1: none; an even width takes one column more on the left)

    Returns
    -------
    Cuts : positions (n, C) long, increasing, padded with −1; counts (n,) long, ≥ 2

    Raises
    ------
    ValueError
        on a wrong shape, NaN/Inf, negative intensities, widths out of range, or a string with
        no ink above ``threshold`` within its width (naming its index).
    """
    x = check_strings("images", images)
    _check_cut_options(min_piece, valley, smooth)
    ink = _ink(x, widths, threshold)
    cuts = _cut_mask(torch.where(ink, x, 0).sum(1), min_piece, valley, smooth)
    counts = cuts.sum(1)
    row, position = cuts.nonzero(as_tuple=True)  # row-major: increasing within each string
    rank = cuts.cumsum(1)[row, position] - 1
    positions = torch.full(
        (x.shape[0], int(counts.max()) if x.shape[0] else 0), -1, dtype=torch.long, device=x.device
    )
    positions[row, rank] = position
    return Cuts(positions=positions, counts=counts)


def _components(ink: Tensor) -> tuple[Tensor, Tensor]:
    """8-connected components of ink masks (n, H, W): the flat indices of the ink pixels
    (increasing) and their component, numbered 0, 1, … in the order of the components' first
    pixels. Label propagation on the graph of ink pixels (edges to the right, lower-left,
    lower and lower-right neighbours): each round hooks the labels of every edge's ends onto
    the smaller one, then jumps pointers (label ← label of label) until they settle; it stops
    when both ends of every edge agree (a handful of rounds, not one per pixel of a stroke)."""
    n, H, W = ink.shape
    flat = ink.flatten().nonzero()[:, 0]
    node = torch.arange(flat.numel(), device=ink.device)
    # node index of every pixel in a frame with a blank last row and blank columns −1 and W
    framed = flat + (flat // W) * 2 + (flat // (H * W)) * (W + 2) + 1
    index = torch.full((n * (H + 1) * (W + 2),), -1, dtype=torch.long, device=ink.device)
    index[framed] = node
    others = [index[framed + step] for step in (1, W + 1, W + 2, W + 3)]
    u = torch.cat([node[o >= 0] for o in others])
    v = torch.cat([o[o >= 0] for o in others])
    label = node.clone()  # always a pixel of the same component, never above the pixel's own id
    while u.numel():  # edges whose ends agree keep agreeing (labels are roots after the jumps)
        lu, lv = label.index_select(0, u), label.index_select(0, v)
        low = torch.minimum(lu, lv)
        label.scatter_reduce_(0, lu, low, "amin").scatter_reduce_(0, lv, low, "amin")
        while not torch.equal(jump := label.index_select(0, label), label):
            label = jump
        differ = label.index_select(0, u) != label.index_select(0, v)
        u, v = u[differ], v[differ]
    return flat, (label == node).cumsum(0)[label] - 1


def _number_pieces(mass: Tensor, flat: Tensor, piece: Tensor) -> Pieces:
    """Pieces from their pixels (flat indices into ``mass`` (n, H, W)) and the piece of each
    (0 … P_all − 1, any order): numbered per string by ink centre of mass x (ties: first column)."""
    n, H, W = mass.shape
    device = mass.device
    P_all = int(piece.max()) + 1 if piece.numel() else 0
    b, c = flat // (H * W), flat % W
    string = torch.zeros(P_all, dtype=torch.long, device=device).scatter_(0, piece, b)
    weight = mass.flatten()[flat].double()
    total = weight.new_zeros(P_all).index_add_(0, piece, weight)
    cx = weight.new_zeros(P_all).index_add_(0, piece, weight * (c + 0.5)) / total
    x0 = torch.full((P_all,), W, device=device).scatter_reduce_(0, piece, c, "amin")
    x1 = torch.full((P_all,), 0, device=device).scatter_reduce_(0, piece, c + 1, "amax")
    order = torch.sort(x0, stable=True).indices  # lexicographic (string, cx, x0) by stable sorts
    order = order[torch.sort(cx[order], stable=True).indices]
    order = order[torch.sort(string[order], stable=True).indices]
    counts = torch.bincount(string, minlength=n)
    rank = torch.arange(P_all, device=device) - (counts.cumsum(0) - counts)[string[order]]
    number = torch.empty_like(rank).scatter_(0, order, rank)  # piece → its number in its string
    pieces = torch.full((n * H * W,), -1, dtype=torch.long, device=device)
    pieces[flat] = number[piece]
    P = int(counts.max()) if n else 0
    starts = torch.full((n, P), -1, dtype=torch.long, device=device)
    ends = starts.clone()
    starts[string, number], ends[string, number] = x0, x1
    return Pieces(map=pieces.view(n, H, W), counts=counts, x0=starts, x1=ends)


def find_pieces(
    images: Tensor,
    widths: Tensor | None = None,
    *,
    mode: str = "components",
    threshold: float = 0.1,
    min_piece: int = 3,
    valley: float = 0.5,
    smooth: int = 3,
    min_pixels: int = 5,
) -> Pieces:
    """Ink pieces of string images (the module docstring's "Pieces"), vectorised over the batch.

    ``mode="components"``: the 8-connected components of the ink (pixels above ``threshold``
    in columns < width), by label propagation over the batch; those of fewer than
    ``min_pixels`` pixels are dropped (map −1); every other one is split at the valley cuts of
    its own projection (rule 3 with ``valley``, ``smooth``, ``min_piece``; its columns right of
    a cut go to the next piece). ``mode="columns"``: piece p is the ink of columns [cut p,
    cut p + 1) of :func:`find_cuts` (same options; ``min_pixels`` unused). An interval without
    ink is dropped, but with ``valley`` ≤ 1 the cut rules put ink between any two consecutive
    cuts: the pieces are then the cut intervals, in order, and their segments have the cuts'
    segments' start and end. Either way every piece has ink; pieces are numbered by centre of
    mass.

    Parameters
    ----------
    images, widths, threshold, min_piece, valley, smooth : as :func:`find_cuts`
    mode : "components" or "columns"
    min_pixels : the smallest component kept (≥ 1)

    Returns
    -------
    Pieces : map (n, H, W), counts (n,) ≥ 1, x0 and x1 (n, P), all long

    Raises
    ------
    ValueError
        as :func:`find_cuts`, on a bad mode or ``min_pixels``, or a string whose components
        are all smaller than ``min_pixels`` (naming its index).
    """
    x = check_strings("images", images)
    check_choice("mode", mode, PIECE_MODES)
    _check_cut_options(min_piece, valley, smooth)
    check_int("min_pixels", min_pixels, min=1)
    ink = _ink(x, widths, threshold)
    mass = torch.where(ink, x, 0)
    _, H, W = x.shape
    if mode == "columns":  # one row of cuts per string
        flat = ink.flatten().nonzero()[:, 0]
        row, cuts = flat // (H * W), _cut_mask(mass.sum(1), min_piece, valley, smooth)
    else:  # one row of cuts per component of >= min_pixels pixels, on its own projection
        flat, row = _components(ink)
        big = torch.bincount(row) >= min_pixels
        flat, row = flat[big[row]], (big.cumsum(0) - 1)[row[big[row]]]
        p = mass.new_zeros(int(big.sum()) * W).index_add_(0, row * W + flat % W, mass.flatten()[flat])
        cuts = _cut_mask(p.view(-1, W), min_piece, valley, smooth)
    # the pieces: the intervals between the cuts of every row, numbered over all rows; those
    # without ink (only possible with valley > 1) dropped
    intervals = cuts.sum(1) - 1
    piece = (intervals.cumsum(0) - intervals)[row] + (cuts[:, :-1].cumsum(1) - 1)[row, flat % W]
    pieces = _number_pieces(mass, flat, (torch.bincount(piece) > 0).cumsum(0)[piece] - 1)
    empty = (pieces.counts == 0).nonzero()
    if empty.numel():
        raise ValueError(
            f"string image {int(empty[0, 0])} has no ink component of at least "
            f"{min_pixels} pixels (min_pixels)"
        )
    return pieces


def _check_counts(name: str, counts: Tensor, n: int, low: int, high: int) -> Tensor:
    """``counts`` must be (n,) with values in [low, high]."""
    check_ndim(f"{name}.counts", counts, 1)
    if counts.shape[0] != n:
        raise ValueError(f"{name}.counts has {counts.shape[0]} entries for {n} strings")
    if n and (int(counts.min()) < low or int(counts.max()) > high):
        raise ValueError(
            f"{name}.counts must be in [{low}, {high}], got values from "
            f"{int(counts.min())} to {int(counts.max())}"
        )
    return counts


def segments(graph: Cuts | Pieces, max_span: int = 3) -> Segments:
    """Every arc i → j (i < j ≤ i + ``max_span``) of every string's segmentation graph, sorted
    by string, start, end; built from an (n, S, max_span) grid of candidates.

    The states of string b are its cuts 0 … counts[b] − 1 (a :class:`Cuts`: ``counts[b]``
    states, start 0, final counts[b] − 1), or 0 … counts[b] (a :class:`Pieces`: counts[b] + 1
    states, start 0, final counts[b]; arc i → j holds pieces i … j − 1).

    Parameters
    ----------
    graph : Cuts — positions (n, C), counts (n,); or Pieces — counts (n,), x0 and x1 (n, P)
    max_span : the most pieces one segment spans (≥ 1)

    Returns
    -------
    Segments : string, start, end, each (M,) long, and the column range: x0 = positions[start],
    x1 = positions[end] for cuts; the smallest x0 and largest x1 of the pieces held for pieces
    """
    check_int("max_span", max_span, min=1)
    if isinstance(graph, Pieces):
        check_ndim("pieces.x0", graph.x0, 2)
        if graph.x1.shape != graph.x0.shape:
            raise ValueError(
                f"pieces.x1 has shape {tuple(graph.x1.shape)}, pieces.x0 {tuple(graph.x0.shape)}"
            )
        n, S = graph.x0.shape
        states = _check_counts("pieces", graph.counts, n, 1, S) + 1
    else:
        check_ndim("cuts.positions", graph.positions, 2)
        n, S = graph.positions.shape
        states = _check_counts("cuts", graph.counts, n, 2, S)
    device = graph.counts.device
    start = torch.arange(S, device=device)[None, :, None]
    end = start + torch.arange(1, max_span + 1, device=device)[None, None, :]
    string, i, span = (end < states[:, None, None]).expand(n, S, max_span).nonzero(as_tuple=True)
    j = i + span + 1
    if not isinstance(graph, Pieces):
        return Segments(
            string=string, start=i, end=j, x0=graph.positions[string, i], x1=graph.positions[string, j]
        )
    held = (end[0] - 1).clamp(max=S - 1)  # (S, max_span): piece i + span, the last one held
    x0 = torch.cummin(graph.x0[:, held], 2).values  # over the pieces i … i + span
    x1 = torch.cummax(graph.x1[:, held], 2).values
    return Segments(string=string, start=i, end=j, x0=x0[string, i, span], x1=x1[string, i, span])
