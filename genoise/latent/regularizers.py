"""Latent regularisers R(z): the terms that limit the information a latent code carries,
so that the volume of low energy stays small (LeCun et al., "A Tutorial on Energy-Based
Learning", 2006; the "regularised latent-variable" family of the SSL lectures).

* noise / KL — the VAE's: a Gaussian posterior q(z | y) = N(μ, diag σ²) is sampled by the
  reparameterisation z = μ + σ ⊙ ε, and R = KL(q ‖ N(0, I)) in closed form (Kingma &
  Welling, "Auto-Encoding Variational Bayes", ICLR 2014, appendix B);
* L1 — sparse coding's R(z) = λ‖z‖₁ (Olshausen & Field 1996; Tibshirani 1996);
* one-hot — K-means' constraint z ∈ {e_1, …, e_K}, as a penalty 0 / +∞.

Every function works on a batch: z, μ, log σ² of shape (B, K) → one value per sample (B,).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genoise._checks import check_ndim


def _check_pair(mu: Tensor, logvar: Tensor) -> None:
    if mu.shape != logvar.shape or mu.ndim < 1:
        raise ValueError(f"mu and logvar must have the same shape (B, K), got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")


def kl_divergence(
    mu: Tensor, logvar: Tensor, prior_mu: Tensor | None = None, prior_logvar: Tensor | None = None
) -> Tensor:
    """KL(N(μ, diag exp(logvar)) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), summed over
    the last dimension: (..., K) → (...), e.g. (B, K) → (B,).

    With ``prior_mu`` / ``prior_logvar`` (a learned prior p = N(m, diag s²), as the
    conditional prior p(z | x) of a forward model, Henaff et al. 2019), the closed form of
    KL(q ‖ p) = ½ Σ_j (log s_j² − log σ_j² + (σ_j² + (μ_j − m_j)²) / s_j² − 1)."""
    _check_pair(mu, logvar)
    if prior_mu is None and prior_logvar is None:
        return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(-1)
    if prior_mu is None or prior_logvar is None:
        raise ValueError("give both prior_mu and prior_logvar (or neither, for N(0, I))")
    _check_pair(prior_mu, prior_logvar)
    ratio = (logvar - prior_logvar).exp() + (mu - prior_mu) ** 2 / prior_logvar.exp()
    return 0.5 * (prior_logvar - logvar + ratio - 1.0).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = μ + exp(½ logvar) ⊙ ε, ε ~ N(0, I) drawn from ``generator`` on its device (then
    moved: a CPU generator serves a model on any device): a sample of N(μ, diag exp(logvar))
    that is differentiable in μ and logvar."""
    _check_pair(mu, logvar)
    device = generator.device if generator is not None else mu.device
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=device).to(mu.device)
    return mu + (0.5 * logvar).exp() * eps


def l1_penalty(z: Tensor) -> Tensor:
    """R(z) = ‖z‖₁ = Σ_j |z_j| per sample: (B, K) → (B,) (multiply by λ for sparse coding)."""
    check_ndim("z", z, 2)
    return z.abs().sum(-1)


def one_hot_penalty(z: Tensor, atol: float = 1e-6) -> Tensor:
    """R(z) = 0 when z is a one-hot code (one entry 1, the others 0, within ``atol``), +∞
    otherwise: K-means' latent constraint as a regulariser, (B, K) → (B,)."""
    check_ndim("z", z, 2)
    hot = (z - 1.0).abs() <= atol
    cold = z.abs() <= atol
    valid = (hot.sum(-1) == 1) & (hot | cold).all(-1)
    return torch.where(valid, torch.zeros((), dtype=z.dtype, device=z.device),
                       torch.full((), math.inf, dtype=z.dtype, device=z.device))


__all__ = ["kl_divergence", "l1_penalty", "one_hot_penalty", "reparameterize"]
