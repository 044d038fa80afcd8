"""Where contrastive samples come from: persistent Langevin chains and denoising corruptions.

* :class:`ReplayBuffer` + :class:`PersistentLangevinSampler` — persistent contrastive
  divergence (Tieleman 2008) in the form of Du & Mordatch, "Implicit Generation and
  Generalization in Energy-Based Models" (2019): keep N samples; each batch starts
  from buffer samples, re-initialises a fraction (5 %) from an initial distribution,
  runs K Langevin steps on exp(−βF) and writes the result back.
* :func:`gaussian_corruption`, :func:`mask_corruption` — the corruptions of denoising
  (Vincent et al. 2008) and masked auto-encoders (He et al. 2022), which produce the
  contrastive inputs of "C3"-style methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from genoise._checks import check_finite, check_positive
from genoise.energy.base import Energy
from genoise.energy.infer import Projection, langevin_sample
from genoise.energy.minimize import EnergyFn, draw_noise

InitFn = Callable[[int, torch.Generator | None], Tensor]


def uniform_init(*shape: int, low: float = -1.0, high: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> InitFn:
    """An initial distribution U[low, high]^shape: ``init(n, generator) -> (n, *shape)``."""
    if not high > low:
        raise ValueError(f"uniform_init needs high > low, got low={low}, high={high}")

    def init(n: int, generator: torch.Generator | None = None) -> Tensor:
        return low + (high - low) * torch.rand((n, *shape), generator=generator, dtype=dtype)

    return init


def as_energy_fn(energy: Energy | EnergyFn) -> EnergyFn:
    """The function a sampler runs on: an unconditional :class:`Energy` through its free
    energy F(y), any other callable ``fn(y) -> (B,)`` as it is."""
    if isinstance(energy, Energy):
        return lambda y: energy.free_energy(y)
    return energy


class ReplayBuffer:
    """A buffer of ``capacity`` samples for persistent chains (Du & Mordatch 2019, §3.1).

    Parameters
    ----------
    capacity : int
        N, the number of stored samples; filled from ``init`` at construction.
    init : callable ``init(n, generator) -> (n, *shape)``
        The initial distribution (e.g. :func:`uniform_init`).
    reinit_fraction : float in [0, 1]
        Probability that a drawn sample is replaced by a fresh one from ``init``.
    generator : torch.Generator, optional
        Drives which samples are drawn and which are re-initialised (CPU generator).
    """

    def __init__(self, capacity: int, init: InitFn, *, reinit_fraction: float = 0.05,
                 generator: torch.Generator | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        check_positive("reinit_fraction", reinit_fraction, allow_zero=True)
        if reinit_fraction > 1:
            raise ValueError(f"reinit_fraction must be in [0, 1], got {reinit_fraction}")
        self.capacity = capacity
        self.init = init
        self.reinit_fraction = float(reinit_fraction)
        self.generator = generator
        self.samples = self._fresh(capacity)

    def _fresh(self, n: int) -> Tensor:
        samples = self.init(n, self.generator)
        if not isinstance(samples, Tensor) or samples.shape[:1] != (n,):
            raise ValueError(f"init({n}, generator) must return a tensor (n, ...), got "
                             f"{getattr(samples, 'shape', type(samples))}")
        return samples.detach()

    def __len__(self) -> int:
        return self.capacity

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Draw ``batch_size`` distinct samples (with replacement if larger than N).

        Returns the starting points (B, *shape) — each re-initialised from ``init`` with
        probability ``reinit_fraction`` — and their buffer indices (B,) for :meth:`update`.
        """
        batch, index = self.draw(batch_size, self.generator)
        reinit = torch.rand(batch_size, generator=self.generator) < self.reinit_fraction
        count = int(reinit.sum())
        if count:
            batch[reinit.to(batch.device)] = self._fresh(count).to(batch)
        return batch, index

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``batch_size`` distinct stored samples (with replacement if larger than N), copied, and
        their indices — no re-initialisation (what :meth:`sample` starts from; evaluation
        continues stored chains with it, drawing with its own ``generator``)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if batch_size <= self.capacity:
            index = torch.randperm(self.capacity, generator=generator)[:batch_size]
        else:
            index = torch.randint(self.capacity, (batch_size,), generator=generator)
        return self.samples[index.to(self.samples.device)].clone(), index

    def update(self, index: Tensor, samples: Tensor) -> None:
        """Write ``samples`` (B, *shape) back at buffer positions ``index`` (B,)."""
        if samples.shape[1:] != self.samples.shape[1:] or index.shape != samples.shape[:1]:
            raise ValueError(f"update needs index (B,) and samples (B, {tuple(self.samples.shape[1:])}), "
                             f"got {tuple(index.shape)} and {tuple(samples.shape)}")
        self.samples[index.to(self.samples.device)] = samples.detach().to(self.samples)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"samples": self.samples.clone(), "reinit_fraction": self.reinit_fraction}
        if self.generator is not None:
            state["generator_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        samples = state["samples"]
        if samples.shape[1:] != self.samples.shape[1:]:
            raise ValueError(f"buffer samples have shape {tuple(samples.shape)}, expected "
                             f"(N, {tuple(self.samples.shape[1:])})")
        self.samples = samples.detach().clone().to(self.samples)
        self.capacity = samples.shape[0]
        self.reinit_fraction = float(state.get("reinit_fraction", self.reinit_fraction))
        if self.generator is not None and "generator_state" in state:
            self.generator.set_state(state["generator_state"])


class PersistentLangevinSampler:
    """Persistent contrastive divergence with Langevin chains (Tieleman 2008; Du & Mordatch 2019).

    Each call draws starting points from ``buffer``, runs ``steps`` of
    :func:`~genoise.energy.langevin_sample` on exp(−β F(y)), writes the samples back and
    returns them (detached: they are the contrastive answers ŷ of the loss).

    Parameters
    ----------
    energy : Energy or callable ``fn(y) -> (B,)``
        An unconditional :class:`Energy` (its free energy is used) or any energy function.
    buffer : ReplayBuffer
        Its generator also drives the Langevin noise.
    steps, step_size, noise_std, beta, projection, grad_clip
        Passed to :func:`~genoise.energy.langevin_sample`.

    Examples
    --------
    >>> import torch
    >>> from genoise.energy import FunctionEnergy
    >>> from genoise.energy.samplers import PersistentLangevinSampler, ReplayBuffer, uniform_init
    >>> g = torch.Generator().manual_seed(0)
    >>> energy = FunctionEnergy(lambda y, x=None, z=None: 0.5 * (y ** 2).sum(-1))
    >>> sampler = PersistentLangevinSampler(energy, ReplayBuffer(100, uniform_init(2), generator=g),
    ...                                     steps=10, step_size=0.1)
    >>> sampler.sample(16).shape
    torch.Size([16, 2])
    """

    def __init__(self, energy: Energy | Callable[[Tensor], Tensor], buffer: ReplayBuffer, *,
                 steps: int = 60, step_size: float = 0.01, noise_std: float | None = None,
                 beta: float = 1.0, projection: Projection | None = None,
                 grad_clip: float | None = None) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        check_positive("step_size", step_size)
        check_positive("beta", beta)
        self.energy = energy
        self.buffer = buffer
        self.steps = steps
        self.langevin_kwargs = {"step_size": step_size, "noise_std": noise_std, "beta": beta,
                                "projection": projection, "grad_clip": grad_clip}

    def sample(self, batch_size: int) -> Tensor:
        """Draw, run the chains, write back; returns samples (B, *shape), detached."""
        start, index = self.buffer.sample(batch_size)
        samples = langevin_sample(as_energy_fn(self.energy), start, steps=self.steps,
                                  generator=self.buffer.generator, **self.langevin_kwargs)
        self.buffer.update(index, samples)
        return samples

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])


