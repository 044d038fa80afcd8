"""Training a video predictor with one of the losses of Mathieu, Couprie & LeCun (ICLR 2016),
or the latent-variable energy, on Moving MNIST drawn on the fly — with
:class:`genoise.train.Trainer` (resumable bit-for-bit; ``last.pt`` holds the model card,
and for the adversarial losses the discriminator and its optimiser).

Losses (``loss=``), each summed over the generator's scales (the target resized to each):

========== ==========================================================================
``l2``      L_2
``l1``      L_1
``gdl``     L_1 + λ_gdl L_gdl (the paper's "GDL ℓ1"; row ``gdl_l1``)
``adv``     L_1 + λ_adv L_adv^G
``adv_gdl`` L_1 + λ_gdl L_gdl + λ_adv L_adv^G
``latent``  the conditional-VAE energy of :class:`~genoise.video.latent.LatentVideoPredictor`
========== ==========================================================================

The adversarial rows use p = 1 so that each row adds one term to the one above it (the
paper's p is a hyper-parameter, ``p=``); λ_adv = 0.05, λ_gdl = 1 as in the paper. The
discriminator takes one Adam step per generator step on L_D, then the generator's loss is
computed with the discriminator frozen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_positive
from genoise.data.moving_mnist import MovingMNIST
from genoise.train import Run, Trainer, load_checkpoint
from genoise.train.checkpoint import ModelCard
from genoise.video.convlstm import ConvLSTMPredictor
from genoise.video.dfn import DynamicFilterPredictor
from genoise.video.latent import LatentVideoPredictor
from genoise.video.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    sum_scale,
)
from genoise.video.multiscale import MultiScaleDiscriminator, MultiScaleGenerator, scale_targets, scales_loss
from genoise.video.simvp import SimVP

LOSSES = ("l2", "l1", "gdl", "adv", "adv_gdl", "latent")
REDUCTIONS = ("mean", "sum")
ROW_NAMES = {"l2": "l2", "l1": "l1", "gdl": "gdl_l1", "adv": "adv", "adv_gdl": "adv_gdl", "latent": "latent"}
MODELS: dict[str, type[nn.Module]] = {
    "multiscale": MultiScaleGenerator,
    "latent": LatentVideoPredictor,
    "simvp": SimVP,
    "convlstm": ConvLSTMPredictor,
    "dfn": DynamicFilterPredictor,
}
VIDEO_KIND = "video-predictor"


@dataclass(frozen=True)
class VideoLoss:
    """Which loss and its weights (see the module's table)."""

    loss: str = "l2"
    p: float = 1.0
    alpha: float = 1.0
    gdl_weight: float = 1.0
    adv_weight: float = 0.05
    beta: float = 1e-3
    latent_dropout: float = 0.1
    reduction: str = "mean"

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, LOSSES)
        for name in ("p", "alpha"):
            check_positive(name, getattr(self, name))
        for name in ("gdl_weight", "adv_weight", "beta"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 <= self.latent_dropout <= 1:
            raise ValueError(f"latent_dropout must be in [0, 1], got {self.latent_dropout}")
        check_choice("reduction", self.reduction, REDUCTIONS)

    @property
    def adversarial(self) -> bool:
        return self.loss in ("adv", "adv_gdl")


def build_predictor(model: str, **kwargs: Any) -> nn.Module:
    """``model`` ∈ {multiscale, latent, simvp, convlstm, dfn} with its constructor's arguments."""
    check_choice("model", model, tuple(MODELS))
    return MODELS[model](**kwargs)


class SequenceBatches:
    """Batch source: (context frames, future frames) of fresh Moving-MNIST sequences."""

    def __init__(self, pool: MovingMNIST, batch_size: int, context: int, horizon: int) -> None:
        if pool.config.length < context + horizon:
            raise ValueError(f"sequences of {pool.config.length} frames are shorter than context + horizon "
                             f"= {context} + {horizon}")
        self.pool, self.batch_size, self.context, self.horizon = pool, batch_size, context, horizon

    def __call__(self, step: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        frames, _ = self.pool.sample(self.batch_size, generator)
        return frames[:, : self.context], frames[:, self.context : self.context + self.horizon]


def reconstruction_loss(preds: Tensor | list[Tensor], future: Tensor, loss: VideoLoss) -> Tensor:
    """Σ_k L_p (+ λ_gdl L_gdl) over the scales of ``preds`` (per-sample sums divided by
    :func:`sum_scale` with ``reduction="sum"``)."""
    p = 2.0 if loss.loss == "l2" else loss.p if loss.adversarial else 1.0
    gdl_weight = loss.gdl_weight if loss.loss in ("gdl", "adv_gdl") else None
    return scales_loss(preds, future, p, reduction=loss.reduction, gdl_weight=gdl_weight, alpha=loss.alpha)


class VideoStep:
    """``step_fn`` of the Trainer for every loss (holds the discriminator when adversarial)."""

    def __init__(self, loss: VideoLoss, discriminator: nn.Module | None = None,
                 discriminator_optimizer: torch.optim.Optimizer | None = None) -> None:
        if loss.adversarial and (discriminator is None or discriminator_optimizer is None):
            raise ValueError(f"loss={loss.loss} needs a discriminator and its optimiser")
        self.loss, self.discriminator = loss, discriminator
        self.discriminator_optimizer = discriminator_optimizer

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> dict:
        context, future = batch
        if self.loss.loss == "latent":
            return model.loss(context, future, generator, p=self.loss.p, beta=self.loss.beta,
                              latent_dropout=self.loss.latent_dropout, reduction=self.loss.reduction)
        multiscale = isinstance(model, MultiScaleGenerator)
        preds = model(context, scales=True) if multiscale else model(context)
        out = {"reconstruction": reconstruction_loss(preds, future, self.loss)}
        if not self.loss.adversarial:
            return {"loss": out["reconstruction"], **out}
        scales = preds if multiscale else [preds]
        real = [target for _, target in scale_targets(scales, future)]
        d = self.discriminator
        d_loss = discriminator_loss(d(context, real), d(context, [y.detach() for y in scales]))
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.discriminator_optimizer.step()
        d.requires_grad_(False)
        try:
            adversarial = generator_adversarial_loss(d(context, scales))
        finally:
            d.requires_grad_(True)
        weight = self.loss.adv_weight / sum_scale(future, self.loss.reduction)
        loss = out["reconstruction"] + weight * adversarial
        return {"loss": loss, **out, "adversarial": adversarial.detach(), "discriminator": d_loss.detach()}


def train_predictor(model: nn.Module, model_name: str, pool: MovingMNIST, steps: int, *,
                    loss: VideoLoss | None = None, batch_size: int = 16, lr: float = 1e-3,
                    discriminator_width: int = 16, seed: int = 0, run: Run | None = None,
                    progress: bool | None = None, log_every: int = 50) -> dict[str, Any]:
    """Adam on the chosen loss for ``steps`` updates (learning rate cosine-decayed to 0)."""
    loss = loss or VideoLoss()
    check_int("steps", steps, min=1)
    if (loss.loss == "latent") != isinstance(model, LatentVideoPredictor):
        raise ValueError(f"loss={loss.loss} does not fit a {type(model).__name__} "
                         "(loss=latent goes with model=latent and only with it)")
    card = ModelCard(model=model_name, kwargs=dict(model.kwargs), loss=asdict(loss))
    extra: dict[str, Any] = {"card": card}
    discriminator = discriminator_optimizer = None
    if loss.adversarial:
        device = run.device if run is not None else next(model.parameters()).device
        scales = len(model.sizes) if isinstance(model, MultiScaleGenerator) else 1
        discriminator = MultiScaleDiscriminator(model.channels, model.image_size, model.context,
                                                model.horizon, scales, discriminator_width).to(device)
        discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        extra.update(discriminator=discriminator, discriminator_optimizer=discriminator_optimizer)
    step = VideoStep(loss, discriminator, discriminator_optimizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    source = SequenceBatches(pool, batch_size, model.context, model.horizon)
    trainer = Trainer(model, optimizer, step, source, run=run, max_steps=steps, batch_size=batch_size,
                      scheduler=scheduler, seed=seed, grad_clip=10.0, log_every=log_every,
                      progress=progress, extra_state=extra, desc=f"video {ROW_NAMES[loss.loss]}",
                      kind=VIDEO_KIND, config=run.config if run is not None else None)
    return trainer.fit()


def load_predictor(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained predictor from its ``last.pt``: (model in eval mode, its card)."""
    state = load_checkpoint(Path(path))
    if state.get("kind") != VIDEO_KIND:
        raise ValueError(f"{path} holds a {state.get('kind')!r} checkpoint, not a video predictor")
    card = state["extra_state"]["card"]
    model = build_predictor(card["model"], **card["kwargs"])
    model.load_state_dict(state["model"])
    return model.eval(), card
