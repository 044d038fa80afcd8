"""The loss table as data: one :class:`LossSpec` per row, callable uniformly on discrete answers.

``LOSSES[name](energies (B, K), target (B,), **hyper)`` splits the energies of all K
answers into the correct one and the K − 1 incorrect ones (:func:`split_energies`) and
applies the loss, so an experiment can loop over the whole table::

    for name, spec in LOSSES.items():
        loss = spec(energies, target)

Margins follow LeCun et al., "A Tutorial on Energy-Based Learning" (2006), Table 1
(``LOSSES.md``): "none" (energy loss), "0", "m" (a margin hyper-parameter), ">0".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from genoise.energy.losses import (
    energy_loss,
    hinge_loss,
    info_nce_loss,
    log_loss,
    lvq2_loss,
    margin_loss,
    mce_loss,
    mee_loss,
    nce_loss,
    nll_loss,
    perceptron_loss,
    split_energies,
    square_exp_loss,
    square_square_loss,
)

MARGINS = ("none", "0", "m", ">0")
USES = ("correct", "most_offending", "all")


@dataclass(frozen=True)
class LossSpec:
    """One row of the loss table.

    Attributes
    ----------
    name : str
    fn : callable ``fn(energy_correct (B,), energy_contrastive (B, K), **hyper, reduction=...)``
    margin : {"none", "0", "m", ">0"}
        The margin the loss enforces between F(x, ŷ) and F(x, y).
    uses : {"correct", "most_offending", "all"}
        Which energies it needs: only the correct one, the most offending incorrect one
        (min over the contrastive set), or all contrastive answers.
    hyper : tuple of str
        Names of the loss's hyper-parameters (keyword arguments of ``fn``).
    note : str
    in_table : bool
        ``True`` for the ten rows of Table 1; ``False`` for the general margin loss and
        the group losses (InfoNCE, NCE).
    """

    name: str
    fn: Callable[..., Tensor]
    margin: str
    uses: str
    hyper: tuple[str, ...] = ()
    note: str = ""
    in_table: bool = True

    def __call__(self, energies: Tensor, target: Tensor, **hyper) -> Tensor:
        """Loss of energies (B, K) over K discrete answers with correct answers ``target`` (B,)."""
        energy_correct, energy_incorrect = split_energies(energies, target)
        return self.fn(energy_correct, energy_incorrect, **hyper)


def _nce_uniform_noise(energy_correct: Tensor, energy_contrastive: Tensor, nu: float | None = None, *,
                       reduction: str = "mean") -> Tensor:
    """NCE on discrete answers: the incorrect answers play the noise samples, q uniform over 𝒴."""
    k = 1 if energy_contrastive.ndim == 1 else energy_contrastive.shape[1]
    log_q = -math.log(k + 1)
    return nce_loss(energy_correct, energy_contrastive, torch.full_like(energy_correct, log_q),
                    torch.full_like(energy_contrastive, log_q), nu=nu, reduction=reduction)


LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in (
    LossSpec("energy", energy_loss, "none", "correct",
             note="collapses unless the architecture limits the low-energy volume"),
    LossSpec("perceptron", perceptron_loss, "0", "most_offending",
             note="F(y) − min over all answers, the correct one included"),
    LossSpec("hinge", hinge_loss, "m", "most_offending", hyper=("margin",)),
    LossSpec("log", log_loss, ">0", "most_offending", note="slide: ∞"),
    LossSpec("lvq2", lvq2_loss, "0", "most_offending", hyper=("saturation",)),
    LossSpec("mce", mce_loss, ">0", "most_offending"),
    LossSpec("square_square", square_square_loss, "m", "most_offending", hyper=("margin",),
             note="Chopra 2005 / Hadsell 2006 (DrLIM); assumes F >= 0"),
    LossSpec("square_exp", square_exp_loss, ">0", "most_offending", hyper=("beta",)),
    LossSpec("nll", nll_loss, ">0", "all", hyper=("beta",), note="NLL / MMI"),
    LossSpec("mee", mee_loss, ">0", "all", hyper=("beta",)),
    LossSpec("margin", margin_loss, "m", "all", hyper=("margin", "H"), in_table=False,
             note="general margin loss Σ_ŷ H(F(y), F(ŷ), m(y, ŷ))"),
    LossSpec("info_nce", info_nce_loss, ">0", "all", hyper=("temperature",), in_table=False,
             note="group loss; = NLL over the sampled set"),
    LossSpec("nce", _nce_uniform_noise, ">0", "all", hyper=("nu",), in_table=False,
             note="Gutmann & Hyvärinen 2010; here noise = the incorrect answers, q uniform over 𝒴"),
)}


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
