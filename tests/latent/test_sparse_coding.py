"""SparseCodingEnergy: the Energy surface of sparse coding (free energy = lasso optimum)."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import infer_latent
from genoise.latent.ista import fista, sparse_coding_objective
from genoise.latent.sparse_coding import SparseCodingEnergy


def _model(lam: float = 0.4):
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.functional.normalize(torch.randn(12, 20, generator=gen, dtype=torch.float64), dim=0)
    y = torch.randn(6, 12, generator=gen, dtype=torch.float64)
    return SparseCodingEnergy(w, lam, steps=3000, tol=1e-12), w, y


def test_energy_is_reconstruction_plus_l1():
    model, w, y = _model()
    z = torch.randn(6, 20, dtype=torch.float64)
    expected = 0.5 * ((y - z @ w.T) ** 2).sum(1) + 0.4 * z.abs().sum(1)
    assert torch.allclose(model.energy(y, z=z), expected)


def test_free_energy_is_minimum_over_codes():
    model, w, y = _model()
    free = model.free_energy(y)
    z_star = fista(y, w, 0.4, steps=3000, tol=1e-12)
    assert torch.allclose(free, sparse_coding_objective(y, w, z_star, 0.4), rtol=1e-9)
    # No random code does better.
    random_codes = z_star + 0.05 * torch.randn(50, *z_star.shape, dtype=torch.float64)
    others = torch.stack([model.energy(y, z=c) for c in random_codes])
    assert torch.all(others >= free - 1e-10)


def test_free_energy_gradient_matches_envelope_theorem():
    model, w, y = _model()
    y = y.clone().requires_grad_(True)
    model.free_energy(y).sum().backward()
    z_star = model.infer_code(y.detach())
    assert torch.allclose(y.grad, y.detach() - z_star @ w.T, atol=1e-8)
    assert model.dictionary.grad is not None


def test_generic_gradient_inference_is_no_better_than_fista():
    model, _, y = _model()
    z = infer_latent(model, y, steps=200, lr=0.02, optimizer=torch.optim.Adam)
    generic, free = model.energy(y, z=z), model.free_energy(y)
    assert torch.all(generic >= free - 1e-9)
    assert torch.all(generic <= 1.05 * free)


def test_bad_input_is_refused():
    model, _, y = _model()
    with pytest.raises(ValueError, match="lam must be >= 0"):
        SparseCodingEnergy(torch.randn(4, 3), -1.0)
    with pytest.raises(ValueError, match="zero column"):
        SparseCodingEnergy(torch.zeros(4, 3), 0.1)
    with pytest.raises(ValueError, match="only beta=inf"):
        model.free_energy(y, beta=1.0)
    with pytest.raises(ValueError, match="needs the code z"):
        model.energy(y)
    with pytest.raises(ValueError, match="D=5 features"):
        model.free_energy(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="y contains"):
        model.free_energy(torch.full((2, 12), math.nan, dtype=torch.float64))
