"""Small lasso problems and independent references shared by the certified-solver tests."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import Lasso

from genoise.latent.ista import duality_gap, sparse_coding_objective


def problem(seed: int, n_features: int = 20, n_atoms: int = 30, batch: int = 12,
            dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (batch, D), W_d (D, K)) with unit-norm Gaussian atoms."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(torch.randn(n_features, n_atoms, generator=gen, dtype=dtype), dim=0)
    y = torch.randn(batch, n_features, generator=gen, dtype=dtype)
    return y, w


def correlated(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (50, 30), W_d (30, 60)): atoms sharing one common direction, so G = W_dᵀW_d is
    ill-conditioned (global L ≫ the curvature on a code's support)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(30, 1, generator=gen, dtype=torch.float64)
    noise = torch.randn(30, 60, generator=gen, dtype=torch.float64)
    w = torch.nn.functional.normalize(base + 0.5 * noise, dim=0)
    return torch.randn(50, 30, generator=gen, dtype=torch.float64), w


def gap(y, w, z, lam, positive=False):
    """(primal, duality gap) per row, in float64."""
    y, w, z = y.double(), w.double(), z.double()
    gram = w.T @ w
    return duality_gap(y.pow(2).sum(1), y @ w, z, z @ gram, lam, positive)


def sklearn_objective(y, w, lam, positive=False):
    """The lasso objective per row at scikit-learn's ``Lasso`` solution (tol 1e-12)."""
    codes = [
        Lasso(alpha=lam / w.shape[0], fit_intercept=False, tol=1e-12, max_iter=200000, positive=positive)
        .fit(w.double().numpy(), row.double().numpy())
        .coef_
        for row in y
    ]
    return sparse_coding_objective(y.double(), w.double(), torch.from_numpy(np.array(codes)), lam)
