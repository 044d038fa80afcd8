"""A latent-variable video predictor: several sharp futures instead of their blurred mean.

Energy view (LeCun's lectures): E(x, y, z) = ‖y − G(x, z)‖ with a latent z whose information
is limited, F(x, y) = min_z E. Trained as a conditional VAE (Kingma & Welling 2014; Babaeizadeh
et al. 2018, SV2P): a posterior q(z | x, y) = N(μ, σ²) sees the future, the predictor
G(x, z) is the multi-scale generator with z appended at every scale, and

    L = Σ_k L_p(Y_k, G_k(x, z)) + β KL(q(z | x, y) ‖ p(z | x)),   z = μ + σ ε,

with the prior p(z | x) = N(0, I) unless it is learned (below).

Latent dropout (Henaff, Canziani & LeCun, ICLR 2019): with probability ``latent_dropout`` a
sample's z is drawn from the prior instead, so G must also predict well without the
posterior. At test time z is drawn from the prior: each draw is one possible future (best-of-k
scores in :mod:`genoise.video.evaluate`).

The prior is N(0, I) (``prior="fixed"``, SVG-FP) or learned from the context frames
(``prior="learned"``, SVG-LP of Denton & Fergus, ICML 2018; the prior network of Sohn, Lee &
Yan's conditional VAE, NeurIPS 2015): p_ψ(z | x) = N(μ_ψ(x), σ_ψ²(x)), a network with the
posterior's layout that reads the context only, and the KL term becomes

    KL(q ‖ p_ψ) = ½ Σ [log σ_ψ² − log σ² + (σ² + (μ − μ_ψ)²) / σ_ψ² − 1],

which trains q and p_ψ towards each other: the prior learns where, given the past, the futures
the posterior encodes lie, so a draw from it is a draw of a likely future, not of noise the
decoder never saw. A sample whose z is dropped is drawn from p_ψ(z | x), and the
reconstruction's gradient reaches ψ through that draw (reparameterised).

``backbone`` picks G: ``"multiscale"`` (the paper's generator, z appended at every scale) or
``"dfn"`` (the dynamic filter network of :mod:`genoise.video.dfn`, z read by its filter network
at every step: a drawn future can only move the last frame's pixels, never redraw them).
With ``latent_map`` (``dfn`` only) z is a map (B, L, H/4, W/4), one latent per region of the
frame (SV2P's spatial latent), and q(z | x, y) a convolutional map of the same side; the KL
is summed over the map.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_int
from genoise.latent.regularizers import kl_divergence
from genoise.video.base import VideoPredictor, check_frames
from genoise.video.dfn import DynamicFilterPredictor
from genoise.video.multiscale import MultiScaleGenerator, scales_loss

BACKBONES = ("multiscale", "dfn")
PRIORS = ("fixed", "learned")


def gaussian_kl(mean: Tensor, log_var: Tensor, prior_mean: Tensor | None = None,
                prior_log_var: Tensor | None = None) -> Tensor:
    """KL(N(μ, σ²) ‖ N(μ_p, σ_p²)) summed over every dimension but the first (a vector or a map
    of z): (B,). ``prior_mean`` / ``prior_log_var`` ``None``: the standard normal
    (:func:`genoise.latent.regularizers.kl_divergence` on the flattened z)."""
    prior = [t.flatten(1) for t in (prior_mean, prior_log_var) if t is not None]
    return kl_divergence(mean.flatten(1), log_var.flatten(1), *prior)


def _gaussian_head(inputs: int, width: int, latent: int, latent_map: bool) -> nn.Sequential:
    """Frames (B, inputs, H, W) -> a mean and a log-variance of z, stacked on the channels: (B, 2L)
    for a vector z, (B, 2L, H/4, W/4) for a map."""
    down = [nn.Conv2d(inputs, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU()]
    if latent_map:  # a mean and a log-variance per region
        return nn.Sequential(*down, nn.Conv2d(2 * width, 2 * latent, 3, padding=1))
    return nn.Sequential(*down, nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 2 * latent))


class LatentVideoPredictor(VideoPredictor):
    """G(x, z) (a :class:`MultiScaleGenerator` with ``latent`` channels, or with
    ``backbone="dfn"`` a :class:`DynamicFilterPredictor` reading z) and q(z | x, y).

    ``forward(frames, z=None, generator=None)`` predicts with ``z`` (B, latent), or with a
    draw from the prior made with ``generator``. ``scales`` is the multi-scale generator's;
    ``hidden``, ``window`` and ``latent_map`` (z a map at a quarter of the frame's side) the
    dynamic filter network's; ``prior`` is ``"fixed"`` (N(0, I)) or ``"learned"``
    (p_ψ(z | x), the module's docstring)."""

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 4, horizon: int = 1,
                 scales: int = 4, width: int = 32, latent: int = 8, backbone: str = "multiscale",
                 hidden: int = 64, window: int = 3, latent_map: bool = False, prior: str = "fixed") -> None:
        check_choice("backbone", backbone, BACKBONES)
        check_choice("prior", prior, PRIORS)
        check_int("latent", latent, min=1)
        if latent_map and backbone != "dfn":
            raise ValueError(f"latent_map needs backbone='dfn', got backbone={backbone!r}")
        # the kwargs a checkpoint rebuilds the model from: each backbone's own
        extra: dict = ({"scales": scales} if backbone == "multiscale"
                       else {"backbone": backbone, "hidden": hidden, "window": window})
        if latent_map:
            extra["latent_map"] = True
        if prior == "learned":  # a fixed prior keeps the kwargs (and checkpoints) it had before the option
            extra["prior"] = prior
        super().__init__(channels, image_size, context, horizon, width=width, latent=latent, **extra)
        self.latent, self.backbone = latent, backbone
        self.generator: nn.Module
        if backbone == "multiscale":
            self.generator = MultiScaleGenerator(channels, image_size, context, horizon, scales, width,
                                                 latent)
        else:
            self.generator = DynamicFilterPredictor(channels, image_size, context, horizon, window=window,
                                                    width=width, hidden=hidden, latent=latent,
                                                    latent_map=latent_map)
        self.posterior = _gaussian_head((context + horizon) * channels, width, latent, latent_map)
        self.prior = (_gaussian_head(context * channels, width, latent, latent_map) if prior == "learned"
                      else None)
        side = self.generator.latent_side if backbone == "dfn" else ()
        self.latent_shape = (latent, *side)

    def prior_params(self, frames: Tensor) -> tuple[Tensor, Tensor] | None:
        """μ_ψ, log σ_ψ² of the learned prior p_ψ(z | x) for the context ``frames``, each shaped
        like z; ``None`` for the fixed prior N(0, I)."""
        if self.prior is None:
            return None
        self.check(frames)
        mean, log_var = self.prior(frames.flatten(1, 2)).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 10)

    def prior_sample(self, batch: int, generator: torch.Generator | None = None, device=None,
                     frames: Tensor | None = None) -> Tensor:
        """z from the prior: (batch, latent), or (batch, latent, H/4, W/4) with ``latent_map``.
        The learned prior needs the context ``frames`` it is conditioned on."""
        noise = torch.randn(batch, *self.latent_shape, generator=generator, device=device)
        if self.prior is None:
            return noise
        if frames is None:
            raise ValueError("a learned prior p(z | x) draws z from the context frames: pass frames=")
        mean, log_var = self.prior_params(frames)
        return mean + (0.5 * log_var).exp() * noise

    def encode(self, frames: Tensor, future: Tensor) -> tuple[Tensor, Tensor]:
        """μ, log σ² of q(z | x, y), each (B, latent) (or (B, latent, H/4, W/4))."""
        self.check(frames)
        check_frames("LatentVideoPredictor (future)", future, self.horizon, self.channels, self.image_size)
        x = torch.cat([frames, future], 1).flatten(1, 2)
        mean, log_var = self.posterior(x).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 10)

    def forward(self, frames: Tensor, z: Tensor | None = None, generator: torch.Generator | None = None,
                scales: bool = False) -> Tensor | list[Tensor]:
        if z is None:
            z = self.prior_sample(frames.shape[0], generator, frames.device, frames=frames)
        if self.backbone == "dfn":
            out = self.generator(frames, z)
            return [out] if scales else out
        return self.generator(frames, z, scales=scales)

    def loss(self, frames: Tensor, future: Tensor, generator: torch.Generator | None = None, *,
             p: float = 1.0, beta: float = 1e-3, latent_dropout: float = 0.1,
             reduction: str = "mean") -> dict[str, Tensor]:
        """The conditional-VAE loss above: ``{"loss", "reconstruction", "kl"}`` (``reduction``:
        the ℓp terms as means, or as per-sample sums divided by one sample's elements of the
        finest scale, which weighs the scales as the sums do)."""
        mean, log_var = self.encode(frames, future)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        z = mean + (0.5 * log_var).exp() * noise
        dropped = torch.rand(mean.shape[0], 1, generator=generator, device=mean.device) < latent_dropout
        prior = torch.randn(mean.shape, generator=generator, device=mean.device)
        learned = self.prior_params(frames)
        if learned is not None:
            prior = learned[0] + (0.5 * learned[1]).exp() * prior
        z = torch.where(dropped.view(-1, *[1] * (mean.ndim - 1)), prior, z)
        preds = self(frames, z, scales=True)
        reconstruction = scales_loss(preds, future, p, reduction=reduction)
        kl = gaussian_kl(mean, log_var, *(learned or (None, None)))
        kl = (kl * (~dropped[:, 0])).mean()
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}
