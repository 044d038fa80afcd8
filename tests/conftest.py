"""Shared fixtures. Tests use ``../shared/data`` (MNIST, CIFAR subset, bAbI) when it is
present beside the checkout and scikit-learn's bundled digits otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Keep each test process to one thread (torch and BLAS): the suite runs two processes on
# two cores, and oversubscribed BLAS threads spin and slow everything down.
torch.set_num_threads(1)
threadpool_limits(1)


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
