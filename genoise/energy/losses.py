"""The energy-based loss table: pure functions of energies, ``torch.nn.functional`` style.

LeCun, Chopra, Hadsell, Ranzato & Huang, "A Tutorial on Energy-Based Learning" (2006),
Table 1 (written out in ``LOSSES.md``). Every loss takes

* ``energy_correct`` (B,): F(x, y), the (free) energy of the correct answer;
* ``energy_contrastive`` (B,) or (B, K): energies of incorrect answers. A (B,) tensor is
  the most offending incorrect answer ŷ; for (B, K) the losses that need only ŷ use
  F(x, ŷ) = min_k F(x, ŷ_k), the others (NLL, MEE, general margin, InfoNCE, NCE) use
  all K answers;
* ``reduction``: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (returns (B,)).

A contrastive energy of +inf marks an excluded answer (it contributes nothing); NaN is
rejected. For discrete answers scored all at once, :func:`split_energies` turns
energies (B, K) and targets (B,) into the two arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F_
from torch import Tensor

from genoise._checks import check_choice, check_positive, has_nan

_REDUCTIONS = ("mean", "sum", "none")

MarginFn = Callable[[Tensor, Tensor, Tensor | float], Tensor]


# --------------------------------------------------------------------- helpers
def _check_energy(name: str, tensor: Tensor, ndims: tuple[int, ...]) -> None:
    if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {type(tensor).__name__}"
                         + (f" of dtype {tensor.dtype}" if isinstance(tensor, Tensor) else ""))
    if tensor.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(tensor.shape)}")
    if has_nan(tensor):
        raise ValueError(f"{name} contains {int(torch.isnan(tensor).sum())} NaN value(s)")


def _check_pair(energy_correct: Tensor, energy_contrastive: Tensor) -> Tensor:
    """Validate the pair and return the contrastive energies as (B, K)."""
    _check_energy("energy_correct", energy_correct, (1,))
    _check_energy("energy_contrastive", energy_contrastive, (1, 2))
    contrastive = energy_contrastive if energy_contrastive.ndim == 2 else energy_contrastive[:, None]
    if contrastive.shape[0] != energy_correct.shape[0]:
        raise ValueError(f"batch sizes differ: energy_correct {tuple(energy_correct.shape)}, "
                         f"energy_contrastive {tuple(energy_contrastive.shape)}")
    if contrastive.shape[1] == 0:
        raise ValueError(f"energy_contrastive has no answers, shape {tuple(energy_contrastive.shape)}")
    return contrastive


def _hardest(energy_correct: Tensor, energy_contrastive: Tensor) -> Tensor:
    """F(x, ŷ) (B,): the most offending contrastive energy (min over K)."""
    return _check_pair(energy_correct, energy_contrastive).amin(dim=1)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    check_choice("reduction", reduction, _REDUCTIONS)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class MostOffending(NamedTuple):
    """The most offending incorrect answer: its energy (B,) and its index (B,)."""

    energy: Tensor
    index: Tensor


def split_energies(energies: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Split energies of all K discrete answers into (correct (B,), incorrect (B, K−1)).

    ``energies[b, target[b]]`` is F(x_b, y_b); the other K−1 columns keep their order.
    """
    _check_energy("energies", energies, (2,))
    if target.ndim != 1 or target.shape[0] != energies.shape[0] or target.is_floating_point():
        raise ValueError(f"target must be an integer tensor (B,) matching energies (B, K); "
                         f"got target {tuple(target.shape)} {target.dtype}, energies {tuple(energies.shape)}")
    batch, k = energies.shape
    if k < 2:
        raise ValueError(f"energies needs at least 2 answers (K >= 2), got shape {tuple(energies.shape)}")
    if batch and (int(target.min()) < 0 or int(target.max()) >= k):
        raise ValueError(f"target values must lie in [0, {k - 1}], got range "
                         f"[{int(target.min())}, {int(target.max())}]")
    is_correct = F_.one_hot(target, k).bool()
    correct = energies.gather(1, target[:, None]).squeeze(1)
    incorrect = energies[~is_correct].reshape(batch, k - 1)
    return correct, incorrect


