"""Scores of predicted frames, per frame, on whole frames or on a mask of moving pixels.

Every function takes predictions and targets (B, T, C, H, W) in [0, 1] and an optional mask
(B, T, H, W) bool, and returns (B, T) scores:

- :func:`psnr`: 10 log10(1 / MSE), the MSE over the frame (or the masked pixels);
- :func:`ssim`: the mean of kornia's SSIM map (Wang et al. 2004; 11 × 11 Gaussian window,
  σ = 1.5), over the frame or the masked pixels;
- :func:`sharpness`: Mathieu, Couprie & LeCun's (ICLR 2016) sharpness difference
  10 log10(1 / mean_{i,j} |(∇_i Y + ∇_j Y) − (∇_i Ŷ + ∇_j Ŷ)|), ∇ the absolute differences
  to the pixel above and to the left (the first row and column, which have none, are
  dropped): higher means edges of the same strength as the target's;
- :func:`frame_mse` / :func:`frame_mae`: the squared / absolute error **summed** over the
  pixels of a frame (the convention of OpenSTL's Moving-MNIST tables).

The paper scores only the moving areas of UCF101 (from optical flow); on Moving MNIST the
moving pixels are known exactly (:func:`moving_mask`: covered by a digit in the last
observed frame or in any frame up to the target).
"""

from __future__ import annotations

import math

import torch
from kornia.metrics import ssim as kornia_ssim
from torch import Tensor

from genoise.video.losses import image_gradients


def _check(pred: Tensor, target: Tensor, mask: Tensor | None) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if target.ndim != 5 or not target.is_floating_point():
        raise ValueError(f"video metrics expect float frames (B, T, C, H, W), got {target.dtype} "
                         f"{tuple(target.shape)}")
    want = (*target.shape[:2], *target.shape[3:])
    if mask is not None and (mask.shape != want or mask.dtype != torch.bool):
        raise ValueError(f"mask must be bool (B, T, H, W) = {want}, got {mask.dtype} {tuple(mask.shape)}")


def _mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of (B, T, C, H, W) values over (C, H, W), or over the masked pixels (NaN if none)."""
    if mask is None:
        return values.mean((2, 3, 4))
    weight = mask[:, :, None].to(values.dtype).expand_as(values)
    return (values * weight).sum((2, 3, 4)) / weight.sum((2, 3, 4))


def _sum(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.sum((2, 3, 4))
    return (values * mask[:, :, None].to(values.dtype)).sum((2, 3, 4))


def psnr(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB (peak 1), per frame (B, T); +inf for a perfect frame."""
    _check(pred, target, mask)
    mse = _mean((pred - target) ** 2, mask)
    return 10 * torch.log10(1.0 / mse)


def ssim(pred: Tensor, target: Tensor, mask: Tensor | None = None, window: int = 11) -> Tensor:
    """Structural similarity per frame (B, T): kornia's SSIM map averaged over the frame
    (or the masked pixels) and the channels."""
    _check(pred, target, mask)
    b, t = pred.shape[:2]
    flat = (b * t, *pred.shape[2:])
    value_map = kornia_ssim(pred.reshape(flat), target.reshape(flat), window, max_val=1.0)
    return _mean(value_map.reshape(pred.shape), mask)


def sharpness(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mathieu et al.'s sharpness difference in dB per frame (B, T)."""
    _check(pred, target, mask)
    (pi, pj), (ti, tj) = image_gradients(pred), image_gradients(target)
    edges_pred = pi[..., :, 1:] + pj[..., 1:, :]
    edges_target = ti[..., :, 1:] + tj[..., 1:, :]
    crop = None if mask is None else mask[..., 1:, 1:]
    return 10 * torch.log10(1.0 / _mean((edges_target - edges_pred).abs(), crop))


def frame_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Squared error summed over the pixels of each frame (B, T) (OpenSTL's "MSE")."""
    _check(pred, target, mask)
    return _sum((pred - target) ** 2, mask)


def frame_mae(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Absolute error summed over the pixels of each frame (B, T) (OpenSTL's "MAE")."""
    _check(pred, target, mask)
    return _sum((pred - target).abs(), mask)


def moving_mask(digit_masks: Tensor) -> Tensor:
    """Pixels that can have changed since the last observed frame: covered by a digit in that
    frame or in any frame up to the target. ``digit_masks`` (B, 1 + T, D, H, W) bool — the last
    observed frame, then the T targets — → (B, T, H, W) bool."""
    if digit_masks.ndim != 5 or digit_masks.shape[1] < 2 or digit_masks.dtype != torch.bool:
        raise ValueError("moving_mask expects bool digit masks (B, 1 + T, D, H, W) with T >= 1, got "
                         f"{digit_masks.dtype} {tuple(digit_masks.shape)}")
    covered = digit_masks.any(2).to(torch.uint8)
    return torch.cummax(covered, dim=1).values[:, 1:].bool()


METRICS = {"psnr": psnr, "ssim": ssim, "sharpness": sharpness, "mse": frame_mse, "mae": frame_mae}


def score(pred: Tensor, target: Tensor, moving: Tensor | None = None) -> dict[str, Tensor]:
    """Every metric per frame (B, T) on whole frames (``psnr`` …) and, given the moving
    mask, on moving areas (``moving_psnr`` …)."""
    out = {name: fn(pred, target) for name, fn in METRICS.items()}
    if moving is not None:
        out.update({f"moving_{name}": fn(pred, target, moving) for name, fn in METRICS.items()})
    return out


def finite_mean(values: Tensor) -> float:
    """Mean over the finite entries (a perfect frame's PSNR is +inf; an empty mask gives NaN)."""
    kept = values[torch.isfinite(values)]
    return float(kept.mean()) if kept.numel() else math.nan
