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
"""

from __future__ import annotations

from typing import Any

from torch import nn

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
