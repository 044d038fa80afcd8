"""GAN objectives in energy terms, against hand-computed values and torch's BCE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genoise.energy import FunctionEnergy
from genoise.generative import (
    dcgan_discriminator_loss,
    dcgan_generator_loss,
    ebgan_discriminator_loss,
    generator_energy_loss,
    gradient_penalty,
    pulling_away_term,
    r1_penalty,
    wgan_critic_loss,
)


def test_ebgan_discriminator_loss_by_hand():
    e_real = torch.tensor([0.1, 0.3])
    e_fake = torch.tensor([0.05, 0.5])
    # mean(0.1, 0.3) + mean([0.2 - 0.05]+, [0.2 - 0.5]+) = 0.2 + (0.15 + 0) / 2
    assert float(ebgan_discriminator_loss(e_real, e_fake, margin=0.2)) == pytest.approx(0.275)
    # generated energies above the margin contribute nothing: the loss is then E(real) alone
    assert float(ebgan_discriminator_loss(e_real, torch.tensor([1.0, 2.0]), 0.2)) == pytest.approx(0.2)


@pytest.mark.parametrize("margin", [0.0, -1.0])
def test_ebgan_refuses_a_margin_that_is_not_positive(margin):
    with pytest.raises(ValueError, match="margin must be > 0"):
        ebgan_discriminator_loss(torch.zeros(2), torch.zeros(2), margin)


def test_nan_energy_is_named():
    with pytest.raises(ValueError, match=r"energy_fake contains 1 NaN value\(s\)"):
        ebgan_discriminator_loss(torch.zeros(2), torch.tensor([0.0, float("nan")]), 1.0)
    with pytest.raises(ValueError, match=r"energy_real must be energies of shape \(B,\)"):
        wgan_critic_loss(torch.zeros(2, 1), torch.zeros(2))


def test_pulling_away_term_against_a_loop():
    codes = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    total = 0.0
    for i in range(5):
        for j in range(5):
            if i != j:
                total += float(F.cosine_similarity(codes[i], codes[j], dim=0)) ** 2
    assert float(pulling_away_term(codes)) == pytest.approx(total / 20, rel=1e-12)
    assert float(pulling_away_term(torch.eye(4))) == 0.0  # orthogonal codes
    assert float(pulling_away_term(torch.ones(3, 2))) == pytest.approx(1.0)  # identical codes
    with pytest.raises(ValueError, match=r"codes must be \(N >= 2, d\)"):
        pulling_away_term(torch.ones(1, 2))


def test_wgan_losses_and_generator_loss_signs():
    e_real, e_fake = torch.tensor([-1.0, -3.0]), torch.tensor([2.0, 4.0])
    assert float(wgan_critic_loss(e_real, e_fake)) == pytest.approx(-2.0 - 3.0)
    assert float(generator_energy_loss(e_fake)) == pytest.approx(3.0)


def test_gradient_penalty_of_a_linear_energy_is_closed_form():
    w = torch.tensor([3.0, 4.0])  # ‖∇E‖ = 5 everywhere
    energy = FunctionEnergy(lambda y, x=None, z=None: y @ w)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert float(gradient_penalty(energy, real, fake)) == pytest.approx((5.0 - 1.0) ** 2)
    with pytest.raises(ValueError, match="must have one shape"):
        gradient_penalty(energy, real, fake[:4])


def test_gradient_penalty_is_differentiable_in_the_energy_parameters():
    weight = torch.tensor([0.3, -0.2], requires_grad=True)
    energy = FunctionEnergy(lambda y, x=None, z=None: (y @ weight) ** 2)
    penalty = gradient_penalty(energy, torch.randn(6, 2), torch.randn(6, 2), torch.Generator().manual_seed(0))
    penalty.backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_dcgan_losses_equal_binary_cross_entropy_with_d_equal_sigmoid_of_minus_energy():
    g = torch.Generator().manual_seed(1)
    e_real, e_fake = torch.randn(7, generator=g), torch.randn(7, generator=g)
    d_real, d_fake = torch.sigmoid(-e_real), torch.sigmoid(-e_fake)
    expected = F.binary_cross_entropy(d_real, torch.ones(7)) + F.binary_cross_entropy(d_fake, torch.zeros(7))
    torch.testing.assert_close(dcgan_discriminator_loss(e_real, e_fake), expected)
    torch.testing.assert_close(dcgan_generator_loss(e_fake), F.binary_cross_entropy(d_fake, torch.ones(7)))


def test_r1_penalty_is_the_squared_input_gradient_on_the_data():
    # E(y) = ½‖A y‖²: ∇E = AᵀA y, so R1 = mean ‖AᵀA y‖² (a closed form that varies with y)
    a = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    energy = FunctionEnergy(lambda y, x=None, z=None: 0.5 * (y @ a.T).pow(2).sum(1))
    real = torch.randn(9, 2, generator=torch.Generator().manual_seed(0))
    expected = (real @ (a.T @ a).T).pow(2).sum(1).mean()
    torch.testing.assert_close(r1_penalty(energy, real), expected)
    assert not real.requires_grad  # the data is not modified
    weight = torch.tensor([0.3, -0.2], requires_grad=True)  # differentiable in the parameters
    r1_penalty(FunctionEnergy(lambda y, x=None, z=None: (y @ weight) ** 2), real).backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
