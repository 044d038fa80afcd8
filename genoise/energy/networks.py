"""Energies built from neural networks.

* :class:`ScalarEnergy` — E(x, y) = net([x, y]) for a continuous y: the network maps the
  (concatenated) variables to one scalar per sample.
* :class:`ClassifierEnergy` — F(x, y) = -net(x)_y for a discrete y ∈ {0 … K-1}: the
  network's K outputs are negated energies, one per answer (LeCun et al. 2006, §2: a
  classifier whose "energy of label y" is minus its y-th output).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genoise._checks import check_ndim
from genoise.energy.base import Energy


class ScalarEnergy(Energy):
    """E(x, y) = net(cat(x, y)) for continuous y (x optional); ``net`` outputs (B, 1) or (B,)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        inputs = y if x is None else torch.cat([x.flatten(1), y.flatten(1)], dim=1)
        out = self.net(inputs)
        return out.reshape(out.shape[0], -1).sum(dim=1)


class ClassifierEnergy(Energy):
    """F(x, y) = -net(x)_y over K discrete answers.

    ``energies(x)`` returns the energy of every answer, shape (B, K) — what the loss table
    and :func:`genoise.energy.gibbs` take; ``energy(y, x)`` picks the one of label ``y``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def energies(self, x: Tensor) -> Tensor:
        """F(x, y) for every answer y: shape (B, K)."""
        return -self.net(x)

    def forward(self, y: Tensor | None = None, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """``model(y, x)`` → F(x, y) (B,); ``model(None, x)`` → all energies (B, K) (so that a
        DistributedDataParallel wrapper sees the call)."""
        if y is None:
            if x is None:
                raise ValueError("ClassifierEnergy needs x")
            return self.energies(x)
        return self.energy(y, x=x, z=z)

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        if x is None:
            raise ValueError("ClassifierEnergy needs x (it is a conditional model F(x, y))")
        check_ndim("y", y, 1)
        return self.energies(x).gather(1, y.long().unsqueeze(1)).squeeze(1)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """ŷ = argmin_y F(x, y) — exhaustive inference over the K labels."""
        return self.energies(x).argmin(dim=1)
