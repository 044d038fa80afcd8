"""benchmarks/easgd_center_vs_mean.py: goal 2 of issue 18 read from the better of the two
models and the best learning rate per (p, τ)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def row(p, tau, lr, center, mean, ddp=0.02):
    return {"workers": p, "tau": tau, "lr": lr, "error": center, "error_mean": mean,
            "error_best_worker": mean, "error_worst_worker": center, "ddp_error": ddp, "ddp_lr": 0.8,
            "bytes_per_worker": 100, "ddp_bytes_per_worker": 1600}


def test_the_goal_count_takes_the_better_model_and_the_best_learning_rate():
    sys.path.insert(0, str(ROOT))
    from benchmarks.easgd_center_vs_mean import table

    rows = [row(4, 16, 0.04, 0.030, 0.029), row(4, 16, 0.08, 0.023, 0.0215),  # mean: 1.075× DDP
            row(8, 16, 0.08, 0.025, 0.0230)]  # 1.15×: missed
    text = table(rows, "mnist", "python benchmarks/easgd_center_vs_mean.py")
    assert "within 1.1× of DDP in 1 of 2 (p, τ) settings (p=4 τ=16: 1.07×, p=8 τ=16: 1.15×)" in text
    assert "| 4 | 16 | 0.08 | 2.30 | 2.15 | 2.15 – 2.30 | 2.00 (0.8) | 1.15× | 1.07× | 1/16 |" in text
