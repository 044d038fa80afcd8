"""Strings of touching, overlapping handwritten digits: the synthetic "check amounts" of
LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document
recognition" (Proc. IEEE 86(11); Parts V and X), built from MNIST digits, seeded.

**Characters.** Each digit is a random image of the requested class drawn from the given pool,
cropped horizontally to its ink columns (columns holding a pixel > ``INK`` = 0.1; fainter
pixels outside them are dropped), and keeps its 28-row MNIST vertical position. Images with no
ink are never drawn, and every class 0–9 needs at least one inked image.

**Separator** (label ``SEPARATOR`` = 10, shown as ``'.'``): a filled disk generated from the
generator, no data needed. Radius r ~ U[1.5, 2.5] px, box width w = round(2r) + 1 ∈ {4, 5, 6}
px, centre at the middle of its box and at row c ~ U[19, 23] (near the MNIST baseline);
the intensity of pixel (i, j), at distance d of its centre (i + ½, j + ½) from the disk's
centre, is clip(r + ½ − d, 0, 1): 1 inside, a one-pixel linear soft edge. Every column of its
box has ink > 0.1.

**Layout.** Characters go left to right: character k + 1's box starts ``gap`` columns after
character k's box ends (x0[k+1] = x1[k] + gap), gap an integer uniform on [min_gap, max_gap]
drawn independently for every pair (negative gaps: touching / overlapping characters, as in
the paper), except on either side of a separator, where the gap is uniform on
[max(1, min_gap), max(max(1, min_gap), max_gap)]: a dot written under a digit is lost.
Overlapping pixels combine by their maximum. The string is then shifted so that its
leftmost box starts at column ``margin``; its image width is its rightmost box end + ``margin``
(the last box's end unless, with narrow characters and negative gaps, a character ends left of
an earlier one). The images of a batch share the widest width W, narrower strings being padded
with zeros on the right.

**Owners** (the ground truth of a segmentation, LeCun et al. 1998 Part V). Every pixel whose
intensity is above ``INK`` is *owned* by the character whose placed patch is brightest there
(on a tie, the later character, k + 1 over k); fainter pixels have no owner (−1). As the image
is the maximum of the patches, a pixel has an owner exactly when the image is above ``INK``,
and character k owns only pixels inside its box. A character owns no pixel when brighter
neighbours hide all of its ink: none of the 27,582 characters of 5,000 strings of MNIST test
digits (default config), but 0.2 % of solid synthetic blocks.

**Grammar.** ``mode="free"``: length L uniform on [min_length, max_length], every character a
digit uniform on 0–9, no separator. ``mode="amount"`` (a check amount), over the alphabet
{0–9, '.'}, the regular language::

    [1-9][0-9]*  |  [1-9][0-9]*\\.[0-9][0-9]  |  0\\.[0-9][0-9]

i.e. an integer part without leading zero, optionally followed by the separator and exactly two
cent digits; the integer part is "0" only when cents follow. Sampling: the total length L
(separator included) is uniform on [min_length, max_length]; a string with L ≥ 4 has cents
with probability ½ (L < 4 never has: it needs 1 + 1 + 2 characters); the integer part has
I = L − 3 digits with cents, I = L without; its first digit is uniform on 1–9, except a
one-digit integer part followed by cents, uniform on 0–9; every other digit is uniform on 0–9.

Training strings must be built from the MNIST **training** digits and test strings from the
MNIST **test** digits, so that no test string reuses a training image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_int

SEPARATOR = 10  # label of the decimal separator glyph ('.')
NUM_SYMBOLS = 11  # 0-9 and the separator
SYMBOLS = "0123456789."
MODES = ("free", "amount")
INK = 0.1  # a column with a pixel above this is ink
DIGIT = 28


@dataclass(frozen=True)
class DigitStringConfig:
    """What a string looks like.

    min_length, max_length : characters per string, separator included (uniform in between)
    mode : "free" (any digits) or "amount" (check amounts; the grammar of the module docstring)
    min_gap, max_gap : horizontal gap in pixels between neighbouring characters' ink boxes,
        uniform on [min_gap, max_gap]; negative = overlapping / touching (min_gap > −10)
    margin : blank columns left and right of the string
    """

    min_length: int = 3
    max_length: int = 8
    mode: str = "free"
    min_gap: int = -4
    max_gap: int = 6
    margin: int = 2

    def __post_init__(self) -> None:
        check_int("min_length", self.min_length, min=1)
        check_int("max_length", self.max_length, min=1)
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must be <= max_length ({self.max_length})")
        check_choice("mode", self.mode, MODES)
        check_int("min_gap", self.min_gap, min=-9)
        check_int("max_gap", self.max_gap, min=None)
        if self.min_gap > self.max_gap:
            raise ValueError(f"min_gap ({self.min_gap}) must be <= max_gap ({self.max_gap})")
        check_int("margin", self.margin, min=0)


@dataclass
class DigitStrings:
    """A batch of n strings.

    images : (n, 28, W) float32 in [0, 1], W the widest string's width (zero padding right)
    widths : (n,) long, each string's image width (margins included)
    labels : (n, max_length) long, the symbols (0–9, ``SEPARATOR``), padded with −1
    lengths : (n,) long, characters per string
    boxes : (n, max_length, 2) long, column range [x0, x1) of each character's ink, −1 padded
    owner : (n, 28, W) long, the position k of the character owning each pixel (the brightest
        placed patch there, the later one on a tie), −1 where the image is ≤ ``INK`` (module
        docstring, "Owners")
    source : (n, max_length) long, the index in the ``images`` given to :func:`digit_strings` of
        each digit's image, −1 for separators and padding (``None`` when not known)
    """

    images: Tensor
    widths: Tensor
    labels: Tensor
    lengths: Tensor
    boxes: Tensor
    owner: Tensor
    source: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> DigitStrings:
        """The strings at ``index`` (an int keeps the batch dimension); W is kept."""
        if isinstance(index, int):
            index = [index]
        return DigitStrings(self.images[index], self.widths[index], self.labels[index],
                            self.lengths[index], self.boxes[index], self.owner[index],
                            None if self.source is None else self.source[index])

    def text(self, i: int) -> str:
        """String ``i`` as text, e.g. ``"1203.45"``."""
        return amount_text(self.labels[i][None], self.lengths[i][None])[0]


def amount_text(labels: Tensor, lengths: Tensor) -> list[str]:
    """Symbols (n, K) with lengths (n,) as text: digits as themselves, ``SEPARATOR`` as '.'
    (a display helper: a Python loop over strings)."""
    if labels.ndim != 2 or lengths.ndim != 1 or labels.shape[0] != lengths.shape[0]:
        raise ValueError(f"amount_text needs labels (n, K) and lengths (n,), got "
                         f"{tuple(labels.shape)} and {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > labels.shape[1]):
        raise ValueError(f"lengths must lie in [0, {labels.shape[1]}], got "
                         f"[{int(lengths.min())}, {int(lengths.max())}]")
    inside = torch.arange(labels.shape[1], device=labels.device)[None] < lengths[:, None].to(labels.device)
    used = labels[inside]
    if used.numel() and (int(used.min()) < 0 or int(used.max()) >= NUM_SYMBOLS):
        raise ValueError(f"labels must be symbols 0-{NUM_SYMBOLS - 1} within each length, got values in "
                         f"[{int(used.min())}, {int(used.max())}]")
    return ["".join(SYMBOLS[s] for s in row[:length])
            for row, length in zip(labels.tolist(), lengths.tolist(), strict=True)]


def _pool(images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Check the digit pool; returns the inked images (M, 28, 28) float32 sorted by class, their
    first ink column and ink width (M,), each class's start and count (10,), and the index of
    every pool image in ``images`` (M,)."""
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or tuple(images.shape[1:]) != (DIGIT, DIGIT):
        raise ValueError(f"images must be (N, 1, 28, 28) or (N, 28, 28), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is empty (N = 0); digit strings need at least one digit image")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be (N,) = ({images.shape[0]},) to match images, "
                         f"got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high > 9:
        raise ValueError(f"labels must be digits 0-9, got values in [{low}, {high}]")
    if images.dtype == torch.uint8:
        images = images.float() / 255
    elif images.is_floating_point():
        check_finite("images", images)
        low, high = float(images.min()), float(images.max())
        if low < 0 or high > 1:
            raise ValueError(f"images must lie in [0, 1] (or be uint8 0-255), got values in [{low}, {high}]")
        images = images.float()
    else:
        raise ValueError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
    ink = (images > INK).any(1)  # (N, 28) ink columns
    inked = ink.any(1)
    images, labels, ink = images[inked], labels[inked].long(), ink[inked]
    origin = inked.nonzero().flatten()
    counts = torch.bincount(labels, minlength=10)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"no inked image (a pixel > {INK}) of digit(s) {', '.join(map(str, missing))}; "
                         f"every digit 0-9 needs at least one")
    order = torch.sort(labels, stable=True).indices
    images, ink, origin = images[order].contiguous(), ink[order], origin[order]
    columns = torch.arange(DIGIT, device=ink.device)
    first = torch.where(ink, columns, DIGIT).amin(1)
    last = torch.where(ink, columns, -1).amax(1)
    return images, first, last + 1 - first, torch.cumsum(counts, 0) - counts, counts, origin


