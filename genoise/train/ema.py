"""An exponential moving average of a model's weights, kept beside the trained model.

After every optimiser update n = 1, 2, … the average θ̄ follows the weights θ_n:

    θ̄_1 = θ_1,    θ̄_n = δ_n θ̄_{n−1} + (1 − δ_n) θ_n,    δ_n = min(δ, n / (n + 9))

(Polyak & Juditsky 1992 with exponential forgetting; the warm-up δ_n = (1 + k)/(10 + k),
k = n − 1 updates averaged so far, is TensorFlow's ``ExponentialMovingAverage(num_updates)``,
so the first weights, far from the optimum, are forgotten quickly). For GANs, Yazıcı et
al., "The unusual effectiveness of averaging in GAN training" (ICLR 2019), find the
average of the generator's weights often better than its last iterate, and Karras et al.
2018 (progressive GANs) sample from one; on genoise's MNIST table it helps EBGAN late in
training and not WGAN-GP or DCGAN (docs/generative.md).

The average is a :class:`torch.optim.swa_utils.AveragedModel` (a deep copy of the model
plus its ``n_averaged`` counter; its ``state_dict`` is checkpointed). Parameters are
averaged; buffers (batch-norm statistics) are copied from the model, as BYOL's target
network does (:func:`genoise.ssl.ema_update`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

PREFIX = "module."


def _lerp_toward(decay: float, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
    """``multi_avg_fn`` of :class:`AveragedModel`: θ̄ ← δ_n θ̄ + (1 − δ_n) θ (in place)."""
    k = float(num_averaged)
    weight = 1.0 - min(decay, (1.0 + k) / (10.0 + k))
    torch._foreach_lerp_(averaged, current, weight)


def check_decay(decay: float) -> float:
    decay = float(decay)
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1) (e.g. 0.999), got {decay}")
    return decay


def ema_model(model: nn.Module, decay: float) -> AveragedModel:
    """A weight average of ``model`` with decay δ = ``decay`` ∈ (0, 1); empty until the first
    :func:`update_ema` copies the model in."""
    average = AveragedModel(model, multi_avg_fn=partial(_lerp_toward, check_decay(decay)), use_buffers=False)
    average.requires_grad_(False)
    return average


@torch.no_grad()
def update_ema(average: AveragedModel, model: nn.Module) -> None:
    """One step of the average after an optimiser update of ``model``: parameters averaged,
    buffers copied."""
    average.update_parameters(model)
    for mine, theirs in zip(average.module.buffers(), model.buffers(), strict=True):
        mine.copy_(theirs)


def averaged_weights(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The model's own ``state_dict`` from the state dict of its :func:`ema_model` (the
    ``module.`` prefix removed, the counter dropped): ``model.load_state_dict`` takes it."""
    if "n_averaged" in state and int(state["n_averaged"]) == 0:
        raise ValueError("the weight average holds no update yet (n_averaged = 0)")
    return {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}
