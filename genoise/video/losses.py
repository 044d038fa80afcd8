"""Losses of video prediction beyond mean squared error (Mathieu, Couprie & LeCun, "Deep
multi-scale video prediction beyond mean square error", ICLR 2016), as pure functions.

- ℓp: L_p(Y, Ŷ) = mean |Y − Ŷ|^p (p = 2 averages the possible futures: blur).
- Gradient difference (GDL, their eq. 5), with ∇_i Y = |Y_{i,j} − Y_{i−1,j}| and
  ∇_j Y = |Y_{i,j} − Y_{i,j−1}|:
  L_gdl(Y, Ŷ) = mean_{i,j} |∇_i Y − ∇_i Ŷ|^α + mean_{i,j} |∇_j Y − ∇_j Ŷ|^α.
  It penalises the difference of the *magnitudes* of the image gradients: a blurred
  prediction has weaker edges than the target and pays for it even where ℓ2 would not.
- Adversarial (their eqs. 2–4), with a discriminator D (logits) over the scales k:
  L_D = Σ_k BCE(D_k(X_k, Y_k), 1) + BCE(D_k(X_k, G_k(X)), 0) and
  L_adv^G = Σ_k BCE(D_k(X_k, G_k(X)), 1); the generator's loss is
  λ_adv L_adv^G + λ_ℓp L_p + λ_gdl L_gdl (the paper: λ_adv = 0.05, λ_ℓp = λ_gdl = 1).

Means by default, so the weights do not depend on the image size. The paper's losses are
sums over each sample's pixels (‖Y − Ŷ‖_p^p), beside a per-sample adversarial term, so its
λ_adv = 0.05 is tiny next to L_p: ``reduction="sum"`` gives the per-sample sums (averaged
over the batch) for that weighting. With means, the same λ_adv weighs the adversarial term
as many times more as a frame has pixels (4,096 for one 64 × 64 frame).
In the energy view the discriminator is an energy over (past, future) pairs, low on real
futures and pushed up on the generator's: a GAN is a contrastive method.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _same_shape(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def _reduce(values: Tensor, reduction: str) -> Tensor:
    """``mean``: over every element; ``sum``: over each sample (dim 0), averaged over samples."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum() / values.shape[0]
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def lp_loss(pred: Tensor, target: Tensor, p: float = 2.0, reduction: str = "mean") -> Tensor:
    """mean |target − pred|^p (p = 1: ℓ1, p = 2: ℓ2 / MSE); ``reduction="sum"``: the paper's
    ‖target − pred‖_p^p per sample, averaged over the batch (dim 0)."""
    _same_shape(pred, target)
    if reduction == "mean" and p == 2:
        return F.mse_loss(pred, target)
    if reduction == "mean" and p == 1:
        return F.l1_loss(pred, target)
    return _reduce((pred - target).abs().pow(p), reduction)


def image_gradients(images: Tensor) -> tuple[Tensor, Tensor]:
    """|Y_{i,j} − Y_{i−1,j}| (…, H − 1, W) and |Y_{i,j} − Y_{i,j−1}| (…, H, W − 1)."""
    return (images[..., 1:, :] - images[..., :-1, :]).abs(), (images[..., :, 1:] - images[..., :, :-1]).abs()


def gradient_difference_loss(pred: Tensor, target: Tensor, alpha: float = 1.0,
                             reduction: str = "mean") -> Tensor:
    """Mathieu et al.'s image gradient difference loss (eq. 5) on (…, H, W) images (each of the
    two terms a mean, or with ``reduction="sum"`` a sum per sample averaged over dim 0)."""
    _same_shape(pred, target)
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    (pi, pj), (ti, tj) = image_gradients(pred), image_gradients(target)
    return _reduce((ti - pi).abs().pow(alpha), reduction) + _reduce((tj - pj).abs().pow(alpha), reduction)


def sum_scale(future: Tensor, reduction: str) -> float:
    """The constant the per-sample sums of ``reduction="sum"`` are divided by: the elements of
    one sample of ``future`` (1 for means). Dividing the whole loss by it keeps the paper's
    ratios between the terms and gradients of the size means give (``grad_clip`` applies)."""
    return float(future[0].numel()) if reduction == "sum" else 1.0


def discriminator_loss(real_logits: Sequence[Tensor], fake_logits: Sequence[Tensor]) -> Tensor:
    """Σ_k BCE(D_k(real), 1) + BCE(D_k(fake), 0) over the scales' logits."""
    if len(real_logits) != len(fake_logits) or not real_logits:
        raise ValueError(f"need as many real as fake logits (one per scale), got "
                         f"{len(real_logits)} and {len(fake_logits)}")
    total = real_logits[0].new_zeros(())
    for real, fake in zip(real_logits, fake_logits, strict=True):
        total = total + F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        total = total + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return total


def generator_adversarial_loss(fake_logits: Sequence[Tensor]) -> Tensor:
    """Σ_k BCE(D_k(G_k(X)), 1): the generator's non-saturating adversarial term."""
    if not fake_logits:
        raise ValueError("need the discriminator's logits of at least one scale")
    return sum(F.binary_cross_entropy_with_logits(f, torch.ones_like(f)) for f in fake_logits)