def _amount_labels(lengths: Tensor, digits: Tensor, lead: Tensor, cents: Tensor) -> Tensor:
    """Check amounts of ``lengths`` (n,) from uniform digits (n, K) on 0–9, leading digits (n,)
    on 1–9 and coin flips (n,) for the cents (the grammar of the module docstring)."""
    position = torch.arange(digits.shape[1], device=digits.device)[None]
    cents = cents & (lengths >= 4)
    integer = torch.where(cents, lengths - 3, lengths)  # digits of the integer part
    # a one-digit integer part followed by cents may be 0 ("0.45"); otherwise no leading zero
    first = torch.where(cents & (integer == 1), digits[:, 0], lead)
    labels = torch.cat([first[:, None], digits[:, 1:]], 1)
    return torch.where(cents[:, None] & (position == integer[:, None]), SEPARATOR, labels)


def _separators(radius: Tensor, row: Tensor, width: Tensor) -> Tensor:
    """Disk glyphs (n, 28, 28) of ``radius`` (n,) centred at ``row`` (n,) and at the middle of
    their box, columns [0, ``width``) (n,); nothing right of the box."""
    centres = torch.arange(DIGIT, device=radius.device, dtype=torch.float32) + 0.5
    dy = centres[None, :, None] - row[:, None, None]
    dx = centres[None, None, :] - width[:, None, None] / 2
    glyph = (radius[:, None, None] + 0.5 - torch.sqrt(dy**2 + dx**2)).clamp(0, 1)
    return glyph * (centres[None, None, :] < width[:, None, None])


