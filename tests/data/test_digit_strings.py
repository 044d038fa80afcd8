"""Digit strings (LeCun et al. 1998 check amounts): shapes, determinism, boxes and gaps, the
image = the maximum of the placed characters, the pixels' owners, the amount grammar, input
checks; one case on real MNIST (skipped without the data folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from genoise.data.digit_strings import (
    INK,
    SEPARATOR,
    DigitStringConfig,
    DigitStrings,
    amount_text,
    digit_strings,
)

MNIST_DIR = Path("/work/shared/data")
AMOUNT = re.compile(r"^(?:[1-9][0-9]*|[1-9][0-9]*\.[0-9]{2}|0\.[0-9]{2})$")


def rectangle(c: int, left: int) -> torch.Tensor:
    """Synthetic digit of class c: a full rectangle of width 2 + c (ink columns), rows
    3 + c .. 24, intensity 0.5 + c / 20, starting at column ``left``; plus faint pixels (0.05 and
    0.1, not above the ink threshold) in the columns next to it, which the crop must drop."""
    image = torch.zeros(28, 28)
    image[3 + c : 25, left : left + 2 + c] = 0.5 + c / 20
    image[10, left - 1] = 0.05
    image[12, left + 2 + c] = 0.1
    return image


@pytest.fixture(scope="module")
def pool() -> tuple[torch.Tensor, torch.Tensor]:
    """Three copies of each class at different horizontal positions, shuffled, plus a blank image."""
    images, labels = [], []
    for c in range(10):
        for left in (3, 7, 12):
            images.append(rectangle(c, left))
            labels.append(c)
    images.append(torch.zeros(28, 28))  # no ink: never drawn
    labels.append(4)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    return torch.stack(images)[order, None], torch.tensor(labels)[order]


def check_layout(s: DigitStrings, config: DigitStringConfig, min_owning: float = 0.99) -> None:
    """Boxes, gaps, widths, ink and owners of any batch (real or synthetic digits)."""
    n, K = s.labels.shape
    assert K == config.max_length and s.boxes.shape == (n, K, 2) and s.images.shape[:2] == (n, 28)
    W = s.images.shape[2]
    assert int(s.widths.max()) == W and float(s.images.min()) >= 0 and float(s.images.max()) <= 1
    valid = torch.arange(K)[None] < s.lengths[:, None]
    assert torch.equal(s.labels < 0, ~valid) and bool((s.boxes[~valid] == -1).all())
    assert bool((s.boxes[valid][:, 0] >= config.margin).all())
    assert bool((s.boxes[valid][:, 1] > s.boxes[valid][:, 0]).all())
    ink = s.images.amax(1) > 0  # (n, W) columns with any ink
    columns = torch.arange(W)
    for i in range(n):  # a test may loop over strings
        length, boxes = int(s.lengths[i]), s.boxes[i, : int(s.lengths[i])]
        gaps = boxes[1:, 0] - boxes[:-1, 1]
        assert bool(((gaps >= config.min_gap) & (gaps <= config.max_gap)).all())
        assert int(boxes[:, 0].min()) == config.margin
        assert int(s.widths[i]) == int(boxes[:, 1].max()) + config.margin
        inside = ((columns[None] >= boxes[:, :1]) & (columns[None] < boxes[:, 1:])).any(0)
        assert not bool((ink[i] & ~inside).any()), "ink outside every box"
        for k in range(length):  # a box's edge columns are ink (> 0.1)
            x0, x1 = boxes[k].tolist()
            assert float(s.images[i, :, x0].max()) > 0.1 and float(s.images[i, :, x1 - 1].max()) > 0.1
    check_owner(s, min_owning)


def check_owner(s: DigitStrings, min_owning: float = 0.99) -> None:
    """Owners: −1 exactly where the image is ≤ INK, owner k only inside box k and within the
    length, and at least ``min_owning`` of the characters own some pixel (only characters
    hidden under their neighbours may own none)."""
    n, K = s.labels.shape
    assert s.owner.shape == s.images.shape and s.owner.dtype == torch.long
    assert torch.equal(s.owner >= 0, s.images > INK) and bool((s.owner >= -1).all())
    assert bool((s.owner < s.lengths[:, None, None]).all())
    k = s.owner.clamp(min=0)  # the box of every pixel's owner
    x0 = s.boxes[..., 0].gather(1, k.flatten(1)).view_as(k)
    x1 = s.boxes[..., 1].gather(1, k.flatten(1)).view_as(k)
    column = torch.arange(s.images.shape[2])
    inside = (column >= x0) & (column < x1)
    assert bool(inside[s.owner >= 0].all()), "an owned pixel outside its owner's box"
    rows = torch.arange(n)[:, None].expand(n, s.owner.shape[1] * s.owner.shape[2])
    owned = torch.zeros(n, K + 1, dtype=torch.long).index_put_(
        (rows.flatten(), s.owner.flatten() + 1), torch.ones(rows.numel(), dtype=torch.long), accumulate=True)
    valid = torch.arange(K)[None] < s.lengths[:, None]
    assert float((owned[:, 1:] > 0)[valid].float().mean()) >= min_owning


def test_shapes_dtypes_lengths_and_padding(pool) -> None:
    config = DigitStringConfig(min_length=2, max_length=6)
    s = digit_strings(*pool, 40, config, seed=1)
    assert len(s) == 40 and s.images.dtype == torch.float32
    assert s.labels.shape == (40, 6) and s.widths.shape == s.lengths.shape == (40,)
    assert all(t.dtype == torch.long for t in (s.widths, s.labels, s.lengths, s.boxes))
    assert int(s.lengths.min()) >= 2 and int(s.lengths.max()) <= 6 and len(set(s.lengths.tolist())) == 5
    assert bool((s.labels[s.labels >= 0] <= 9).all())  # free mode: digits only
    check_layout(s, config)
    part = s[torch.tensor([3, 0])]
    assert part.images.shape == (2, 28, s.images.shape[2]) and torch.equal(part.labels[1], s.labels[0])
    assert len(s[5:9]) == 4 and len(s[-1]) == 1 and torch.equal(s[-1].boxes[0], s.boxes[39])
    assert torch.equal(part.owner[0], s.owner[3]) and torch.equal(s[5:9].owner, s.owner[5:9])


def test_same_seed_same_strings_other_seed_differs(pool) -> None:
    config = DigitStringConfig(mode="amount")
    a = digit_strings(*pool, 30, config, seed=7)
    b = digit_strings(*pool, 30, config, seed=torch.Generator().manual_seed(7))
    c = digit_strings(*pool, 30, config, seed=8)
    for name in ("images", "widths", "labels", "lengths", "boxes", "owner"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.labels, c.labels) and not torch.equal(a.boxes, c.boxes)


@pytest.mark.parametrize("gaps", [(-4, 6), (-9, -5), (0, 0), (3, 9)])
def test_image_is_the_maximum_of_the_placed_characters(pool, gaps) -> None:
    """Rebuild every string by hand from its labels and boxes (each class is one shape)."""
    config = DigitStringConfig(min_length=1, max_length=5, min_gap=gaps[0], max_gap=gaps[1], margin=3)
    s = digit_strings(*pool, 25, config, seed=2)
    check_layout(s, config, min_owning=0.0)  # the owners are checked exactly below
    expected = torch.zeros_like(s.images)
    owner = torch.full_like(s.owner, -1)
    for i in range(len(s)):
        for k in range(int(s.lengths[i])):
            c = int(s.labels[i, k])
            x0, x1 = s.boxes[i, k].tolist()
            assert x1 - x0 == 2 + c
            layer = torch.zeros(28, s.images.shape[2])
            layer[:, x0:x1] = rectangle(c, 5)[:, 5 : 7 + c]  # vertical position kept
            owner[i][(layer > INK) & (layer >= expected[i])] = k  # the brightest, later on a tie
            expected[i] = torch.maximum(expected[i], layer)
    assert torch.equal(s.images, expected) and torch.equal(s.owner, owner)
    ink = s.images.amax(1) > 0  # rectangles: every column inside a box has ink, none outside
    inside = torch.zeros_like(ink)
    for i, k in (s.labels >= 0).nonzero().tolist():
        inside[i, s.boxes[i, k, 0] : s.boxes[i, k, 1]] = True
    assert torch.equal(ink, inside)


def test_source_names_each_digit_image(pool) -> None:
    """``source``: the index of every digit's image in the pool given (its class and its own ink
    columns, which differ between the copies of a class), −1 for separators and padding."""
    images, labels = pool
    config = DigitStringConfig(min_length=4, max_length=6, min_gap=1, max_gap=3, mode="amount")
    s = digit_strings(images, labels, 30, config, seed=5)
    digit = s.labels.ge(0) & s.labels.ne(SEPARATOR)
    assert torch.equal(s.source >= 0, digit)
    assert torch.equal(labels[s.source[digit]], s.labels[digit])
    assert bool((images[s.source[digit]].flatten(1).amax(1) > 0).all())  # the blank image is never drawn
    for i, k in digit.nonzero().tolist():  # gaps ≥ 1: each box shows its source's ink columns alone
        x0, x1 = s.boxes[i, k].tolist()
        source = images[s.source[i, k], 0]
        columns = (source > INK).any(0).nonzero().flatten()
        assert torch.equal(s.images[i, :, x0:x1], source[:, int(columns[0]) : int(columns[-1]) + 1])
    part = s[[3, 1]]
    assert torch.equal(part.source, s.source[[3, 1]])


def test_few_synthetic_characters_are_hidden(pool) -> None:
    """Solid blocks overlapping by up to 4 columns: ≥ 99 % of the characters own a pixel
    (99.8 % of these 11,045; the others lie wholly under brighter neighbours)."""
    s = digit_strings(*pool, 2000, DigitStringConfig(), seed=1)
    check_owner(s, 0.99)
    owns = (s.owner[:, None] == torch.arange(8)[None, :, None, None]).flatten(2).any(2)
    hidden = ~owns & (s.labels >= 0)
    assert 0 < int(hidden.sum()) < 0.01 * int(s.lengths.sum())


def test_uint8_images_are_divided_by_255(pool) -> None:
    images = (pool[0] * 255).round().to(torch.uint8)
    a = digit_strings(images, pool[1], 10, seed=3)
    b = digit_strings(images.float() / 255, pool[1], 10, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes) and torch.equal(a.owner, b.owner)


def test_amount_mode_follows_the_grammar(pool) -> None:
    config = DigitStringConfig(min_length=1, max_length=8, mode="amount", min_gap=-2, max_gap=2)
    s = digit_strings(*pool, 500, config, seed=4)
    texts = amount_text(s.labels, s.lengths)
    assert texts == [s.text(i) for i in range(len(s))]
    assert all(AMOUNT.match(t) for t in texts), [t for t in texts if not AMOUNT.match(t)]
    with_cents = ["." in t for t in texts]
    assert 100 < sum(with_cents) < 400
    assert all(len(t) >= 4 for t, cents in zip(texts, with_cents, strict=True) if cents)
    assert any(t.startswith("0.") for t in texts) and any(len(t) < 4 for t in texts)
    assert [len(t) for t in texts] == s.lengths.tolist()
    check_layout(s, config)
    sep = s.labels == SEPARATOR  # separator boxes are 4-6 px wide, ink near the baseline
    sep_widths = s.boxes[..., 1] - s.boxes[..., 0]
    assert bool(((sep_widths[sep] >= 4) & (sep_widths[sep] <= 6)).all())
    alone = digit_strings(*pool, 200, DigitStringConfig(4, 4, "amount", 10, 10), seed=5)
    dots = alone.labels[:, 1] == SEPARATOR
    x0, x1 = alone.boxes[dots, 1, 0], alone.boxes[dots, 1, 1]
    glyph = torch.stack([alone.images[j, :, a:b].amax(1) for j, a, b in
                         zip(dots.nonzero().flatten().tolist(), x0.tolist(), x1.tolist(), strict=True)])
    assert int(dots.sum()) > 50 and float(glyph[:, :16].max()) == 0 and float(glyph[:, 27].max()) == 0
    assert float(glyph.max()) == 1.0


def test_text_and_amount_text() -> None:
    labels = torch.tensor([[1, 2, 0, 3, SEPARATOR, 4, 5], [0, SEPARATOR, 0, 7, -1, -1, -1]])
    assert amount_text(labels, torch.tensor([7, 4])) == ["1203.45", "0.07"]
    s = DigitStrings(torch.zeros(2, 28, 9), torch.tensor([9, 9]), labels, torch.tensor([7, 4]),
                     torch.zeros(2, 7, 2, dtype=torch.long), torch.full((2, 28, 9), -1))
    assert s.text(0) == "1203.45" and s.text(1) == "0.07"
    with pytest.raises(ValueError, match="symbols 0-10"):
        amount_text(labels, torch.tensor([7, 5]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda im, lb: (im[:, :, :20], lb), r"images must be \(N, 1, 28, 28\)"),
        (lambda im, lb: (im[:0], lb[:0]), "images is empty"),
        (lambda im, lb: (im, lb[:-1]), "labels must be"),
        (lambda im, lb: (im, lb + 1), "labels must be digits 0-9"),
        (lambda im, lb: (im, lb.float()), "labels must be integers"),
        (lambda im, lb: (im * 2, lb), r"images must lie in \[0, 1\]"),
        (lambda im, lb: (im.masked_fill(im > 0.9, float("nan")), lb), "images contains .* NaN"),
        (lambda im, lb: (im[lb != 3], lb[lb != 3]), "digit.*3"),
    ],
)
def test_bad_inputs_raise(pool, change, match) -> None:
    images, labels = change(*pool)
    with pytest.raises(ValueError, match=match):
        digit_strings(images, labels, 4)


def test_bad_n_and_config_raise(pool) -> None:
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        digit_strings(*pool, 0)
    for kwargs, match in [
        ({"min_length": 5, "max_length": 3}, "min_length .* must be <= max_length"),
        ({"min_length": 0}, "min_length must be an integer >= 1"),
        ({"mode": "cheque"}, "mode must be one of"),
        ({"min_gap": 2, "max_gap": 1}, "min_gap .* must be <= max_gap"),
        ({"min_gap": -10}, "min_gap must be an integer >= -9"),
        ({"margin": -1}, "margin must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            DigitStringConfig(**kwargs)


@pytest.mark.skipif(not (MNIST_DIR / "mnist").is_dir(), reason="MNIST not in /work/shared/data")
def test_real_mnist_amounts() -> None:
    from genoise.data import load_dataset

    test = load_dataset("mnist", "test", data_dir=MNIST_DIR)
    config = DigitStringConfig(mode="amount")
    s = digit_strings(test.images, test.labels, 200, config, seed=0)
    check_layout(s, config)
    assert all(AMOUNT.match(t) for t in amount_text(s.labels, s.lengths))
    assert s.images.shape[2] <= 8 * 28 + 7 * 6 + 4
