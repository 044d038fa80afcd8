"""Training a GAN as an energy-based model: one generator update per step of the
:class:`~genoise.train.Trainer`, preceded by ``critic_steps`` discriminator updates.

The generator is the Trainer's model; the discriminator (an :class:`~genoise.energy.Energy`)
and its optimiser ride in ``extra_state``, so a run resumes bit-for-bit. Each step takes
``critic_steps × batch`` real images and gives each discriminator update its own slice
(WGAN-GP's five critic updates per generator update see five different real batches).
A NaN in the discriminator's energy stops the run as diverged; the last checkpoint on
disk (written before the bad step) is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_positive
from genoise.energy.base import Energy
from genoise.generative.losses import (
    check_finite_energies,
    check_margin,
    check_weight,
    dcgan_discriminator_loss,
    dcgan_generator_loss,
    ebgan_discriminator_loss,
    generator_energy_loss,
    gradient_penalty,
    pulling_away_term,
    r1_penalty,
    wgan_critic_loss,
)
from genoise.train import Run, Trainer
from genoise.train.checkpoint import ModelCard
from genoise.train.schedules import lr_scheduler

KINDS = ("ebgan", "wgan_gp", "dcgan")
LR_SCHEDULES = ("constant", "linear")  # of genoise.train.schedules, the ones these recipes offer
GAN_KIND = "generative-gan"


@dataclass
class GANLoss:
    """Which GAN, and its hyper-parameters.

    kind : ``ebgan`` | ``wgan_gp`` | ``dcgan``
    margin : EBGAN's m (energies are per-value mean squared errors)
    pt_weight : EBGAN's pulling-away weight (0 = plain EBGAN)
    gp_weight : WGAN-GP's λ
    critic_steps : discriminator updates per generator update
    r1_weight : DCGAN's γ of + γ/2 · R1, the zero-centred gradient penalty on real samples
        (Mescheder et al. 2018; 0 = the plain non-saturating DCGAN)
    """

    kind: str = "ebgan"
    margin: float = 0.1
    pt_weight: float = 0.0
    gp_weight: float = 10.0
    critic_steps: int = 1
    r1_weight: float = 0.0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_margin(self.margin)
        check_weight("pt_weight", self.pt_weight)
        check_weight("gp_weight", self.gp_weight)
        check_int("critic_steps", self.critic_steps)
        check_weight("r1_weight", self.r1_weight)
        if self.pt_weight and self.kind != "ebgan":
            raise ValueError(f"pt_weight is EBGAN's pulling-away term; kind={self.kind} has none")
        if self.r1_weight and self.kind != "dcgan":
            raise ValueError(f"r1_weight is the non-saturating DCGAN's gradient penalty on real samples; "
                             f"kind={self.kind} has {'gp_weight' if self.kind == 'wgan_gp' else 'none'}")


class GANStep:
    """``step_fn`` of the Trainer: ``critic_steps`` discriminator updates, then the
    generator's loss (returned; the Trainer updates the generator)."""

    def __init__(self, loss: GANLoss, discriminator: Energy, optimizer: torch.optim.Optimizer,
                 scheduler: Any = None) -> None:
        self.loss, self.discriminator, self.optimizer = loss, discriminator, optimizer
        self.scheduler = scheduler  # the discriminator's, stepped once per generator update
        self.calls = 0

    def _discriminator_loss(self, real: Tensor, fake: Tensor, rng: torch.Generator) -> tuple[Tensor, dict]:
        d, loss = self.discriminator, self.loss
        e_real = check_finite_energies("discriminator's energy on real samples", d(real), self.calls)
        e_fake = check_finite_energies("discriminator's energy on generated samples", d(fake), self.calls)
        if loss.kind == "ebgan":
            value = ebgan_discriminator_loss(e_real, e_fake, loss.margin)
        elif loss.kind == "dcgan":
            value = dcgan_discriminator_loss(e_real, e_fake)
            if loss.r1_weight:
                value = value + 0.5 * loss.r1_weight * r1_penalty(d, real)
        else:
            value = wgan_critic_loss(e_real, e_fake) + loss.gp_weight * gradient_penalty(d, real, fake, rng)
        return value, {"energy_real": e_real.mean().detach(), "energy_fake": e_fake.mean().detach()}

    def _generator_loss(self, fake: Tensor) -> Tensor:
        d, loss = self.discriminator, self.loss
        d.requires_grad_(False)
        try:
            e_fake = check_finite_energies("discriminator's energy on generated samples", d(fake), self.calls)
            if loss.kind == "dcgan":
                return dcgan_generator_loss(e_fake)
            value = generator_energy_loss(e_fake)
            if loss.pt_weight:
                value = value + loss.pt_weight * pulling_away_term(d.embed(fake))
            return value
        finally:
            d.requires_grad_(True)

    def __call__(self, generator: nn.Module, batch: tuple[Tensor, ...], rng: torch.Generator) -> dict:
        (real,) = batch[:1]
        chunks = real.chunk(self.loss.critic_steps)
        logs: dict[str, Tensor] = {}
        for chunk in chunks:
            z = torch.randn(chunk.shape[0], generator.latent_dim, generator=rng, device=rng.device)
            with torch.no_grad():
                fake = generator(z.to(chunk.device))
            if self.calls == 0 and fake.shape[1:] != chunk.shape[1:]:
                raise ValueError(f"the generator's output {tuple(fake.shape[1:])} does not match the data "
                                 f"{tuple(chunk.shape[1:])} (per sample)")
            d_loss, logs = self._discriminator_loss(chunk, fake, rng)
            self.optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizer.step()
        z = torch.randn(chunks[-1].shape[0], generator.latent_dim, generator=rng, device=rng.device)
        g_loss = self._generator_loss(generator(z.to(real.device)))
        if self.scheduler is not None:
            self.scheduler.step()
        self.calls += 1
        return {"loss": g_loss, "discriminator_loss": d_loss.detach(), **logs}


