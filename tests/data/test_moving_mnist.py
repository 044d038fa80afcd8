"""Moving MNIST: determinism, the bounce physics of both variants, masks = each digit's pixels."""

from __future__ import annotations

import itertools

import pytest
import torch

from genoise.data.moving_mnist import (
    MovingMNIST,
    MovingMNISTConfig,
    checksum,
    fixed_sequences,
    next_move_accuracy,
    render,
    trajectories,
)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """Random 'digits' with a zero border (like MNIST's), enough for the generator's logic."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(50, 28, 28, generator=g) * 255).to(torch.uint8)
    images[:, :4] = 0
    images[:, -4:] = 0
    images[:, (torch.rand(28, generator=g) < 0.3)] = 0
    return images


def test_same_seed_same_sequences_and_checksum(digits) -> None:
    pool = MovingMNIST(digits, MovingMNISTConfig(length=6))
    a = pool.sample(8, torch.Generator().manual_seed(3))
    b = pool.sample(8, torch.Generator().manual_seed(3))
    c = pool.sample(8, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert checksum(a[0]) == checksum(b[0]) != checksum(c[0])
    test_a, _ = fixed_sequences(digits, MovingMNISTConfig(length=6), 5, "test")
    test_b, _ = fixed_sequences(digits, MovingMNISTConfig(length=6), 5, "test")
    val, _ = fixed_sequences(digits, MovingMNISTConfig(length=6), 5, "val")
    assert checksum(test_a) == checksum(test_b) != checksum(val)


def test_shapes_range_and_frame_is_max_of_digits(digits) -> None:
    config = MovingMNISTConfig(length=5, num_digits=2)
    g = torch.Generator().manual_seed(0)
    frames, masks = MovingMNIST(digits, config).sample(4, g)
    assert frames.shape == (4, 5, 1, 64, 64) and masks.shape == (4, 5, 2, 64, 64)
    assert frames.dtype == torch.float32 and 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert masks.dtype == torch.bool


def test_masks_are_exactly_the_nonzero_pixels_of_each_digit(digits) -> None:
    g = torch.Generator().manual_seed(1)
    corners = trajectories(MovingMNISTConfig(length=4, num_digits=2), 3, g)
    chosen = digits[torch.tensor([[0, 1], [2, 3], [4, 5]])]
    frames, masks = render(chosen, corners, 64)
    for d in range(2):  # each digit drawn alone: its frame's non-zero pixels are its mask
        alone, alone_masks = render(chosen[:, d : d + 1], corners[:, :, d : d + 1], 64)
        assert torch.equal(masks[:, :, d], alone[:, :, 0] > 0)
        assert torch.equal(alone_masks[:, :, 0], alone[:, :, 0] > 0)
    assert torch.equal(frames[:, :, 0] > 0, masks.any(2))
    # a digit is pasted at its floored corner, pixel for pixel
    r, c = corners[0, 0, 0].floor().long().tolist()
    pasted = (frames[0, 0, 0, r : r + 28, c : c + 28] * 255).round().to(torch.uint8)
    assert bool((pasted >= chosen[0, 0]).all())


def _interior(pos: torch.Tensor) -> torch.Tensor:
    """(N, T − 2, …): the coordinate is strictly inside (0, 36) at t − 1, t and t + 1."""
    inside = (pos > 0) & (pos < 36)
    return inside[:, :-2] & inside[:, 1:-1] & inside[:, 2:]


def test_deterministic_bounce_is_a_mirror_reflection() -> None:
    config = MovingMNISTConfig(length=60, num_digits=2)
    pos = trajectories(config, 64, torch.Generator().manual_seed(0))  # (N, T, D, 2)
    assert float(pos.min()) >= 0 and float(pos.max()) <= 36
    step = pos[:, 1:] - pos[:, :-1]
    free = _interior(pos)  # no wall contact around the middle frame
    # away from the walls the velocity is constant (second difference zero)
    accel = step[:, 1:] - step[:, :-1]
    assert float(accel[free].abs().max()) < 1e-4
    # speed 3.6 px per frame along each free stretch; at a wall the component flips sign
    touching = ~free
    flipped = torch.sign(step[:, 1:]) != torch.sign(step[:, :-1])
    assert bool((flipped & (step[:, :-1].abs() > 1e-3)).any())
    assert not bool((flipped & free & (step[:, :-1].abs() > 1e-3)).any())
    assert bool(touching.any())
    speeds = step.norm(dim=-1)[(pos[:, 1:] > 0).all(-1) & (pos[:, 1:] < 36).all(-1)
                               & (pos[:, :-1] > 0).all(-1) & (pos[:, :-1] < 36).all(-1)]
    assert torch.allclose(speeds, torch.full_like(speeds, 3.6), atol=1e-4)


def test_stochastic_bounce_picks_a_new_direction_away_from_the_wall() -> None:
    config = MovingMNISTConfig(length=80, num_digits=1, stochastic=True)
    pos = trajectories(config, 200, torch.Generator().manual_seed(0))[:, :, 0]  # (N, T, 2)
    step = pos[:, 1:] - pos[:, :-1]
    inner = _interior(pos).all(-1)
    accel = (step[:, 1:] - step[:, :-1]).norm(dim=-1)
    assert float(accel[inner].max()) < 1e-4  # straight lines between bounces
    at_wall = ~inner
    # after a bounce the new direction is not the mirror image: the angle changes randomly
    ratio = (step[:, 1:, 0] / step[:, 1:].norm(dim=-1).clamp(min=1e-6))[at_wall]
    mirror = (step[:, :-1, 0] / step[:, :-1].norm(dim=-1).clamp(min=1e-6))[at_wall]
    assert float((ratio.abs() - mirror.abs()).abs().mean()) > 0.1
    # and it points away from the wall it hit: leaving the left wall the column increases
    left = (pos[:, 1:-1, 1] == 0) & (pos[:, 2:, 1] != 0)
    assert bool(left.any()) and bool((step[:, 1:, 1][left] > 0).all())
    mirror_config = MovingMNISTConfig(length=80, num_digits=1)
    deterministic = trajectories(mirror_config, 200, torch.Generator().manual_seed(0))
    d_step = deterministic[:, 1:, 0] - deterministic[:, :-1, 0]
    unclamped = ((deterministic[:, :, 0] > 0) & (deterministic[:, :, 0] < 36)).all(-1)
    unclamped = unclamped[:, 1:] & unclamped[:, :-1]
    d_ratio = (d_step[..., 0] / d_step.norm(dim=-1).clamp(min=1e-6)).abs()
    first = d_ratio[torch.arange(200), unclamped.float().argmax(1)]
    # the mirror keeps |angle| for ever
    assert torch.allclose(d_ratio[unclamped], first[:, None].expand_as(d_ratio)[unclamped], atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((10, 28, 27), "(N, 28, 28)"), ((0, 28, 28), "(N, 28, 28)"), ((10, 3, 28, 28), "(N, 28, 28)")],
)
def test_bad_digit_pools_are_refused(shape, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MovingMNIST(torch.zeros(shape, dtype=torch.uint8))


def test_bad_configs_and_splits_are_refused(digits) -> None:
    with pytest.raises(ValueError, match="image_size"):
        MovingMNISTConfig(image_size=20)
    with pytest.raises(ValueError, match="split"):
        fixed_sequences(digits, MovingMNISTConfig(), 2, "train")


def _next_move_accuracy_by_loop(config: MovingMNISTConfig, window: int, n: int, seed: int) -> float:
    """The same estimate written plainly: dictionaries over Python tuples."""
    from collections import Counter, defaultdict

    corners = trajectories(config, n, torch.Generator().manual_seed(seed)).floor().long()
    tracks = []
    for seq in range(n):
        for digit in range(config.num_digits):
            for axis in range(2):
                path = corners[seq, :, digit, axis].tolist()
                moves = [b - a for a, b in itertools.pairwise(path)]
                tracks.append((tuple(moves[len(moves) - window : len(moves) - 1]), moves[-1]))
    half = len(tracks) // 2
    table: dict = defaultdict(Counter)
    for observed, move in tracks[:half]:
        table[observed][move] += 1
    def guess(observed):
        if observed not in table:
            return None
        top = max(table[observed].values())
        return min(m for m, c in table[observed].items() if c == top)
    return sum(guess(o) == m for o, m in tracks[half:]) / (len(tracks) - half)


@pytest.mark.parametrize(("window", "stochastic"), [(1, False), (3, False), (6, True)])
def test_next_move_accuracy_matches_a_plain_loop(window, stochastic):
    config = MovingMNISTConfig(length=8, stochastic=stochastic)
    expected = _next_move_accuracy_by_loop(config, window, 300, seed=3)
    assert next_move_accuracy(config, window, n=300, seed=3) == pytest.approx(expected, abs=1e-12)


def test_a_longer_window_pins_down_the_next_move():
    """Floored positions: 3 frames leave the sub-pixel phase open, 10 nearly fix it."""
    config = MovingMNISTConfig(length=11)
    short, long = (next_move_accuracy(config, w, n=20_000) for w in (3, 10))
    assert 0.5 < short < 0.75 and long > short + 0.1


@pytest.mark.parametrize(("window", "n", "message"), [(11, 10, "must be < length"), (0, 10, "window"),
                                                      (3, 1, "n")])
def test_next_move_accuracy_refuses_bad_arguments(window, n, message):
    with pytest.raises(ValueError, match=message):
        next_move_accuracy(MovingMNISTConfig(length=11), window, n=n)
