"""Two-dimensional toy distributions for drawing energy landscapes.

Each generator returns float32 points of shape (n, 2), drawn i.i.d. from a seeded
``torch.Generator`` (same seed → same points), fully vectorised, shuffled (component
membership is not tied to the row order). The noiseless shapes lie in [-1.5, 1.5]²;
Gaussian noise of standard deviation ``noise`` (in output units) is added last, so with
the default noise almost every point lies in [-2, 2]² — the square :func:`toy_limits`
returns for the energy-landscape grid.

* ``two_moons`` (noise 0.05): two interleaved half circles of radius 1 (scikit-learn's
  ``make_moons``), centred: x ∈ [-1.5, 1.5], y ∈ [-0.75, 0.75].
* ``spiral`` (noise 0.05): two interleaved arms r = 1.5·t/(3π), angle t ∈ [0, 3π]
  (1.5 turns), the second rotated by π; points roughly uniform along the arc length.
* ``rings`` (noise 0.05): three concentric circles of radii 0.5, 1.0, 1.5, equally many
  points on each.
* ``gaussian_mixture`` (std 0.1): k = 8 equal-weight isotropic Gaussians centred on a
  circle of radius 1.5.

These are the standard density-estimation toys (e.g. Grathwohl et al., FFJORD, ICLR 2019;
the 8-Gaussians ring of GAN papers).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genoise._checks import check_choice, check_positive

TOYS = ("two_moons", "spiral", "rings", "gaussian_mixture")
_DEFAULT_NOISE = {"two_moons": 0.05, "spiral": 0.05, "rings": 0.05, "gaussian_mixture": 0.1}
_LIMITS = {"two_moons": 2.0, "spiral": 2.0, "rings": 2.0, "gaussian_mixture": 2.0}


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return n


def _finish(points: Tensor, noise: float, gen: torch.Generator) -> Tensor:
    """Add N(0, noise²) noise and shuffle the rows; float32 (n, 2)."""
    check_positive("noise", noise, allow_zero=True)
    points = points + noise * torch.randn(points.shape, generator=gen, dtype=points.dtype)
    return points[torch.randperm(points.shape[0], generator=gen)].float()


def two_moons(n: int, noise: float = 0.05, seed: int | torch.Generator = 0) -> Tensor:
    """Two interleaved half circles (as scikit-learn's ``make_moons``, centred).

    Upper moon (cos t − 0.5, sin t − 0.25), lower moon (0.5 − cos t, 0.25 − sin t), with
    t ~ U[0, π]; ⌈n/2⌉ points on the upper moon. Returns (n, 2) float32.
    """
    gen = _generator(seed)
    _check_n(n)
    t = torch.rand(n, generator=gen, dtype=torch.float64) * math.pi
    upper = torch.arange(n) < (n + 1) // 2
    sign = torch.where(upper, 1.0, -1.0).to(torch.float64)
    points = torch.stack([sign * (torch.cos(t) - 0.5), sign * (torch.sin(t) - 0.25)], dim=1)
    return _finish(points, noise, gen)


def spiral(n: int, noise: float = 0.05, seed: int | torch.Generator = 0) -> Tensor:
    """Two interleaved spiral arms, radius r = 1.5·t/(3π) at angle t ∈ [0, 3π].

    t = 3π·√u with u ~ U[0, 1] (more points on the longer outer turns); the second arm
    is the first rotated by π. Returns (n, 2) float32 within radius 1.5 before noise.
    """
    gen = _generator(seed)
    _check_n(n)
    t = 3 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64).sqrt()
    radius = 1.5 * t / (3 * math.pi)
    sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).to(torch.float64)
    points = torch.stack([sign * radius * torch.cos(t), sign * radius * torch.sin(t)], dim=1)
    return _finish(points, noise, gen)


def rings(n: int, noise: float = 0.05, seed: int | torch.Generator = 0,
          radii: tuple[float, ...] = (0.5, 1.0, 1.5)) -> Tensor:
    """Concentric circles of the given radii, equally many points (±1) on each, angles
    uniform. Returns (n, 2) float32."""
    gen = _generator(seed)
    _check_n(n)
    if not radii:
        raise ValueError("radii must hold at least one radius")
    for r in radii:
        check_positive("ring radius", r)
    radius = torch.tensor(radii, dtype=torch.float64)[torch.arange(n) % len(radii)]
    angle = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return _finish(points, noise, gen)


def gaussian_mixture(n: int, k: int = 8, radius: float = 1.5, std: float = 0.1,
                     seed: int | torch.Generator = 0) -> Tensor:
    """k equal-weight Gaussians N(μ_j, std²·I), μ_j = radius·(cos 2πj/k, sin 2πj/k).

    Component j gets the rows with index ≡ j (mod k) before shuffling, so the counts
    are balanced (±1). Returns (n, 2) float32.
    """
    gen = _generator(seed)
    _check_n(n)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    check_positive("radius", radius, allow_zero=True)
    angle = 2 * math.pi * (torch.arange(n) % k).to(torch.float64) / k
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return _finish(centres, std, gen)


def make_toy(name: str, n: int, seed: int | torch.Generator = 0, noise: float | None = None) -> Tensor:
    """The toy set ``name`` ∈ :data:`TOYS` with ``n`` points; ``noise=None`` uses the
    default of the table in the module docstring (for ``gaussian_mixture`` it is the
    component std).

    Examples
    --------
    >>> y = make_toy("two_moons", 1000, seed=0)
    >>> lim = toy_limits("two_moons")      # draw the energy on [-lim, lim]²
    """
    check_choice("toy", name, TOYS)
    noise = _DEFAULT_NOISE[name] if noise is None else noise
    if name == "gaussian_mixture":
        return gaussian_mixture(n, std=noise, seed=seed)
    return {"two_moons": two_moons, "spiral": spiral, "rings": rings}[name](n, noise=noise, seed=seed)


def toy_limits(name: str) -> float:
    """Half-width ``lim`` of the square [-lim, lim]² that holds the toy ``name`` (with its
    default noise) with a margin: the domain on which to draw its energy landscape."""
    check_choice("toy", name, TOYS)
    return _LIMITS[name]
