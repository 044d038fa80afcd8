"""The images of candidate segments and their true characters (LeCun, Bottou, Bengio &
Haffner 1998, Part V: every segment of the segmentation graph is normalised like an isolated
character before the recognition transformer scores it).

Each segment's columns [x0, x1) are cut out of its string
(ink outside them is never read; with pieces, only its own pieces' ink is), the tight box of
its ink (pixels above ``threshold``) is scaled, aspect ratio preserved, so that its larger
side spans ``box`` pixels, and placed in a ``size`` × ``size`` image with its centre of mass
(or the centre of its box) at the image centre, as MNIST's digits were normalised (20 × 20
box, 28 × 28 field); one bilinear ``grid_sample`` call per chunk of segments does the
resampling. With ``scale="string"`` every segment of a string is scaled by one factor, ``box``
over the ink height of the whole string, and put at the string's vertical centre of mass (its
own horizontal centre): a fragment of a character stays small and low or high where it was,
two merged characters stay twice as wide, and a separator dot stays a dot — the size and the
position the per-segment box throws away, and which tell a wrong cut from a character.
:func:`character_pixels` counts how many pixels of every true character (an
owner map such as :attr:`~genoise.data.digit_strings.DigitStrings.owner`) each segment holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genoise._checks import check_choice, check_int, check_positive
from genoise.structured.segmentation import Pieces, Segments, check_strings

CENTRES = ("mass", "box")
SCALES = ("segment", "string")
_CHUNK = 4096  # segments resampled per grid_sample call


def _span(present: Tensor) -> tuple[Tensor, Tensor]:
    """The first index and one past the last where ``present`` (m, L) is true, per row (0 and
    L where it is nowhere true)."""
    length = present.shape[1]
    return present.to(torch.uint8).argmax(1), length - present.flip(1).to(torch.uint8).argmax(1)


def _centre(profile: Tensor, weight: Tensor) -> Tensor:
    """The centre of mass (m,) of the float64 mass ``profile`` (m, L) along its axis, in pixel
    coordinates (index + ½), its total being ``weight`` (m,)."""
    return (profile * (torch.arange(profile.shape[1], device=profile.device).double() + 0.5)).sum(1) / weight


def _normalise(window: Tensor, threshold: float, size: int, box: int, centre: str,
               string: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Windows (m, H, w) → their (m, 1, size, size) MNIST-like images: the ink box scaled into
    ``box``, the centre put at the middle, by one bilinear ``grid_sample``. ``string`` = (ink
    height, vertical centre) (m,) of each window's string: the scale ``box`` / height and that
    vertical centre replace the window's own (``scale="string"``)."""
    m, H, width = window.shape
    device = window.device
    ink = window > threshold
    rows_any, cols_any = ink.any(2), ink.any(1)
    (top, bottom), (left, right) = _span(rows_any), _span(cols_any)
    h, w = (bottom - top).double(), (right - left).double()
    scale = box / torch.maximum(torch.maximum(h, w), torch.ones_like(h))  # output px per input px
    if centre == "mass":
        mass = torch.where(ink, window, 0).double()
        weight = mass.sum((1, 2)).clamp_min(torch.finfo(torch.float64).tiny)
        cy, cx = _centre(mass.sum(2), weight), _centre(mass.sum(1), weight)
    else:
        cy, cx = (top + bottom).double() / 2, (left + right).double() / 2
    if string is not None:
        height, cy = (t.to(device=device, dtype=torch.float64) for t in string)
        scale = box / height.clamp_min(1.0)
    # output coordinate o (pixel centres k + ½) ↦ input c + (o − size / 2) / scale, normalised
    theta = torch.zeros(m, 2, 3, dtype=torch.float64, device=device)
    theta[:, 0, 0] = size / (scale * width)
    theta[:, 0, 2] = 2 * cx / width - 1
    theta[:, 1, 1] = size / (scale * H)
    theta[:, 1, 2] = 2 * cy / H - 1
    grid = F.affine_grid(theta.to(window.dtype), [m, 1, size, size], align_corners=False)
    sampled = F.grid_sample(window[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.clamp(0, 1) * cols_any.any(1)[:, None, None, None]


def string_extent(images: Tensor, threshold: float = 0.1) -> tuple[Tensor, Tensor]:
    """(height, cy) (n,) float64 of every string's ink (pixels above ``threshold``): the rows
    from its top ink row to one past its bottom one (0 without ink), and its intensity-weighted
    vertical centre of mass in pixel coordinates (the middle row without ink)."""
    x = check_strings("images", images)
    ink = x > threshold
    rows = ink.any(2)
    top, bottom = _span(rows)
    height = torch.where(rows.any(1), bottom - top, 0).double()
    profile = torch.where(ink, x, 0).double().sum(2)
    weight = profile.sum(1)
    centre = _centre(profile, weight.clamp_min(torch.finfo(torch.float64).tiny))
    return height, torch.where(weight > 0, centre, x.shape[1] / 2)


def normalise_characters(
    images: Tensor, size: int = 28, box: int = 20, *, threshold: float = 0.1, centre: str = "mass",
    scale: str = "segment",
) -> Tensor:
    """Isolated character images (n, H, W) or (n, 1, H, W) normalised as :func:`crop_segments`
    normalises a segment (the whole image is the segment's window, and with ``scale="string"``
    also its string), so that a recogniser trained on them sees what it will see on segments:
    (n, 1, size, size) in [0, 1]."""
    x = check_strings("images", images)
    check_int("size", size, min=1)
    check_int("box", box, min=1, max=size)
    check_positive("threshold", threshold, allow_zero=True)
    check_choice("centre", centre, CENTRES)
    check_choice("scale", scale, SCALES)
    chunks = [x[lo : lo + _CHUNK] for lo in range(0, x.shape[0], _CHUNK)]
    parts = [
        _normalise(chunk, threshold, size, box, centre,
                   string_extent(chunk, threshold) if scale == "string" else None)
        for chunk in chunks
    ]
    return torch.cat(parts) if parts else x.new_zeros(0, 1, size, size)


def crop_segments(
    images: Tensor,
    segs: Segments,
    size: int = 28,
    box: int = 20,
    *,
    pieces: Pieces | None = None,
    threshold: float = 0.1,
    centre: str = "mass",
    scale: str = "segment",
) -> Tensor:
    """The MNIST-like image of every segment (the module docstring's normalisation).

    For segment m: columns [x0, x1) of string ``string[m]`` (all other columns read as 0) or,
    given ``pieces``, only its pixels whose piece is in [start, end) (all others, the pixels
    at or below ``threshold`` included, read as 0); the tight box of its pixels above
    ``threshold`` (h × w); a scale of ``box`` / max(h, w); the centre of mass of those pixels
    (``centre="mass"``, intensity-weighted, as MNIST) or the box's centre (``"box"``) mapped to
    the centre of the ``size`` × ``size`` image. Segments go by chunks of 4096 of similar
    widths: a window of each one's own columns is gathered (masked to its pieces), its box and
    centre are reductions over it, and one bilinear ``affine_grid`` + ``grid_sample``
    (``align_corners=False``, zero padding) resamples the chunk: no loop over segments.

    Parameters
    ----------
    images : (n, H, W) or (n, 1, H, W) float ≥ 0 — the string images
    segs : Segments — M segments of those strings (from :func:`segments`)
    size : side of the output images
    box : side of the square the ink box is scaled into (1 ≤ box ≤ size)
    pieces : Pieces, optional — the pieces ``segs`` were built from (map (n, H, W))
    threshold : a pixel above it is ink
    centre : "mass" or "box" — the point put at the centre of the image (horizontally, with
        ``scale="string"``)
    scale : "segment" — the segment's ink box spans ``box`` (MNIST's normalisation); "string" —
        every segment of a string scaled by ``box`` / the string's ink height and put at the
        string's vertical centre of mass (:func:`string_extent`)

    Returns
    -------
    (M, 1, size, size) float in [0, 1]; a segment without ink is blank.
    """
    x = check_strings("images", images)
    n, H, W = x.shape
    check_int("size", size, min=1)
    check_int("box", box, min=1, max=size)
    check_positive("threshold", threshold, allow_zero=True)
    check_choice("centre", centre, CENTRES)
    check_choice("scale", scale, SCALES)
    device = x.device
    string, x0, x1, first, last = (
        t.to(device=device, dtype=torch.long) for t in (segs.string, segs.x0, segs.x1, segs.start, segs.end)
    )
    M = string.shape[0]
    if not (x0.shape == x1.shape == first.shape == last.shape == (M,)):
        raise ValueError(
            f"segs.string, start, end, x0, x1 must all be (M,), got {tuple(string.shape)}, "
            f"{tuple(first.shape)}, {tuple(last.shape)}, {tuple(x0.shape)}, {tuple(x1.shape)}"
        )
    if pieces is not None and tuple(pieces.map.shape) != (n, H, W):
        raise ValueError(f"pieces.map has shape {tuple(pieces.map.shape)} for images of shape {(n, H, W)}")
    out = x.new_zeros(M, 1, size, size)
    if M == 0:
        return out
    if int(string.min()) < 0 or int(string.max()) >= n:
        raise ValueError(
            f"segs.string must index the {n} string images, got values from "
            f"{int(string.min())} to {int(string.max())}"
        )
    if int(x0.min()) < 0 or int(x1.max()) > W or bool((x1 <= x0).any()):
        raise ValueError(f"segment column ranges must satisfy 0 <= x0 < x1 <= {W}")
    columns = x.transpose(1, 2).reshape(n * W, H)  # every column of every string, gathered whole
    if pieces is not None:
        piece_columns = pieces.map.to(device=device, dtype=torch.int32).transpose(1, 2).reshape(n * W, H)
    extent = string_extent(x, threshold) if scale == "string" else None
    order = torch.sort(x1 - x0, stable=True).indices  # chunks of similar widths: narrow windows
    for lo in range(0, M, _CHUNK):  # chunks bound the memory of the windows and grids
        chunk = order[lo : lo + _CHUNK]
        s, a, b = string[chunk], x0[chunk], x1[chunk]
        # the window of each segment's own columns [x0, x0 + width), zero beyond x1 (and off its pieces)
        width = int((b - a).max())
        index = a[:, None] + torch.arange(width, device=device)
        column = (s[:, None] * W + index.clamp(max=W - 1)).flatten()
        window = columns.index_select(0, column).view(-1, width, H).transpose(1, 2)
        keep = (index < b[:, None])[:, None, :]
        if pieces is not None:
            piece = piece_columns.index_select(0, column).view(-1, width, H).transpose(1, 2)
            keep = keep & (piece >= first[chunk, None, None]) & (piece < last[chunk, None, None])
        own = None if extent is None else (extent[0][s], extent[1][s])
        out[chunk] = _normalise(torch.where(keep, window, 0), threshold, size, box, centre, own)
    return out


def character_pixels(segs: Segments, pieces: Pieces, owner: Tensor, max_chars: int) -> tuple[Tensor, Tensor]:
    """How many pixels of every true character each segment holds.

    A character's pixels are those it owns (``owner``, e.g. :attr:`DigitStrings.owner
    <genoise.data.digit_strings.DigitStrings.owner>`) that lie on some piece; segment m holds
    those whose piece is in [start, end). One (n, P, K) count table of the pixels by
    ``bincount``, summed cumulatively over pieces, so that a segment's counts are the
    difference of two of its rows.

    Parameters
    ----------
    segs : Segments — of ``pieces`` (from :func:`segments`)
    pieces : Pieces — map (n, H, W)
    owner : (n, H, W) integer — the character (0 … max_chars − 1) owning each pixel, −1 none
    max_chars : K, the number of character positions (≥ 1)

    Returns
    -------
    inside : (M, K) long — pixels of character k in segment m
    total : (n, K) long — pixels of character k on the pieces of its string
    """
    K = check_int("max_chars", max_chars, min=1)
    pieces_map = pieces.map
    n, H, W = pieces_map.shape
    P = pieces.x0.shape[1]
    if tuple(owner.shape) != (n, H, W):
        raise ValueError(f"owner has shape {tuple(owner.shape)}, pieces.map {(n, H, W)}")
    if owner.is_floating_point() or owner.dtype == torch.bool:
        raise ValueError(f"owner must be integers, got {owner.dtype}")
    owner = owner.to(pieces_map.device)
    if owner.numel() and (int(owner.min()) < -1 or int(owner.max()) >= K):
        raise ValueError(
            f"owner must be in [-1, {K - 1}] (max_chars {K}), got values from "
            f"{int(owner.min())} to {int(owner.max())}"
        )
    start, end = segs.start.to(pieces_map.device), segs.end.to(pieces_map.device)
    if start.numel() and (int(start.min()) < 0 or int(end.max()) > P):
        raise ValueError(f"segment pieces must satisfy 0 <= start < end <= {P} (the pieces)")
    b, r, c = ((pieces_map >= 0) & (owner >= 0)).nonzero(as_tuple=True)
    index = (b * P + pieces_map[b, r, c]) * K + owner[b, r, c]
    table = torch.bincount(index, minlength=n * P * K).view(n, P, K)
    cumulative = F.pad(table.cumsum(1), (0, 0, 1, 0))  # (n, P + 1, K): pieces before each state
    string = segs.string.to(pieces_map.device)
    return cumulative[string, end] - cumulative[string, start], cumulative[:, P]
