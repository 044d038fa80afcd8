"""A committee of independently trained JEPAs, planned through as one model.

A planner that minimises a cost through one learned model finds the model's errors: in
Two Rooms, a predictor that lets the dot walk through the wall makes the straight line the
cheapest plan (docs/jepa.md). Models trained from other seeds make other errors, so a plan
that is cheap under *every* member is less likely to exploit any one of them — the same
idea as the uncertainty cost of Henaff, Canziani & LeCun (ICLR 2019), where the planner is
kept where the members of a dropout ensemble agree, and as the ensembles of PETS (Chua et
al., NeurIPS 2018). Each member keeps its own latent space; the committee's state is the
concatenation of the members' states, and its representation the concatenation of their
representations scaled by 1/√K, so the latent planning cost becomes

    ‖ẑ_t − z_g‖ = ( (1/K) Σ_k ‖ẑ^k_t − z^k_g‖² )^{1/2},

the root mean square of the members' distances to the goal. The probe of the committee is
the mean of the members' probes (each reading its own slice).

The committee has the methods the planners and the diagnostics use (``encode``,
``represent``, ``step``, ``unroll``, ``probe``, ``config``), so
:class:`~genoise.world.latent_planning.LatentPlanner` and
:func:`~genoise.world.jepa_diagnostics.wall_hallucination` take it as they take one JEPA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genoise.world.jepa import ActionConditionedJEPA, JEPAConfig, map_side


def state_size(config: JEPAConfig) -> int:
    """Width of a JEPA's predictor state: D for the ``mlp`` and ``gru`` predictors, the
    flattened C × h × w map for ``conv``."""
    if config.predictor == "conv":
        return config.map_channels * map_side(config.image_size) ** 2
    return config.dim


class JEPACommittee(nn.Module):
    """K ≥ 2 trained :class:`ActionConditionedJEPA` of the same image size, planned as one."""

    def __init__(self, members: Sequence[ActionConditionedJEPA]) -> None:
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        sizes = {m.config.image_size for m in members}
        if len(sizes) > 1:
            raise ValueError(f"committee members were trained on different image sizes {sorted(sizes)}")
        self.members = nn.ModuleList(members)
        self.config = members[0].config
        self.states = [state_size(m.config) for m in members]
        self.dims = [m.config.dim for m in members]
        self.scale = 1.0 / math.sqrt(len(members))

    def encode(self, observations: Tensor) -> Tensor:
        """(..., C, S, S) → (..., Σ_k state_k): the members' states, concatenated."""
        return torch.cat([m.encode(observations) for m in self.members], -1)

    def _split(self, x: Tensor, sizes: list[int], what: str) -> tuple[Tensor, ...]:
        if x.shape[-1] != sum(sizes):
            raise ValueError(f"committee {what} has width {x.shape[-1]}, expected {sum(sizes)}")
        return torch.split(x, sizes, -1)

    def represent(self, state: Tensor) -> Tensor:
        """(..., Σ state_k) → (..., Σ D_k): the members' representations, concatenated and
        scaled by 1/√K (so a Euclidean distance is the RMS of the members' distances)."""
        parts = self._split(state, self.states, "state")
        return torch.cat([m.represent(s) for m, s in zip(self.members, parts, strict=True)], -1) * self.scale

    def step(self, z: Tensor, action: Tensor) -> Tensor:
        """One prediction step of every member on its own slice of z (..., Σ state_k)."""
        parts = self._split(z, self.states, "state")
        return torch.cat([m.step(s, action) for m, s in zip(self.members, parts, strict=True)], -1)

    def unroll(self, z0: Tensor, actions: Tensor) -> Tensor:
        """Every member unrolls its own slice of z0 (..., Σ state_k) under the same actions
        (..., H, A) → (..., H, Σ state_k)."""
        parts = self._split(z0, self.states, "state")
        return torch.cat([m.unroll(s, actions) for m, s in zip(self.members, parts, strict=True)], -1)

    def probe(self, z: Tensor) -> Tensor:
        """The mean of the members' probes, each on its own slice of a committee
        representation (..., Σ D_k) → (..., 2), normalised positions."""
        parts = self._split(z, self.dims, "representation")
        decoded = [m.probe(p / self.scale) for m, p in zip(self.members, parts, strict=True)]
        return torch.stack(decoded).mean(0)