def most_offending(energies: Tensor, target: Tensor) -> MostOffending:
    """ŷ = argmin_{ŷ ≠ y} F(x, ŷ) over K discrete answers: energy (B,) and index (B,) into K."""
    split_energies(energies, target)  # validation
    masked = energies.scatter(1, target[:, None], math.inf)
    best, index = masked.min(dim=1)
    return MostOffending(best, index)


# --------------------------------------------------------------------- the table
def energy_loss(energy_correct: Tensor, energy_contrastive: Tensor | None = None, *,
                reduction: str = "mean") -> Tensor:
    """Energy loss L = F(x, y) (margin: none; LeCun et al. 2006, §2.2.1).

    Pushes the correct energy down only; collapses unless the architecture prevents it.
    ``energy_contrastive`` is accepted for a uniform signature and only validated.
    """
    if energy_contrastive is None:
        _check_energy("energy_correct", energy_correct, (1,))
    else:
        _check_pair(energy_correct, energy_contrastive)
    return _reduce(energy_correct, reduction)


def perceptron_loss(energy_correct: Tensor, energy_contrastive: Tensor, *,
                    reduction: str = "mean") -> Tensor:
    """Perceptron loss L = F(x, y) − min_{y′∈𝒴} F(x, y′) = [F(x, y) − F(x, ŷ)]⁺ (margin 0).

    The minimum runs over all answers, the correct one included (LeCun et al. 2006, §2.2.2).
    """
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(energy_correct - torch.minimum(energy_correct, hardest), reduction)


def hinge_loss(energy_correct: Tensor, energy_contrastive: Tensor, margin: float = 1.0, *,
               reduction: str = "mean") -> Tensor:
    """Hinge loss L = [m + F(x, y) − F(x, ŷ)]⁺ (margin m; LeCun et al. 2006, §2.2.3)."""
    margin = check_positive("margin", margin)
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(F_.relu(margin + energy_correct - hardest), reduction)


def log_loss(energy_correct: Tensor, energy_contrastive: Tensor, *, reduction: str = "mean") -> Tensor:
    """Log loss L = log(1 + exp(F(x, y) − F(x, ŷ))), a soft hinge (margin > 0, "infinite"
    on the slides; LeCun et al. 2006, §2.2.3). Computed as softplus."""
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(F_.softplus(energy_correct - hardest), reduction)


def lvq2_loss(energy_correct: Tensor, energy_contrastive: Tensor, saturation: float = 1.0, *,
              reduction: str = "mean") -> Tensor:
    """LVQ2 loss L = min(M, [F(x, y) − F(x, ŷ)]⁺) with saturation M (margin 0;
    LeCun et al. 2006, §2.2.4, after Kohonen's LVQ2)."""
    saturation = check_positive("saturation", saturation)
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(F_.relu(energy_correct - hardest).clamp(max=saturation), reduction)


def mce_loss(energy_correct: Tensor, energy_contrastive: Tensor, *, reduction: str = "mean") -> Tensor:
    """Minimum classification error loss L = σ(F(x, y) − F(x, ŷ)) = (1 + exp(−(F(x, y) − F(x, ŷ))))⁻¹
    (margin > 0; LeCun et al. 2006, §2.2.4, after Juang et al. 1997)."""
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(torch.sigmoid(energy_correct - hardest), reduction)


def square_square_loss(energy_correct: Tensor, energy_contrastive: Tensor, margin: float = 1.0, *,
                       reduction: str = "mean") -> Tensor:
    """Square-square loss L = F(x, y)² + ([m − F(x, ŷ)]⁺)² (margin m).

    LeCun et al. 2006, §2.2.3; the pairwise contrastive loss of Chopra, Hadsell & LeCun
    (2005) and Hadsell, Chopra & LeCun (2006, DrLIM). Assumes non-negative energies.
    """
    margin = check_positive("margin", margin)
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(energy_correct.square() + F_.relu(margin - hardest).square(), reduction)