def train_gan(generator: nn.Module, discriminator: Energy, images: Tensor, steps: int, *,
              loss: GANLoss | None = None, batch_size: int = 64, lr: float = 2e-4,
              betas: tuple[float, float] = (0.5, 0.999), seed: int = 0, run: Run | None = None,
              card: ModelCard | None = None, progress: bool | None = None, log_every: int = 100,
              checkpoint_every: int | None = 1000, ema_decay: float | None = None,
              discriminator_lr: float | None = None, lr_schedule: str = "constant") -> dict[str, Any]:
    """Adam (β = ``betas``; WGAN-GP's paper uses (0, 0.9), DCGAN's (0.5, 0.999)) on both
    players for ``steps`` generator updates; returns the Trainer's last metrics.

    ``discriminator_lr`` gives the discriminator its own step (``None``: ``lr``), the
    two time-scale update rule of Heusel et al. (NeurIPS 2017, "TTUR"; e.g. 4 × 10⁻⁴ for the
    discriminator, 10⁻⁴ for the generator).

    ``lr_schedule="linear"`` decays both players' steps linearly to 0 over the run: after t
    generator updates each rate is its base × (1 − t / steps) (every critic update of a
    generator update uses the same rate), as the WGAN-GP authors' code trains on CIFAR-10
    (Gulrajani et al. 2017). Both schedules are checkpointed.

    ``ema_decay`` δ also keeps an exponential moving average of the generator's weights
    (:mod:`genoise.train.ema`; Yazıcı et al., ICLR 2019), checkpointed as
    ``extra_state["ema"]``. It changes nothing in training: the last weights are the same."""
    loss = loss or GANLoss()
    check_int("steps", steps)
    if images.shape[1:] != tuple(getattr(generator, "output_shape", images.shape[1:])):
        raise ValueError(f"the generator's output {tuple(generator.output_shape)} does not match the "
                         f"data {tuple(images.shape[1:])} (per sample)")
    if discriminator_lr is not None:
        check_positive("discriminator_lr", discriminator_lr)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=discriminator_lr or lr, betas=betas)
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_scheduler, scheduler = (lr_scheduler(o, lr_schedule, steps, LR_SCHEDULES)
                              for o in (d_optimizer, optimizer))
    extra = {"discriminator": discriminator, "discriminator_optimizer": d_optimizer}
    if d_scheduler is not None:
        extra["discriminator_scheduler"] = d_scheduler
    if card is not None:
        extra["card"] = card
    step = GANStep(loss, discriminator, d_optimizer, d_scheduler)
    trainer = Trainer(generator, optimizer, step, (images,), run=run, max_steps=steps, scheduler=scheduler,
                      batch_size=batch_size * loss.critic_steps, seed=seed, log_every=log_every,
                      checkpoint_every=checkpoint_every, progress=progress, extra_state=extra,
                      desc=f"gan {loss.kind}", kind=GAN_KIND, diverge_factor=None, ema_decay=ema_decay,
                      config=run.config if run is not None else None)
    return trainer.fit(resume=bool(run and run.resume))


def gan_card(model: str, generator_kwargs: dict, discriminator_kwargs: dict, loss: GANLoss) -> ModelCard:
    """What :func:`genoise.generative.load_generator` needs to rebuild the networks."""
    return ModelCard(model=model, kwargs={"generator": generator_kwargs,
                                          "discriminator": discriminator_kwargs}, loss=asdict(loss))
