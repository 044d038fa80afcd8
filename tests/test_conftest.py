"""The suite's own rules (tests/conftest.py): every test starts from the same global random
state, whatever ran before it in its process, so a test's result does not depend on how
xdist shares the tests between workers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.conftest import CALL_SEED


@pytest.mark.parametrize("draws", [0, 1000, 7])
def test_each_test_starts_from_the_seeded_global_state(draws):
    # whichever of these runs second sees the state the first one left behind if not reseeded
    assert torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(CALL_SEED).get_state())
    assert np.array_equal(np.random.get_state()[1], np.random.RandomState(CALL_SEED).get_state()[1])
    assert random.getstate() == random.Random(CALL_SEED).getstate()
    torch.randn(draws), np.random.rand(draws), [random.random() for _ in range(draws)]
