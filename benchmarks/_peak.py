"""The machine's limit that the classical-model benchmarks report against: the measured
float32 / float64 matmul rate (GFLOP/s) at a given thread count, measured in the same run."""

from __future__ import annotations

import time

import torch


def matmul_peak(threads: int, dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an (n, n) × (n, n) ``torch.mm`` with ``threads`` threads
    (2n³ floating-point operations per product)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out = torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=out)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2.0 * n**3 / best / 1e9
