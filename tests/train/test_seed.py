"""Seeding and RNG state capture/restore for torch, NumPy and Python ``random``."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from genoise.train import derive_seed, get_rng_state, seed_everything, set_rng_state


def draw() -> tuple:
    return torch.rand(3), np.random.rand(3), random.random(), np.random.randn()


def assert_same(a: tuple, b: tuple) -> None:
    assert torch.equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] and a[3] == b[3]


def test_seed_everything_makes_all_generators_repeat():
    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert_same(first, draw())
    seed_everything(8)
    assert not torch.equal(first[0], draw()[0])


def test_rng_state_round_trip_restores_every_generator():
    seed_everything(0)
    np.random.randn()  # leave a cached Gaussian in NumPy's state
    state = get_rng_state()
    first = draw()
    draw()
    set_rng_state(state)
    assert_same(first, draw())


def test_rng_state_survives_weights_only_torch_load(tmp_path):
    seed_everything(3)
    torch.save(get_rng_state(), tmp_path / "rng.pt")
    first = draw()
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert_same(first, draw())


def test_derive_seed_separates_streams_and_is_stable():
    assert derive_seed(0, 1) == derive_seed(0, 1)
    seeds = {derive_seed(s, k) for s in range(5) for k in range(5)}
    assert len(seeds) == 25  # unlike seed + key, (0, 1) and (1, 0) differ
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("bad", [-1, 2**63, 1.5, "0", True])
def test_bad_seed_raises(bad):
    with pytest.raises(ValueError, match="seed must be an int"):
        seed_everything(bad)


def test_deterministic_flag_turns_on_deterministic_algorithms():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]
