"""GANs as energy-based models (EBGAN, WGAN-GP, DCGAN), an MCMC-trained image EBM, and
the scores of generated images (Fréchet distance in LeNet-5 features, confidence, mode
coverage, memorisation)."""

from genoise.generative.ebm import MCMCConfig, MCMCStep, sample_ebm, train_mcmc_ebm
from genoise.generative.gan import KINDS, GANLoss, GANStep, train_gan
from genoise.generative.losses import (
    dcgan_discriminator_loss,
    dcgan_generator_loss,
    ebgan_discriminator_loss,
    generator_energy_loss,
    gradient_penalty,
    pulling_away_term,
    r1_penalty,
    wgan_critic_loss,
)
from genoise.generative.metrics import (
    feature_classifier,
    frechet_distance,
    gaussian_stats,
    nearest_distance,
    sample_quality,
)
from genoise.generative.networks import (
    AutoEncoderEnergy,
    ConvGenerator,
    MLPGenerator,
    conv_autoencoder_energy,
    conv_critic,
    generate,
    mlp_autoencoder_energy,
    mlp_critic,
    standing_statistics,
)

__all__ = [
    "KINDS",
    "AutoEncoderEnergy",
    "ConvGenerator",
    "GANLoss",
    "GANStep",
    "MCMCConfig",
    "MCMCStep",
    "MLPGenerator",
    "conv_autoencoder_energy",
    "conv_critic",
    "dcgan_discriminator_loss",
    "dcgan_generator_loss",
    "ebgan_discriminator_loss",
    "feature_classifier",
    "frechet_distance",
    "gaussian_stats",
    "generate",
    "generator_energy_loss",
    "gradient_penalty",
    "mlp_autoencoder_energy",
    "mlp_critic",
    "nearest_distance",
    "pulling_away_term",
    "r1_penalty",
    "sample_ebm",
    "sample_quality",
    "standing_statistics",
    "train_gan",
    "train_mcmc_ebm",
    "wgan_critic_loss",
]
