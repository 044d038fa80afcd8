"""Variational auto-encoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014)
with the β weight of Higgins et al. ("β-VAE", ICLR 2017), as an :class:`Energy`.

Prior p(z) = N(0, I); Gaussian encoder q(z | y) = N(μ(y), diag σ²(y)); decoder p(y | z)
Bernoulli (images in [0, 1]) or Gaussian with variance ½. The evidence lower bound

    ELBO(y) = E_q[log p(y | z)] − KL(q(z | y) ‖ p(z)) ≤ log p(y),
    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)                       (closed form)

is estimated with the reparameterisation z = μ + σ ⊙ ε, ε ~ N(0, I) (both in
:mod:`genoise.latent.regularizers`). In energy terms
(LeCun et al. 2006; the "regularised latent variable" family), E(y, z) = −log p(y | z)
is the reconstruction energy, the KL term is the regulariser R(z) that limits the
information in the code, and −ELBO is the variational free energy, an upper bound of
F_1(y) = −log p(y).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_positive
from genoise.energy.base import Energy
from genoise.energy.functional import _check_beta
from genoise.latent.autoencoders import flat_batch
from genoise.latent.regularizers import kl_divergence, reparameterize
from genoise.nn import MLP


class VAE(Energy):
    """Variational auto-encoder with an MLP (or custom) encoder and decoder.

    Parameters
    ----------
    in_dim : int
    latent_dim : int
    hidden : sequence of int     hidden widths of the default MLPs (decoder mirrored)
    kl_weight : float            β of β-VAE (1 = the ELBO); the training loss is
                                 E_q[−log p(y|z)] + kl_weight · KL
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli: E(y, z) = BCE(y, sigmoid(Dec(z))) summed over values. Gaussian with
        variance ½: E(y, z) = ‖y − Dec(z)‖² (−log p(y | z) minus the constant D/2 log π,
        which :meth:`elbo` adds back).
    encoder : nn.Module, optional   (B, in_dim) → (B, 2·latent_dim) [μ, log σ²]
    decoder : nn.Module, optional   (B, latent_dim) → (B, in_dim) logits / means

    Examples
    --------
    >>> vae = VAE(64, 2, hidden=[32])
    >>> y = torch.rand(5, 64)
    >>> vae.elbo(y, torch.Generator().manual_seed(0)).shape
    torch.Size([5])
    """

    has_latent = True

    def __init__(self, in_dim: int, latent_dim: int = 2, hidden: Sequence[int] = (256,), *,
                 kl_weight: float = 1.0, likelihood: str = "bernoulli",
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None) -> None:
        super().__init__()
        check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
        check_positive("kl_weight", kl_weight, allow_zero=True)
        self.in_dim, self.latent_dim = in_dim, latent_dim
        self.kl_weight, self.likelihood = kl_weight, likelihood
        self.encoder = encoder if encoder is not None else MLP(in_dim, list(hidden), 2 * latent_dim)
        self.decoder = decoder if decoder is not None else MLP(latent_dim, list(hidden)[::-1], in_dim)

    # ------------------------------------------------------------------ networks
    def encode(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior parameters (μ, log σ²), each (B, latent_dim)."""
        out = self.encoder(flat_batch("VAE", y, self.in_dim))
        mu, logvar = out.chunk(2, dim=-1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """Mean of p(y | z): sigmoid(logits) (Bernoulli) or the output itself (Gaussian)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def reconstruction_energy(self, y: Tensor, z: Tensor) -> Tensor:
        """E(y, z) = −log p(y | z) (Gaussian: without its constant), (B,)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(out, y, reduction="none").sum(-1)
        return ((y - out) ** 2).sum(-1)

    # ------------------------------------------------------------------ energy surface
    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z) = −log p(y | z), (B,); z = the posterior mean μ(y) when None."""
        flat = flat_batch("VAE", y, self.in_dim)
        if z is None:
            z = self.encode(flat)[0]
        return self.reconstruction_energy(flat, z)

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf, *,
                    num_samples: int = 1, generator: torch.Generator | None = None,
                    **kwargs: object) -> Tensor:
        """β = ∞: E(y, μ(y)) (the posterior mean as the minimiser). β = 1: the variational
        free energy −ELBO(y) ≥ −log p(y) (``num_samples`` reparameterised samples)."""
        beta = _check_beta(beta)
        if math.isinf(beta):
            return self.energy(y, x=x)
        if beta != 1.0:
            raise ValueError(f"VAE.free_energy is defined for beta=inf (posterior mean) and beta=1 "
                             f"(−ELBO), got beta={beta}")
        return -self.elbo(y, generator, num_samples=num_samples)

    def initial_latent(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            return self.encode(y)[0]

    def sample_latent(self, num_samples: int, batch_size: int,
                      generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z) = N(0, I): (num_samples, batch_size, latent_dim)."""
        param = next(self.parameters())
        device = generator.device if generator is not None else param.device
        return torch.randn(num_samples, batch_size, self.latent_dim, generator=generator,
                           dtype=param.dtype, device=device).to(param.device)

    # ------------------------------------------------------------------ objective
    def _terms(self, y: Tensor, generator: torch.Generator | None,
               num_samples: int) -> tuple[Tensor, Tensor]:
        """(E_q[−log p(y | z)] estimated with ``num_samples`` samples, KL), each (B,)."""
        flat = flat_batch("VAE", y, self.in_dim)
        mu, logvar = self.encode(flat)
        recon = torch.stack([self.reconstruction_energy(flat, reparameterize(mu, logvar, generator))
                             for _ in range(num_samples)]).mean(0)
        return recon, kl_divergence(mu, logvar)

    def elbo(self, y: Tensor, generator: torch.Generator | None = None, *, num_samples: int = 1) -> Tensor:
        """ELBO(y) = E_q[log p(y | z)] − KL(q ‖ p) per sample, (B,) (weight 1: the true bound)."""
        recon, kl = self._terms(y, generator, num_samples)
        const = 0.5 * self.in_dim * math.log(math.pi) if self.likelihood == "gaussian" else 0.0
        return -recon - kl - const

    def loss(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """β-VAE training loss: mean over the batch of E_q[−log p(y|z)] + kl_weight · KL."""
        recon, kl = self._terms(y, generator, 1)
        return (recon + self.kl_weight * kl).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples from the model: the decoder mean at z ~ N(0, I), (n, in_dim)."""
        return self.decode(self.sample_latent(1, n, generator)[0])

    @torch.no_grad()
    def reconstruct(self, y: Tensor) -> Tensor:
        """Dec(μ(y)) in the shape of y."""
        return self.decode(self.encode(y)[0]).reshape(y.shape)
