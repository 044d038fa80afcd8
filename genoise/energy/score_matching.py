"""Score matching: fit an unnormalised density p(y) ∝ exp(−E(y)) without its partition function.

The model score is s(y) = ∇_y log p(y) = −∇_y E(y); it does not involve Z, so matching it to
the data score trains the energy with no contrastive samples at all. Four objectives:

* :func:`explicit_score_matching_loss` — Hyvärinen (2005), exact Hessian trace (small D);
* :func:`sliced_score_matching_loss` — Song, Garg, Shi & Ermon (2019), random projections;
* :func:`denoising_score_matching_loss` — Vincent (2011), the score of a noisy data density;
* :func:`ratio_matching_loss` — Hyvärinen (2007), the discrete analogue for binary y.

Every function takes ``energy``, any callable ``fn(y) -> (B,)`` (an unconditional
:class:`~genoise.energy.Energy` is one; for a latent-variable model pass
``lambda y: model.free_energy(y, beta=1.0)``), data ``y`` of shape (B, *shape) whose trailing
dimensions are flattened into D features for the norms and traces, and ``reduction`` in
{"mean", "sum", "none"} ("none" returns (B,)). The losses keep the autograd graph
(``create_graph=True``), so they are differentiable w.r.t. the energy's parameters.

The energy of a sample must depend on that sample only (no batch normalisation in training
mode): gradients of the summed energy are then per-sample gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_int, check_positive
from genoise.energy.base import check_energy_output
from genoise.energy.losses import _REDUCTIONS, _reduce
from genoise.energy.minimize import EnergyFn, draw_noise

__all__ = ["denoising_score_matching_loss", "explicit_score_matching_loss", "ratio_matching_loss",
           "sliced_score_matching_loss"]

_PROJECTIONS = ("rademacher", "gaussian")


# --------------------------------------------------------------------- helpers
def _check_data(owner: str, y: Tensor, *, floating: bool = True) -> int:
    """Validate data (B, *shape) with B >= 1 and return D = prod(shape)."""
    if not isinstance(y, Tensor):
        raise ValueError(f"{owner}: y must be a tensor (B, *shape), got {type(y).__name__}")
    if y.ndim < 2:
        raise ValueError(f"{owner}: y must be (B, *shape) with a feature dimension, got shape "
                         f"{tuple(y.shape)}; for scalar data use y[:, None]")
    if y.shape[0] == 0 or y[0].numel() == 0:
        raise ValueError(f"{owner}: y is empty, shape {tuple(y.shape)}")
    if floating and not y.is_floating_point():
        raise ValueError(f"{owner}: y must be a floating-point tensor, got dtype {y.dtype}")
    check_finite("y", y)
    return y[0].numel()


def _requires_grad(y: Tensor) -> Tensor:
    """``y`` as a tensor that autograd can differentiate with respect to (a detached leaf
    unless it already carries a graph, which is then kept)."""
    return y if y.requires_grad else y.detach().requires_grad_(True)


def _energy(owner: str, energy: EnergyFn, y: Tensor) -> Tensor:
    return check_energy_output(f"{owner}: energy", energy(y), y.shape[0], y=y)


def _grad(outputs: Tensor, y: Tensor) -> Tensor:
    """∂(Σ outputs)/∂y with the graph kept; zeros where ``outputs`` does not depend on ``y``.

    Because each sample's energy depends on its own row only, the gradient of the sum is
    the per-sample gradient, row by row.
    """
    if not outputs.requires_grad:
        return torch.zeros_like(y)
    (grad,) = torch.autograd.grad(outputs.sum(), y, create_graph=True, allow_unused=True)
    return torch.zeros_like(y) if grad is None else grad


def _flat_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product of (N, *shape) tensors: (N,)."""
    return (a * b).flatten(1).sum(1)