def square_exp_loss(energy_correct: Tensor, energy_contrastive: Tensor, beta: float = 1.0, *,
                    reduction: str = "mean") -> Tensor:
    """Square-exponential loss L = F(x, y)² + β·exp(−F(x, ŷ)) (margin > 0;
    LeCun et al. 2006, §2.2.3, after Osadchy, Miller & LeCun 2005)."""
    beta = check_positive("beta", beta)
    hardest = _hardest(energy_correct, energy_contrastive)
    return _reduce(energy_correct.square() + beta * torch.exp(-hardest), reduction)


def _nll_terms(energy_correct: Tensor, energy_contrastive: Tensor, beta: float) -> Tensor:
    """F(x, y) + (1/β) log(exp(−βF(x, y)) + Σ_k exp(−βF(x, ŷ_k))), per sample (B,)."""
    contrastive = _check_pair(energy_correct, energy_contrastive)
    # Energies relative to F(x, y) keep F(x, y) + (1/β) log Z exact in float32 for large F.
    # With the correct answer's logit −β·0 = 0 in column 0, logsumexp(logits) is the
    # cross-entropy of class 0: the fused log-softmax kernel, forward and backward.
    logits = torch.cat([torch.zeros_like(contrastive[:, :1]),
                        (energy_correct[:, None] - contrastive).mul_(beta)], dim=1)
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F_.cross_entropy(logits, target, reduction="none") / beta


