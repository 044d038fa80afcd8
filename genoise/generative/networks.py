"""Generators and discriminators-as-energies for GANs read as energy-based models.

In LeCun's taxonomy a GAN is a contrastive method: the discriminator is an energy
E(y), low on data, and the generator G(z) learns to produce the contrastive samples
whose energy the discriminator pushes up ("GANs are contrastive methods"; Zhao,
Mathieu & LeCun, "Energy-based Generative Adversarial Network", ICLR 2017). So every
discriminator here is an :class:`~genoise.energy.Energy` (unconditional, E(y) of shape
(B,)) and ``infer``, ``gibbs`` and the landscape plots work on it:

* :class:`AutoEncoderEnergy` — EBGAN: E(y) = (1/D) ‖Dec(Enc(y)) − y‖², the
  reconstruction error of an auto-encoder; :meth:`AutoEncoderEnergy.embed` gives the
  code Enc(y) that the pulling-away term decorrelates.
* a critic / classifier network as :class:`~genoise.energy.ScalarEnergy` — WGAN-GP
  (E = −critic) and DCGAN (E = −logit, so D(y) = sigmoid(−E(y))).

The convolutional networks follow DCGAN (Radford, Metz & Chintala 2016): a linear map
from z to a (4w, s/4, s/4) tensor, two stride-2 transposed convolutions with batch
normalisation and ReLU, a sigmoid to images in [0, 1]; discriminators are two stride-2
4×4 convolutions with LeakyReLU(0.2) and no normalisation (the gradient penalty of
WGAN-GP is per sample, which batch normalisation would break).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

from genoise._checks import check_choice, check_int
from genoise.energy.base import Energy
from genoise.energy.networks import ScalarEnergy
from genoise.nn import MLP


def _check_size(image_size: int) -> int:
    check_int("image_size", image_size, min=4)
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (two stride-2 layers), got {image_size}")
    return image_size


class ConvGenerator(nn.Module):
    """G(z): (B, latent_dim) → images (B, channels, s, s) in [0, 1] (DCGAN layout, width w)."""

    def __init__(self, latent_dim: int = 64, image_size: int = 28, channels: int = 1,
                 width: int = 16) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.image_size, self.channels = _check_size(image_size), check_int("channels", channels)
        self.width = check_int("width", width)
        side, w = image_size // 4, width
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 4 * w * side * side), nn.Unflatten(1, (4 * w, side, side)),
            nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, channels, 4, 2, 1), nn.Sigmoid())

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.channels, self.image_size, self.image_size)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class MLPGenerator(nn.Module):
    """G(z): (B, latent_dim) → (B, out_dim), an MLP (2-D toys)."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.latent_dim, self.out_dim = check_int("latent_dim", latent_dim), check_int("out_dim", out_dim)
        self.net = MLP(latent_dim, list(hidden), out_dim, activation="relu")

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.out_dim,)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU}


def conv_trunk(image_size: int, channels: int, width: int, out_dim: int,
               activation: str = "leaky_relu") -> nn.Sequential:
    """Two stride-2 4×4 convolutions and a linear map to ``out_dim``; ``activation`` is
    DCGAN's LeakyReLU(0.2) (``"leaky_relu"``) or SiLU / swish, x·σ(x) (``"silu"``), whose
    gradient is continuous in the input (the smooth energies that image EBMs sample by
    Langevin dynamics use it: Du & Mordatch 2019; Du et al. 2021)."""
    side = _check_size(image_size) // 4
    act = ACTIVATIONS[check_choice("activation", activation, tuple(ACTIVATIONS))]
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), act(),
        nn.Conv2d(width, 2 * width, 4, 2, 1), act(),
        nn.Flatten(), nn.Linear(2 * width * side * side, out_dim))


def conv_critic(image_size: int = 28, channels: int = 1, width: int = 16,
                activation: str = "leaky_relu") -> ScalarEnergy:
    """A convolutional critic / classifier as an energy: E(y) = net(y), (B,)
    (:func:`conv_trunk` with one output)."""
    return ScalarEnergy(conv_trunk(image_size, channels, width, 1, activation))


