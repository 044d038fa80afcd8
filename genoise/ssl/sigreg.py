"""SIGReg and LeJEPA: anti-collapse by testing that the embeddings look like an isotropic
Gaussian (Balestriero & LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning
Without the Heuristics", 2025).

Sketched Isotropic Gaussian Regularisation (SIGReg) projects the embeddings z (N, D) on
M random unit directions a_m (Cramér–Wold: a distribution is N(0, I) iff every 1-D
projection is N(0, 1)) and scores each projection with the Epps–Pulley statistic, the
weighted L2 distance between the empirical characteristic function and the standard
Gaussian's:

    EP_m = N ∫ |φ̂_m(t) − e^{−t²/2}|² w(t) dt,   φ̂_m(t) = (1/N) Σ_n exp(i t a_mᵀ z_n),
    w(t) = e^{−t²/2},

integrated by the trapezoid rule on ``num_points`` = 17 knots in [−5, 5] (the paper's
reference code); SIGReg = mean_m EP_m. The empirical characteristic function is a batch
mean, so under several processes we gather z across ranks (with gradients) first.

LeJEPA's loss on V views (the first ``num_global`` being global crops) is

    L = (1 − λ) · mean_v ‖z̄_global − z_v‖² / D + λ · mean_v SIGReg(z_v),   λ = 0.05,

the prediction term pulling every view toward the mean embedding of the global views.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genoise._checks import check_positive
from genoise.ssl._validate import check_embedding
from genoise.ssl.base import SSLMethod, SSLOutput, check_view_list, gather


def random_directions(dim: int, num_slices: int, *, seed: int = 0, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """M unit directions in R^D as columns of a (D, M) matrix, drawn from a seeded generator
    (use the step as seed so that every rank draws the same slices)."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    a = torch.randn(dim, num_slices, generator=g, dtype=torch.float64)
    return (a / a.norm(dim=0, keepdim=True)).to(device=device, dtype=dtype)


def epps_pulley(x: Tensor, *, t_max: float = 5.0, num_points: int = 17) -> Tensor:
    """Epps–Pulley statistic of each column of ``x`` (N, M) against N(0, 1):
    N ∫_{−t_max}^{t_max} |φ̂(t) − e^{−t²/2}|² e^{−t²/2} dt, trapezoid rule on ``num_points``
    equally spaced knots (odd, so that 0 is a knot). Returns (M,).

    |φ̂ − φ|² = (mean cos(tx) − φ)² + (mean sin(tx))² is even in t, so only the knots t ≥ 0 are
    evaluated and the half-line integral is doubled (identical to the full symmetric grid).
    """
    check_embedding("x", x)
    check_positive("t_max", t_max)
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be an odd integer >= 3, got {num_points}")
    t = torch.linspace(0.0, t_max, (num_points + 1) // 2, device=x.device, dtype=x.dtype)
    phi = torch.exp(-0.5 * t.square())
    xt = x.unsqueeze(-1) * t                                            # (N, M, T)
    err = (torch.cos(xt).mean(0) - phi).square() + torch.sin(xt).mean(0).square()
    return 2.0 * torch.trapezoid(err * phi, t, dim=-1) * x.shape[0]


def sigreg_loss(z: Tensor, *, num_slices: int = 256, seed: int = 0, t_max: float = 5.0,
                num_points: int = 17) -> Tensor:
    """SIGReg(z) = mean over ``num_slices`` random directions a of EP(z a). z: (N, D).

    Small (O(1)) for samples of N(0, I); grows like N for collapsed embeddings.
    """
    check_embedding("z", z)
    directions = random_directions(z.shape[1], num_slices, seed=seed, device=z.device, dtype=z.dtype)
    return epps_pulley(z @ directions, t_max=t_max, num_points=num_points).mean()


def lejepa_loss(views: list[Tensor], *, num_global: int = 2, lambda_sigreg: float = 0.05,
                num_slices: int = 256, seed: int = 0) -> Tensor:
    """LeJEPA: (1 − λ)·prediction + λ·SIGReg, see the module docstring. views: list of (B, D)."""
    if not 0.0 <= lambda_sigreg <= 1.0:
        raise ValueError(f"lambda_sigreg must be in [0, 1], got {lambda_sigreg}")
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) != 1:
        raise ValueError(f"view embeddings have different shapes: {sorted(shapes)}")
    z = torch.stack(views)                                              # (V, B, D)
    centre = z[:num_global].mean(0)
    prediction = (z - centre).square().mean()
    regulariser = torch.stack([sigreg_loss(v, num_slices=num_slices, seed=seed) for v in views]).mean()
    return (1 - lambda_sigreg) * prediction + lambda_sigreg * regulariser


class LeJEPA(SSLMethod):
    """LeJEPA: backbone → projector (3 layers, 2048 wide, 128-d in the paper's small runs) →
    :func:`lejepa_loss` with λ = 0.05 and 256 slices redrawn every step (seeded by the
    step so that ranks agree); the embeddings are gathered across ranks for SIGReg."""

    name = "lejepa"

    def __init__(self, backbone: nn.Module, *, lambda_sigreg: float = 0.05, num_slices: int = 256,
                 proj_layers: int = 3, **kw) -> None:
        super().__init__(backbone, proj_layers=proj_layers, **kw)
        self.lambda_sigreg, self.num_slices = lambda_sigreg, num_slices
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, views: list[Tensor], index: Tensor | None = None) -> SSLOutput:
        check_view_list(views)
        batch = views[0].shape[0]
        h, z = self.project(torch.cat(views[:2]))
        zs = list(z.split(batch))
        if len(views) > 2:
            zs += list(self.project(torch.cat(views[2:]))[1].split(batch))
        zs = [gather(v) for v in zs]
        loss = lejepa_loss(zs, lambda_sigreg=self.lambda_sigreg, num_slices=self.num_slices,
                           seed=int(self.step))
        return self.output(loss, h[:batch], z[:batch])

    def update(self, step: int, total_steps: int) -> None:
        self.step.fill_(step)
