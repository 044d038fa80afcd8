"""The energy core: ``Energy``, free energies, inference, the loss table, samplers
(Langevin, HMC, Gibbs), contrastive divergence, score matching and group losses."""

from genoise.energy.base import Energy, FunctionEnergy, tile_pairs
from genoise.energy.contrastive_divergence import (
    ContrastiveDivergence,
    contrastive_divergence_loss,
    gibbs_binary_sample,
)
from genoise.energy.functional import free_energy_from_energies, gibbs, log_partition
from genoise.energy.hmc import DualAveraging, HMCResult, PersistentHMCSampler, hmc_sample
from genoise.energy.infer import (
    exhaustive_argmin,
    gradient_minimize,
    infer,
    infer_latent,
    langevin_sample,
)
from genoise.energy.losses import (
    MostOffending,
    energy_loss,
    hinge_loss,
    info_nce_loss,
    log_loss,
    lvq2_loss,
    margin_loss,
    mce_loss,
    mee_loss,
    most_offending,
    nce_loss,
    nll_loss,
    perceptron_loss,
    split_energies,
    square_exp_loss,
    square_square_loss,
)
from genoise.energy.nca import nca_loss, pair_energies
from genoise.energy.networks import ClassifierEnergy, ScalarEnergy
from genoise.energy.registry import LOSSES, LossSpec, get_loss
from genoise.energy.samplers import (
    MaskedCorruption,
    PersistentLangevinSampler,
    ReplayBuffer,
    gaussian_corruption,
    mask_corruption,
    uniform_init,
)
from genoise.energy.score_matching import (
    denoising_score_matching_loss,
    explicit_score_matching_loss,
    ratio_matching_loss,
    sliced_score_matching_loss,
)

__all__ = [
    "LOSSES",
    "ClassifierEnergy",
    "ContrastiveDivergence",
    "DualAveraging",
    "Energy",
    "FunctionEnergy",
    "HMCResult",
    "LossSpec",
    "MaskedCorruption",
    "MostOffending",
    "PersistentHMCSampler",
    "PersistentLangevinSampler",
    "ReplayBuffer",
    "ScalarEnergy",
    "contrastive_divergence_loss",
    "denoising_score_matching_loss",
    "energy_loss",
    "exhaustive_argmin",
    "explicit_score_matching_loss",
    "free_energy_from_energies",
    "gaussian_corruption",
    "get_loss",
    "gibbs",
    "gibbs_binary_sample",
    "gradient_minimize",
    "hinge_loss",
    "hmc_sample",
    "infer",
    "infer_latent",
    "info_nce_loss",
    "langevin_sample",
    "log_loss",
    "log_partition",
    "lvq2_loss",
    "margin_loss",
    "mask_corruption",
    "mce_loss",
    "mee_loss",
    "most_offending",
    "nca_loss",
    "nce_loss",
    "nll_loss",
    "pair_energies",
    "perceptron_loss",
    "ratio_matching_loss",
    "sliced_score_matching_loss",
    "split_energies",
    "square_exp_loss",
    "square_square_loss",
    "tile_pairs",
    "uniform_init",
]