# --------------------------------------------------------------------- corruptions
def gaussian_corruption(y: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """ỹ = y + σ ξ, ξ ~ N(0, I) (denoising auto-encoders, Vincent et al. 2008; denoising
    score matching, Vincent 2011)."""
    check_positive("sigma", sigma, allow_zero=True)
    check_finite("y", y)
    return y + sigma * draw_noise(tuple(y.shape), y, generator)


class MaskedCorruption(NamedTuple):
    """Masked input ỹ and the mask (B, N), ``True`` where a position was masked."""

    corrupted: Tensor
    mask: Tensor


def mask_corruption(y: Tensor, ratio: float, generator: torch.Generator | None = None, *,
                    fill: float = 0.0) -> MaskedCorruption:
    """Mask exactly ⌊ratio·N⌉ of the N positions along dim 1 of ``y`` (B, N, ...), chosen
    uniformly at random per sample, replacing them by ``fill`` (masked auto-encoders,
    He et al. 2022: per-sample shuffling by the argsort of uniform noise).

    For images, patchify first ((B, C, H, W) → (B, N, P)); for vectors (B, D) every
    feature is a position.
    """
    check_positive("ratio", ratio, allow_zero=True)
    if ratio > 1:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if y.ndim < 2:
        raise ValueError(f"y must be (B, N, ...), got shape {tuple(y.shape)}")
    batch, positions = y.shape[:2]
    num_masked = round(ratio * positions)
    scores = torch.rand((batch, positions), generator=generator).to(y.device)
    rank = scores.argsort(dim=1).argsort(dim=1)
    mask = rank < num_masked
    expanded = mask.reshape(batch, positions, *([1] * (y.ndim - 2)))
    return MaskedCorruption(torch.where(expanded, torch.full_like(y, fill), y), mask)
