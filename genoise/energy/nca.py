"""Neighbourhood Components Analysis as an energy-based group loss.

Goldberger, Roweis, Hinton & Salakhutdinov, "Neighbourhood Components Analysis", NIPS 17
(2004). Every sample i picks a neighbour j ≠ i with the Gibbs distribution of the pair
energies E_ij = ‖f_i − f_j‖² / τ,

    p_ij = exp(−E_ij) / Σ_{k≠i} exp(−E_ik),        p_i = Σ_{j≠i: c_j = c_i} p_ij,

and is classified correctly with probability p_i. The loss pushes down the energies of
same-class pairs and up those of the others, like the group (NLL) loss of LeCun et al.
(2006) with all same-class answers counted as correct.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_ndim, check_positive
from genoise.energy.losses import _REDUCTIONS, _reduce

__all__ = ["nca_loss", "pair_energies"]

_OBJECTIVES = ("log", "expected")


def _check_labels(labels: Tensor, batch: int) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(f"labels must be an integer tensor (B,), got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be an integer tensor (B,), got dtype {labels.dtype}")
    if tuple(labels.shape) != (batch,):
        raise ValueError(f"labels must have shape (B,) = ({batch},) to match embeddings, "
                         f"got {tuple(labels.shape)}")
    return labels


def _check_embeddings(embeddings: Tensor) -> Tensor:
    if not isinstance(embeddings, Tensor) or not embeddings.is_floating_point():
        got = embeddings.dtype if isinstance(embeddings, Tensor) else type(embeddings).__name__
        raise ValueError(f"embeddings must be a floating-point tensor (B, D), got {got}")
    check_ndim("embeddings", embeddings, 2)
    if embeddings.shape[0] < 2:
        raise ValueError(f"embeddings has batch size {embeddings.shape[0]}; NCA needs at least 2 "
                         "samples (each sample picks a neighbour among the others)")
    return check_finite("embeddings", embeddings)


def pair_energies(embeddings: Tensor, temperature: float = 1.0) -> Tensor:
    """E_ij = ‖f_i − f_j‖² / τ for all pairs, (B, B), with +inf on the diagonal (self excluded).

    Distances are computed from the differences f_i − f_j (not from ‖f_i‖² + ‖f_j‖² − 2f_iᵀf_j,
    which cancels catastrophically for embeddings far from the origin), in O(B²) memory.
    """
    distances = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    energies = distances.square() / temperature
    eye = torch.eye(energies.shape[0], dtype=torch.bool, device=energies.device)
    return energies.masked_fill(eye, math.inf)


def nca_loss(embeddings: Tensor, labels: Tensor, *, temperature: float = 1.0, objective: str = "log",
             reduction: str = "mean") -> Tensor:
    """NCA loss of a batch of embeddings with class labels.

    With the pair energies E_ij of :func:`pair_energies` and p_i the probability that
    sample i picks a same-class neighbour (module docstring),

        objective "log":       L_i = −log p_i
                                   = −( logsumexp_{j≠i: c_j = c_i} (−E_ij) − logsumexp_{j≠i} (−E_ij) ),
        objective "expected":  L_i = −p_i   (the original paper maximises Σ_i p_i).

    The log form is evaluated with log-sum-exp, so it stays finite for far-apart embeddings.
    A sample whose class has no other member in the batch has no p_i: it is excluded from
    the reduction (it still serves as a neighbour of the others).

    Parameters
    ----------
    embeddings : Tensor (B, D)
        f_i, floating point, B >= 2.
    labels : Tensor (B,)
        Integer class labels c_i.
    temperature : float
        τ > 0.
    objective : {"log", "expected"}
    reduction : {"mean", "sum", "none"}
        "mean" and "sum" run over the samples that have a same-class neighbour; "none"
        returns (B,) with NaN at the excluded samples (reduce with ``torch.nanmean``).

    Raises
    ------
    ValueError
        On bad input, or when no sample has a same-class neighbour in the batch.

    Examples
    --------
    >>> import torch
    >>> f = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1]])
    >>> loss = nca_loss(f, torch.tensor([0, 0, 1, 1]))
    >>> bool(loss < 1e-6)
    True
    """
    _check_embeddings(embeddings)
    _check_labels(labels, embeddings.shape[0])
    temperature = check_positive("temperature", temperature)
    check_choice("objective", objective, _OBJECTIVES)
    check_choice("reduction", reduction, _REDUCTIONS)
    same_class = labels[:, None] == labels[None, :]
    same_class.fill_diagonal_(False)
    has_neighbour = same_class.any(dim=1)
    if not bool(has_neighbour.any()):
        raise ValueError(f"no sample has a same-class neighbour in the batch (all {labels.numel()} "
                         "labels distinct); NCA needs at least two samples of one class")
    # Only rows with a neighbour: a row of all −inf would give NaN gradients in logsumexp.
    logits = -pair_energies(embeddings, temperature)[has_neighbour]
    same_class = same_class[has_neighbour]
    log_p = (logits.masked_fill(~same_class, -math.inf).logsumexp(dim=1) - logits.logsumexp(dim=1))
    per_sample = -log_p if objective == "log" else -log_p.exp()
    if reduction != "none":
        return _reduce(per_sample, reduction)
    out = per_sample.new_full((embeddings.shape[0],), math.nan)
    out[has_neighbour] = per_sample
    return out