def nll_loss(energy_correct: Tensor, energy_contrastive: Tensor, beta: float = 1.0, *,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood / MMI loss (margin > 0; LeCun et al. 2006, §2.2.5):

        L = F(x, y) + (1/β) log Σ_{y′∈𝒴} exp(−β F(x, y′)) = −(1/β) log P(y | x),

    with 𝒴 = {y} ∪ {ŷ_1 … ŷ_K}: ``energy_contrastive`` holds *all* incorrect answers.
    Its gradient is ∂F(x, y)/∂w − E_{P(y′|x)}[∂F(x, y′)/∂w].
    """
    beta = check_positive("beta", beta)
    return _reduce(_nll_terms(energy_correct, energy_contrastive, beta), reduction)


def mee_loss(energy_correct: Tensor, energy_contrastive: Tensor, beta: float = 1.0, *,
             reduction: str = "mean") -> Tensor:
    """Minimum empirical error loss L = 1 − exp(−βF(x, y)) / Σ_{y′∈𝒴} exp(−βF(x, y′)) = 1 − P(y | x)
    (margin > 0; LeCun et al. 2006, §2.2.5, after Ljolje et al. 1990). Uses all K answers;
    computed as −expm1(−β·NLL)."""
    beta = check_positive("beta", beta)
    return _reduce(-torch.expm1(-beta * _nll_terms(energy_correct, energy_contrastive, beta)), reduction)


def _default_margin_fn(energy_correct: Tensor, energy_contrastive: Tensor, margin: Tensor | float) -> Tensor:
    return F_.relu(energy_correct - energy_contrastive + margin)


def margin_loss(energy_correct: Tensor, energy_contrastive: Tensor, margin: float | Tensor = 1.0, *,
                H: MarginFn | None = None, reduction: str = "mean") -> Tensor:
    """Generalized margin loss over a set of contrastive answers (LeCun et al. 2006, §3):

        L = Σ_k H(F(x, y), F(x, ŷ_k), m(y, ŷ_k)),    default H(a, b, m) = [a − b + m]⁺.

    ``margin`` is a float m > 0 or a (B, K) tensor of per-pair margins m(y, ŷ_k) ≥ 0
    (e.g. a Hamming distance). ``H`` is any elementwise function of (B, 1), (B, K) and
    the margin, increasing in its first argument and decreasing in its second while
    F(x, ŷ) − F(x, y) < m.
    """
    contrastive = _check_pair(energy_correct, energy_contrastive)
    if isinstance(margin, Tensor):
        if margin.shape != contrastive.shape:
            raise ValueError(f"margin tensor must have the shape of energy_contrastive "
                             f"{tuple(contrastive.shape)}, got {tuple(margin.shape)}")
        if has_nan(margin) or bool((margin < 0).any()):
            raise ValueError("margin tensor must be >= 0 and free of NaN")
    else:
        margin = check_positive("margin", margin)
    fn = _default_margin_fn if H is None else H
    per_pair = fn(energy_correct[:, None], contrastive, margin)
    if per_pair.shape != contrastive.shape:
        raise ValueError(f"H must return the shape of energy_contrastive {tuple(contrastive.shape)}, "
                         f"got {tuple(per_pair.shape)}")
    return _reduce(per_pair.sum(dim=1), reduction)


# --------------------------------------------------------------------- group losses
def info_nce_loss(energy_correct: Tensor, energy_contrastive: Tensor, temperature: float = 1.0, *,
                  reduction: str = "mean") -> Tensor:
    """Group (InfoNCE) loss on one positive and K contrastive answers:

        L = F(x, y)/τ + log( exp(−F(x, y)/τ) + Σ_k exp(−F(x, ŷ_k)/τ) ),

    the cross-entropy of the logits −F/τ with the positive as label (van den Oord et al.
    2018 "CPC"; the group loss of LeCun et al. 2006 with τ = 1). Equals
    ``nll_loss(..., beta=1/τ) / τ``.
    """
    temperature = check_positive("temperature", temperature)
    return _reduce(_nll_terms(energy_correct, energy_contrastive, 1.0 / temperature) / temperature, reduction)


def nce_loss(energy_correct: Tensor, energy_contrastive: Tensor, log_noise_correct: Tensor,
             log_noise_contrastive: Tensor, nu: float | None = None, *, reduction: str = "mean") -> Tensor:
    """Noise-contrastive estimation (Gutmann & Hyvärinen 2010), a logistic classifier
    telling data from noise:

        G(u) = −F(u) − log(ν q(u)),   h(u) = σ(G(u)),
        L = −log h(y) − Σ_k log(1 − h(ŷ_k)) = softplus(−G(y)) + Σ_k softplus(G(ŷ_k)),

    where ``energy_contrastive`` (B, K) holds energies of K noise samples ŷ_k ~ q, the
    ``log_noise_*`` tensors hold log q of the data (B,) and noise (B, K) samples, and
    ν (default K) is the ratio of noise to data samples. The model's log-density is −F
    (its normaliser is learned, e.g. as a bias inside F).
    """
    contrastive = _check_pair(energy_correct, energy_contrastive)
    _check_energy("log_noise_correct", log_noise_correct, (1,))
    _check_energy("log_noise_contrastive", log_noise_contrastive, (1, 2))
    if log_noise_contrastive.ndim == 1:
        log_noise_contrastive = log_noise_contrastive[:, None]
    if log_noise_correct.shape != energy_correct.shape or log_noise_contrastive.shape != contrastive.shape:
        raise ValueError(f"log-noise shapes {tuple(log_noise_correct.shape)}, "
                         f"{tuple(log_noise_contrastive.shape)} must match energies "
                         f"{tuple(energy_correct.shape)}, {tuple(contrastive.shape)}")
    log_nu = math.log(contrastive.shape[1] if nu is None else check_positive("nu", nu))
    g_correct = -energy_correct - log_noise_correct - log_nu
    g_contrastive = -contrastive - log_noise_contrastive - log_nu
    loss = F_.softplus(-g_correct) + F_.softplus(g_contrastive).sum(dim=1)
    return _reduce(loss, reduction)