# --------------------------------------------------------------------- continuous y
def explicit_score_matching_loss(energy: EnergyFn, y: Tensor, *, max_dim: int = 64,
                                 curvature_weight: float = 0.0, reduction: str = "mean") -> Tensor:
    """Explicit (Hyvärinen) score matching with the exact Hessian trace.

    Hyvärinen, "Estimation of non-normalized statistical models by score matching",
    JMLR 6 (2005), Theorem 1: up to a constant, E_data ½‖s(y) − ∇log p_data(y)‖² equals

        J(y) = ½ ‖∇_y E(y)‖² − tr ∇²_y E(y)    (= ½‖s‖² + tr ∇s,  s = −∇E),

    averaged over the data. The trace costs one extra backward pass per dimension, so D is
    limited to ``max_dim``; for larger D use :func:`sliced_score_matching_loss` (or
    :func:`denoising_score_matching_loss`).

    On data concentrated near a low-dimensional set (2-D toys, images) the objective is
    unbounded below for a flexible energy: ever sharper valleys make −tr ∇²E arbitrarily
    negative. Kingma & LeCun, "Regularized estimation of image statistics by score
    matching" (NeurIPS 2010), add the curvature penalty λ Σ_i (∂²E/∂y_i²)², here
    ``curvature_weight`` = λ (0 = Hyvärinen's objective).

    Parameters
    ----------
    energy : callable ``fn(y) -> (B,)``
    y : Tensor (B, *shape)
        Data; D = prod(shape) features.
    max_dim : int
        The largest D accepted (default 64).
    curvature_weight : float
        λ ≥ 0 of the Kingma–LeCun penalty λ Σ_i (∂²E/∂y_i²)².
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        The loss (scalar, or (B,) for ``reduction="none"``).
    """
    owner = "explicit_score_matching_loss"
    dim = _check_data(owner, y)
    check_int("max_dim", max_dim)
    check_positive("curvature_weight", curvature_weight, allow_zero=True)
    check_choice("reduction", reduction, _REDUCTIONS)
    if dim > max_dim:
        raise ValueError(f"{owner}: D = {dim} exceeds max_dim = {max_dim} (the exact Hessian trace "
                         "needs one backward pass per dimension); use sliced_score_matching_loss "
                         "or raise max_dim")
    batch = y.shape[0]
    with torch.enable_grad():
        y = _requires_grad(y)
        grad = _grad(_energy(owner, energy, y), y).reshape(batch, dim)
        # One backward pass per dimension i gives row i of the Hessian; keep its diagonal entry.
        diagonal = torch.stack([_grad(grad[:, i], y).reshape(batch, dim)[:, i] for i in range(dim)], dim=1)
    loss = 0.5 * grad.square().sum(1) - diagonal.sum(1)
    if curvature_weight:
        loss = loss + curvature_weight * diagonal.square().sum(1)
    return _reduce(loss, reduction)


def _projections(y: Tensor, generator: torch.Generator | None, num_projections: int,
                 projection: str, directions: Tensor | None) -> Tensor:
    """The projection vectors v, one per row of ``y`` repeated M times: (M·B, *shape), row
    m·B + b belonging to sample b."""
    batch = y.shape[0]
    if directions is None:
        return draw_noise((num_projections * batch, *y.shape[1:]), y, generator, projection)
    if not isinstance(directions, Tensor) or directions.shape[1:] != y.shape[1:] or directions.shape[0] < 1:
        got = tuple(directions.shape) if isinstance(directions, Tensor) else type(directions).__name__
        raise ValueError(f"directions must be (M, {', '.join(map(str, y.shape[1:]))}) with M >= 1 to "
                         f"match y {tuple(y.shape)}, got {got}")
    check_finite("directions", directions)
    return directions.to(y).repeat_interleave(batch, dim=0)