def mlp_critic(in_dim: int = 2, hidden: Sequence[int] = (64, 64, 64)) -> ScalarEnergy:
    """An MLP critic as an energy (2-D toys): E(y) = net(y), (B,)."""
    return ScalarEnergy(MLP(in_dim, list(hidden), 1, activation="silu"))


class AutoEncoderEnergy(Energy):
    """EBGAN's discriminator (Zhao, Mathieu & LeCun 2017, §2.3): an auto-encoder whose
    reconstruction error is the energy,

        E(y) = (1/D) ‖Dec(Enc(y)) − y‖²,     D = number of values per sample.

    Parameters
    ----------
    encoder : nn.Module   (B, *y_shape) → code (B, ...)
    decoder : nn.Module   code → (B, *y_shape)
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def embed(self, y: Tensor) -> Tensor:
        """The code Enc(y), flattened to (B, d) (the pulling-away term acts on it)."""
        return self.encoder(y).flatten(1)

    def reconstruct(self, y: Tensor) -> Tensor:
        return self.decoder(self.encoder(y)).reshape(y.shape)

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        if x is not None:
            raise ValueError("AutoEncoderEnergy is unconditional: E(y), x must be None")
        return (self.reconstruct(y) - y).pow(2).flatten(1).mean(1)


class _ConvDecoder(nn.Module):
    def __init__(self, code: int, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        side = image_size // 4
        self.net = nn.Sequential(
            nn.Linear(code, 2 * width * side * side), nn.Unflatten(1, (2 * width, side, side)), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1))

    def forward(self, code: Tensor) -> Tensor:
        return self.net(code)


def conv_autoencoder_energy(image_size: int = 28, channels: int = 1, width: int = 16,
                            code: int = 32) -> AutoEncoderEnergy:
    """EBGAN's convolutional auto-encoder discriminator (encoder = :func:`conv_trunk`)."""
    check_int("code", code)
    return AutoEncoderEnergy(conv_trunk(image_size, channels, width, code),
                             _ConvDecoder(code, image_size, channels, width))


def mlp_autoencoder_energy(in_dim: int = 2, hidden: Sequence[int] = (64, 64), code: int = 8
                           ) -> AutoEncoderEnergy:
    """An MLP auto-encoder energy (2-D toys)."""
    return AutoEncoderEnergy(MLP(in_dim, list(hidden), code, activation="silu"),
                             MLP(code, list(hidden)[::-1], in_dim, activation="silu"))


@torch.no_grad()
def generate(generator: nn.Module, n: int, rng: torch.Generator | None = None,
             batch_size: int = 1000) -> Tensor:
    """n samples G(z), z ~ N(0, I), drawn in eval mode in chunks of ``batch_size``."""
    check_int("n", n)
    param = next(generator.parameters())
    was_training = generator.training
    generator.eval()
    try:
        chunks = []
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            z = torch.randn(size, generator.latent_dim, generator=rng,
                            device=rng.device if rng is not None else param.device)
            chunks.append(generator(z.to(param.device)))
        return torch.cat(chunks)
    finally:
        generator.train(was_training)


@torch.no_grad()
def standing_statistics(generator: nn.Module, batches: int = 40, batch_size: int = 256,
                        seed: int = 0) -> nn.Module:
    """Recompute the batch-norm statistics of ``generator`` from its own activations on
    ``batches`` × ``batch_size`` draws z ~ N(0, I) (cumulative averages, torch's
    :func:`~torch.optim.swa_utils.update_bn`), in place; returned in eval mode.

    An average of a generator's weights (:mod:`genoise.train.ema`) carries the running
    statistics of the last weights, which do not match its own activations; BigGAN's
    "standing statistics" (Brock et al. 2019, App. C) recompute them the same way. Seeded:
    the same weights give the same statistics."""
    check_int("batches", batches)
    check_int("batch_size", batch_size)
    param = next(generator.parameters())
    rng = torch.Generator().manual_seed(seed)
    draws = [torch.randn(batch_size, generator.latent_dim, generator=rng).to(param.device)
             for _ in range(batches)]
    update_bn(draws, generator)
    return generator.eval()
