"""Learning-rate schedules in closed form: ``LambdaLR`` factors of the update index, so a
resumed run (the Trainer checkpoints the scheduler's step) continues on the same curve; a run
resumed with more ``steps`` continues on the longer curve from where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from genoise._checks import check_choice, check_int

SCHEDULES = ("constant", "linear", "cosine")


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, steps: int,
                 choices: Sequence[str] = SCHEDULES) -> LambdaLR | None:
    """The schedule named ``schedule`` (one of ``choices``, the ones a caller offers) over
    ``steps`` updates: None for ``"constant"``; for ``"linear"`` a ``LambdaLR`` whose rate
    after t updates is the base rate × max(0, 1 − t / ``steps``); for ``"cosine"``
    :func:`warmup_cosine`."""
    check_choice("lr_schedule", schedule, choices)
    if schedule == "linear":
        return LambdaLR(optimizer, lambda t: max(0.0, 1.0 - t / steps))
    if schedule == "cosine":
        return warmup_cosine(optimizer, steps)
    return None


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, *, warmup_ratio: float = 0.1,
                  min_lr: float = 1e-5, start_factor: float = 1e-8) -> LambdaLR:
    """Linear warm-up, then a cosine down to ``min_lr``: with W = ⌊warmup_ratio · T⌋ and each
    parameter group's base rate η, the rate of update t (t = 0, 1, …) is

        η_t = η · (s + (1 − s) · t / W)                                   t < W
        η_t = η_min + (η − η_min) · (1 + cos(π · min(t − W, T − W) / (T − W))) / 2    t ≥ W

    (s = ``start_factor``, η_min = ``min_lr``; after T updates the rate stays at η_min). This
    is eb_jepa's ``CosineWithWarmup`` (torch's ``LinearLR`` from 1e-8, then
    ``CosineAnnealingLR`` to 1e-5 over the remaining updates, chained by ``SequentialLR``;
    facebookresearch/eb_jepa, ``eb_jepa/schedulers.py``) written as one closed form, equal to
    torch's recursion to round-off (tested).
    """
    total = check_int("total_steps", total_steps)
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
    if min_lr < 0:
        raise ValueError(f"min_lr must be >= 0, got {min_lr}")
    warmup = int(warmup_ratio * total)
    decay = max(1, total - warmup)

    def factor_for(base: float):
        floor = min_lr / base if base > 0 else 0.0

        def factor(t: int) -> float:
            if t < warmup:
                return start_factor + (1.0 - start_factor) * t / warmup
            progress = min(t - warmup, decay) / decay
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return factor

    return LambdaLR(optimizer, [factor_for(group["lr"]) for group in optimizer.param_groups])