def sliced_score_matching_loss(energy: EnergyFn, y: Tensor, generator: torch.Generator | None = None, *,
                               num_projections: int = 1, projection: str = "rademacher",
                               variance_reduction: bool = False, directions: Tensor | None = None,
                               curvature_weight: float = 0.0, reduction: str = "mean") -> Tensor:
    """Sliced score matching: the score-matching objective along random directions v.

    Song, Garg, Shi & Ermon, "Sliced Score Matching: A Scalable Approach to Density and
    Score Estimation", UAI 2019, eqs. (7)-(8). With s = −∇E and E[vvᵀ] = I,

        J(y) = E_v[ vᵀ∇s(y) v + ½ (vᵀ s(y))² ] = E_v[ ½ (vᵀ∇E)² − vᵀ ∇²E v ],
        SSM-VR:  J(y) = E_v[ vᵀ∇s(y) v ] + ½ ‖s(y)‖² = E_v[ ½ ‖∇E‖² − vᵀ ∇²E v ],

    both unbiased for :func:`explicit_score_matching_loss` (``curvature_weight`` λ adds
    λ (vᵀ∇²E v)², our sliced analogue of the Kingma–LeCun penalty, 0 by default); the variance-reduced form
    integrates the second term analytically. vᵀ∇²E v is a Hessian-vector product by double
    backpropagation; all M projections of all B samples go through the energy in one batch
    of M·B rows, and the per-sample loss is their mean over the M projections.

    Parameters
    ----------
    energy : callable ``fn(y) -> (B,)``
    y : Tensor (B, *shape)
    generator : torch.Generator, optional
        Drives the random projections.
    num_projections : int
        M >= 1, projections per sample.
    projection : {"rademacher", "gaussian"}
        v with independent ±1 entries, or v ~ N(0, I).
    variance_reduction : bool
        Use SSM-VR.
    curvature_weight : float
        λ ≥ 0 of the penalty λ (vᵀ∇²E v)² (see :func:`explicit_score_matching_loss`).
    directions : Tensor (M, *shape), optional
        Fixed directions used for every sample instead of random ones (``generator``,
        ``num_projections`` and ``projection`` are then unused); e.g. all 2^D Rademacher
        vectors give the exact expectation, which equals the explicit objective.
    reduction : {"mean", "sum", "none"}
    """
    owner = "sliced_score_matching_loss"
    _check_data(owner, y)
    num_projections = check_int("num_projections", num_projections, min=1)
    check_choice("projection", projection, _PROJECTIONS)
    check_choice("reduction", reduction, _REDUCTIONS)
    check_positive("curvature_weight", curvature_weight, allow_zero=True)
    v = _projections(y, generator, num_projections, projection, directions)
    repeats = v.shape[0] // y.shape[0]
    with torch.enable_grad():
        y_rep = _requires_grad(y.repeat(repeats, *[1] * (y.ndim - 1)))
        grad = _grad(_energy(owner, energy, y_rep), y_rep)
        grad_along_v = _flat_dot(grad, v)
        curvature = _flat_dot(v, _grad(grad_along_v, y_rep))  # vᵀ ∇²E v
    first = 0.5 * grad.square().flatten(1).sum(1) if variance_reduction else 0.5 * grad_along_v.square()
    per_projection = first - curvature + curvature_weight * curvature.square()
    per_sample = per_projection.reshape(repeats, y.shape[0]).mean(0)
    return _reduce(per_sample, reduction)


