"""Scoring a predictor on a fixed set of sequences: every metric of :mod:`genoise.video.metrics`
for each predicted step (recursive beyond the model's horizon), on whole frames and on the
moving pixels, beside the baselines "copy the last frame", "the mean frame" and "a blank frame".

A latent-variable model is scored on one draw of z per sequence (``samples=1``: what a user
gets) and, with ``samples=k``, best-of-k: for each sequence the draw with the lowest squared
error over the predicted steps is kept (the convention of the stochastic-video literature,
e.g. Denton & Fergus 2018), and every metric is reported for that draw.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genoise.video.base import rollout
from genoise.video.latent import LatentVideoPredictor, gaussian_kl
from genoise.video.metrics import finite_mean, moving_mask, score

Predict = Callable[[Tensor, int], Tensor]  # (context frames, steps) -> (B, steps, C, H, W)


def copy_last(context: Tensor, steps: int) -> Tensor:
    """The last observed frame, repeated."""
    return context[:, -1:].expand(-1, steps, -1, -1, -1)


def blank_frame(context: Tensor, steps: int) -> Tensor:
    """An empty (all-zero) frame for every step. On Moving MNIST's black background it scores a
    high SSIM without predicting anything (0.796 on the 10 → 10 test set, two digits at 64 px,
    against copy-last's 0.689): the floor a model's SSIM must clear."""
    return context.new_zeros(context.shape[0], steps, *context.shape[2:])


def mean_frame(image: Tensor) -> Predict:
    """The per-pixel mean frame of the training data (C, H, W), for every step."""

    def predict(context: Tensor, steps: int) -> Tensor:
        return image.to(context)[None, None].expand(context.shape[0], steps, -1, -1, -1)

    return predict


def model_predict(model: nn.Module, generator: torch.Generator | None = None) -> Predict:
    """Recursive predictions of ``model`` (one draw of z per call for a latent model)."""
    latent = isinstance(model, LatentVideoPredictor)

    def predict(context: Tensor, steps: int) -> Tensor:
        kwargs = {"generator": generator} if latent else {}
        return rollout(model, context, steps, **kwargs)

    return predict


def closest_draw(draws: Tensor, target: Tensor) -> Tensor:
    """Of draws (k, B, T, C, H, W), the one with the lowest squared error to ``target``
    (B, T, C, H, W), per sequence: (B, T, C, H, W)."""
    error = (draws - target[None]).pow(2).flatten(2).sum(-1)  # (k, B)
    return draws[error.argmin(0), torch.arange(draws.shape[1])]


@torch.no_grad()
def evaluate(predict: Predict, frames: Tensor, masks: Tensor, context: int, steps: int, *,
             samples: int = 1, batch_size: int = 100) -> dict[str, list[float]]:
    """Mean of every metric for predicted steps 1 … ``steps`` over the sequences.

    frames (N, T, C, H, W) and digit masks (N, T, D, H, W) of a fixed set, T ≥ context + steps;
    ``samples`` > 1: best of that many calls of ``predict`` (:func:`closest_draw`).
    Returns ``{"psnr": [step 1, step 2, …], "moving_psnr": […], …}``."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if frames.shape[1] < context + steps:
        raise ValueError(f"sequences of {frames.shape[1]} frames are shorter than context + steps "
                         f"= {context} + {steps}")
    sums: dict[str, list[Tensor]] = {}
    for start in range(0, frames.shape[0], batch_size):
        chunk = frames[start : start + batch_size]
        digit = masks[start : start + batch_size, context - 1 : context + steps]
        target = chunk[:, context : context + steps]
        if samples > 1:
            draws = torch.stack([predict(chunk[:, :context], steps) for _ in range(samples)])
            pred = closest_draw(draws, target)
        else:
            pred = predict(chunk[:, :context], steps)
        moving = moving_mask(digit)
        for name, values in score(pred.clamp(0, 1), target, moving).items():
            sums.setdefault(name, []).append(values)
    return {name: [finite_mean(v[:, t]) for t in range(steps)] for name, v in
            ((n, torch.cat(parts)) for n, parts in sums.items())}


@torch.no_grad()
def latent_information(model: LatentVideoPredictor, frames: Tensor, *,
                       batch_size: int = 100) -> dict[str, float]:
    """How much the posterior says, and how much of it the prior can guess, on a fixed set
    (nats per sequence, means over the sequences of ``frames`` (N, T ≥ context + horizon, C, H, W)):

    ``kl_prior``    KL(q(z | x, y) ‖ p(z | x)), the term the model is trained with: what a draw
                    from the prior misses of the posterior (0 for a z that says nothing);
    ``kl_standard`` KL(q(z | x, y) ‖ N(0, I)), the information the posterior carries about the
                    future against the fixed prior (equal to ``kl_prior`` when the prior is fixed).

    With a learned prior, ``kl_standard − kl_prior`` is how much of z the prior predicts from
    the past."""
    length = model.context + model.horizon
    if frames.shape[1] < length:
        raise ValueError(f"sequences of {frames.shape[1]} frames are shorter than context + horizon "
                         f"= {model.context} + {model.horizon}")
    to_prior, to_standard = [], []
    for chunk in frames.split(batch_size):
        x, y = chunk[:, : model.context], chunk[:, model.context : length]
        mean, log_var = model.encode(x, y)
        learned = model.prior_params(x)
        to_standard.append(gaussian_kl(mean, log_var))
        to_prior.append(gaussian_kl(mean, log_var, *learned) if learned is not None else to_standard[-1])
    return {"kl_prior": float(torch.cat(to_prior).mean()),
            "kl_standard": float(torch.cat(to_standard).mean())}
