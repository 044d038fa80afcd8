"""Information-maximisation losses: VICReg and Barlow Twins.

Both prevent collapse by regularising the *statistics* of a batch of embeddings
(no negatives, no teacher): VICReg keeps every dimension's standard deviation above
γ and decorrelates dimensions; Barlow Twins drives the cross-correlation matrix of
the two views to the identity. Both need the whole (global) batch: the modules gather
the embeddings across ranks (with gradients) before calling the functional loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_embedding, check_positive, check_views
from genoise.ssl.base import SSLMethod, SSLOutput, gather


def invariance_loss(z_a: Tensor, z_b: Tensor) -> Tensor:
    """Mean squared distance between the two views' embeddings:
    s(Z, Z') = (1 / (B·D)) Σ_b ‖z_b − z'_b‖² (VICReg, Bardes et al. 2022, eq. 5).

    z_a, z_b: (B, D).
    """
    check_views(z_a, z_b, min_batch=1)
    return F.mse_loss(z_a, z_b)


def variance_loss(z: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """Hinge on the per-dimension standard deviation (VICReg eq. 1):
    v(Z) = (1/D) Σ_j max(0, γ − sqrt(Var(z_j) + ε)), unbiased variance over the batch.

    Zero whenever every dimension has std ≥ γ. z: (B, D) with B ≥ 2.
    """
    check_embedding("z", z)
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_loss(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances divided by D (VICReg eq. 3):
    C(Z) = (1/(B−1)) Σ_b (z_b − z̄)(z_b − z̄)ᵀ,   c(Z) = (1/D) Σ_{i≠j} C(Z)_{ij}².

    Computed as (‖C‖_F² − Σ_i C_ii²)/D with ‖ZᵀZ‖_F = ‖ZZᵀ‖_F, so the Gram matrix is
    min(B, D)² (B×B when the batch is smaller than the embedding). z: (B, D), B ≥ 2.
    """
    check_embedding("z", z)
    batch, dim = z.shape
    centred = z - z.mean(dim=0)
    gram = centred @ centred.T if batch < dim else centred.T @ centred
    frobenius = gram.square().sum() / (batch - 1) ** 2
    diagonal = (centred.square().sum(dim=0) / (batch - 1)).square().sum()
    return (frobenius - diagonal) / dim


def vicreg_loss(z_a: Tensor, z_b: Tensor, *, sim_weight: float = 25.0, var_weight: float = 25.0,
                cov_weight: float = 1.0, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """VICReg: λ·s(Z, Z') + μ·[v(Z) + v(Z')]/2 + ν·[c(Z) + c(Z')].

    Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning", ICLR 2022 (defaults λ = μ = 25, ν = 1, γ = 1, ε = 1e-4,
    as in the reference implementation facebookresearch/vicreg, which averages the
    variance term and sums the covariance term over the two branches).

    z_a, z_b: (B, D), B ≥ 2. Returns a scalar.
    """
    check_views(z_a, z_b)
    for name, value in (("sim_weight", sim_weight), ("var_weight", var_weight), ("cov_weight", cov_weight)):
        check_positive(name, value, allow_zero=True)
    return (sim_weight * invariance_loss(z_a, z_b)
            + var_weight * 0.5 * (variance_loss(z_a, gamma, eps) + variance_loss(z_b, gamma, eps))
            + cov_weight * (covariance_loss(z_a) + covariance_loss(z_b)))


def cross_correlation(z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """Cross-correlation of batch-standardised embeddings: C_ij = (1/B) Σ_b ẑ_bi ẑ'_bj,
    with ẑ = (z − mean) / sqrt(biased var + eps) (a BatchNorm without affine). (D, D)."""
    check_views(z_a, z_b)
    a = (z_a - z_a.mean(0)) / torch.sqrt(z_a.var(0, unbiased=False) + eps)
    b = (z_b - z_b.mean(0)) / torch.sqrt(z_b.var(0, unbiased=False) + eps)
    return a.T @ b / z_a.shape[0]


def barlow_twins_loss(z_a: Tensor, z_b: Tensor, *, lambda_offdiag: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """Barlow Twins: L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², C the cross-correlation of the
    batch-standardised views (see :func:`cross_correlation`).

    Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via
    Redundancy Reduction", ICML 2021 (λ = 5·10⁻³). Zero exactly when C = I.

    z_a, z_b: (B, D), B ≥ 2. Returns a scalar.
    """
    check_positive("lambda_offdiag", lambda_offdiag, allow_zero=True)
    c = cross_correlation(z_a, z_b, eps)
    diagonal = torch.diagonal(c)
    on = (1.0 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on + lambda_offdiag * off


class VICReg(SSLMethod):
    """VICReg: backbone → 3-layer expander (8192-8192-8192 in the paper; 2048 by default
    here) → :func:`vicreg_loss` (25 / 25 / 1) on the embeddings gathered over ranks."""

    name = "vicreg"

    def __init__(self, backbone: nn.Module, *, sim_weight: float = 25.0, var_weight: float = 25.0,
                 cov_weight: float = 1.0, proj_hidden: int = 2048, proj_dim: int = 2048, proj_layers: int = 3,
                 **kw) -> None:
        super().__init__(backbone, proj_hidden=proj_hidden, proj_dim=proj_dim, proj_layers=proj_layers, **kw)
        self.weights = dict(sim_weight=sim_weight, var_weight=var_weight, cov_weight=cov_weight)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        a, b = gather(z_a), gather(z_b)
        loss = vicreg_loss(a, b, **self.weights)
        return self.output(loss, h, z_a)


class BarlowTwins(SSLMethod):
    """Barlow Twins: backbone → 3-layer projector (8192 wide in the paper; 2048 here) →
    :func:`barlow_twins_loss` (λ = 5e-3) on the embeddings gathered over ranks."""

    name = "barlowtwins"

    def __init__(self, backbone: nn.Module, *, lambda_offdiag: float = 5e-3, proj_hidden: int = 2048,
                 proj_dim: int = 2048, proj_layers: int = 3, **kw) -> None:
        super().__init__(backbone, proj_hidden=proj_hidden, proj_dim=proj_dim, proj_layers=proj_layers, **kw)
        self.lambda_offdiag = lambda_offdiag

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        loss = barlow_twins_loss(gather(z_a), gather(z_b), lambda_offdiag=self.lambda_offdiag)
        return self.output(loss, h, z_a)
