"""Stateless energy arithmetic: free energies from energies, the Gibbs distribution.

Notation follows LeCun et al., "A Tutorial on Energy-Based Learning" (2006):

    P(y | x) = exp(-β F(x, y)) / Σ_{y'} exp(-β F(x, y'))                     (Gibbs)
    F_β(x, y) = -(1/β) log Σ_z exp(-β E(x, y, z)),    F_∞(x, y) = min_z E(x, y, z)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genoise._checks import check_ndim, has_nan


def _check_no_nan(name: str, tensor: Tensor) -> Tensor:
    """NaN energies raise, as in the losses; +inf (an impossible answer) is allowed."""
    if has_nan(tensor):
        raise ValueError(f"{name} contains {int(torch.isnan(tensor).sum())} NaN value(s)")
    return tensor


def _check_beta(beta: float) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or math.isnan(beta) or beta <= 0:
        raise ValueError(f"beta must be a number > 0 (math.inf for the minimum), got {beta!r}")
    return float(beta)


def free_energy_from_energies(energies: Tensor, beta: float = math.inf, *,
                              mean: bool = False) -> Tensor:
    """Marginalise the last dimension of ``energies`` (B, K) into a free energy (B,).

    β = ∞:  F = min_k E_k.
    β < ∞:  F = -(1/β) log Σ_k exp(-β E_k)            (exact, discrete latent set)
            F = -(1/β) log (1/K) Σ_k exp(-β E_k)      (``mean=True``: Monte-Carlo estimate
            of -(1/β) log ∫ exp(-β E(z)) dq(z) from K samples z_k ~ q).
    """
    beta = _check_beta(beta)
    check_ndim("energies", energies, 2)
    _check_no_nan("energies", energies)
    if energies.shape[-1] == 0:
        raise ValueError("energies has an empty latent dimension (K = 0)")
    if math.isinf(beta):
        return energies.min(dim=-1).values
    log_sum = torch.logsumexp(-beta * energies, dim=-1)
    if mean:
        log_sum = log_sum - math.log(energies.shape[-1])
    return -log_sum / beta


def gibbs(free_energies: Tensor, beta: float = 1.0, dim: int = -1) -> Tensor:
    """Gibbs distribution P(y | x) = exp(-β F(x, y)) / Σ_{y'} exp(-β F(x, y')) along ``dim``.

    ``free_energies`` holds F(x, y') for every answer y' (e.g. shape (B, K)). β = ∞ gives
    the one-hot distribution on the argmin (ties share the mass). NaN energies raise
    ``ValueError`` (as the losses do); +inf is an impossible answer (probability 0).
    """
    beta = _check_beta(beta)
    _check_no_nan("free_energies", free_energies)
    if math.isinf(beta):
        is_min = free_energies == free_energies.amin(dim=dim, keepdim=True)
        return is_min.to(free_energies.dtype) / is_min.sum(dim=dim, keepdim=True)
    return torch.softmax(-beta * free_energies, dim=dim)


def log_partition(free_energies: Tensor, beta: float = 1.0, dim: int = -1) -> Tensor:
    """(1/β) log Σ_{y'} exp(-β F(x, y')): the term the NLL loss adds to F(x, y)."""
    beta = _check_beta(beta)
    _check_no_nan("free_energies", free_energies)
    if math.isinf(beta):
        return -free_energies.amin(dim=dim)
    return torch.logsumexp(-beta * free_energies, dim=dim) / beta
