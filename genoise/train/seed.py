"""Seeds and random-number-generator state: one place that seeds every RNG a run uses
(Python ``random``, NumPy's global RNG, torch's CPU and CUDA RNGs) and captures /
restores their state, so that a resumed run draws the same numbers as an uninterrupted
one. States are stored as tensors, ints and tuples only (loadable with
``torch.load(weights_only=True)``)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

_SEED_MAX = 2**63 - 1


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _SEED_MAX:
        raise ValueError(f"seed must be an int in [0, 2**63 - 1], got {seed!r}")
    return int(seed)


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from ``(seed, *keys)`` by NumPy's ``SeedSequence`` hash, so
    that e.g. ``derive_seed(s, epoch)`` and ``derive_seed(s, rank)`` give unrelated
    streams (``seed + epoch`` would make run ``s`` epoch 1 equal run ``s + 1`` epoch 0)."""
    words = np.random.SeedSequence([_check_seed(seed), *map(_check_seed, keys)]).generate_state(
        2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & _SEED_MAX


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed Python ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    Parameters
    ----------
    seed : int in [0, 2**63 - 1]
    deterministic : bool
        Also ask torch for deterministic algorithms (``torch.use_deterministic_algorithms``,
        cuDNN deterministic, no cuDNN benchmark, ``CUBLAS_WORKSPACE_CONFIG`` set). Slower on
        GPU; on CPU the default kernels are already deterministic for a fixed thread count.

    Returns
    -------
    int : the seed.
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def capture_rng_state() -> tuple[Any, ...]:
    """The raw state of every global RNG (fast: no conversion); see :func:`get_rng_state`."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()


def portable_rng_state(raw: tuple[Any, ...]) -> dict[str, Any]:
    """Convert :func:`capture_rng_state`'s output to tensors, ints and tuples."""
    cpu, cuda, (kind, keys, pos, has_gauss, cached), (version, internal, gauss_next) = raw
    return {
        "torch": cpu,
        "cuda": cuda,
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": (version, torch.tensor(internal, dtype=torch.int64), gauss_next),
    }


def get_rng_state() -> dict[str, Any]:
    """The state of every global RNG: ``torch`` (CPU), ``cuda`` (list, one per device, or
    ``None``), ``numpy`` and ``python``."""
    return portable_rng_state(capture_rng_state())


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNGs from :func:`get_rng_state`'s output."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss_next))
