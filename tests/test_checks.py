"""The shared input checks (``genoise._checks``)."""

import pytest
import torch

from genoise._checks import check_finite, has_nan


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_and_counts_bad_values(bad):
    x = torch.randn(64, 32)
    x[5, 7] = bad
    x[40, 0] = bad
    with pytest.raises(ValueError, match=r"^x contains 2 NaN/Inf value\(s\)"):
        check_finite("x", x)


def test_check_finite_passes_large_finite_values_whose_sum_overflows():
    x = torch.full((4, 4), 3e38)                # the fast path's sum is inf: exact test decides
    assert not torch.isfinite(x.sum())
    assert check_finite("x", x) is x


@pytest.mark.parametrize("x", [torch.randn(3, 5), torch.empty(0, 4), torch.arange(6),
                               torch.randn(8, dtype=torch.float64), torch.randn(8).to(torch.bfloat16)])
def test_check_finite_accepts_finite_empty_and_integer_tensors(x):
    assert check_finite("x", x) is x


def test_check_finite_leaves_autograd_alone():
    w = torch.randn(10, requires_grad=True)
    y = w * 2
    assert check_finite("y", y) is y
    y.sum().backward()
    assert torch.equal(w.grad, torch.full((10,), 2.0))


def test_has_nan_allows_infinities_and_finds_nan():
    x = torch.randn(50, 20)
    x[3, 4], x[9, 1] = float("inf"), -float("inf")     # their sum is NaN: the exact test decides
    assert not has_nan(x)
    x[30, 2] = float("nan")
    assert has_nan(x)
    assert not has_nan(torch.empty(0))
