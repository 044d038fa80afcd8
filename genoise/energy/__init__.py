"""The energy core: ``Energy``, free energies, inference, the loss table, samplers."""

from genoise.energy.base import Energy, FunctionEnergy, tile_pairs
from genoise.energy.functional import free_energy_from_energies, gibbs, log_partition
from genoise.energy.infer import (
    exhaustive_argmin,
    gradient_minimize,
    infer,
    infer_latent,
    langevin_sample,
)

__all__ = [
    "Energy",
    "FunctionEnergy",
    "exhaustive_argmin",
    "free_energy_from_energies",
    "gibbs",
    "gradient_minimize",
    "infer",
    "infer_latent",
    "langevin_sample",
    "log_partition",
    "tile_pairs",
]
