"""Shared fixtures. Tests use ``../shared/data`` (MNIST, CIFAR subset, bAbI) when it is
present beside the checkout and scikit-learn's bundled digits otherwise.

Every test starts from the same global random state (torch, numpy, ``random``), whatever
ran before it in its process: under ``pytest -n 2 --dist loadgroup`` the tests a worker
runs before a given one change from run to run, so a test that draws from the global
generator (a network initialised without a seed) saw a different state each run. That is
how ``tests/world/test_planners.py::test_learned_dynamics_fit_a_known_system`` failed about
one full run in ten (its MLP's initialisation fails the 0.05 error bound for 4 of 40 global
seeds). A test that wants other draws seeds its own ``torch.Generator``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Keep each test process to one thread (torch and BLAS): the suite runs two processes on
# two cores, and oversubscribed BLAS threads spin and slow everything down.
torch.set_num_threads(1)
threadpool_limits(1)


# Fixtures and the test body draw from different seeds, so a test's own draws never repeat
# its fixtures' (seeding both with one number would make them equal).
SETUP_SEED, CALL_SEED = 0, 1


def seed_global_generators(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch's default generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    seed_global_generators(SETUP_SEED)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    seed_global_generators(CALL_SEED)


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """The repository's ``../shared/data`` folder, or ``$GENOISE_DATA``, or ``None``."""
    env = os.environ.get("GENOISE_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
