"""Sparse inference by ADMM with one cached factorisation for every code, and a certified stop.

The lasso P(z) = ½‖y − W_d z‖² + λ‖z‖₁ is split as min ½‖y − W_d x‖² + λ‖u‖₁ s.t. x = u
and solved by the alternating direction method of multipliers in scaled form, with
over-relaxation α (Boyd, Parikh, Chu, Peleato & Eckstein, "Distributed Optimization and
Statistical Learning via the Alternating Direction Method of Multipliers", Found. Trends
Mach. Learn. 2011, §3.4.3 and §6.4):

    x⁺ = (G + ρI)⁻¹ (W_dᵀy + ρ(u − v)),        G = W_dᵀW_d,
    x̂ = α x⁺ + (1 − α) u,
    u⁺ = h_{λ/ρ}(x̂ + v),                       h_θ the soft threshold,
    v⁺ = v + x̂ − u⁺.

Why it is fast here: the quadratic step solves with G exactly, so the correlated atoms that
make G ill-conditioned (a dictionary learned on MNIST: eigenvalues from 1e-3 to 41) do not
slow it down as they slow FISTA, whose step is bounded by 1/λ_max(G); and M = (G + ρI)⁻¹ is
the same K×K matrix for every code, so one inverse serves the whole batch and an iteration is
one (n, K)×(K, K) product, as in FISTA. With p = x̂ + v kept instead of v, an iteration is

    x⁺ = W_dᵀy M + ρ (2u − p) M,   p⁺ = p + α(x⁺ − u),   u⁺ = h_{λ/ρ}(p⁺)

(v = p − u): one fused ``addmm`` (W_dᵀy M is stored per row) and four elementwise passes.

The penalty ρ: it starts at mean_k ‖w_k‖² (the diagonal of G; 1 for unit-norm atoms) and,
with ``adapt``, is rebalanced during the first ``adapt_steps`` iterations of the solve by the
normalised residual balancing of Wohlberg ("ADMM Penalty Parameter Selection by Residual
Balancing", arXiv:1704.06209, 2017): with the primal residual r = ‖x⁺ − u⁺‖ / max(‖x⁺‖, ‖u⁺‖)
and the dual residual s = ‖u⁺ − u‖ / ‖v⁺‖ over the whole pool, ρ ← ρ·√(r/s) (clipped to
[0.1, 10], applied when it moves by more than 1.5×, and kept within 1000× of its start, so
that G + ρI stays well conditioned), v ← v·ρ_old/ρ_new, and M is recomputed (one K×K
inverse). ρ is then fixed, so the iteration converges (α ∈ (0, 2)). A row's codes therefore
depend on the rows solved with it only through ρ, i.e. within the tolerance.

Rows stop when the duality gap of u certifies P(u) − P(z*) ≤ ``gap_tol``·P(u), tested every
``check_every`` iterations (one product uG per test), in the row pool of
:mod:`genoise.latent._pool` shared with
:func:`~genoise.latent.backtracking.backtracking_fista`. u is exactly sparse (it is a soft
threshold), so the returned codes have the lasso's support, not small non-zeros.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genoise._checks import check_positive
from genoise.latent._pool import RowPool, solve_in_pools, working_precision
from genoise.latent.ista import check_sparse_problem


class _Pool(RowPool):
    """The rows being solved: u (the sparse codes, ``z``), p = x̂ + v and q = W_dᵀy M."""

    fields = (*RowPool.fields, "p", "q")

    def __init__(self, b: Tensor, y_sq: Tensor, rows: Tensor, z0: Tensor | None, b64: Tensor | None,
                 penalty: _Penalty) -> None:
        super().__init__(b, y_sq, rows, z0, b64)
        if z0 is None:
            self.p = self.z.clone()  # v = p − u = 0
        else:  # the scaled dual a fixed point has: v = W_dᵀ(y − W_d u)/ρ
            self.p = torch.addmm(b, self.z, penalty.gram, alpha=-1.0).div_(penalty.rho).add_(self.z)
        self.q = b @ penalty.inverse

    def motion(self) -> Tensor:
        # u can stand still (e.g. at 0) while v moves. If p = u + v stands still, then x⁺ = u
        # (p⁺ − p = α(x⁺ − u)) and u⁺ = h_{λ/ρ}(p⁺) = u: a fixed point, i.e. the optimum.
        return self.p


class _Penalty:
    """ρ, M = (G + ρI)⁻¹ and the residual balancing that tunes ρ in the first iterations."""

    RANGE = 1000.0  # ρ stays within [ρ₀/1000, 1000 ρ₀]: G + ρI never nearly singular

    def __init__(self, gram: Tensor, rho: float, adapt_steps: int) -> None:
        self.gram, self.rho, self.adapt_steps, self.iteration = gram, float(rho), adapt_steps, 0
        self.bounds = (self.rho / self.RANGE, self.rho * self.RANGE)
        self.inverse = self._inverse()

    def _inverse(self) -> Tensor:
        k = self.gram.shape[0]
        shifted = self.gram.double() + self.rho * torch.eye(k, dtype=torch.float64, device=self.gram.device)
        return torch.cholesky_inverse(torch.linalg.cholesky(shifted)).to(self.gram.dtype)

    def rebalance(self, pool: _Pool, x: Tensor, u_old: Tensor) -> None:
        v = pool.p - pool.z
        primal = float((x - pool.z).norm()) / max(float(x.norm()), float(pool.z.norm()), 1e-30)
        dual = float((pool.z - u_old).norm()) / max(float(v.norm()), 1e-30)
        if primal == 0.0 or dual == 0.0:
            return
        factor = min(max(math.sqrt(primal / dual), 0.1), 10.0)
        factor = min(max(factor, self.bounds[0] / self.rho), self.bounds[1] / self.rho)
        if 1 / 1.5 <= factor <= 1.5:
            return
        self.rho *= factor
        self.inverse = self._inverse()
        pool.p = torch.add(pool.z, v, alpha=1.0 / factor)
        pool.q = pool.b @ self.inverse


def _step(pool: _Pool, penalty: _Penalty, lam: float, positive: bool, alpha: float) -> int:
    """One over-relaxed ADMM iteration of every row in the pool."""
    rho = penalty.rho
    x = torch.addmm(pool.q, torch.lerp(pool.p, pool.z, 2.0), penalty.inverse, alpha=rho)  # 2u − p
    penalty.iteration += 1
    adapting = penalty.iteration <= penalty.adapt_steps and penalty.iteration % 5 == 0
    u_old = pool.z
    step = x - u_old if adapting else x.sub_(u_old)
    pool.p = torch.add(pool.p, step, alpha=alpha)  # a new tensor: the tol rule compares it with the old
    theta = lam / rho
    pool.z = pool.p.sub(theta).clamp_(min=0.0) if positive else torch.nn.functional.softshrink(pool.p, theta)
    if adapting:
        penalty.rebalance(pool, x, u_old)
    pool.age += 1
    return 0


def admm(
    y: Tensor,
    dictionary: Tensor,
    lam: float,
    steps: int = 1000,
    z0: Tensor | None = None,
    tol: float | None = None,
    positive: bool = False,
    *,
    gap_tol: float = 1e-4,
    rho: float | None = None,
    alpha: float = 1.8,
    adapt: bool = True,
    adapt_steps: int = 40,
    block: int = 1024,
    check_every: int = 5,
    stats: dict | None = None,
) -> Tensor:
    """argmin_z ½‖y − W_d z‖² + λ‖z‖₁ per row of ``y``, by over-relaxed ADMM with a certified stop.

    Parameters
    ----------
    y : Tensor (B, D)
    dictionary : Tensor (D, K)   W_d, the atoms in its columns
    lam : float                  λ ≥ 0
    steps : int                  most iterations any sample gets (it then returns uncertified)
    z0 : Tensor (B, K), optional warm start of u (default zeros), with the scaled dual
                                 v = W_dᵀ(y − W_d z0)/ρ that makes an optimal z0 a fixed point
    tol : float, optional        also stop a sample when max |p_{k+1} − p_k| ≤ tol·max(1, max|u|)
                                 (uncertified; p = x̂ + v, since u alone can stand still
                                 away from the optimum while v moves)
    positive : bool              add the constraint z ≥ 0
    gap_tol : float              stop a sample once its duality gap is ≤ gap_tol·P(u), i.e.
                                 P(u) ≤ (1 + gap_tol)·P(z*); float64 proof or solve below
                                 float32's reach (:mod:`genoise.latent._pool`)
    rho : float, optional        the penalty ρ > 0 to start from (default mean_k ‖w_k‖²)
    alpha : float                over-relaxation α in (0, 2) (1 = plain ADMM; 1.5–1.8 usual)
    adapt : bool                 rebalance ρ every 5 iterations during the first
                                 ``adapt_steps`` iterations of the solve, then keep it fixed
    block : int                  rows solved together (the pool size)
    check_every : int            iterations between two gap tests (each costs one product)
    stats : dict, optional       filled with ``"iterations"`` (Σ over samples of the iterations
                                 each took), ``"checks"`` (gap tests), ``"uncertified"`` and
                                 ``"rho"`` (the final penalty); the (·, K)×(K, K) products cost
                                 2K²(iterations + checks) flops

    Returns
    -------
    Tensor (B, K), the codes (no gradient; exactly sparse).

    Examples
    --------
    >>> import torch
    >>> from genoise.latent.admm import admm
    >>> gen = torch.Generator().manual_seed(0)
    >>> W = torch.nn.functional.normalize(torch.randn(20, 40, generator=gen), dim=0)
    >>> z = admm(torch.randn(5, 20, generator=gen), W, lam=0.5, gap_tol=1e-6)
    >>> z.shape
    torch.Size([5, 40])
    """
    y = check_sparse_problem(y, dictionary, lam, z0)
    if not 0.0 < alpha < 2.0:
        raise ValueError(f"alpha (over-relaxation) must be in (0, 2), got {alpha}")
    check_positive("adapt_steps", adapt_steps, allow_zero=True)
    y, w, gram, z0, dtype = working_precision(y, dictionary, z0, gap_tol)
    if rho is None:
        rho = float(torch.diagonal(gram).mean())
    check_positive("rho", rho)
    penalty = _Penalty(gram, rho, int(adapt_steps) if adapt else 0)
    z = solve_in_pools(
        y,
        w,
        gram,
        z0,
        lam,
        positive,
        lambda b, y_sq, rows, z0_rows, b64: _Pool(b, y_sq, rows, z0_rows, b64, penalty),
        lambda pool: _step(pool, penalty, lam, positive, alpha),
        steps=steps,
        tol=tol,
        gap_tol=gap_tol,
        block=block,
        check_every=check_every,
        stats=stats,
    )
    if stats is not None:
        stats["rho"] = penalty.rho
    return z.to(dtype)
