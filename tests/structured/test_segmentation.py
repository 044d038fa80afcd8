"""Heuristic over-segmentation (LeCun et al. 1998, Part V) on handmade string images: cuts at
gap middles and valleys, ``min_piece``, batches with widths and padding, ink pieces
(connected components split at valleys, or cut intervals), the arcs of the segmentation graph,
the MNIST-like normalisation of the segments, the pixels of every character in every segment,
and bad input; one coverage measurement on strings of real MNIST digits (skipped without the
data folder)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from genoise.structured import segment_images
from genoise.structured.segment_images import character_pixels, crop_segments
from genoise.structured.segmentation import Cuts, Pieces, Segments, find_cuts, find_pieces, segments

H = 28
MNIST_DIR = Path("/work/shared/data")


def string(width: int, *boxes: tuple[int, int, int, int], n: int = 1) -> torch.Tensor:
    """A (n, 28, width) image with ink 1 in the boxes (row0, row1, col0, col1)."""
    image = torch.zeros(n, H, width)
    for r0, r1, c0, c1 in boxes:
        image[:, r0:r1, c0:c1] = 1.0
    return image


def disc(image: torch.Tensor, cy: float, cx: float, r: float) -> None:
    """Draw a filled disc (pixel centres within ``r`` of (cy, cx)) into ``image`` (H, W)."""
    y = torch.arange(image.shape[0])[:, None] + 0.5
    x = torch.arange(image.shape[1])[None, :] + 0.5
    image.copy_(torch.maximum(image, (((y - cy) ** 2 + (x - cx) ** 2) <= r * r).float()))


def random_discs(n: int, W: int, g: torch.Generator, discs: int = 6) -> torch.Tensor:
    """(n, 28, W) strings of ``discs`` random overlapping discs each, random intensities."""
    images = torch.zeros(n, H, W)
    for _ in range(discs):  # a loop over layers, not strings
        cy = 8 + 12 * torch.rand(n, generator=g)
        cx = 10 + (W - 20) * torch.rand(n, generator=g)
        r = 3 + 5 * torch.rand(n, generator=g)
        y = torch.arange(H)[None, :, None] + 0.5
        x = torch.arange(W)[None, None, :] + 0.5
        inside = (y - cy[:, None, None]) ** 2 + (x - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2
        level = torch.rand(n, 1, 1, generator=g).add(0.5).clamp(max=1)
        images = torch.maximum(images, inside.float() * level)
    return images


def ink_box(image: torch.Tensor, level: float = 0.5) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), exclusive ends, of the pixels of (H, W) ``image`` above ``level``."""
    rows = (image > level).any(1).nonzero().flatten()
    cols = (image > level).any(0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


# --------------------------------------------------------------------------- cuts


def test_gap_cuts_are_the_middles_of_the_blank_runs() -> None:
    image = string(60, (4, 24, 5, 12), (4, 24, 20, 26), (4, 24, 40, 50))
    cuts = find_cuts(image)
    # ink edges 5 and 50; gaps [12, 20) -> (12 + 20) // 2 = 16, [26, 40) -> 33
    assert cuts.positions.tolist() == [[5, 16, 33, 50]] and cuts.counts.tolist() == [4]
    assert cuts.positions.dtype == cuts.counts.dtype == torch.long
    # the (n, 1, H, W) layout gives the same cuts
    assert torch.equal(find_cuts(image[:, None]).positions, cuts.positions)


def test_gap_middle_rounds_down_so_the_right_half_is_wider() -> None:
    # gap [12, 19) has 7 blank columns: cut at (12 + 19) // 2 = 15 -> 3 columns left, 4 right
    # gap [25, 26) has 1 blank column: cut at (25 + 26) // 2 = 25 (before the blank column)
    image = string(40, (4, 24, 5, 12), (4, 24, 19, 25), (4, 24, 26, 30))
    assert find_cuts(image).positions.tolist() == [[5, 15, 25, 30]]


def test_a_valley_between_touching_characters_is_cut() -> None:
    # two 20-row blocks joined by a 2-row bridge over columns 20..22: projection 20, 2, 20;
    # smoothed (width 3): q[20] = 8, q[21] = 2, q[22] = 8 -> a cut at 21
    bridged = string(60, (4, 24, 5, 20), (13, 15, 20, 23), (4, 24, 23, 36))
    assert find_cuts(bridged).positions.tolist() == [[5, 21, 36]]
    # two discs of radius 8 touching at column 20 (centres 12 and 28)
    touching = torch.zeros(1, H, 60)
    disc(touching[0], 14, 12, 8)
    disc(touching[0], 14, 28, 8)
    positions = find_cuts(touching).positions[0].tolist()
    assert len(positions) == 3 and abs(positions[1] - 20) <= 1
    # two overlapping discs (centres 12 and 26): a shallower valley, at column 19 ± 1,
    # found with a laxer ``valley`` ratio only
    overlapping = torch.zeros(1, H, 60)
    disc(overlapping[0], 14, 12, 8)
    disc(overlapping[0], 14, 26, 8)
    assert find_cuts(overlapping).counts.tolist() == [2]
    positions = find_cuts(overlapping, valley=0.75).positions[0].tolist()
    assert len(positions) == 3 and abs(positions[1] - 19) <= 1


def test_a_uniform_blob_gets_no_inner_cut() -> None:
    blob = string(60, (4, 24, 5, 30))
    assert find_cuts(blob).positions.tolist() == [[5, 30]]
    assert find_cuts(blob, valley=1.0, min_piece=1, smooth=1).positions.tolist() == [[5, 30]]
    # a single disc: its projection rises then falls, no valley
    single = torch.zeros(1, H, 40)
    disc(single[0], 14, 20, 9)
    assert find_cuts(single, valley=0.9).counts.tolist() == [2]


def test_min_piece_keeps_valleys_away_from_other_cuts() -> None:
    # a valley at 7, two columns from the left edge 5: cut only when min_piece <= 2
    near_edge = string(40, (4, 24, 5, 7), (13, 15, 7, 8), (4, 24, 8, 30))
    assert find_cuts(near_edge, smooth=1).positions.tolist() == [[5, 30]]
    assert find_cuts(near_edge, smooth=1, min_piece=2).positions.tolist() == [[5, 7, 30]]
    # two valleys 3 columns apart (bridges at 15 and 18, the right one deeper)
    two = string(40, (4, 24, 5, 15), (12, 16, 15, 16), (4, 24, 16, 18), (13, 15, 18, 19), (4, 24, 19, 32))
    assert find_cuts(two, smooth=1, min_piece=3).positions.tolist() == [[5, 15, 18, 32]]
    assert find_cuts(two, smooth=1, min_piece=4).positions.tolist() == [[5, 18, 32]]
    # equally deep valleys too close: the leftmost is kept
    tie = string(40, (4, 24, 5, 15), (13, 15, 15, 16), (4, 24, 16, 18), (13, 15, 18, 19), (4, 24, 19, 32))
    assert find_cuts(tie, smooth=1, min_piece=4).positions.tolist() == [[5, 15, 32]]


def test_batch_with_widths_pads_with_minus_one() -> None:
    images = torch.zeros(3, H, 60)
    images[0] = string(60, (4, 24, 5, 12), (4, 24, 20, 26))[0]
    images[1] = string(60, (4, 24, 3, 10), (4, 24, 40, 50))[0]  # [40, 50) lies beyond width 30
    images[2] = string(60, (4, 24, 2, 8), (4, 24, 10, 14), (4, 24, 20, 24), (6, 20, 50, 58))[0]
    cuts = find_cuts(images, torch.tensor([60, 30, 60]))
    assert cuts.positions.tolist() == [[5, 16, 26, -1, -1], [3, 10, -1, -1, -1], [2, 9, 17, 37, 58]]
    assert cuts.counts.tolist() == [3, 2, 5]
    # without widths the second string's far block counts
    assert find_cuts(images).positions[1].tolist() == [3, 25, 50, -1, -1]
    # a width cutting through ink: the right edge is the width
    assert find_cuts(images[:1], torch.tensor([10])).positions.tolist() == [[5, 10]]


def test_random_strings_satisfy_the_cut_rules() -> None:
    g = torch.Generator().manual_seed(0)
    n, W, min_piece = 64, 120, 3
    images = random_discs(n, W, g)
    widths = torch.randint(70, W + 1, (n,), generator=g)
    ink = (images > 0.1).any(1) & (torch.arange(W) < widths[:, None])
    keep = ink.any(1)
    images, widths, ink = images[keep], widths[keep], ink[keep]
    cuts = find_cuts(images, widths, min_piece=min_piece, valley=0.8)
    valleys = 0
    for b in range(images.shape[0]):  # checking the result string by string is fine in a test
        count = int(cuts.counts[b])
        pos = cuts.positions[b, :count]
        assert (cuts.positions[b, count:] == -1).all()
        assert (pos.diff() > 0).all()
        columns = ink[b].nonzero().flatten()
        assert pos[0] == columns[0] and pos[-1] == columns[-1] + 1
        # every blank gap between ink holds exactly one cut, at its middle
        starts = columns[1:][columns.diff() > 1]
        ends = columns[:-1][columns.diff() > 1] + 1
        gaps = list(zip(ends.tolist(), starts.tolist(), strict=True))
        for s, e in gaps:
            assert ((pos >= s) & (pos <= e)).sum() == 1 and (s + e) // 2 in pos.tolist()
        # valley cuts (inside ink) are at least min_piece from every other cut
        fixed = {int(pos[0]), int(pos[-1])} | {(s + e) // 2 for s, e in gaps}
        valleys += len(set(pos.tolist()) - fixed)
        for v in set(pos.tolist()) - fixed:
            assert bool(ink[b, v - 1]) and bool(ink[b, v])
            assert min(abs(v - u) for u in pos.tolist() if u != v) >= min_piece
    assert valleys >= 10, valleys  # the overlapping discs do make valleys


# --------------------------------------------------------------------------- pieces


def two_overlapping_glyphs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 'Γ' (bar columns 10-13, arm rows 4-6 out to column 21) and a bar (rows 10-23, columns
    18-21) under its arm: their columns overlap (18-21), their pixels never touch. Returns the
    string and each glyph alone."""
    first = string(40, (4, 24, 10, 14), (4, 7, 14, 22))
    second = string(40, (10, 24, 18, 22))
    return torch.maximum(first, second), first, second


def test_overlapping_glyphs_that_do_not_touch_are_two_pieces(monkeypatch) -> None:
    image, first, second = two_overlapping_glyphs()
    pieces = find_pieces(image)
    assert pieces.counts.tolist() == [2] and pieces.map.shape == (1, H, 40) and pieces.map.dtype == torch.long
    assert pieces.x0.tolist() == [[10, 18]] and pieces.x1.tolist() == [[22, 22]]
    assert torch.equal(pieces.map[0] == 0, first[0] > 0) and torch.equal(pieces.map[0] == 1, second[0] > 0)
    assert bool((pieces.map[image == 0] == -1).all())
    segs = segments(pieces)
    arcs = list(zip(segs.start.tolist(), segs.end.tolist(), strict=True))
    assert arcs == [(0, 1), (0, 2), (1, 2)]
    assert segs.x0.tolist() == [10, 10, 18] and segs.x1.tolist() == [22] * 3
    crops = crop_segments(image, segs, pieces=pieces)
    alone = [crop_segments(glyph, segments(find_cuts(glyph))) for glyph in (first, second)]
    torch.testing.assert_close(crops[0], alone[0][0])  # the 'Γ' without the bar under its arm
    torch.testing.assert_close(crops[2], alone[1][0])  # the bar without the arm above it
    whole = Segments(*(torch.tensor([0]) for _ in range(3)), x0=torch.tensor([10]), x1=torch.tensor([22]))
    torch.testing.assert_close(crops[1], crop_segments(image, whole)[0])  # both pieces: both glyphs
    monkeypatch.setattr(segment_images, "_CHUNK", 2)  # chunks (by width) give the same crops
    torch.testing.assert_close(crop_segments(image[:, None], segs, pieces=pieces), crops)
    # the cuts (10, 16, 22) cannot separate them: the right column piece holds the arm's end
    column_pieces = find_pieces(image, mode="columns")
    assert find_cuts(image).positions.tolist() == [[10, 16, 22]] and column_pieces.counts.tolist() == [2]
    owner = torch.where(first > 0, 0, torch.where(second > 0, 1, -1))
    inside, total = character_pixels(segments(column_pieces, 1), column_pieces, owner, 2)
    assert inside.tolist() == [[86, 0], [18, 56]] and total.tolist() == [[104, 56]]


def test_touching_discs_are_one_component_split_at_their_valley() -> None:
    touching = torch.zeros(1, H, 60)
    disc(touching[0], 14, 12, 8)
    disc(touching[0], 14, 28, 8)
    pieces = find_pieces(touching)
    assert pieces.counts.tolist() == [2]
    cut = int(pieces.x0[0, 1])
    assert abs(cut - 20) <= 1 and int(pieces.x1[0, 0]) == cut  # the columns right of the valley go right
    columns = torch.arange(60).expand(H, 60)
    ink = touching[0] > 0.1
    assert bool((pieces.map[0][ink & (columns < cut)] == 0).all())
    assert bool((pieces.map[0][ink & (columns >= cut)] == 1).all())
    # without the valley rule (min_piece too large for any valley) it stays one piece
    assert find_pieces(touching, min_piece=30).counts.tolist() == [1]


def test_specks_below_min_pixels_are_dropped() -> None:
    image = string(40, (4, 24, 5, 12), (26, 28, 20, 22))  # a block and a 2 x 2 speck (4 pixels)
    pieces = find_pieces(image)
    assert pieces.counts.tolist() == [1] and pieces.x0.tolist() == [[5]] and pieces.x1.tolist() == [[12]]
    assert bool((pieces.map[0, 26:, 20:22] == -1).all())
    kept = find_pieces(image, min_pixels=4)
    assert kept.counts.tolist() == [2] and bool((kept.map[0, 26:, 20:22] == 1).all())
    assert find_pieces(image, mode="columns").counts.tolist() == [2]  # min_pixels: components only
    # diagonal neighbours are connected (8-connectivity): a 5-pixel diagonal line is kept
    diagonal = torch.zeros(1, H, 40)
    diagonal[0, torch.arange(5), torch.arange(5) + 30] = 1.0
    with_line = torch.maximum(image, diagonal)
    assert find_pieces(with_line).counts.tolist() == [2]


def test_pieces_are_numbered_by_centre_of_mass() -> None:
    # a thin line starting left of a block but extending far right: its centre of mass is right
    images = torch.zeros(2, H, 60)
    images[0] = string(60, (1, 3, 5, 50), (8, 24, 8, 14))[0]
    images[1] = string(60, (8, 24, 30, 34), (8, 24, 3, 7))[0]  # in a narrower string
    pieces = find_pieces(images, torch.tensor([60, 40]))
    assert pieces.counts.tolist() == [2, 2]
    assert pieces.x0.tolist() == [[8, 5], [3, 30]] and pieces.x1.tolist() == [[14, 50], [7, 34]]
    assert int(pieces.map[0, 10, 10]) == 0 and int(pieces.map[0, 1, 6]) == 1
    # intensities weigh the centre of mass: a bright short stroke beats a faint long one
    weighted = string(60, (4, 6, 12, 16), (10, 12, 4, 30))  # centres 14 and 17 (unweighted)
    weighted[0, 10:12, 8:30] = 0.2  # the lower stroke's centre of mass moves to ≈ 12.8 < 14
    assert find_pieces(weighted).x0.tolist() == [[4, 12]]
    assert find_pieces(weighted.clamp(max=0.2)).x0.tolist() == [[12, 4]]
    padded = find_pieces(torch.stack([images[0], string(60, (4, 24, 5, 12))[0]]))
    assert padded.counts.tolist() == [2, 1] and padded.x0.tolist() == [[8, 5], [5, -1]]
    assert padded.x1[1].tolist() == [12, -1]


def test_components_match_a_flood_fill() -> None:
    g = torch.Generator().manual_seed(1)
    images = random_discs(12, 90, g, discs=8)
    images = images * (torch.rand(images.shape, generator=g) > 0.15)  # holes break discs apart
    pieces = find_pieces(images, min_piece=1000, min_pixels=1)  # no valley can be cut
    ink = (images > 0.1).tolist()
    for b in range(images.shape[0]):  # a flood fill per string, in Python (a test may loop)
        label = [[-1] * 90 for _ in range(H)]
        count = 0
        for r in range(H):
            for c in range(90):
                if ink[b][r][c] and label[r][c] < 0:
                    stack, label[r][c] = [(r, c)], count
                    while stack:
                        y, x = stack.pop()
                        for yy in range(max(y - 1, 0), min(y + 2, H)):
                            for xx in range(max(x - 1, 0), min(x + 2, 90)):
                                if ink[b][yy][xx] and label[yy][xx] < 0:
                                    label[yy][xx] = count
                                    stack.append((yy, xx))
                    count += 1
        assert int(pieces.counts[b]) == count
        pairs = torch.stack([torch.tensor(label).flatten(), pieces.map[b].flatten()], 1).unique(dim=0)
        assert pairs.shape[0] == count + 1  # a one-to-one relabelling (and −1 ↔ −1)


def test_columns_mode_pieces_are_the_cut_intervals() -> None:
    g = torch.Generator().manual_seed(2)
    images = random_discs(32, 120, g)
    widths = torch.randint(70, 121, (32,), generator=g)
    keep = ((images > 0.1) & (torch.arange(120) < widths[:, None])[:, None]).flatten(1).any(1)
    images, widths = images[keep], widths[keep]
    cuts = find_cuts(images, widths, valley=0.8)
    pieces = find_pieces(images, widths, mode="columns", valley=0.8)
    assert torch.equal(pieces.counts, cuts.counts - 1)
    ink = (images > 0.1) & (torch.arange(120) < widths[:, None])[:, None]
    for b in range(images.shape[0]):
        bounds = cuts.positions[b, : int(cuts.counts[b])].tolist()
        expected = torch.full((H, 120), -1)
        for i, (a, e) in enumerate(itertools.pairwise(bounds)):
            expected[:, a:e] = i
            columns = a + ink[b, :, a:e].any(0).nonzero().flatten()
            assert int(pieces.x0[b, i]) == int(columns[0]) and int(pieces.x1[b, i]) == int(columns[-1]) + 1
        assert torch.equal(pieces.map[b], torch.where(ink[b], expected, -1))
    for name in ("string", "start", "end"):
        assert torch.equal(getattr(segments(pieces), name), getattr(segments(cuts), name))
    # every component mode piece lies in one string's ink and pieces partition the kept ink
    components = find_pieces(images, widths, valley=0.8)
    assert bool((components.map[~ink] == -1).all())
    assert bool((components.map.flatten(1).amax(1) == components.counts - 1).all())
    # with valley > 1 a valley may sit on a run's first column: the empty interval is dropped
    loose = {"valley": 1.5, "min_piece": 1}
    images = random_discs(64, 120, torch.Generator().manual_seed(5))
    cuts, pieces = find_cuts(images, **loose), find_pieces(images, mode="columns", **loose)
    assert int(pieces.counts.sum()) < int((cuts.counts - 1).sum())
    assert bool((pieces.map.flatten(1).amax(1) == pieces.counts - 1).all())
    assert bool((pieces.x1 > pieces.x0)[pieces.x0 >= 0].all())


def test_character_pixels_counts_exactly() -> None:
    # three blocks = three pieces; the owners: block 0 is character 0, block 1 is split
    # between characters 0 (columns 12-13) and 1 (14-15), block 2 is character 2 but for two
    # unowned pixels; a faint pixel (no piece) owned by character 1 is not counted
    image = string(40, (4, 8, 2, 6), (4, 8, 12, 16), (4, 8, 24, 28))
    image[0, 20, 20] = 0.05
    owner = torch.full((1, H, 40), -1)
    owner[0, 4:8, 2:6] = 0
    owner[0, 4:8, 12:14] = 0
    owner[0, 4:8, 14:16] = 1
    owner[0, 4:8, 24:28] = 2
    owner[0, 4, 24:26] = -1
    owner[0, 20, 20] = 1
    pieces = find_pieces(image)
    assert pieces.counts.tolist() == [3]
    segs = segments(pieces, max_span=3)
    inside, total = character_pixels(segs, pieces, owner, max_chars=4)
    assert inside.shape == (6, 4) and inside.dtype == torch.long and total.tolist() == [[24, 8, 14, 0]]
    per_piece = {(0, 1): [16, 0, 0, 0], (1, 2): [8, 8, 0, 0], (2, 3): [0, 0, 14, 0]}
    for m, (i, j) in enumerate(zip(segs.start.tolist(), segs.end.tolist(), strict=True)):
        expected = [sum(per_piece[(k, k + 1)][c] for k in range(i, j)) for c in range(4)]
        assert inside[m].tolist() == expected
    # a batch, checked against direct counting of every segment
    g = torch.Generator().manual_seed(3)
    images = random_discs(8, 80, g)
    owners = torch.randint(-1, 3, images.shape, generator=g)
    pieces = find_pieces(images, valley=0.9, min_pixels=1)
    segs = segments(pieces, 2)
    inside, total = character_pixels(segs, pieces, owners, 3)
    for m in range(len(segs.string)):
        b, i, j = int(segs.string[m]), int(segs.start[m]), int(segs.end[m])
        held = (pieces.map[b] >= i) & (pieces.map[b] < j)
        assert inside[m].tolist() == [int((held & (owners[b] == k)).sum()) for k in range(3)]
    assert total.tolist() == [
        [int(((pieces.map[b] >= 0) & (owners[b] == k)).sum()) for k in range(3)] for b in range(8)
    ]


def coverage(strings, pieces: Pieces, max_span: int = 3) -> float:
    """The fraction of strings with a chain of segments (each one's end the next one's start),
    one per character in order, holding ≥ 80 % of its character's pixels and ≤ 20 % of every
    other character's (a Python loop over strings, as a test may)."""
    K = strings.labels.shape[1]
    segs = segments(pieces, max_span)
    inside, total = character_pixels(segs, pieces, strings.owner, K)
    found = 0
    for b in range(len(strings)):
        length, rows = int(strings.lengths[b]), (segs.string == b).nonzero().flatten()
        held, whole = inside[rows, :length].float(), total[b, :length].float()
        others_small = (held <= 0.2 * whole).sum(1, keepdim=True) - (held <= 0.2 * whole).long()
        good = (held >= 0.8 * whole) & (others_small == length - 1)  # (segments, characters)
        arcs = list(zip(segs.start[rows].tolist(), segs.end[rows].tolist(), strict=True))
        reached = {a for a, _ in arcs}  # a chain may start at any state
        for k in range(length):
            reached = {e for m, (a, e) in enumerate(arcs) if good[m, k] and a in reached}
        found += bool(reached)
    return found / len(strings)


@pytest.mark.skipif(not (MNIST_DIR / "mnist").is_dir(), reason="MNIST not in /work/shared/data")
def test_components_cover_at_least_as_many_real_strings_as_columns() -> None:
    from genoise.data import load_dataset
    from genoise.data.digit_strings import DigitStringConfig, digit_strings

    test = load_dataset("mnist", "test", data_dir=MNIST_DIR)
    strings = digit_strings(test.images, test.labels, 300, DigitStringConfig(mode="amount"), seed=1)
    found = {
        mode: coverage(strings, find_pieces(strings.images, strings.widths, mode=mode))
        for mode in ("components", "columns")
    }
    print(f"strings covered by a chain of segments (max_span 3): {found}")  # 0.453 vs 0.437
    assert found["components"] >= found["columns"] > 0.3


# --------------------------------------------------------------------------- segments


def test_segments_are_the_arcs_of_the_segmentation_graph() -> None:
    cuts = Cuts(positions=torch.tensor([[0, 5, 9, 14], [2, 7, -1, -1]]), counts=torch.tensor([4, 2]))
    segs = segments(cuts, max_span=3)
    arcs = list(zip(segs.string.tolist(), segs.start.tolist(), segs.end.tolist(), strict=True))
    assert arcs == [(0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 0, 1)]
    assert segs.x0.tolist() == [0, 0, 0, 5, 5, 9, 2]
    assert segs.x1.tolist() == [5, 9, 14, 9, 14, 14, 7]
    assert all(t.dtype == torch.long for t in (segs.string, segs.start, segs.end, segs.x0, segs.x1))
    one = segments(cuts, max_span=1)
    assert list(zip(one.string.tolist(), one.start.tolist(), one.end.tolist(), strict=True)) == [
        (0, 0, 1),
        (0, 1, 2),
        (0, 2, 3),
        (1, 0, 1),
    ]
    assert len(segments(cuts, max_span=10).string) == 6 + 1


def test_segments_of_pieces_span_their_pieces_columns() -> None:
    """Pieces: states 0 … counts (counts + 1 of them); arc i → j holds pieces i … j − 1, its
    columns from the smallest x0 to the largest x1 of those pieces (pieces may overlap)."""
    pieces = Pieces(
        map=torch.zeros(2, H, 20, dtype=torch.long),
        counts=torch.tensor([3, 1]),
        x0=torch.tensor([[5, 2, 9], [4, -1, -1]]),
        x1=torch.tensor([[8, 12, 10], [6, -1, -1]]),
    )
    segs = segments(pieces, max_span=2)
    arcs = list(zip(segs.string.tolist(), segs.start.tolist(), segs.end.tolist(), strict=True))
    assert arcs == [(0, 0, 1), (0, 0, 2), (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 0, 1)]
    assert segs.x0.tolist() == [5, 2, 2, 2, 9, 4] and segs.x1.tolist() == [8, 12, 12, 12, 10, 6]
    assert len(segments(pieces, max_span=5).string) == 6 + 1


# --------------------------------------------------------------------------- crops


def test_crop_of_a_rectangle_is_centred_and_spans_the_box() -> None:
    image = string(60, (6, 22, 20, 30))  # 16 rows x 10 columns
    segs = segments(find_cuts(image))
    assert segs.x0.tolist() == [20] and segs.x1.tolist() == [30]
    for centre in ("mass", "box"):
        crop = crop_segments(image, segs, centre=centre)
        assert crop.shape == (1, 1, 28, 28) and 0 <= float(crop.min()) and float(crop.max()) <= 1
        top, bottom, left, right = ink_box(crop[0, 0])
        assert abs((bottom - top) - 20) <= 1
        assert abs((right - left) - 10 * 20 / 16) <= 1
        assert abs((top + bottom) / 2 - 14) <= 0.5 and abs((left + right) / 2 - 14) <= 0.5
        assert abs(float(crop.sum()) - 20 * 12.5) < 3  # mass ≈ area of the scaled box


def test_a_tall_thin_stroke_keeps_its_aspect_ratio() -> None:
    image = string(40, (2, 26, 10, 14))  # 24 x 4: scaled by 20 / 24
    crop = crop_segments(image, segments(find_cuts(image)))[0, 0]
    top, bottom, left, right = ink_box(crop)
    assert abs((bottom - top) - 20) <= 1
    assert abs((right - left) - 4 * 20 / 24) <= 1
    assert abs(float(crop[14].sum()) - 4 * 20 / 24) < 0.1  # mass across a row = scaled width
    # a small blob is scaled up to the box
    small = string(40, (10, 15, 10, 15))
    top, bottom, left, right = ink_box(crop_segments(small, segments(find_cuts(small)))[0, 0])
    assert abs((bottom - top) - 20) <= 1 and abs((right - left) - 20) <= 1


def test_a_normalised_digit_is_its_own_crop(monkeypatch) -> None:
    g = torch.Generator().manual_seed(0)
    digit = 0.2 + 0.8 * torch.rand(20, 20, generator=g)
    digit[5:15, 5:15] = 0.0  # a ring-like glyph
    digit = torch.maximum(digit, digit.flip(0, 1))  # symmetric: mass centre = box centre
    mnist = torch.zeros(28, 28)
    mnist[4:24, 4:24] = digit
    image = torch.zeros(2, H, 90)
    image[1, :, 30:58] = mnist
    image[1, 3:25, 10:32] = 1.0  # neighbours left and right, outside the segment's columns
    image[1, 8:20, 56:66] = 1.0
    image[0, 5:20, 5:9] = 1.0
    cuts = find_cuts(image, torch.tensor([20, 90]))
    segs = segments(cuts)
    # the shortest segment covering the digit's ink [34, 54) (its hole may add a valley cut)
    covering = (segs.string == 1) & (segs.x0 <= 34) & (segs.x1 >= 54)
    m = int(torch.where(covering, segs.x1 - segs.x0, 10**6).argmin())
    assert bool(covering[m]) and int(segs.x0[m]) > 24 and int(segs.x1[m]) < 60
    assert segs.x0[m].item() == 33 and segs.x1[m].item() == 55  # the 28-column frame reads beyond it
    crops = crop_segments(image, segs)
    assert crops.shape == (len(segs.string), 1, 28, 28)
    torch.testing.assert_close(crops[m, 0], mnist, atol=1e-4, rtol=0)
    torch.testing.assert_close(crop_segments(image, segs, centre="box")[m, 0], mnist, atol=1e-4, rtol=0)
    # one segment alone, or in chunks of 2 segments, is cropped the same
    single = Segments(*(t[m : m + 1] for t in (segs.string, segs.start, segs.end, segs.x0, segs.x1)))
    torch.testing.assert_close(crop_segments(image[:, None], single)[0], crops[m])
    monkeypatch.setattr(segment_images, "_CHUNK", 2)
    torch.testing.assert_close(crop_segments(image, segs), crops)


def test_mass_centring_puts_the_centre_of_mass_at_the_middle() -> None:
    image = string(40, (4, 24, 10, 14), (4, 8, 14, 22))  # an asymmetric 'Γ'
    crop = crop_segments(image, segments(find_cuts(image)))[0, 0]
    grid = torch.arange(28, dtype=torch.float32) + 0.5
    cy = float((crop.sum(1) * grid).sum() / crop.sum())
    cx = float((crop.sum(0) * grid).sum() / crop.sum())
    assert abs(cy - 14) < 0.3 and abs(cx - 14) < 0.3


def test_a_segment_without_ink_is_blank() -> None:
    image = string(40, (4, 24, 5, 10), (4, 24, 30, 35))
    segs = Segments(
        *(torch.tensor([0, 0]) for _ in range(3)), x0=torch.tensor([12, 5]), x1=torch.tensor([28, 10])
    )
    crops = crop_segments(image, segs, size=32, box=24)
    assert crops.shape == (2, 1, 32, 32)
    assert float(crops[0].abs().sum()) == 0.0 and float(crops[1].sum()) > 100
    assert crop_segments(
        image, segments(Cuts(torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
    ).shape == (0, 1, 28, 28)


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_a_one_line_value_error() -> None:
    images = string(30, (4, 24, 5, 10), n=4)
    images[3] = 0.0
    images[2, 0, 0] = 0.05  # faint, below the threshold: still ink-free apart from its block
    with pytest.raises(ValueError, match=r"^string image 3 is empty \(no ink above threshold 0\.1\)$"):
        find_cuts(images)
    with pytest.raises(ValueError, match=r"string image 0 is empty"):
        find_cuts(images[:1], torch.tensor([5]))  # the ink starts at the width
    nan = string(30, (4, 24, 5, 10))
    nan[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        find_cuts(nan)
    with pytest.raises(ValueError, match="NaN"):
        crop_segments(nan, segments(Cuts(torch.tensor([[5, 10]]), torch.tensor([2]))))
    with pytest.raises(ValueError, match=r"must be \(n, H, W\) or \(n, 1, H, W\)"):
        find_cuts(torch.ones(28, 30))
    with pytest.raises(ValueError, match=r"must be \(n, H, W\) or \(n, 1, H, W\)"):
        find_cuts(torch.ones(1, 2, 28, 30))
    with pytest.raises(ValueError, match=">= 0"):
        find_cuts(-images[:1])
    with pytest.raises(ValueError, match="float"):
        find_cuts(images[:1].to(torch.uint8))
    with pytest.raises(ValueError, match=r"widths must be in \[1, 30\]"):
        find_cuts(images[:2], torch.tensor([30, 31]))
    with pytest.raises(ValueError, match="widths has 1 entries for 2"):
        find_cuts(images[:2], torch.tensor([30]))
    with pytest.raises(ValueError, match="widths must be integers"):
        find_cuts(images[:1], torch.tensor([30.0]))
    with pytest.raises(ValueError, match="min_piece"):
        find_cuts(images[:1], min_piece=0)
    with pytest.raises(ValueError, match="smooth"):
        find_cuts(images[:1], smooth=0)
    cuts = Cuts(torch.tensor([[5, 10]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="max_span must be an integer >= 1, got 0"):
        segments(cuts, max_span=0)
    with pytest.raises(ValueError, match="counts"):
        segments(Cuts(torch.tensor([[5, 10]]), torch.tensor([3])))
    segs = segments(cuts)
    with pytest.raises(ValueError, match="box must be an integer"):
        crop_segments(images[:1], segs, size=28, box=29)
    with pytest.raises(ValueError, match="centre must be one of"):
        crop_segments(images[:1], segs, centre="middle")
    with pytest.raises(ValueError, match=r"segs\.string must index"):
        crop_segments(
            images[:1],
            Segments(*(torch.tensor([1]) for _ in range(3)), x0=torch.tensor([5]), x1=torch.tensor([10])),
        )
    with pytest.raises(ValueError, match="0 <= x0 < x1 <= 30"):
        crop_segments(
            images[:1],
            Segments(*(torch.tensor([0]) for _ in range(3)), x0=torch.tensor([5]), x1=torch.tensor([31])),
        )


def test_bad_piece_input_is_a_one_line_value_error() -> None:
    images = string(30, (4, 24, 5, 10), n=4)
    images[3] = 0.0
    for mode in ("components", "columns"):
        with pytest.raises(ValueError, match=r"^string image 3 is empty \(no ink above threshold 0\.1\)$"):
            find_pieces(images, mode=mode)
    with pytest.raises(ValueError, match=r"string image 0 is empty"):
        find_pieces(images[:1], torch.tensor([5]))
    specks = string(30, (4, 6, 5, 7), (20, 22, 20, 22))  # two 4-pixel specks
    with pytest.raises(ValueError, match=r"^string image 0 has no ink component of at least 5 pixels"):
        find_pieces(torch.cat([images[:1], specks])[[1, 0]])
    assert find_pieces(specks, min_pixels=4).counts.tolist() == [2]
    with pytest.raises(ValueError, match="mode must be one of 'components', 'columns'; got 'rows'"):
        find_pieces(images[:1], mode="rows")
    with pytest.raises(ValueError, match="min_pixels must be an integer >= 1, got 0"):
        find_pieces(images[:1], min_pixels=0)
    for kwargs, match in [
        ({"min_piece": 0}, "min_piece"),
        ({"smooth": 0}, "smooth"),
        ({"valley": 0.0}, "valley must be > 0"),
        ({"threshold": -1.0}, "threshold"),
    ]:
        with pytest.raises(ValueError, match=match):
            find_pieces(images[:1], **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        find_pieces(images[:1].masked_fill(images[:1] > 0, float("nan")))
    pieces = find_pieces(images[:2])
    with pytest.raises(ValueError, match=r"pieces\.counts must be in \[1, 1\], got values from 0 to 1"):
        segments(Pieces(pieces.map, torch.tensor([0, 1]), pieces.x0, pieces.x1))
    with pytest.raises(ValueError, match=r"pieces\.x1 has shape \(2, 2\), pieces\.x0 \(2, 1\)"):
        segments(Pieces(pieces.map, pieces.counts, pieces.x0, pieces.x1.repeat(1, 2)))
    segs = segments(pieces)
    with pytest.raises(ValueError, match=r"pieces\.map has shape \(2, 28, 30\) for images of shape \(1, "):
        crop_segments(images[:1], segs, pieces=pieces)
    owner = torch.zeros(2, H, 30, dtype=torch.long)
    with pytest.raises(ValueError, match=r"owner has shape \(1, 28, 30\), pieces\.map \(2, 28, 30\)"):
        character_pixels(segs, pieces, owner[:1], 1)
    with pytest.raises(ValueError, match="owner must be integers"):
        character_pixels(segs, pieces, owner.float(), 1)
    with pytest.raises(ValueError, match=r"owner must be in \[-1, 0\] \(max_chars 1\), got values from 0 to"):
        character_pixels(segs, pieces, owner + (torch.arange(30) == 3), 1)
    with pytest.raises(ValueError, match="max_chars must be an integer >= 1"):
        character_pixels(segs, pieces, owner, 0)
    with pytest.raises(ValueError, match=r"0 <= start < end <= 1"):
        character_pixels(
            Segments(
                *(torch.tensor([0]) for _ in range(2)),
                end=torch.tensor([2]),
                x0=torch.tensor([5]),
                x1=torch.tensor([10]),
            ),
            pieces,
            owner,
            1,
        )
