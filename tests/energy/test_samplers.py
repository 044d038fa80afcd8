"""Replay buffer, persistent Langevin chains (Du & Mordatch 2019) and denoising corruptions."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import (
    FunctionEnergy,
    PersistentLangevinSampler,
    ReplayBuffer,
    gaussian_corruption,
    mask_corruption,
    uniform_init,
)


def _buffer(capacity=100, reinit_fraction=0.05, seed=0, shape=(3,)):
    return ReplayBuffer(capacity, uniform_init(*shape), reinit_fraction=reinit_fraction,
                        generator=torch.Generator().manual_seed(seed))


def test_buffer_holds_capacity_samples_from_init():
    buffer = _buffer(capacity=50, shape=(2, 4))
    assert len(buffer) == 50 and buffer.samples.shape == (50, 2, 4)
    assert buffer.samples.min() >= -1 and buffer.samples.max() <= 1


def test_sample_draws_distinct_buffer_entries_without_reinit():
    buffer = _buffer(reinit_fraction=0.0)
    batch, index = buffer.sample(30)
    assert batch.shape == (30, 3) and index.unique().numel() == 30
    torch.testing.assert_close(batch, buffer.samples[index])
    batch[:] = 99.0  # a copy: the buffer changes only through update()
    assert buffer.samples.max() <= 1


def test_batch_larger_than_capacity_draws_with_replacement():
    batch, index = _buffer(capacity=10).sample(25)
    assert batch.shape == (25, 3) and index.max() < 10


def test_reinit_fraction_replaces_that_share_of_the_batch():
    buffer = _buffer(capacity=20000, reinit_fraction=0.05)
    batch, index = buffer.sample(20000)
    fresh = (batch != buffer.samples[index]).any(dim=1).float()
    # Binomial(20000, 0.05): mean 1000, sd ≈ 31
    assert abs(fresh.sum().item() - 1000) < 4 * math.sqrt(20000 * 0.05 * 0.95)
    batch, index = _buffer(capacity=100, reinit_fraction=1.0).sample(100)
    assert (batch != _buffer(capacity=100, reinit_fraction=1.0).samples[index]).any(dim=1).all()


def test_update_writes_back():
    buffer = _buffer()
    _, index = buffer.sample(5)
    buffer.update(index, torch.full((5, 3), 7.0))
    assert (buffer.samples[index] == 7.0).all() and (buffer.samples == 7.0).sum() == 15
    with pytest.raises(ValueError, match=r"update needs index \(B,\) and samples"):
        buffer.update(index, torch.zeros(5, 2))


def test_same_seed_gives_the_same_samples():
    def run(seed):
        energy = FunctionEnergy(lambda y, x=None, z=None: 0.5 * (y ** 2).sum(-1))
        sampler = PersistentLangevinSampler(energy, _buffer(seed=seed), steps=5, step_size=0.1)
        return torch.stack([sampler.sample(8) for _ in range(3)])

    torch.testing.assert_close(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_state_dict_round_trip_resumes_exactly():
    sampler = PersistentLangevinSampler(lambda y: (y ** 2).sum(-1), _buffer(), steps=3, step_size=0.1)
    sampler.sample(10)
    state = sampler.state_dict()  # a snapshot: later sampling must not change it
    first = sampler.sample(10)
    restored = PersistentLangevinSampler(lambda y: (y ** 2).sum(-1), _buffer(seed=123), steps=3,
                                         step_size=0.1)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.sample(10), first)
    torch.testing.assert_close(restored.buffer.samples, sampler.buffer.samples)


def test_persistent_chains_sample_the_gaussian_energy():
    # E(y) = ‖y − μ‖² / (2 s²) → exp(−E) is N(μ, s² I). Unadjusted Langevin with step ε has
    # stationary variance ε / (1 − (1 − a)²), a = ε / (2 s²): 0.2525 for s² = 0.25, ε = 0.01.
    mu, s2, eps = torch.tensor([1.0, -0.5]), 0.25, 0.01
    energy = FunctionEnergy(lambda y, x=None, z=None: ((y - mu) ** 2).sum(-1) / (2 * s2))
    buffer = ReplayBuffer(2000, uniform_init(2), reinit_fraction=0.0,
                          generator=torch.Generator().manual_seed(0))
    sampler = PersistentLangevinSampler(energy, buffer, steps=60, step_size=eps)
    for _ in range(6):  # 360 steps per chain in total, carried over through the buffer
        samples = sampler.sample(2000)
    a = eps / (2 * s2)
    stationary_var = eps / (1 - (1 - a) ** 2)
    n = samples.shape[0]
    torch.testing.assert_close(samples.mean(0), mu, atol=4 * math.sqrt(s2 / n), rtol=0)
    torch.testing.assert_close(samples.var(0), torch.full((2,), stationary_var),
                               atol=4 * stationary_var * math.sqrt(2 / n), rtol=0)
    assert abs(stationary_var - s2) < 0.01  # and that is close to the closed form s²


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, uniform_init(2))
    with pytest.raises(ValueError, match="reinit_fraction"):
        ReplayBuffer(10, uniform_init(2), reinit_fraction=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        _buffer().sample(0)
    with pytest.raises(ValueError, match="step_size"):
        PersistentLangevinSampler(lambda y: y.sum(-1), _buffer(), step_size=0.0)
    with pytest.raises(ValueError, match=r"init\(4, generator\) must return a tensor"):
        ReplayBuffer(4, lambda n, g: torch.zeros(n + 1, 2))
    with pytest.raises(ValueError, match="high > low"):
        uniform_init(2, low=1.0, high=0.0)


# --------------------------------------------------------------------- corruptions
def test_gaussian_corruption_adds_seeded_noise_of_std_sigma():
    y = torch.zeros(20000, 2)
    noisy = gaussian_corruption(y, 0.3, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.3, rel=0.02)
    assert abs(noisy.mean().item()) < 4 * 0.3 / math.sqrt(noisy.numel())
    torch.testing.assert_close(noisy, gaussian_corruption(y, 0.3, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(gaussian_corruption(y + 1, 0.0), y + 1)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_corruption(y, -0.1)


def test_mask_corruption_masks_exactly_ratio_of_positions_per_sample():
    y = torch.arange(1.0, 1 + 4 * 10 * 3).reshape(4, 10, 3)
    corrupted, mask = mask_corruption(y, 0.75, torch.Generator().manual_seed(0), fill=-1.0)
    assert mask.shape == (4, 10) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [8, 8, 8, 8]  # round(0.75 · 10)
    assert (corrupted[mask] == -1.0).all()
    torch.testing.assert_close(corrupted[~mask], y[~mask])
    assert len({tuple(row.tolist()) for row in mask}) > 1  # a different mask per sample
    again, mask_again = mask_corruption(y, 0.75, torch.Generator().manual_seed(0), fill=-1.0)
    assert torch.equal(mask, mask_again) and torch.equal(corrupted, again)


def test_mask_corruption_edge_ratios_and_errors():
    y = torch.randn(3, 5)
    assert not mask_corruption(y, 0.0).mask.any()
    assert mask_corruption(y, 1.0).mask.all()
    with pytest.raises(ValueError, match="ratio"):
        mask_corruption(y, 1.5)
    with pytest.raises(ValueError, match=r"y must be \(B, N, ...\)"):
        mask_corruption(torch.zeros(5), 0.5)
