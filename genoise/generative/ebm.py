"""An image energy-based model trained by maximum likelihood with short-run MCMC
negatives from a replay buffer (Du & Mordatch, "Implicit Generation and Generalization
in Energy-Based Models", NeurIPS 2019; Nijkamp, Hill, Zhu & Wu, "Learning non-convergent
non-persistent short-run MCMC toward energy-based model", NeurIPS 2019).

The gradient of the negative log-likelihood of p(y) ∝ exp(−E(y)) is
∇θ E(y_data) − E_p[∇θ E(ŷ)]; the model expectation is estimated with ŷ from K Langevin
steps started at replay-buffer samples (5 % re-initialised from uniform noise each
draw; with ``reinit_fraction`` = 1 every chain starts from noise, Nijkamp et al.'s
non-persistent short-run training), and the energy magnitudes are kept small by
α (E(y)² + E(ŷ)²) (Du & Mordatch §3.3):  L = mean E(y) − mean E(ŷ) + α (mean E(y)² + mean E(ŷ)²).
Samples for evaluation continue buffer chains for K more steps (no re-initialisation),
as Du & Mordatch report theirs; or (``start="noise"``) they are short-run chains of K steps
from uniform noise, the protocol of Nijkamp et al., which asks the energy alone, without the
buffer's long history, to carry noise to the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from genoise._checks import check_choice, check_int, check_positive
from genoise.energy.base import Energy
from genoise.energy.minimize import langevin_sample
from genoise.energy.samplers import PersistentLangevinSampler, ReplayBuffer, uniform_init
from genoise.generative.gan import LR_SCHEDULES
from genoise.generative.losses import check_finite_energies
from genoise.train import Run, Trainer
from genoise.train.checkpoint import ModelCard
from genoise.train.schedules import lr_scheduler

EBM_KIND = "generative-ebm"


@dataclass
class MCMCConfig:
    """Langevin negatives: ``steps`` of v ← clip(v − ½ ε ∇E(v) + σ ξ, 0, 1) with ε =
    ``step_size``, σ = ``noise_std``, each gradient coordinate clipped to ``grad_clip``."""

    steps: int = 30
    step_size: float = 20.0
    noise_std: float = 0.005
    grad_clip: float = 0.01
    buffer_size: int = 5000
    reinit_fraction: float = 0.05
    alpha: float = 1.0

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_int("buffer_size", self.buffer_size)
        for name in ("step_size", "noise_std", "grad_clip"):
            check_positive(name, getattr(self, name))
        check_positive("alpha", self.alpha, allow_zero=True)
        if not 0 <= self.reinit_fraction <= 1:
            raise ValueError(f"reinit_fraction must be in [0, 1], got {self.reinit_fraction}")


def langevin_sampler(energy: Energy, shape: tuple[int, ...], cfg: MCMCConfig, seed: int
                     ) -> PersistentLangevinSampler:
    """Persistent Langevin chains in [0, 1]^shape over a replay buffer."""
    buffer = ReplayBuffer(cfg.buffer_size, uniform_init(*shape, low=0.0, high=1.0),
                          reinit_fraction=cfg.reinit_fraction,
                          generator=torch.Generator().manual_seed(seed))
    return PersistentLangevinSampler(energy, buffer, steps=cfg.steps, step_size=cfg.step_size,
                                     noise_std=cfg.noise_std, grad_clip=cfg.grad_clip,
                                     projection=lambda v: v.clamp(0.0, 1.0))


class MCMCStep:
    """``step_fn``: negatives from the sampler, then the regularised contrastive loss."""

    def __init__(self, sampler: PersistentLangevinSampler, alpha: float) -> None:
        self.sampler, self.alpha = sampler, alpha
        self.calls = 0

    def __call__(self, energy: Energy, batch: tuple[Tensor, ...], rng: torch.Generator) -> dict:
        real = batch[0]
        if self.calls == 0 and real.shape[1:] != self.sampler.buffer.samples.shape[1:]:
            raise ValueError(f"data samples {tuple(real.shape[1:])} do not match the sampler's "
                             f"{tuple(self.sampler.buffer.samples.shape[1:])}")
        fake = self.sampler.sample(real.shape[0]).to(real.device)
        e_real = check_finite_energies("energy of the data", energy(real), self.calls)
        e_fake = check_finite_energies("energy of the negatives", energy(fake), self.calls)
        self.calls += 1
        gap = e_real.mean() - e_fake.mean()
        reg = self.alpha * (e_real.pow(2).mean() + e_fake.pow(2).mean())
        return {"loss": gap + reg, "energy_real": e_real.mean().detach(),
                "energy_fake": e_fake.mean().detach()}


def train_mcmc_ebm(energy: Energy, images: Tensor, steps: int, *, cfg: MCMCConfig | None = None,
                   batch_size: int = 64, lr: float = 1e-4, seed: int = 0, run: Run | None = None,
                   card: ModelCard | None = None, progress: bool | None = None, log_every: int = 100,
                   checkpoint_every: int | None = 500, sample_shape: tuple[int, ...] | None = None,
                   lr_schedule: str = "constant") -> tuple[PersistentLangevinSampler, dict[str, Any]]:
    """Adam (β = (0, 0.999), Du & Mordatch) for ``steps`` updates; returns (sampler, metrics).
    The chains live in [0, 1]^``sample_shape`` (default: the shape of one image).
    ``lr_schedule="linear"`` decays the step linearly to 0 over the run (as for the GANs,
    :func:`genoise.train.schedules.lr_scheduler`)."""
    cfg = cfg or MCMCConfig()
    check_int("steps", steps)
    shape = tuple(images.shape[1:]) if sample_shape is None else tuple(sample_shape)
    sampler = langevin_sampler(energy, shape, cfg, seed + 1)
    device = run.device if run is not None else next(energy.parameters()).device
    sampler.buffer.samples = sampler.buffer.samples.to(device)  # the chains run beside the energy
    extra: dict[str, Any] = {"sampler": sampler}
    if card is not None:
        extra["card"] = card
    optimizer = torch.optim.Adam(energy.parameters(), lr=lr, betas=(0.0, 0.999))
    trainer = Trainer(energy, optimizer, MCMCStep(sampler, cfg.alpha), (images,), run=run,
                      max_steps=steps, scheduler=lr_scheduler(optimizer, lr_schedule, steps, LR_SCHEDULES),
                      batch_size=batch_size, seed=seed, log_every=log_every,
                      checkpoint_every=checkpoint_every, progress=progress, extra_state=extra,
                      grad_clip=10.0, desc="mcmc ebm", kind=EBM_KIND, diverge_factor=None,
                      config=run.config if run is not None else None)
    return sampler, trainer.fit(resume=bool(run and run.resume))


START = ("buffer", "noise")


def sample_ebm(energy: Energy, sampler: PersistentLangevinSampler, n: int, cfg: MCMCConfig,
               rng: torch.Generator | None = None, start: str = "buffer", steps: int | None = None
               ) -> Tensor:
    """n samples by ``steps`` (default ``cfg.steps``) Langevin steps from ``start``:
    ``"buffer"`` continues replay-buffer chains (no re-initialisation; Du & Mordatch);
    ``"noise"`` runs short-run chains from U[0, 1] (Nijkamp et al.'s protocol)."""
    check_int("n", n)
    check_choice("start", start, START)
    steps = cfg.steps if steps is None else steps
    check_int("steps", steps)
    if start == "buffer":
        begin, _ = sampler.buffer.draw(n, rng)
    else:
        shape = tuple(sampler.buffer.samples.shape[1:])
        begin = uniform_init(*shape, low=0.0, high=1.0, dtype=sampler.buffer.samples.dtype)(n, rng)
    begin = begin.to(next(energy.parameters()).device)
    return langevin_sample(energy.free_energy, begin, steps=steps, step_size=cfg.step_size,
                           noise_std=cfg.noise_std, grad_clip=cfg.grad_clip, generator=rng,
                           projection=lambda v: v.clamp(0.0, 1.0))


def ebm_card(model_kwargs: dict, cfg: MCMCConfig) -> ModelCard:
    return ModelCard(model="mcmc_ebm", kwargs=dict(model_kwargs), mcmc=asdict(cfg))