def digit_strings(images: Tensor, labels: Tensor, n: int, config: DigitStringConfig = DigitStringConfig(),
                  *, seed: int | torch.Generator = 0) -> DigitStrings:
    """``n`` strings of the digits ``images`` (N, 1, 28, 28) or (N, 28, 28), float in [0, 1] or
    uint8, with classes ``labels`` (N,) in 0–9 (the MNIST training split for training strings,
    its test split for test strings), laid out as the module docstring says.

    Deterministic given ``seed`` (an int, or a ``torch.Generator`` that is advanced).
    Vectorised over strings; the loop runs over character positions (≤ max_length).

    Examples
    --------
    >>> from genoise.data import load_dataset
    >>> train = load_dataset("mnist", "train")
    >>> batch = digit_strings(train.images, train.labels, 64, DigitStringConfig(mode="amount"))
    >>> batch.images.shape[:2], batch.text(0)  # ((64, 28), '4071.36') for instance
    """
    pool, first_ink, ink_width, starts, counts, origin = _pool(images, labels)
    n = check_int("n", n, min=1)
    if isinstance(seed, torch.Generator):
        generator = seed
    else:
        generator = torch.Generator().manual_seed(check_int("seed", seed, min=0))
    device, K = pool.device, config.max_length

    def draw(fn, *args, **kwargs) -> Tensor:  # draws on the generator's device, used on the pool's
        return fn(*args, generator=generator, device=generator.device, **kwargs).to(device)

    lengths = draw(torch.randint, config.min_length, config.max_length + 1, (n,))
    digits = draw(torch.randint, 0, 10, (n, K))
    if config.mode == "amount":
        lead = draw(torch.randint, 1, 10, (n,))
        cents = draw(torch.rand, n) < 0.5
        symbols = _amount_labels(lengths, digits, lead, cents)
    else:
        symbols = digits
    choice = draw(torch.rand, n, K)
    gaps = draw(torch.randint, config.min_gap, config.max_gap + 1, (n, K))
    clear = max(1, config.min_gap)  # a separator never touches its neighbours (it would vanish under them)
    clear_gaps = draw(torch.randint, clear, max(clear, config.max_gap) + 1, (n, K))
    radius = 1.5 + draw(torch.rand, n, K)
    row = 19 + 4 * draw(torch.rand, n, K)

    position = torch.arange(K, device=device)[None]
    valid = position < lengths[:, None]
    symbols = torch.where(valid, symbols, -1)
    separator = symbols == SEPARATOR
    digit = symbols.clamp(0, 9)  # separators and padding index some harmless image
    count = counts[digit]
    index = starts[digit] + (choice * count).long().clamp(max=count - 1)
    sep_width = torch.round(2 * radius).long() + 1
    width = torch.where(separator, sep_width, ink_width[index])
    beside_separator = separator | torch.cat([separator[:, 1:], separator[:, :1] & False], 1)
    gaps = torch.where(beside_separator, clear_gaps, gaps)

    # boxes: x0[k+1] = x1[k] + gap[k]; then the leftmost box starts at the margin
    step = torch.where(valid, width + gaps, 0)
    x0 = torch.cumsum(step, 1) - step
    shift = config.margin - torch.where(valid, x0, x0.amax() + 1).amin(1, keepdim=True)
    x0 = x0 + shift
    x1 = x0 + width
    widths = torch.where(valid, x1, 0).amax(1) + config.margin
    W = int(widths.max())

    canvas = torch.zeros(n, DIGIT, W + DIGIT, device=device)
    owner = torch.full((n, DIGIT, W + DIGIT), -1, dtype=torch.long, device=device)
    offsets = torch.arange(DIGIT, device=device)
    batch = torch.arange(n, device=device)[:, None, None]
    rows = offsets[None, :, None]
    for k in range(K):  # a loop over character positions, not strings
        crop = (first_ink[index[:, k]][:, None] + offsets[None]).clamp(max=DIGIT - 1)
        patch = pool[index[:, k]].gather(2, crop[:, None, :].expand(n, DIGIT, DIGIT))
        patch = patch * (offsets[None] < width[:, k, None])[:, None, :]
        glyph = _separators(radius[:, k], row[:, k], sep_width[:, k])
        patch = torch.where(separator[:, k, None, None], glyph, patch) * valid[:, k, None, None]
        columns = (torch.where(valid[:, k], x0[:, k], 0)[:, None] + offsets[None])[:, None, :]
        below = canvas[batch, rows, columns]  # the maximum of characters 0..k − 1
        owned = (patch > INK) & (patch >= below)  # brightest so far; a tie goes to k
        owner[batch, rows, columns] = torch.where(owned, k, owner[batch, rows, columns])
        canvas[batch, rows, columns] = torch.maximum(below, patch)

    boxes = torch.where(valid[..., None], torch.stack([x0, x1], -1), -1)
    source = torch.where(valid & ~separator, origin[index], -1)
    return DigitStrings(canvas[:, :, :W].contiguous(), widths, symbols, lengths, boxes,
                        owner[:, :, :W].contiguous(), source)
