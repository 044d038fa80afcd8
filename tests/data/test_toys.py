"""2-D toy sets: determinism, shapes, ranges, and that noiseless points lie on the
closed-form curves."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.data import TOYS, gaussian_mixture, make_toy, rings, spiral, toy_limits, two_moons


@pytest.mark.parametrize("name", TOYS)
def test_toy_is_deterministic_given_seed_and_changes_with_seed(name):
    a, b = make_toy(name, 500, seed=3), make_toy(name, 500, seed=3)
    assert torch.equal(a, b)
    assert not torch.allclose(a, make_toy(name, 500, seed=4))
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(make_toy(name, 50, seed=gen_a), make_toy(name, 50, seed=gen_b))


@pytest.mark.parametrize("name", TOYS)
@pytest.mark.parametrize("n", [1, 7, 1000])
def test_toy_shape_dtype_finite_and_within_limits(name, n):
    y = make_toy(name, n, seed=0)
    assert y.shape == (n, 2) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert float(y.abs().max()) < toy_limits(name)


@pytest.mark.parametrize("name", TOYS)
def test_toy_fills_its_box_reasonably(name):
    y = make_toy(name, 2000, seed=0)
    assert 1.0 <= float(y.abs().max()) <= 2.0
    assert float(y.mean(0).abs().max()) < 0.15  # centred


def test_two_moons_noiseless_points_lie_on_unit_half_circles():
    y = two_moons(1001, noise=0.0, seed=1).double()
    upper = torch.hypot(y[:, 0] + 0.5, y[:, 1] + 0.25)      # centre of the upper moon (-0.5, -0.25)
    lower = torch.hypot(y[:, 0] - 0.5, y[:, 1] - 0.25)      # centre of the lower moon (0.5, 0.25)
    on_upper = (upper - 1).abs() < 1e-5
    on_lower = (lower - 1).abs() < 1e-5
    assert torch.all(on_upper | on_lower)
    assert int(on_upper.sum()) == 501 and int(on_lower.sum()) == 500
    assert torch.all(y[on_upper, 1] >= -0.25 - 1e-6) and torch.all(y[on_lower, 1] <= 0.25 + 1e-6)


def test_rings_noiseless_radii_and_balance():
    y = rings(301, noise=0.0, seed=2)
    radius = y.norm(dim=1)
    counts = [int(((radius - r).abs() < 1e-5).sum()) for r in (0.5, 1.0, 1.5)]
    assert counts == [101, 100, 100]


def test_spiral_noiseless_points_satisfy_arm_equation():
    y = spiral(400, noise=0.0, seed=5).double()
    r = y.norm(dim=1)
    t = r * 3 * math.pi / 1.5                                   # angle along the arm
    arm1 = torch.stack([r * torch.cos(t), r * torch.sin(t)], 1)
    on_arm = ((y - arm1).norm(dim=1) < 1e-4) | ((y + arm1).norm(dim=1) < 1e-4)
    assert torch.all(on_arm) and float(r.max()) <= 1.5 + 1e-6


def test_gaussian_mixture_component_means_and_std():
    k, std = 8, 0.1
    y = gaussian_mixture(80000, k=k, radius=1.5, std=std, seed=0).double()
    angles = 2 * math.pi * torch.arange(k) / k
    centres = 1.5 * torch.stack([torch.cos(angles), torch.sin(angles)], 1).double()
    nearest = torch.cdist(y, centres).argmin(1)
    assert torch.bincount(nearest, minlength=k).tolist() == [10000] * k
    for j in range(k):
        members = y[nearest == j]
        assert torch.allclose(members.mean(0), centres[j], atol=0.005)
        assert torch.allclose(members.std(0), torch.full((2,), std, dtype=torch.float64), rtol=0.03)


def test_make_toy_noise_default_and_override():
    assert torch.equal(make_toy("rings", 100, seed=1), rings(100, noise=0.05, seed=1))
    assert torch.equal(make_toy("gaussian_mixture", 100, seed=1, noise=0.2),
                       gaussian_mixture(100, std=0.2, seed=1))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: make_toy("swissroll", 10), "toy must be one of"),
    (lambda: toy_limits("swissroll"), "toy must be one of"),
    (lambda: two_moons(0), "n must be a positive integer"),
    (lambda: spiral(5, noise=-1.0), "noise must be >= 0"),
    (lambda: gaussian_mixture(5, k=0), "k must be a positive integer"),
    (lambda: rings(5, seed="a"), "seed must be an int or a torch.Generator"),
    (lambda: rings(5, radii=()), "radii must hold"),
])
def test_toy_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
