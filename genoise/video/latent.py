"""A latent-variable video predictor: several sharp futures instead of their blurred mean.

Energy view (LeCun's lectures): E(x, y, z) = ‖y − G(x, z)‖ with a latent z whose information
is limited, F(x, y) = min_z E. Trained as a conditional VAE (Kingma & Welling 2014; Babaeizadeh
et al. 2018, SV2P): a posterior q(z | x, y) = N(μ, σ²) sees the future, the predictor
G(x, z) is the multi-scale generator with z appended at every scale, and

    L = Σ_k L_p(Y_k, G_k(x, z)) + β KL(q(z | x, y) ‖ N(0, I)),   z = μ + σ ε.

Latent dropout (Henaff, Canziani & LeCun, ICLR 2019): with probability ``latent_dropout`` a
sample's z is drawn from the prior instead, so G must also predict well without the
posterior. At test time z ~ N(0, I): each draw is one possible future (best-of-k scores in
:mod:`genoise.video.evaluate`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.video.base import VideoPredictor, check_frames
from genoise.video.losses import lp_loss
from genoise.video.multiscale import MultiScaleGenerator, scale_targets


class LatentVideoPredictor(VideoPredictor):
    """G(x, z) (a :class:`MultiScaleGenerator` with ``latent`` channels) and q(z | x, y).

    ``forward(frames, z=None, generator=None)`` predicts with ``z`` (B, latent), or with a
    draw from the prior made with ``generator``."""

    def __init__(self, channels: int = 1, image_size: int = 64, context: int = 4, horizon: int = 1,
                 scales: int = 4, width: int = 32, latent: int = 8) -> None:
        super().__init__(channels, image_size, context, horizon, scales=scales, width=width, latent=latent)
        self.latent = check_int("latent", latent, min=1)
        self.generator = MultiScaleGenerator(channels, image_size, context, horizon, scales, width, latent)
        inputs = (context + horizon) * channels
        self.posterior = nn.Sequential(
            nn.Conv2d(inputs, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 2 * latent),
        )

    def prior_sample(self, batch: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        return torch.randn(batch, self.latent, generator=generator, device=device)

    def encode(self, frames: Tensor, future: Tensor) -> tuple[Tensor, Tensor]:
        """μ, log σ² of q(z | x, y), each (B, latent)."""
        self.check(frames)
        check_frames("LatentVideoPredictor (future)", future, self.horizon, self.channels, self.image_size)
        b = frames.shape[0]
        x = torch.cat([frames, future], 1).reshape(b, -1, self.image_size, self.image_size)
        mean, log_var = self.posterior(x).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 10)

    def forward(self, frames: Tensor, z: Tensor | None = None, generator: torch.Generator | None = None,
                scales: bool = False) -> Tensor | list[Tensor]:
        if z is None:
            z = self.prior_sample(frames.shape[0], generator, frames.device)
        return self.generator(frames, z, scales=scales)

    def loss(self, frames: Tensor, future: Tensor, generator: torch.Generator | None = None, *,
             p: float = 1.0, beta: float = 1e-3, latent_dropout: float = 0.1) -> dict[str, Tensor]:
        """The conditional-VAE loss above: ``{"loss", "reconstruction", "kl"}``."""
        mean, log_var = self.encode(frames, future)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        z = mean + (0.5 * log_var).exp() * noise
        dropped = torch.rand(mean.shape[0], 1, generator=generator, device=mean.device) < latent_dropout
        z = torch.where(dropped, torch.randn(mean.shape, generator=generator, device=mean.device), z)
        preds = self.generator(frames, z, scales=True)
        reconstruction = sum(lp_loss(y, target, p) for y, target in scale_targets(preds, future))
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        kl = (kl * (~dropped[:, 0])).mean()
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}
