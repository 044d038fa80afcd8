"""Joint-embedding self-supervised learning behind one surface: backbone → projector →
method loss. Switch method with one word: ``build_method("vicreg", backbone, ...)``.

Families (LeCun et al. 2006's ways of keeping the energy from collapsing):
contrastive (DrLIM, SimCLR, MoCo v2), distillation (BYOL, SimSiam), clustering (SwAV,
DeepCluster-v2), information maximisation (Barlow Twins, VICReg) and the Gaussian test
of LeJEPA (SIGReg). See ``docs/ssl.md``.
"""

from genoise.ssl.augment import PRESETS, AugmentConfig, ViewAugment
from genoise.ssl.backbones import make_backbone
from genoise.ssl.base import SSLMethod, SSLOutput, cosine_momentum, ema_update
from genoise.ssl.clustering import DeepClusterV2, SwAV, sinkhorn, spherical_kmeans, swav_loss
from genoise.ssl.contrastive import DrLIM, KeyQueue, MoCo, SimCLR, drlim_loss, moco_loss, nt_xent_loss
from genoise.ssl.distillation import BYOL, SimSiam, byol_loss, negative_cosine, simsiam_loss
from genoise.ssl.evaluate import (
    OnlineProbe,
    alignment,
    collapse_metrics,
    embedding_std,
    extract_features,
    fit_linear_probe,
    knn_accuracy,
    knn_predict,
    linear_probe,
    pca_plot,
    rankme,
    uniformity,
)
from genoise.ssl.infomax import (
    BarlowTwins,
    VICReg,
    barlow_twins_loss,
    covariance_loss,
    cross_correlation,
    invariance_loss,
    variance_loss,
    vicreg_loss,
)
from genoise.ssl.methods import FAMILIES, METHODS, build_from_config, build_method, method_option_names
from genoise.ssl.sigreg import LeJEPA, epps_pulley, lejepa_loss, random_directions, sigreg_loss

__all__ = [
    "BYOL",
    "FAMILIES",
    "METHODS",
    "PRESETS",
    "AugmentConfig",
    "BarlowTwins",
    "DeepClusterV2",
    "DrLIM",
    "KeyQueue",
    "LeJEPA",
    "MoCo",
    "OnlineProbe",
    "SSLMethod",
    "SSLOutput",
    "SimCLR",
    "SimSiam",
    "SwAV",
    "VICReg",
    "ViewAugment",
    "alignment",
    "barlow_twins_loss",
    "build_from_config",
    "build_method",
    "byol_loss",
    "collapse_metrics",
    "cosine_momentum",
    "covariance_loss",
    "cross_correlation",
    "drlim_loss",
    "ema_update",
    "embedding_std",
    "epps_pulley",
    "extract_features",
    "fit_linear_probe",
    "invariance_loss",
    "knn_accuracy",
    "knn_predict",
    "lejepa_loss",
    "linear_probe",
    "make_backbone",
    "method_option_names",
    "moco_loss",
    "negative_cosine",
    "nt_xent_loss",
    "pca_plot",
    "random_directions",
    "rankme",
    "sigreg_loss",
    "simsiam_loss",
    "sinkhorn",
    "spherical_kmeans",
    "swav_loss",
    "uniformity",
    "variance_loss",
    "vicreg_loss",
]
