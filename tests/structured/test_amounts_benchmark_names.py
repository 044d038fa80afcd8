"""The check-amount benchmark names every non-default setting in its run folders and record,
so a variant never overwrites the table of the default protocol."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suffix():
    sys.path.insert(0, str(ROOT))
    from benchmarks.gtn_amounts import DEFAULTS, suffix

    keys = ("min_gap", "rubbish_weight", "isolated_steps", "steps", "isolated_schedule", "seed")
    keys += ("pretrain_epochs", "pretrain_distortion")
    default = {key: DEFAULTS[key] for key in keys} | {"quick": False}
    return lambda **changes: suffix(Namespace(**(default | changes)))


def test_the_default_setting_has_no_suffix(suffix):
    assert suffix() == ""


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"steps": 3200}, "_steps3200"),
        ({"min_gap": -4}, "_gap4"),
        ({"rubbish_weight": 0.3}, "_rubbish0.3"),
        ({"rubbish_weight": 0.0}, "_rubbish0"),
        ({"rubbish_weight": 0.0, "seed": 1}, "_rubbish0_seed1"),
        ({"isolated_steps": 5700}, "_isolated5700"),
        ({"isolated_steps": 12000, "isolated_schedule": "cosine"}, "_isolated12000_cosine"),
        ({"quick": True, "isolated_schedule": "cosine"}, "_cosine"),
        (
            {"min_gap": -4, "rubbish_weight": 0.3, "isolated_steps": 5700, "steps": 1600},
            "_gap4_rubbish0.3_isolated5700_steps1600",
        ),
        ({"quick": True, "isolated_steps": 300, "steps": 100}, ""),  # --quick sets its own stages
        ({"pretrain_epochs": 30}, "_pretrain30"),
        ({"pretrain_epochs": 30, "pretrain_distortion": 1.0, "seed": 2}, "_pretrain30_distort1_seed2"),
    ],
)
def test_each_changed_setting_is_named(suffix, changes, expected):
    assert suffix(**changes) == expected
