"""The shared input checks (``genoise._checks``)."""

import numpy as np
import pytest
import torch

from genoise._checks import (
    check_embedding,
    check_finite,
    check_image_batch,
    check_int,
    check_vector_batch,
    check_views,
    has_nan,
)


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


@pytest.mark.parametrize("value", [1, 7, np.int64(3), torch.tensor(2).item()])
def test_check_int_accepts_integers_and_returns_python_ints(value):
    out = check_int("n", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (0, {}, r"^n must be an integer >= 1, got 0$"),
    (-5, {"min": 0}, r"^n must be an integer >= 0, got -5$"),
    (11, {"min": 0, "max": 10}, r"^n must be an integer >= 0 and <= 10, got 11$"),
    (True, {}, r"^n must be an integer, got True$"),
    (2.0, {}, r"^n must be an integer, got 2.0$"),
    ("3", {}, r"^n must be an integer, got '3'$"),
])
def test_check_int_refuses_in_one_line(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_int("n", value, **kwargs)


def test_check_int_open_bounds():
    assert check_int("n", -10**12, min=None) == -10**12
    assert check_int("n", 10**12, max=None) == 10**12


def test_image_and_vector_batch_checks_print_the_shapes():
    assert check_image_batch("Net", torch.zeros(2, 3, 8, 8), 3, 8).shape == (2, 3, 8, 8)
    assert check_image_batch("Net", torch.zeros(2, 3, 5, 7), 3).shape == (2, 3, 5, 7)
    with pytest.raises(ValueError, match=r"^Net expects input of shape \(B, 1, 8, 8\), got \(2, 1, 7, 8\)$"):
        check_image_batch("Net", torch.zeros(2, 1, 7, 8), 1, 8)
    with pytest.raises(ValueError, match=r"^Net expects input of shape \(B, 3, H, W\), got \(3, 8, 8\)$"):
        check_image_batch("Net", torch.zeros(3, 8, 8), 3)
    with pytest.raises(ValueError, match=r"^Head expects input of shape \(B, 4\), got \(2, 5\)$"):
        check_vector_batch("Head", torch.zeros(2, 5), 4)


def test_embedding_and_view_checks():
    z = torch.randn(4, 3)
    assert check_embedding("z", z) is z
    assert check_views(z, torch.randn(4, 3)) == 4
    with pytest.raises(ValueError, match=r"z has batch size 1; this loss needs at least 2"):
        check_embedding("z", torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"z must have 2 dimension\(s\), got shape \(4,\)"):
        check_embedding("z", torch.randn(4))
    with pytest.raises(ValueError, match=r"views have different shapes: z_a \(4, 3\) vs z_b \(4, 2\)"):
        check_views(z, torch.randn(4, 2))
    with pytest.raises(ValueError, match="NaN/Inf"):
        check_views(z, torch.full((4, 3), float("nan")))
