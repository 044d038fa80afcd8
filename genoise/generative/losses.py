"""GAN objectives written in energy terms (E low on data; the discriminator is the energy).

* EBGAN (Zhao, Mathieu & LeCun, ICLR 2017, eq. 1–2 and §2.4):
  L_D = E(y) + [m − E(G(z))]⁺,   L_G = E(G(z)) + w_PT · f_PT(Enc(G(z))),
  the pulling-away term f_PT(S) = 1/(N(N−1)) Σ_{i≠j} (s_iᵀ s_j / ‖s_i‖‖s_j‖)².
* WGAN-GP (Arjovsky, Chintala & Bottou 2017; Gulrajani et al. 2017), critic D = −E:
  L_D = E(y) − E(G(z)) + λ (‖∇E(ŷ)‖₂ − 1)²,  ŷ = εy + (1 − ε)G(z), ε ~ U[0, 1];
  L_G = E(G(z)).
* DCGAN (Goodfellow et al. 2014; Radford et al. 2016), D(y) = sigmoid(−E(y)):
  L_D = −log D(y) − log(1 − D(G(z))) = softplus(E(y)) + softplus(−E(G(z))),
  non-saturating L_G = −log D(G(z)) = softplus(E(G(z))).

Each takes energies (B,) and returns the batch mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genoise._checks import check_positive, has_nan
from genoise.train import NonFiniteLossError


def _check(name: str, energies: Tensor) -> Tensor:
    if not isinstance(energies, Tensor) or energies.ndim != 1:
        got = tuple(energies.shape) if isinstance(energies, Tensor) else type(energies).__name__
        raise ValueError(f"{name} must be energies of shape (B,), got {got}")
    if has_nan(energies):
        raise ValueError(f"{name} contains {int(torch.isnan(energies).sum())} NaN value(s): "
                         "the discriminator's energy diverged")
    return energies


def check_finite_energies(what: str, energies: Tensor, step: int) -> Tensor:
    """Stop a training step whose energies are NaN or infinite: ``NonFiniteLossError``
    ("diverged"), raised before the update so the last checkpoint is the last good one."""
    if not bool(torch.isfinite(energies).all()):
        raise NonFiniteLossError(f"diverged: the {what} is not finite at step {step}; stopped before "
                                 "the update (the last checkpoint is kept)")
    return energies


def check_margin(margin: float) -> float:
    if not margin > 0:
        raise ValueError(f"margin must be > 0 (EBGAN pushes generated energies up to m), got {margin}")
    return float(margin)


def ebgan_discriminator_loss(energy_real: Tensor, energy_fake: Tensor, margin: float) -> Tensor:
    """L_D = mean E(y) + mean [m − E(G(z))]⁺ (EBGAN eq. 1)."""
    margin = check_margin(margin)
    pushed_up = F.relu(margin - _check("energy_fake", energy_fake))
    return _check("energy_real", energy_real).mean() + pushed_up.mean()


def pulling_away_term(codes: Tensor) -> Tensor:
    """f_PT(S) = 1/(N(N−1)) Σ_{i≠j} cos²(s_i, s_j) over the N codes (N, d) of a batch
    (EBGAN §2.4): low when the generated samples' codes are mutually orthogonal."""
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise ValueError(f"codes must be (N >= 2, d), got {tuple(codes.shape)}")
    unit = F.normalize(codes, dim=1)
    cosine = unit @ unit.T
    n = codes.shape[0]
    return (cosine.pow(2).sum() - cosine.diagonal().pow(2).sum()) / (n * (n - 1))


def generator_energy_loss(energy_fake: Tensor) -> Tensor:
    """L_G = mean E(G(z)): the generator moves its samples down the energy (EBGAN and WGAN)."""
    return _check("energy_fake", energy_fake).mean()


def wgan_critic_loss(energy_real: Tensor, energy_fake: Tensor) -> Tensor:
    """mean E(y) − mean E(G(z)): the negated Wasserstein estimate with critic D = −E."""
    return _check("energy_real", energy_real).mean() - _check("energy_fake", energy_fake).mean()


def gradient_penalty(energy, real: Tensor, fake: Tensor, rng: torch.Generator | None = None,
                     target: float = 1.0) -> Tensor:
    """mean (‖∇_ŷ E(ŷ)‖₂ − target)² at ŷ = εy + (1 − ε)G(z), ε ~ U[0, 1] per sample
    (Gulrajani et al. 2017, Algorithm 1); differentiable in the energy's parameters."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have one shape")
    eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), generator=rng,
                     device=rng.device if rng is not None else real.device).to(real)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - target).pow(2).mean()


def r1_penalty(energy, real: Tensor) -> Tensor:
    """R1 = mean ‖∇_y E(y)‖₂² on the real samples y: the zero-centred gradient penalty of
    Mescheder, Geiger & Nowozin ("Which training methods for GANs do actually converge?",
    ICML 2018), added as γ/2 · R1 to the discriminator's loss. It flattens the energy on the
    data manifold, which makes the non-saturating GAN locally convergent. Differentiable in
    the energy's parameters (D = sigmoid(−E), so ∇E = −∇ logit D: the same norm)."""
    inputs = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(inputs).sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def dcgan_discriminator_loss(energy_real: Tensor, energy_fake: Tensor) -> Tensor:
    """softplus(E(y)) + softplus(−E(G(z))): binary cross-entropy with D = sigmoid(−E)."""
    return F.softplus(_check("energy_real", energy_real)).mean() + F.softplus(
        -_check("energy_fake", energy_fake)).mean()


def dcgan_generator_loss(energy_fake: Tensor) -> Tensor:
    """Non-saturating −log D(G(z)) = softplus(E(G(z)))."""
    return F.softplus(_check("energy_fake", energy_fake)).mean()


def check_weight(name: str, value: float) -> float:
    return float(check_positive(name, value, allow_zero=True))
