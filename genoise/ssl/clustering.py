"""Quantisation / clustering methods: embeddings are pulled toward prototypes, and the
targets are cluster assignments that are forced to use every prototype (which prevents
collapse onto one code).

* SwAV (Caron et al., NeurIPS 2020): online codes from Sinkhorn-Knopp (3 iterations,
  ε = 0.05) on the scores of the global crops against L2-normalised prototypes (3,000
  on ImageNet); "swapped" prediction with a softmax at τ = 0.1 from every other crop,
  including multi-crop local views.
* DeepCluster-v2 (Caron et al. 2020, the SwAV paper's improved DeepCluster): spherical
  k-means on a memory bank of the previous epoch's embeddings gives targets; the
  normalised centroids act as a fixed classifier, cross-entropy at τ = 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_embedding, check_positive
from genoise.ssl.base import SSLMethod, SSLOutput, check_view_list, gather
from genoise.train.distributed import rank


# --------------------------------------------------------------------- functional
@torch.no_grad()
def sinkhorn(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """Sinkhorn-Knopp codes Q (B, K) for prototype scores (B, K) (SwAV, Alg. 1 / Cuturi 2013).

    Q = diag(u) exp(S/ε) diag(v) scaled so that every sample's row sums to 1 and every
    prototype's column sums to B/K (equipartition), alternating the two normalisations
    ``iterations`` times (the row normalisation comes last, so rows are exact). Gather the
    scores across ranks first for the global-batch codes.
    """
    check_embedding("scores", scores, min_batch=1)
    check_positive("epsilon", epsilon)
    logits = scores.float() / epsilon
    q = torch.exp(logits - logits.max()).T                              # (K, B)
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).T


def swav_loss(scores: list[Tensor], codes: list[Tensor], temperature: float = 0.1) -> Tensor:
    """Swapped prediction: L = mean over (i, v ≠ i) of −Σ_k q_{i,k} log softmax(s_v/τ)_k, where
    ``codes[i]`` (B, K) are the Sinkhorn codes of global crop i and ``scores[v]`` (B, K) are the
    prototype scores of crop v (every crop, global and local). Caron et al. 2020, eq. 1."""
    check_positive("temperature", temperature)
    total, terms = scores[0].new_zeros(()), 0
    for i, q in enumerate(codes):
        for v, s in enumerate(scores):
            if v == i:
                continue
            if s.shape != q.shape:
                raise ValueError(f"scores of crop {v} {tuple(s.shape)} do not match codes {tuple(q.shape)}")
            total = total - (q * F.log_softmax(s / temperature, dim=1)).sum(dim=1).mean()
            terms += 1
    return total / terms


@torch.no_grad()
def spherical_kmeans(x: Tensor, k: int, *, iterations: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    """k-means on the unit sphere (cosine similarity): returns unit centroids (k, D) and
    assignments (N,). Initialised from k distinct random points; an emptied cluster is
    re-seeded with a random point (as in DeepCluster-v2's reference code)."""
    check_embedding("x", x, min_batch=k)
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = F.normalize(x.float(), dim=1)
    centroids = x[torch.randperm(x.shape[0], generator=g)[:k].to(x.device)].clone()
    assign = (x @ centroids.T).argmax(dim=1)
    for _ in range(iterations):
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        if bool(empty.any()):
            refill = torch.randint(0, x.shape[0], (int(empty.sum()),), generator=g).to(x.device)
            sums[empty] = x[refill]
        centroids = F.normalize(sums, dim=1)
        assign = (x @ centroids.T).argmax(dim=1)
    return centroids, assign


# --------------------------------------------------------------------- modules
class _Prototypes(nn.Module):
    """K prototype vectors (K, D) as a bias-free linear layer; ``normalize_()`` projects them
    back on the unit sphere (SwAV normalises them before every step)."""

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        self.layer = nn.Linear(dim, count, bias=False)

    @torch.no_grad()
    def normalize_(self) -> None:
        self.layer.weight.copy_(F.normalize(self.layer.weight, dim=1))

    def forward(self, z: Tensor) -> Tensor:
        if z.shape[1] != self.layer.in_features:
            raise ValueError(f"projector output has {z.shape[1]} dims but the prototypes expect "
                             f"{self.layer.in_features}")
        return self.layer(F.normalize(z, dim=1))


class SwAV(SSLMethod):
    """SwAV with multi-crop: ``views[0:2]`` are the global crops (codes are computed on
    them), any further views are local crops (predictions only). Defaults: 300
    prototypes (3,000 on ImageNet), ε = 0.05, 3 Sinkhorn iterations, τ = 0.1."""

    name = "swav"

    def __init__(self, backbone: nn.Module, *, num_prototypes: int = 300, temperature: float = 0.1,
                 epsilon: float = 0.05, sinkhorn_iterations: int = 3, **kw) -> None:
        super().__init__(backbone, **kw)
        self.prototypes = _Prototypes(self.embed_dim, num_prototypes)
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        check_view_list(views)
        self.prototypes.normalize_()
        batch = views[0].shape[0]
        h, z = self.project(torch.cat(views[:2]))
        scores = list(self.prototypes(z).split(batch))
        if len(views) > 2:
            if any(v.shape != views[2].shape for v in views[2:]):
                raise ValueError("local crops must all have the same shape")
            scores += list(self.prototypes(self.project(torch.cat(views[2:]))[1]).split(batch))
        codes = []
        for s in scores[:2]:
            q = sinkhorn(gather(s.detach()), self.epsilon, self.iterations)
            codes.append(q[rank() * batch:(rank() + 1) * batch])
        loss = swav_loss(scores, codes, self.temperature)
        return self.output(loss, h[:batch], z[:batch])


class DeepClusterV2(SSLMethod):
    """DeepCluster-v2-style targets: a memory bank (N, D) of view-0 embeddings is filled
    during each epoch (by dataset ``index``); ``on_epoch_end`` runs spherical k-means on it
    and the normalised centroids become a fixed prototype classifier whose argmax on the
    bank gives each image's target for the next epoch. ``prepare`` fills the bank once
    before training. Loss: cross-entropy of softmax(z·C/τ), τ = 0.1, over both views."""

    name = "deepcluster"

    def __init__(self, backbone: nn.Module, *, num_prototypes: int = 100, temperature: float = 0.1,
                 kmeans_iterations: int = 10, seed: int = 0, **kw) -> None:
        super().__init__(backbone, **kw)
        self.num_prototypes, self.temperature = num_prototypes, temperature
        self.kmeans_iterations, self.seed = kmeans_iterations, seed
        self.register_buffer("centroids", F.normalize(torch.randn(num_prototypes, self.embed_dim), dim=1))
        self.register_buffer("bank", torch.zeros(0, self.embed_dim))
        self.register_buffer("targets", torch.zeros(0, dtype=torch.long))

    @torch.no_grad()
    def prepare(self, images: Tensor) -> None:
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        parts = [F.normalize(self.project(images[i:i + 512].to(device))[1], dim=1)
                 for i in range(0, images.shape[0], 512)]
        self.bank = torch.cat(parts)
        self.train(was_training)
        self._cluster()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The bank and targets are sized by the data set: take the checkpoint's sizes.
        for name in ("bank", "targets"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def _cluster(self) -> None:
        self.seed += 1
        self.centroids, self.targets = spherical_kmeans(self.bank, self.num_prototypes,
                                                        iterations=self.kmeans_iterations, seed=self.seed)

    def on_epoch_end(self, epoch: int) -> None:
        self._cluster()

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        if index is None:
            raise ValueError("DeepCluster-v2 needs the dataset index of every sample (forward(views, index))")
        if self.targets.numel() == 0:
            raise ValueError("DeepCluster-v2 has no cluster targets yet; call prepare(train_images) first")
        h, z_a, z_b = self.encode_pair(views)
        target = self.targets[index]
        logits = F.normalize(torch.cat([z_a, z_b]), dim=1) @ self.centroids.T / self.temperature
        loss = F.cross_entropy(logits, torch.cat([target, target]))
        if self.training:
            with torch.no_grad():
                all_index, all_z = gather(index), gather(F.normalize(z_a.detach(), dim=1))
                self.bank[all_index] = all_z
        return self.output(loss, h, z_a)
