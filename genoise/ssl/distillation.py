"""Distillation methods: an online network predicts a target network's embedding of the
other view; collapse is avoided architecturally (predictor + stop-gradient / EMA
teacher), with no negatives.

* BYOL (Grill et al., NeurIPS 2020): target = EMA of the online backbone+projector,
  τ from 0.996 to 1 with a cosine schedule; projector 4096 → 256 and predictor
  4096 → 256 in the paper; loss 2 − 2·cos(p, z') symmetrised.
* SimSiam (Chen & He, CVPR 2021): the target is the same network with stop-gradient;
  3-layer projector with BN on the output, bottleneck predictor (2048 → 512 → 2048);
  loss −cos(p, sg(z')) symmetrised and halved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_views
from genoise.ssl.base import SSLMethod, SSLOutput, build_projector, cosine_momentum, ema_update, frozen_copy


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """D(p, z) = −mean_b cos(p_b, sg(z_b)) (SimSiam eq. 1; BYOL's loss is 2 + 2·D).
    p, z: (B, D); ``z`` is detached (stop-gradient)."""
    check_views(p, z, min_batch=1, names=("prediction", "target"))
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def byol_loss(p_a: Tensor, p_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """Symmetrised BYOL loss ‖p̄_a − z̄'_b‖² + ‖p̄_b − z̄'_a‖² = 2 − 2cos + 2 − 2cos, averaged
    over the batch (Grill et al. 2020, eq. 2); z are the target projections."""
    return (2 + 2 * negative_cosine(p_a, z_b)) + (2 + 2 * negative_cosine(p_b, z_a))


def simsiam_loss(p_a: Tensor, p_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """L = D(p_a, z_b)/2 + D(p_b, z_a)/2 (Chen & He 2021, eq. 3 with stop-gradient)."""
    return 0.5 * negative_cosine(p_a, z_b) + 0.5 * negative_cosine(p_b, z_a)


class BYOL(SSLMethod):
    """BYOL: online backbone → projector → predictor; target = EMA(backbone, projector).

    Parameters: ``base_momentum`` τ_base = 0.996 (raised to 1 by :func:`cosine_momentum`
    over ``total_steps``), ``pred_hidden`` predictor width (4096 in the paper).
    """

    name = "byol"

    def __init__(self, backbone: nn.Module, *, base_momentum: float = 0.996, pred_hidden: int = 2048,
                 proj_dim: int = 256, **kw) -> None:
        super().__init__(backbone, proj_dim=proj_dim, **kw)
        self.base_momentum = base_momentum
        self.momentum = base_momentum
        self.predictor = build_projector(self.embed_dim, pred_hidden, self.embed_dim, 2)
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        batch = z_a.shape[0]
        p = self.predictor(torch.cat([z_a, z_b]))
        with torch.no_grad():
            t = self.target_projector(self.target_backbone(torch.cat(views[:2])))
        loss = byol_loss(p[:batch], p[batch:], t[:batch], t[batch:])
        return self.output(loss, h, z_a, momentum=self.momentum)

    def update(self, step: int, total_steps: int) -> None:
        self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        ema_update(self.target_backbone, self.backbone, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)


class SimSiam(SSLMethod):
    """SimSiam: projector (3 layers, BN on the output) + bottleneck predictor; stop-gradient."""

    name = "simsiam"

    def __init__(self, backbone: nn.Module, *, proj_hidden: int = 2048, proj_dim: int = 2048,
                 proj_layers: int = 3, pred_hidden: int = 512, **kw) -> None:
        super().__init__(backbone, proj_hidden=proj_hidden, proj_dim=proj_dim, proj_layers=proj_layers, **kw)
        if proj_layers > 0 and kw.get("projector") is None:
            self.projector = nn.Sequential(self.projector, nn.BatchNorm1d(proj_dim, affine=False))
        self.predictor = build_projector(self.embed_dim, pred_hidden, self.embed_dim, 2)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        batch = z_a.shape[0]
        p = self.predictor(torch.cat([z_a, z_b]))
        loss = simsiam_loss(p[:batch], p[batch:], z_a, z_b)
        return self.output(loss, h, z_a)
