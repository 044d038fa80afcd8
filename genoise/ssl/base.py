"""The one surface every joint-embedding method shares: backbone → projector → loss.

A joint-embedding architecture is an energy F(x, y) = C(Enc(x), Enc(y)) between two
views x, y of the same image (LeCun et al. 2006; LeCun 2022, "A Path Towards Autonomous
Machine Intelligence"). Methods differ only in how they keep that energy from being flat
(collapse): contrastive terms, a teacher, clustering, or statistics regularisers.

Every method is a plain ``nn.Module`` configured by constructor arguments with

* ``backbone`` (images → features h, (B, feature_dim)) and ``projector`` (h → z);
* ``forward(views, index=None) -> SSLOutput`` — the loss on a list of augmented views
  (B, C, H, W) each (``index`` (B,) = dataset indices, used by DeepCluster-v2);
* ``update(step, total_steps)`` — called after every optimiser step (EMA teachers);
* ``prepare(images)`` / ``on_epoch_end(epoch)`` — optional hooks (k-means targets).

This module holds the shared helpers: the output record, the projector/predictor
builders, the EMA update and its cosine schedule, and the distributed gather.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from genoise._checks import check_views
from genoise.nn.heads import projector as mlp_head
from genoise.train.distributed import all_gather_with_grad


@dataclass
class SSLOutput:
    """What a method's ``forward`` returns.

    loss : scalar tensor to minimise
    features : (B, feature_dim) backbone output of the first view, detached (online probe)
    embedding : (B, D) projector output of the first view, detached (collapse monitors)
    logs : extra scalars (loss terms) for ``metrics.jsonl``
    """

    loss: Tensor
    features: Tensor
    embedding: Tensor
    logs: dict[str, float] = field(default_factory=dict)


def gather(z: Tensor) -> Tensor:
    """All-gather ``z`` (B, ...) across ranks with gradients (identity in one process)."""
    return all_gather_with_grad(z)


def build_projector(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Module:
    """MLP ``in_dim → hidden → … → out_dim`` (Linear-BN-ReLU blocks, last layer linear);
    ``layers=0`` is the identity (no projector)."""
    if layers == 0:
        return nn.Identity()
    return mlp_head(in_dim, hidden, out_dim, layers=layers)


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's EMA schedule τ_k = final − (final − base)·(cos(πk/K) + 1)/2 (Grill et al. 2020,
    §3.2: τ_base = 0.996 increased to 1 over training)."""
    if total_steps <= 0:
        return final
    progress = min(max(step / total_steps, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """ξ ← τ ξ + (1 − τ) θ for every parameter; buffers (BN statistics) are copied."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with ``requires_grad=False`` (the momentum/teacher network)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def infer_feature_dim(backbone: nn.Module, feature_dim: int | None) -> int:
    """``feature_dim`` if given, else ``backbone.feature_dim`` or ``backbone.out_dim``."""
    if feature_dim is not None:
        return int(feature_dim)
    dim = getattr(backbone, "feature_dim", None) or getattr(backbone, "out_dim", None)
    if dim is None:
        raise ValueError(f"backbone {type(backbone).__name__} has no feature_dim/out_dim attribute; "
                         f"pass feature_dim=")
    return int(dim)


def check_view_list(views: list[Tensor] | tuple[Tensor, ...], minimum: int = 2) -> None:
    """At least ``minimum`` views, the first two of identical shape (B ≥ 2)."""
    if not isinstance(views, (list, tuple)) or len(views) < minimum:
        got = len(views) if isinstance(views, (list, tuple)) else type(views).__name__
        raise ValueError(f"expected a list of at least {minimum} views, got {got}")
    if views[0].shape != views[1].shape:
        raise ValueError(f"views have different shapes: {tuple(views[0].shape)} vs {tuple(views[1].shape)}")
    if views[0].shape[0] < 2:
        raise ValueError(f"batch size is {views[0].shape[0]}; self-supervised losses need at least 2 samples")


class SSLMethod(nn.Module):
    """Backbone + projector and the default hooks; each method adds its loss.

    Subclasses set ``self.embed_dim`` (what the loss expects) and implement ``forward``.
    """

    name = "ssl"

    def __init__(self, backbone: nn.Module, *, feature_dim: int | None = None,
                 projector: nn.Module | None = None, proj_hidden: int = 2048, proj_dim: int = 128,
                 proj_layers: int = 2) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = infer_feature_dim(backbone, feature_dim)
        if projector is None:
            projector = build_projector(self.feature_dim, proj_hidden, proj_dim, proj_layers)
            out = proj_dim if proj_layers > 0 else self.feature_dim
        else:
            out = getattr(projector, "out_dim", None)
            if out is None:
                raise ValueError(f"projector {type(projector).__name__} has no out_dim attribute; set it to "
                                 f"its output dimension")
        self.projector = projector
        self.embed_dim = out

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(h, z): backbone features and projector embedding of images x."""
        h = self.backbone(x)
        z = self.projector(h)
        if self.embed_dim is not None and z.shape[-1] != self.embed_dim:
            raise ValueError(f"projector output has {z.shape[-1]} dims but the {self.name} loss expects "
                             f"{self.embed_dim}")
        return h, z

    def encode_pair(self, views: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Run both views through backbone+projector in one batch: (h_a, z_a, z_b)."""
        check_view_list(views)
        batch = views[0].shape[0]
        h, z = self.project(torch.cat([views[0], views[1]], dim=0))
        check_views(z[:batch], z[batch:])
        return h[:batch], z[:batch], z[batch:]

    def update(self, step: int, total_steps: int) -> None:
        """Called after each optimiser step; default: nothing."""

    def prepare(self, images: Tensor) -> None:
        """Called once before training with the (un-augmented) training images."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called at the end of each epoch."""

    def output(self, loss: Tensor, h: Tensor, z: Tensor, **logs: float) -> SSLOutput:
        return SSLOutput(loss, h.detach(), z.detach(), {k: float(v) for k, v in logs.items()})
