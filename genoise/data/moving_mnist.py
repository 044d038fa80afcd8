"""Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015), generated from the MNIST IDX
files, seeded; and its stochastic variant (Denton & Fergus 2018, "Stochastic video generation
with a learned prior").

The protocol of the original generator: ``num_digits`` 28 × 28 MNIST digits on a 64 × 64
black canvas; each digit's top-left corner lives in [0, 36]² (36 = 64 − 28), starts uniform
there, and moves with a uniform random direction at 0.1 × 36 = 3.6 pixels per frame; at an
edge the position is clamped and the offending velocity component is reversed (a bounce).
Frames are the pixel-wise maximum of the digits (the original's ``np.maximum``); positions
are floored to whole pixels when drawn.

**Stochastic** (``stochastic=True``): at each bounce the digit picks a new uniformly random
direction pointing away from the wall (same speed), so the frame after a bounce is not a
function of the past: the multimodal future an ℓ2 predictor must blur.

Every sequence also comes with its digits' masks (B, T, D, H, W): ``mask[..., d, :, :]`` is
exactly the set of non-zero pixels of digit d, so scores can be restricted to moving pixels.

Training sequences are drawn on the fly from the MNIST **training** digits; validation and
test sequences are fixed sets drawn from the MNIST **test** digits with fixed seeds
(:func:`fixed_sequences`), identified by a SHA-256 of their bytes (:func:`checksum`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from genoise._checks import check_int, check_positive

DIGIT = 28
# fixed seeds of the held-out sets (with the digits of the MNIST test split)
SPLIT_SEEDS = {"val": 2016, "test": 1511}


@dataclass(frozen=True)
class MovingMNISTConfig:
    """What a sequence looks like.

    length : frames per sequence
    image_size : canvas side (≥ 28)
    num_digits : digits per sequence
    step_length : displacement per frame as a fraction of the free range (image_size − 28);
        0.1 (the original) = 3.6 px per frame at 64 px
    stochastic : a new random direction at every bounce (Denton & Fergus 2018)
    """

    length: int = 20
    image_size: int = 64
    num_digits: int = 2
    step_length: float = 0.1
    stochastic: bool = False

    def __post_init__(self) -> None:
        check_int("length", self.length, min=1)
        check_int("image_size", self.image_size, min=DIGIT)
        check_int("num_digits", self.num_digits, min=1)
        check_positive("step_length", self.step_length)


def trajectories(config: MovingMNISTConfig, n: int, generator: torch.Generator) -> Tensor:
    """Top-left corners (n, length, num_digits, 2) as (row, col) floats in [0, image_size − 28].

    Vectorised over sequences and digits; the loop runs over time only."""
    free = float(config.image_size - DIGIT)
    shape = (n, config.num_digits)
    position = torch.rand(*shape, 2, generator=generator)  # in units of the free range
    angle = torch.rand(*shape, generator=generator) * (2 * torch.pi)
    velocity = torch.stack([torch.sin(angle), torch.cos(angle)], -1) * config.step_length
    out = torch.empty(n, config.length, config.num_digits, 2)
    for t in range(config.length):
        out[:, t] = position
        position = position + velocity
        low, high = position < 0, position > 1
        bounced = low | high
        position = position.clamp(0, 1)
        velocity = torch.where(bounced, -velocity, velocity)
        if config.stochastic:
            fresh = torch.rand(*shape, generator=generator) * (2 * torch.pi)
            new = torch.stack([torch.sin(fresh), torch.cos(fresh)], -1) * config.step_length
            # away from the wall that was hit: the bounced component keeps the reversed sign
            sign = torch.where(low, 1.0, torch.where(high, -1.0, torch.sign(new)))
            new = new.abs() * sign
            velocity = torch.where(bounced.any(-1, keepdim=True), new, velocity)
    return out * free


def render(digits: Tensor, corners: Tensor, image_size: int) -> tuple[Tensor, Tensor]:
    """Draw ``digits`` (n, D, 28, 28) uint8 at ``corners`` (n, T, D, 2): frames (n, T, 1, S, S)
    float32 in [0, 1] (the maximum of the digits) and masks (n, T, D, S, S) bool (the non-zero
    pixels of each digit)."""
    n, length, num_digits = corners.shape[:3]
    top_left = corners.floor().long().clamp(0, image_size - DIGIT)
    offsets = torch.arange(DIGIT)
    frames = torch.zeros(n * length, image_size, image_size, dtype=torch.uint8)
    masks = torch.zeros(n * length, num_digits, image_size, image_size, dtype=torch.bool)
    batch = torch.arange(n * length)[:, None, None]
    for d in range(num_digits):  # two digits: a loop over layers, not samples
        rows = top_left[:, :, d, 0].reshape(-1)[:, None, None] + offsets[None, :, None]
        cols = top_left[:, :, d, 1].reshape(-1)[:, None, None] + offsets[None, None, :]
        patch = digits[:, d].repeat_interleave(length, 0)
        layer = torch.zeros_like(frames)
        layer[batch, rows, cols] = patch
        masks[:, d] = layer > 0
        frames = torch.maximum(frames, layer)
    frames = frames.float().div_(255).reshape(n, length, 1, image_size, image_size)
    return frames, masks.reshape(n, length, num_digits, image_size, image_size)


class MovingMNIST:
    """A generator of Moving-MNIST sequences from a pool of digits.

    Parameters
    ----------
    digits : (N, 28, 28) or (N, 1, 28, 28) uint8, or float in [0, 1] — the digit pool
        (the MNIST training split for training, its test split for held-out sets)
    config : MovingMNISTConfig

    Examples
    --------
    >>> from genoise.data import load_mnist
    >>> pool = MovingMNIST(load_mnist(split="train").images, MovingMNISTConfig(stochastic=True))
    >>> frames, masks = pool.sample(8, torch.Generator().manual_seed(0))  # (8, 20, 1, 64, 64)
    """

    def __init__(self, digits: Tensor, config: MovingMNISTConfig | None = None) -> None:
        self.config = config or MovingMNISTConfig()
        if digits.ndim == 4 and digits.shape[1] == 1:
            digits = digits[:, 0]
        if digits.ndim != 3 or tuple(digits.shape[1:]) != (DIGIT, DIGIT) or digits.shape[0] == 0:
            raise ValueError(f"Moving MNIST needs (N, 28, 28) digit images, got {tuple(digits.shape)}")
        if digits.is_floating_point():
            digits = (digits.clamp(0, 1) * 255).round().to(torch.uint8)
        self.digits = digits.to(torch.uint8).contiguous()

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` sequences: frames (n, T, 1, S, S) float32 and masks (n, T, D, S, S) bool."""
        check_int("n", n, min=1)
        choice = torch.randint(0, self.digits.shape[0], (n, self.config.num_digits), generator=generator)
        corners = trajectories(self.config, n, generator)
        return render(self.digits[choice], corners, self.config.image_size)