def denoising_score_matching_loss(energy: EnergyFn, y: Tensor, sigma: float,
                                  generator: torch.Generator | None = None, *,
                                  reduction: str = "mean") -> Tensor:
    """Denoising score matching with Gaussian noise of standard deviation σ.

    Vincent, "A Connection Between Score Matching and Denoising Autoencoders", Neural
    Computation 23(7), 2011: matching the score of the noisy density q_σ(ỹ) = ∫ N(ỹ; y, σ²I)
    p_data(y) dy equals, up to a constant, regressing s(ỹ) on ∇log q(ỹ | y) = −ε/σ. With
    ỹ = y + σε, ε ~ N(0, I), and the weight σ² of Song & Ermon (2019) that makes the loss
    O(1) for every σ,

        L(y) = ½ ‖σ ∇_ỹ E(ỹ) − ε‖²    (= σ² · ½ ‖s(ỹ) + ε/σ‖²).

    The minimiser is the score of q_σ, not of p_data: for Gaussian data N(m, Σ) and a
    quadratic energy it is ½(y − m)ᵀ(Σ + σ²I)⁻¹(y − m). This is the ``denoising`` step of
    :mod:`genoise.recipes.landscapes` (the same noise for the same generator state).

    Parameters
    ----------
    energy : callable ``fn(y) -> (B,)``
    y : Tensor (B, *shape)
    sigma : float
        σ > 0, the noise level.
    generator : torch.Generator, optional
        Drives the noise ε.
    reduction : {"mean", "sum", "none"}
    """
    owner = "denoising_score_matching_loss"
    _check_data(owner, y)
    sigma = check_positive("sigma", sigma)
    check_choice("reduction", reduction, _REDUCTIONS)
    noise = draw_noise(tuple(y.shape), y, generator, "gaussian")
    with torch.enable_grad():
        y_tilde = _requires_grad(y + sigma * noise)
        grad = _grad(_energy(owner, energy, y_tilde), y_tilde)
    return _reduce(0.5 * (sigma * grad - noise).square().flatten(1).sum(1), reduction)


# --------------------------------------------------------------------- binary y
def _check_binary(owner: str, y: Tensor) -> None:
    is_binary = (y == 0) | (y == 1)
    if not bool(is_binary.all()):
        bad = y[~is_binary]
        raise ValueError(f"{owner} needs binary y with values in {{0, 1}}; got {bad.numel()} other "
                         f"value(s), e.g. {bad.flatten()[0].item()}")


def ratio_matching_loss(energy: EnergyFn, y: Tensor, *, reduction: str = "mean") -> Tensor:
    """Ratio matching for binary data y ∈ {0, 1}^D.

    Hyvärinen, "Some extensions of score matching", Computational Statistics & Data
    Analysis 51(5), 2007, §3: match the ratios p(y)/p(y^¬i), where y^¬i is y with bit i
    flipped. With g(u) = 1/(1 + u) the objective is, up to a constant,

        J(y) = Σ_i g(p(y)/p(y^¬i))² = Σ_i σ(E(y) − E(y^¬i))²,

    since p(y)/p(y^¬i) = exp(E(y^¬i) − E(y)) and g(exp(−d)) = σ(d). Z cancels in every
    ratio. The B data points and their B·D one-bit flips are scored in a single call of
    ``energy`` (B·(D + 1) rows; memory O(B·D²)).

    Parameters
    ----------
    energy : callable ``fn(y) -> (B,)``
    y : Tensor (B, *shape)
        Binary data, any dtype (integer and bool are converted to the default float dtype).
    reduction : {"mean", "sum", "none"}
    """
    owner = "ratio_matching_loss"
    dim = _check_data(owner, y, floating=False)
    check_choice("reduction", reduction, _REDUCTIONS)
    _check_binary(owner, y)
    batch = y.shape[0]
    flat = y.reshape(batch, dim).to(y.dtype if y.is_floating_point() else torch.get_default_dtype())
    copies = flat.unsqueeze(1).expand(batch, dim, dim)
    flip = torch.eye(dim, dtype=torch.bool, device=y.device)  # copy i of each sample flips bit i
    flipped = torch.where(flip, 1 - copies, copies).reshape(batch * dim, dim)
    rows = torch.cat([flat, flipped]).reshape(batch * (dim + 1), *y.shape[1:])
    energies = _energy(owner, energy, rows)
    gap = energies[:batch, None] - energies[batch:].reshape(batch, dim)  # E(y) − E(y^¬i)
    return _reduce(torch.sigmoid(gap).square().sum(1), reduction)
