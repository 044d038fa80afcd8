"""One word switches the method: ``build_method("vicreg", backbone, ...)``.

| family | name | class |
|---|---|---|
| contrastive | ``drlim``, ``simclr``, ``moco`` | :class:`DrLIM`, :class:`SimCLR`, :class:`MoCo` |
| distillation | ``byol``, ``simsiam`` | :class:`BYOL`, :class:`SimSiam` |
| clustering | ``swav``, ``deepcluster`` | :class:`SwAV`, :class:`DeepClusterV2` |
| information maximisation | ``barlowtwins``, ``vicreg`` | :class:`BarlowTwins`, :class:`VICReg` |
| Gaussian test | ``lejepa`` | :class:`LeJEPA` (SIGReg) |

Examples
--------
>>> backbone = make_backbone("conv", in_channels=1, image_size=28, out_dim=128)
>>> method = build_method("vicreg", backbone, proj_hidden=512, proj_dim=512)
>>> out = method([view_a, view_b])          # SSLOutput(loss, features, embedding, logs)
>>> out.loss.backward(); optimizer.step(); method.update(step, total_steps)

:func:`build_from_config` builds (method, augmentation) from a recipe configuration (the
keys of ``genoise/recipes/_ssl.yaml``); the recipes and the benchmarks share it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from genoise.ssl.augment import DATASET_PRESET, PRESETS, ViewAugment
from genoise.ssl.backbones import accepts_size, make_backbone
from genoise.ssl.base import SSLMethod
from genoise.ssl.clustering import DeepClusterV2, SwAV
from genoise.ssl.contrastive import DrLIM, MoCo, SimCLR
from genoise.ssl.distillation import BYOL, SimSiam
from genoise.ssl.infomax import BarlowTwins, VICReg
from genoise.ssl.sigreg import LeJEPA

METHODS: dict[str, type[SSLMethod]] = {
    "drlim": DrLIM,
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "swav": SwAV,
    "deepcluster": DeepClusterV2,
    "barlowtwins": BarlowTwins,
    "vicreg": VICReg,
    "lejepa": LeJEPA,
}

FAMILIES: dict[str, str] = {
    "drlim": "contrastive", "simclr": "contrastive", "moco": "contrastive",
    "byol": "distillation", "simsiam": "distillation",
    "swav": "clustering", "deepcluster": "clustering",
    "barlowtwins": "information maximisation", "vicreg": "information maximisation",
    "lejepa": "Gaussian test (SIGReg)",
}


# Projector sizes are recipe keys of their own (proj_hidden, proj_dim, proj_layers), so
# method_options may not set them a second time.
_PROJECTOR_KEYS = ("feature_dim", "projector", "proj_hidden", "proj_dim", "proj_layers")

# The configuration keys build_from_config reads (model, views and data set).
BUILD_KEYS = ("method", "dataset", "backbone", "out_dim", "width", "pool_grid", "proj_hidden",
              "proj_dim", "proj_layers", "method_options", "n_local")


def method_option_names(name: str) -> tuple[str, ...]:
    """The hyper-parameters of method ``name`` that ``method_options`` may set: the keyword
    arguments of its constructor, projector sizes excluded."""
    if name not in METHODS:
        raise ValueError(f"unknown SSL method {name!r}; available: {', '.join(METHODS)}")
    params = inspect.signature(METHODS[name].__init__).parameters.values()
    return tuple(p.name for p in params
                 if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _PROJECTOR_KEYS)


def check_method_options(name: str, options: Any) -> dict[str, Any]:
    """Raise ``ValueError`` unless ``options`` is a mapping of hyper-parameters of ``name``."""
    if not isinstance(options, Mapping):
        raise ValueError(f"method_options must be a mapping of {name}'s hyper-parameters "
                         f"(e.g. method_options={{{method_option_names(name)[0]}: ...}}), got {options!r}")
    allowed = method_option_names(name)
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise ValueError(f"method_options: unknown key(s) {', '.join(unknown)} for method {name!r}; "
                         f"allowed: {', '.join(allowed)}")
    return dict(options)


def build_method(name: str, backbone: nn.Module, **kwargs: Any) -> SSLMethod:
    """The method ``name`` (see :data:`METHODS`) around ``backbone``; ``kwargs`` go to its
    constructor (``feature_dim``, ``projector``/``proj_hidden``/``proj_dim``/``proj_layers``
    and the method's own hyper-parameters, whose defaults follow the papers)."""
    if name not in METHODS:
        raise ValueError(f"unknown SSL method {name!r}; available: {', '.join(METHODS)}")
    try:
        return METHODS[name](backbone, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad argument for method {name!r}: {err}") from err


def build_from_config(config: Mapping[str, Any], images: torch.Tensor) -> tuple[SSLMethod, ViewAugment]:
    """(method, augmentation) for a recipe configuration and images (N, C, S, S).

    Reads the keys :data:`BUILD_KEYS` (every one is required: the recipe YAML holds the
    defaults): the backbone (``backbone``, ``out_dim``, ``width``, ``pool_grid``), the
    projector (``proj_hidden``, ``proj_dim``, ``proj_layers``; -1 = the method's default
    depth), the method and its ``method_options``, and the views (the data set's
    augmentation preset, ``n_local`` multi-crop local views).
    """
    missing = [key for key in BUILD_KEYS if key not in config]
    if missing:
        raise ValueError(f"SSL configuration lacks key(s) {', '.join(missing)} "
                         "(the defaults are in genoise/recipes/_ssl.yaml)")
    if config["dataset"] not in DATASET_PRESET:
        raise ValueError(f"unknown data set {config['dataset']!r}; available: {', '.join(DATASET_PRESET)}")
    options = check_method_options(str(config["method"]), config["method_options"])
    channels, size = int(images.shape[1]), int(images.shape[2])
    backbone = make_backbone(config["backbone"], in_channels=channels, image_size=size,
                             out_dim=int(config["out_dim"]), width=int(config["width"]),
                             pool_grid=int(config["pool_grid"]))
    kwargs = {"proj_hidden": int(config["proj_hidden"]), "proj_dim": int(config["proj_dim"]), **options}
    if int(config["proj_layers"]) >= 0:
        kwargs["proj_layers"] = int(config["proj_layers"])
    method = build_method(str(config["method"]), backbone, **kwargs)
    preset = PRESETS[DATASET_PRESET[config["dataset"]]]
    local = preset.local_size if accepts_size(backbone, channels, preset.local_size) else size
    return method, ViewAugment(preset, n_local=int(config["n_local"]), local_size=local)