def fixed_sequences(
    digits: Tensor, config: MovingMNISTConfig, n: int, split: str = "test"
) -> tuple[Tensor, Tensor]:
    """The fixed held-out set ``split`` ∈ {val, test}: ``n`` sequences from ``digits`` (the MNIST
    test split) with the split's fixed seed. Frames (n, T, 1, S, S) and masks (n, T, D, S, S)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_SEEDS)}, got {split!r}")
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    return MovingMNIST(digits, config).sample(n, generator)


def checksum(frames: Tensor) -> str:
    """SHA-256 of a set of frames quantised to bytes (identifies a generated test set)."""
    data = (frames.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()


def next_move_accuracy(config: MovingMNISTConfig, window: int, n: int = 100_000, seed: int = 0) -> float:
    """How often the best guess of a digit's next whole-pixel move along one axis is right, given
    only its moves along that axis within the last ``window`` frames.

    Positions are floored when drawn, so a digit moving 2.7 pixels a frame moves 2, 3, 3, 2, 3 …
    pixels: the next move also depends on the sub-pixel phase, which a few frames do not pin
    down. The ``n · num_digits · 2`` axis tracks of ``n`` seeded sequences of ``config.length``
    frames are split in two halves. With o the moves between the frames
    ``length − 1 − window … length − 2`` and y the move into the last frame, the guess for o is
    the y most frequent after o in the first half, ŷ(o) = argmax_y count₁(o, y), and

        accuracy = mean over the second half of [y = ŷ(o)]      (o unseen in the first half: wrong)

    — a held-out estimate of the Bayes-optimal accuracy. A predictor that reads ``window``
    frames places a digit's next position exactly along an axis in about this fraction of
    cases at best, and must hedge (blur) on the rest.
    """
    check_int("window", window, min=1)
    check_int("n", n, min=2)
    if window > config.length - 1:
        raise ValueError(f"window ({window}) must be < length ({config.length}): "
                         "the move into the last frame is the target")
    corners = trajectories(config, n, torch.Generator().manual_seed(seed)).floor().long()
    moves = (corners[:, 1:] - corners[:, :-1]).permute(0, 2, 3, 1).flatten(0, 2)  # (tracks, length − 1)
    last = config.length - 2
    observed, target = moves[:, last - (window - 1) : last], moves[:, last]
    half = len(target) // 2
    # one id per distinct observation (all alike when window = 1: no move seen), then per (o, y)
    obs_id = (torch.unique(observed, dim=0, return_inverse=True)[1] if observed.shape[1]
              else torch.zeros(len(target), dtype=torch.long))
    pairs, pair_id = torch.unique(torch.stack([obs_id[:half], target[:half]], 1), dim=0,
                                  return_inverse=True)
    counts = torch.bincount(pair_id, minlength=len(pairs))
    best = torch.full((int(obs_id.max()) + 1,), -1).scatter_reduce(0, pairs[:, 0], counts, "amax")
    winners = pairs[counts == best[pairs[:, 0]]]  # the most frequent y of each o (ties: the smallest)
    unseen = torch.iinfo(torch.long).max  # an o not seen in the first half: never right
    guess = torch.full_like(best, unseen).scatter_reduce(0, winners[:, 0], winners[:, 1], "amin")
    return int((guess[obs_id[half:]] == target[half:]).sum()) / (len(target) - half)
