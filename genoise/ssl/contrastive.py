"""Contrastive joint-embedding methods: push the energy of matching views down and the
energy of non-matching pairs up (LeCun et al. 2006, contrastive family).

* DrLIM (Hadsell, Chopra & LeCun, CVPR 2006): Siamese net, energy = Euclidean distance,
  square-square (or square-exp) loss on positive / negative pairs.
* SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020): InfoNCE ("NT-Xent") over the
  2B views of a batch, energy −cos/τ, τ = 0.5 for CIFAR in solo-learn/SimCLR's code
  (0.1 at large batch on ImageNet); we default to 0.2.
* MoCo v2 (Chen, Fan, Girshick & He, 2020): InfoNCE against a queue of keys from a
  momentum encoder (m = 0.99 here, 0.999 in the paper for ImageNet; τ = 0.2).

The InfoNCE / square-square / square-exp losses are the ones of the energy loss table
(:mod:`genoise.energy.losses`); here we only build the energies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_embedding, check_positive, check_views
from genoise.energy.losses import info_nce_loss, square_exp_loss, square_square_loss
from genoise.ssl.base import SSLMethod, SSLOutput, ema_update, frozen_copy, gather


# --------------------------------------------------------------------- functional
def drlim_loss(z_a: Tensor, z_b: Tensor, *, margin: float = 1.0, kind: str = "square-square",
               beta: float = 1.0, negatives: str = "hardest", normalize: bool = True) -> Tensor:
    """DrLIM pairwise loss with energy E = ‖z − z'‖₂ (Hadsell, Chopra & LeCun 2006):

        L = E(a_i, b_i)² + ([m − E(a_i, ŷ_i)]⁺)²     (square-square)
        L = E(a_i, b_i)² + β·exp(−E(a_i, ŷ_i))         (square-exp)

    Positive pairs are the two views of one image. The contrastive answer ŷ_i is, with
    ``negatives="hardest"``, the most offending one (LeCun et al. 2006): the view b_j,
    j ≠ i, of lowest energy in the batch; with ``"roll"``, DrLIM's random pairing
    b_{i−1} of the shuffled batch. ``normalize`` puts embeddings on the unit sphere so
    that the margin has a fixed scale (distances in [0, 2]). z_a, z_b: (B, D), B ≥ 2.
    """
    check_views(z_a, z_b)
    check_choice("kind", kind, ("square-square", "square-exp"))
    check_choice("negatives", negatives, ("hardest", "roll"))
    if normalize:
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    energy_correct = (z_a - z_b).norm(dim=1)
    if negatives == "roll":
        energy_contrastive = (z_a - z_b.roll(1, dims=0)).norm(dim=1)
    else:  # all other views; the loss takes the minimum (the most offending answer)
        batch = z_a.shape[0]
        distances = torch.cdist(z_a, z_b)
        off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=z_a.device)
        energy_contrastive = distances[off_diagonal].view(batch, batch - 1)
    if kind == "square-square":
        return square_square_loss(energy_correct, energy_contrastive, margin)
    return square_exp_loss(energy_correct, energy_contrastive, beta)


def nt_xent_loss(z_a: Tensor, z_b: Tensor, temperature: float = 0.2) -> Tensor:
    """SimCLR's NT-Xent: for each of the 2B views, the positive is its twin and the other
    2B − 2 views are contrastive answers; energy F = −cos(z_i, z_j)/τ and the group loss
    L_i = F(i, i⁺) + log Σ_{j≠i} exp(−F(i, j)) (= :func:`genoise.energy.losses.info_nce_loss`),
    averaged over all 2B anchors.

    z_a, z_b: (B, D), B ≥ 2. Gather across ranks first for the global-batch loss.
    """
    batch = check_views(z_a, z_b)
    check_positive("temperature", temperature)
    z = F.normalize(torch.cat([z_a, z_b], dim=0), dim=1)
    energy = -(z @ z.T) / temperature                                   # (2B, 2B)
    n = 2 * batch
    idx = torch.arange(n, device=z.device)
    partner = (idx + batch) % n
    energy_correct = energy[idx, partner]
    keep = torch.ones(n, n, dtype=torch.bool, device=z.device)
    keep[idx, idx] = False
    keep[idx, partner] = False
    energy_contrastive = energy[keep].view(n, n - 2)
    return info_nce_loss(energy_correct, energy_contrastive)


def moco_loss(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """MoCo InfoNCE: energy F = −q·k/τ (unit vectors), positive = the key of the same image,
    contrastive answers = the K queued keys. query, key: (B, D); queue: (K, D)."""
    check_views(query, key, min_batch=1, names=("query", "key"))
    check_embedding("queue", queue, min_batch=1)
    if queue.shape[1] != query.shape[1]:
        raise ValueError(f"queue has dimension {queue.shape[1]} but the embeddings have {query.shape[1]}")
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    q_scaled = q * (-1.0 / temperature)          # scale the (B, D) side, not the (B, K) product
    energy_correct = (q_scaled * k).sum(dim=1)
    energy_contrastive = q_scaled @ queue.T
    return info_nce_loss(energy_correct, energy_contrastive)


# --------------------------------------------------------------------- modules
class DrLIM(SSLMethod):
    """Siamese network trained with DrLIM's square-square (or square-exp) pair loss.

    Defaults: margin m = 1 on unit-normalised embeddings, the hardest in-batch negative.
    """

    name = "drlim"

    def __init__(self, backbone: nn.Module, *, margin: float = 1.0, kind: str = "square-square",
                 beta: float = 1.0, negatives: str = "hardest", normalize: bool = True, **kw) -> None:
        super().__init__(backbone, **kw)
        check_choice("kind", kind, ("square-square", "square-exp"))
        check_choice("negatives", negatives, ("hardest", "roll"))
        self.options = dict(margin=check_positive("margin", margin), kind=kind, beta=beta,
                            negatives=negatives, normalize=normalize)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        loss = drlim_loss(z_a, z_b, **self.options)
        return self.output(loss, h, z_a)


class SimCLR(SSLMethod):
    """SimCLR: 2-layer projector (2048 → 128 in the paper), NT-Xent over the global batch."""

    name = "simclr"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.2, **kw) -> None:
        super().__init__(backbone, **kw)
        self.temperature = check_positive("temperature", temperature)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, z_a, z_b = self.encode_pair(views)
        loss = nt_xent_loss(gather(z_a), gather(z_b), self.temperature)
        return self.output(loss, h, z_a)


class KeyQueue(nn.Module):
    """A FIFO queue of K keys (K, D) in a buffer with a write pointer (MoCo, He et al. 2020).

    ``enqueue(keys)`` writes the B new keys at ``ptr, ptr+1, …`` (mod K), overwriting the
    oldest ones, and advances the pointer by B. The queue starts filled with random unit
    vectors, as in the reference implementation.
    """

    def __init__(self, size: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("keys", F.normalize(torch.randn(size, dim, generator=g), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        size = self.keys.shape[0]
        n = keys.shape[0]
        if n > size:
            keys, n = keys[-size:], size
        slots = (int(self.ptr) + torch.arange(n, device=keys.device)) % size
        self.keys[slots] = keys.detach().to(self.keys.dtype)
        self.ptr.fill_((int(self.ptr) + n) % size)


class MoCo(SSLMethod):
    """MoCo v2: query encoder (backbone + 2-layer MLP projector), momentum key encoder
    (EMA, m = 0.99), queue of K = 4096 keys (65,536 in the paper), τ = 0.2; the loss is
    symmetrised over the two views and both views' keys are enqueued (gathered over ranks).
    """

    name = "moco"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.2, queue_size: int = 4096,
                 momentum: float = 0.99, seed: int = 0, **kw) -> None:
        super().__init__(backbone, **kw)
        self.temperature = check_positive("temperature", temperature)
        self.momentum = momentum
        self.key_backbone = frozen_copy(self.backbone)
        self.key_projector = frozen_copy(self.projector)
        self.queue = KeyQueue(queue_size, self.embed_dim, seed=seed)

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        h, q_a, q_b = self.encode_pair(views)
        batch = views[0].shape[0]
        with torch.no_grad():
            keys = F.normalize(self.key_projector(self.key_backbone(torch.cat(views[:2]))), dim=1)
        k_a, k_b = keys[:batch], keys[batch:]
        queue = self.queue.keys.clone().detach()
        tau = self.temperature
        loss = 0.5 * (moco_loss(q_a, k_b, queue, tau) + moco_loss(q_b, k_a, queue, tau))
        if self.training:
            self.queue.enqueue(gather(torch.cat([k_a, k_b])))
        return self.output(loss, h, q_a)

    def update(self, step: int, total_steps: int) -> None:
        ema_update(self.key_backbone, self.backbone, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
