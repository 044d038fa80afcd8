"""Video prediction beyond mean squared error (Mathieu, Couprie & LeCun, ICLR 2016).

- Predictors sharing one interface (:mod:`genoise.video.base`: ``context`` frames in,
  ``horizon`` frames out, recursive :func:`rollout`): the multi-scale generator and its
  multi-scale discriminator, a latent-variable predictor (a conditional VAE with latent
  dropout: several sharp futures), the usual Moving-MNIST baselines SimVP and ConvLSTM, and a
  dynamic filter network that moves the last frame by predicted per-pixel filters.
- Losses: ℓ2, ℓ1, the gradient difference loss, the adversarial losses
  (:mod:`genoise.video.losses`).
- Metrics per frame on whole frames or moving pixels: PSNR, SSIM, sharpness, summed
  MSE / MAE (:mod:`genoise.video.metrics`); the evaluation with the copy-last and mean-frame
  baselines and best-of-k (:mod:`genoise.video.evaluate`).

The data (Moving MNIST and its stochastic variant) is :mod:`genoise.data.moving_mnist`.
"""

from genoise.video.base import VideoPredictor, check_frames, rollout
from genoise.video.convlstm import ConvLSTMCell, ConvLSTMPredictor
from genoise.video.dfn import DynamicFilterPredictor, apply_filters
from genoise.video.evaluate import blank_frame, copy_last, evaluate, mean_frame
from genoise.video.latent import LatentVideoPredictor
from genoise.video.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    gradient_difference_loss,
    lp_loss,
)
from genoise.video.metrics import frame_mae, frame_mse, moving_mask, psnr, sharpness, ssim
from genoise.video.multiscale import MultiScaleDiscriminator, MultiScaleGenerator
from genoise.video.simvp import SimVP
from genoise.video.train import VideoLoss, load_predictor, train_predictor

__all__ = [
    "ConvLSTMCell",
    "ConvLSTMPredictor",
    "DynamicFilterPredictor",
    "LatentVideoPredictor",
    "MultiScaleDiscriminator",
    "MultiScaleGenerator",
    "SimVP",
    "VideoLoss",
    "VideoPredictor",
    "apply_filters",
    "blank_frame",
    "check_frames",
    "copy_last",
    "discriminator_loss",
    "evaluate",
    "frame_mae",
    "frame_mse",
    "generator_adversarial_loss",
    "gradient_difference_loss",
    "load_predictor",
    "lp_loss",
    "mean_frame",
    "moving_mask",
    "psnr",
    "rollout",
    "sharpness",
    "ssim",
    "train_predictor",
]
