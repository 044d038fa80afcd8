"""warmup_cosine: the closed form equals the reference's torch recursion (eb_jepa's
CosineWithWarmup: LinearLR from 1e-8, then CosineAnnealingLR to 1e-5 through SequentialLR)
at every update, per parameter group; its end points by hand; bad settings in one line."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from genoise.train.schedules import warmup_cosine


def _optimizer(lrs=(1e-3, 3e-4)) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.AdamW(groups)


def _rates(scheduler, optimizer, steps: int) -> list[list[float]]:
    rates = []
    for _ in range(steps):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("total", [50, 7, 1])
def test_warmup_cosine_equals_the_reference_sequence(total: int) -> None:
    ours_opt, ref_opt = _optimizer(), _optimizer()
    ours = warmup_cosine(ours_opt, total)
    warmup = int(0.1 * total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about SequentialLR's internal step order
        ref = SequentialLR(ref_opt, [LinearLR(ref_opt, start_factor=1e-8, end_factor=1.0, total_iters=warmup),
                                     CosineAnnealingLR(ref_opt, T_max=total - warmup, eta_min=1e-5)],
                           milestones=[warmup])
        expected = _rates(ref, ref_opt, total)
    got = _rates(ours, ours_opt, total)
    for t, (row, want) in enumerate(zip(got, expected, strict=True)):
        assert row == pytest.approx(want, rel=1e-9, abs=1e-15), f"update {t}"


def test_warmup_cosine_end_points_by_hand() -> None:
    opt = _optimizer((1e-3,))
    rates = [r[0] for r in _rates(warmup_cosine(opt, 100), opt, 121)]
    assert rates[0] == pytest.approx(1e-11)                  # 1e-8 of the base rate
    assert rates[5] == pytest.approx(1e-3 * (1e-8 + (1 - 1e-8) * 0.5))
    assert rates[10] == pytest.approx(1e-3)                  # warm-up over: the base rate
    assert rates[55] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[100] == pytest.approx(1e-5) and rates[120] == pytest.approx(1e-5)  # stays at the floor


def test_warmup_cosine_refuses_bad_settings() -> None:
    opt = _optimizer()
    for kwargs, message in [({"warmup_ratio": 1.0}, "warmup_ratio"), ({"min_lr": -1.0}, "min_lr"),
                            ({"start_factor": 0.0}, "start_factor")]:
        with pytest.raises(ValueError, match=message):
            warmup_cosine(opt, 10, **kwargs)
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(opt, 0)


def test_lr_scheduler_by_name_offers_only_the_callers_choices() -> None:
    from genoise.train.schedules import lr_scheduler

    opt = _optimizer((1e-3,))
    assert lr_scheduler(opt, "constant", 10) is None
    lin_opt = _optimizer((1e-3,))
    assert [r[0] for r in _rates(lr_scheduler(lin_opt, "linear", 4), lin_opt, 5)] == pytest.approx(
        [1e-3, 0.75e-3, 0.5e-3, 0.25e-3, 0.0])
    cos_opt, ref_opt = _optimizer((1e-3,)), _optimizer((1e-3,))
    expected = _rates(warmup_cosine(ref_opt, 20), ref_opt, 20)
    assert _rates(lr_scheduler(cos_opt, "cosine", 20), cos_opt, 20) == expected
    with pytest.raises(ValueError, match="lr_schedule must be one of 'constant', 'linear'; got 'cosine'"):
        lr_scheduler(opt, "cosine", 10, ("constant", "linear"))
