"""Latent-variable energies: the "architectural" and "regularised" ways to limit the volume
of low energy (LeCun et al. 2006; the SSL lectures' taxonomy).

Classical models (PCA, K-means, GMM) are both an :class:`~genoise.energy.Energy` and a
scikit-learn–style estimator; sparse coding comes with ISTA / FISTA / CoD solvers,
dictionary learning, LISTA / LCoD encoders and PSD; auto-encoders and the VAE share the
``energy`` / ``free_energy`` surface.
"""

from genoise.latent.admm import admm
from genoise.latent.autoencoders import (
    AutoEncoder,
    DenoisingAutoEncoder,
    MaskedAutoEncoder,
    fit_autoencoder,
)
from genoise.latent.backtracking import backtracking_fista
from genoise.latent.dictionary import DictionaryLearner, SparseCoder
from genoise.latent.gmm import GaussianMixture
from genoise.latent.ista import (
    coordinate_descent,
    fista,
    ista,
    lipschitz_constant,
    soft_threshold,
    sparse_coding_objective,
    sparse_encode,
)
from genoise.latent.kmeans import KMeans, kmeans_plusplus
from genoise.latent.lista import LISTA, LCoD, code_prediction_error, solver_error_curves, train_encoder
from genoise.latent.pca import PCA
from genoise.latent.psd import PSD
from genoise.latent.regularizers import kl_divergence, l1_penalty, one_hot_penalty, reparameterize
from genoise.latent.sparse_coding import SparseCodingEnergy
from genoise.latent.vae import VAE

__all__ = [
    "LISTA",
    "PCA",
    "PSD",
    "VAE",
    "AutoEncoder",
    "DenoisingAutoEncoder",
    "DictionaryLearner",
    "GaussianMixture",
    "KMeans",
    "LCoD",
    "MaskedAutoEncoder",
    "SparseCoder",
    "SparseCodingEnergy",
    "admm",
    "backtracking_fista",
    "code_prediction_error",
    "coordinate_descent",
    "fista",
    "fit_autoencoder",
    "ista",
    "kl_divergence",
    "kmeans_plusplus",
    "l1_penalty",
    "lipschitz_constant",
    "one_hot_penalty",
    "reparameterize",
    "soft_threshold",
    "solver_error_curves",
    "sparse_coding_objective",
    "sparse_encode",
    "train_encoder",
]
