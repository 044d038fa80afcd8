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

from genoise._checks import check_embedding, check_finite, check_positive
from genoise.ssl.base import SSLMethod, SSLOutput, check_view_list, gather


def random_directions(dim: int, num_slices: int, *, seed: int = 0, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """M unit directions in R^D as columns of a (D, M) matrix, drawn from a seeded generator
    (use the step as seed so that every rank draws the same slices).

    Drawn in float32 (torch's float64 normal sampler is ~15× slower on CPU and the draw ran
    every step), normalised, then cast to ``dtype``.
    """
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    a = torch.randn(dim, num_slices, generator=g)
    return (a / a.norm(dim=0, keepdim=True)).to(device=device, dtype=dtype)


class _EppsPulley(torch.autograd.Function):
    """EP of every column with a hand-written backward that reuses the forward's cos/sin:

        EP_m = 2N Σ_t q_t [(C̄_mt − φ_t)² + S̄_mt²],   C̄_mt = mean_n cos(t x_nm), S̄ likewise,
        ∂EP_m/∂x_nm = 4 Σ_t q_t t [S̄_mt cos(t x_nm) − (C̄_mt − φ_t) sin(t x_nm)],

    with q_t = trapezoid weight × φ_t on the knots t ≥ 0. Autograd's version of the same
    graph makes ~12 passes over the (N, M, T) array; this makes 5 and two batched mat-vecs."""

    @staticmethod
    def forward(ctx, x: Tensor, t: Tensor, phi: Tensor, q: Tensor) -> Tensor:
        # layout (..., M, T, N), samples innermost, so the means and the mat-vecs run on
        # contiguous rows (the small transpose is copied first: elementwise ops keep their
        # input's strides, and a strided cos/sin would be copied again by the mat-vecs)
        xt = x.transpose(-1, -2).contiguous().unsqueeze(-2) * t.unsqueeze(-1)  # (..., M, T, N)
        cos, sin = torch.cos(xt), torch.sin(xt)
        c_dev, s_bar = cos.mean(-1) - phi, sin.mean(-1)                 # (..., M, T)
        ctx.save_for_backward(cos, sin, c_dev, s_bar, t * q)
        return 2.0 * x.shape[-2] * ((c_dev.square() + s_bar.square()) @ q)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        cos, sin, c_dev, s_bar, tq = ctx.saved_tensors
        g = 4.0 * grad.unsqueeze(-1)                                    # (..., M, 1)
        alpha, beta = (g * s_bar * tq).unsqueeze(-2), (g * c_dev * tq).unsqueeze(-2)  # (..., M, 1, T)
        grad_x = (alpha @ cos - beta @ sin).squeeze(-2)                 # (..., M, N): batched mat-vec
        return grad_x.transpose(-1, -2), None, None, None


def epps_pulley(x: Tensor, *, t_max: float = 5.0, num_points: int = 17) -> Tensor:
    """Epps–Pulley statistic of each column of ``x`` (N, M) — or of each (N, M) slab of a
    stack ``x`` (V, N, M) — against N(0, 1):
    N ∫_{−t_max}^{t_max} |φ̂(t) − e^{−t²/2}|² e^{−t²/2} dt, trapezoid rule on ``num_points``
    equally spaced knots (odd, so that 0 is a knot). Returns (M,) or (V, M).

    |φ̂ − φ|² = (mean cos(tx) − φ)² + (mean sin(tx))² is even in t, so only the knots t ≥ 0 are
    evaluated and the half-line integral is doubled (identical to the full symmetric grid).
    The gradient is hand-written (:class:`_EppsPulley`, checked against finite differences).
    """
    if x.dim() == 3:  # one finiteness pass over the stack, the batch-size rule per slab
        if x.shape[1] < 2:
            raise ValueError(f"x has batch size {x.shape[1]}; Epps-Pulley needs at least 2 samples")
        check_finite("x", x)
    else:
        check_embedding("x", x)
    check_positive("t_max", t_max)
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be an odd integer >= 3, got {num_points}")
    # knots t_k = kΔ, k = 1 … (num_points − 1)/2: the knot t = 0 contributes exactly 0 (cos 0 = 1 =
    # φ(0), sin 0 = 0) and is skipped; trapezoid weights Δ, the last one Δ/2
    t = torch.linspace(0.0, t_max, (num_points + 1) // 2, device=x.device, dtype=x.dtype)[1:]
    phi = torch.exp(-0.5 * t.square())
    weights = torch.full_like(t, float(t[0]))
    weights[-1] = 0.5 * weights[-1]
    return _EppsPulley.apply(x, t, phi, weights * phi)


def sigreg_loss(z: Tensor, *, num_slices: int = 256, seed: int = 0, t_max: float = 5.0,
                num_points: int = 17) -> Tensor:
    """SIGReg(z) = mean over ``num_slices`` random directions a of EP(z a). z: (N, D), or a
    stack of views (V, N, D) scored with the same directions (one draw, one batched
    evaluation) and averaged over views.

    Small (O(1)) for samples of N(0, I); grows like N for collapsed embeddings.
    """
    if z.dim() not in (2, 3):
        raise ValueError(f"z must be (N, D) or (V, N, D), got shape {tuple(z.shape)}")
    directions = random_directions(z.shape[-1], num_slices, seed=seed, device=z.device, dtype=z.dtype)
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
    regulariser = sigreg_loss(z, num_slices=num_slices, seed=seed)      # same slices for every view
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
