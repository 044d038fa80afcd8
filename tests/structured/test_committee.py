"""benchmarks/gtn_ceiling.py's committee of recognisers: the two means against their definitions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]


def committee(members, mean):
    sys.path.insert(0, str(ROOT))
    from benchmarks.gtn_ceiling import Committee

    return Committee(members, mean)


def test_the_two_means_of_two_recognisers():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 12), nn.Linear(5, 12)
    x = torch.randn(7, 5)
    pa, pb = a(x).softmax(-1), b(x).softmax(-1)
    geometric = committee([a, b], "geometric")(x).log_softmax(-1).exp()
    want = (pa * pb).sqrt()
    torch.testing.assert_close(geometric, want / want.sum(-1, keepdim=True))
    arithmetic = committee([a, b], "arithmetic")(x)
    torch.testing.assert_close(arithmetic.exp(), (pa + pb) / 2)  # already normalised


def test_a_committee_of_one_reads_as_its_member():
    torch.manual_seed(1)
    a = nn.Linear(5, 12)
    x = torch.randn(3, 5)
    for mean in ("geometric", "arithmetic"):
        torch.testing.assert_close(committee([a], mean)(x), a(x).log_softmax(-1))


def test_an_unknown_mean_is_refused():
    with pytest.raises(ValueError, match="mean must be 'geometric' or 'arithmetic', got 'median'"):
        committee([nn.Linear(2, 2)], "median")
