"""FISTA with a step size per sample found by backtracking, and a certified stop.

Plain :func:`~genoise.latent.ista.fista` steps every code by 1/L with the global
L = λ_max(W_dᵀW_d). A sparse code only ever moves in the span of its few active atoms,
where the curvature is far smaller (on MNIST with 256 learned atoms: global L ≈ 41,
curvature on a code's support ≈ 5–10), so a global step is 4–8× too short. Here every
sample i keeps its own estimate L_i and takes the FISTA step

    z⁺ = h_{λ/L_i}(v − (1/L_i)(v G − W_dᵀy)),   G = W_dᵀW_d,   d = z⁺ − v,

accepted when the quadratic upper bound holds along d (Beck & Teboulle 2009, §4,
"FISTA with backtracking"):

    dᵀ G d ≤ L_i ‖d‖²,

and otherwise retried with L_i ← max(2 L_i, 1.05 dᵀGd/‖d‖²) (the first factor is the
paper's η = 2; the second jumps straight to the measured curvature). After every
iteration L_i ← ρ L_i (ρ = ``shrink`` < 1), so the step also grows back when the
curvature falls: the full backtracking of Scheinberg, Goldfarb & Bai, "Fast first-order
methods for composite convex optimization with backtracking" (Found. Comput. Math.
2014). The test costs nothing extra. The solver keeps the correlations c_z = W_dᵀy − zG
and c_v = W_dᵀy − vG instead of the codes' products: c_z⁺ is one fused ``addmm`` (the
product the next iteration needs anyway), c_v follows v by the same linear combination
(v = z⁺ + β(z⁺ − z) gives c_v = c_z⁺ + β(c_z⁺ − c_z)), and dᵀGd = dᵀ(c_v − c_z⁺); only
rejected samples pay one more (row-subset) product. Momentum is restarted per sample when
it points uphill (O'Donoghue & Candès 2015), as in :func:`~genoise.latent.ista.fista`.

Samples stop when their duality gap certifies P(z) − P(z*) ≤ ``gap_tol``·P(z)
(:func:`~genoise.latent.ista.duality_gap`), with a float64 proof where float32 cannot give
one; they are solved in a pool of ``block`` rows that certified rows leave and fresh rows
enter (:mod:`genoise.latent._pool`, shared with :func:`~genoise.latent.admm.admm`). No
Python loop runs over samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise._checks import check_positive
from genoise.latent._pool import RowPool, solve_in_pools, working_precision
from genoise.latent.ista import check_sparse_problem


class _Pool(RowPool):
    """The rows being solved: codes z, extrapolated points v, their correlations with the
    residual c_z = W_dᵀy − zG and c_v = W_dᵀy − vG, momenta t and step sizes 1/L."""

    fields = (*RowPool.fields, "cz", "v", "cv", "t", "L")

    def __init__(self, b: Tensor, y_sq: Tensor, rows: Tensor, z0: Tensor | None, b64: Tensor | None,
                 gram: Tensor, L0: float) -> None:
        super().__init__(b, y_sq, rows, z0, b64)
        self.cz = b.clone() if z0 is None else torch.addmm(b, self.z, gram, alpha=-1.0)
        self.v, self.cv = self.z.clone(), self.cz.clone()
        n = b.shape[0]
        self.t = torch.ones(n, 1, dtype=b.dtype, device=b.device)
        self.L = torch.full((n, 1), L0, dtype=b.dtype, device=b.device)

    def product(self, gram: Tensor) -> Tensor:
        return self.b - self.cz  # kept: no product


def _prox(cv: Tensor, v: Tensor, L: Tensor, lam: float, positive: bool) -> Tensor:
    """h_{λ/L}(v + c_v/L) computed as h_λ(L v + c_v)/L: one fused soft-shrink with a scalar
    threshold instead of a per-row one."""
    p = torch.addcmul(cv, v, L)
    shrunk = p.sub_(lam).clamp_(min=0.0) if positive else torch.nn.functional.softshrink(p, lam)
    return shrunk.div_(L)


def _step(pool: _Pool, gram: Tensor, lam: float, positive: bool, shrink: float) -> int:
    """One backtracking FISTA iteration of every row in the pool; returns the rows retried."""
    z_new = _prox(pool.cv, pool.v, pool.L, lam, positive)
    cz_new = torch.addmm(pool.b, z_new, gram, alpha=-1.0)  # W_dᵀy − z⁺G, the product fused
    retries = 0
    while True:
        d = z_new - pool.v
        # dᵀGd − (1 + ε)L‖d‖² = dᵀ(c_v − c_z⁺ − (1 + ε)L d): one dot product instead of two;
        # ε = 1e-5 keeps rounding noise from rejecting a converged step.
        excess = torch.linalg.vecdot(d, torch.addcmul(pool.cv - cz_new, d, pool.L, value=-1.00001))
        bad = excess > 0
        if not bool(bad.any()):
            break
        i = bad.nonzero()[:, 0]
        retries += i.numel()
        length = torch.linalg.vecdot(d[i], d[i]).clamp_min(1e-30)[:, None]
        curvature = 1.00001 * pool.L[i] + excess[i, None] / length
        pool.L[i] = torch.maximum(2.0 * pool.L[i], 1.05 * curvature)
        retry = _prox(pool.cv.index_select(0, i), pool.v.index_select(0, i), pool.L[i], lam, positive)
        z_new.index_copy_(0, i, retry)
        cz_new.index_copy_(0, i, torch.addmm(pool.b.index_select(0, i), retry, gram, alpha=-1.0))
    step = z_new - pool.z
    # Restart where the momentum points uphill: (v − z⁺)ᵀ(z⁺ − z) > 0, i.e. dᵀ step < 0.
    uphill = torch.linalg.vecdot(d, step) < 0
    t = torch.where(uphill[:, None], torch.ones_like(pool.t), pool.t)
    t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
    beta = (t - 1.0) / t_new
    pool.v = torch.addcmul(z_new, beta, step)
    pool.cv = torch.addcmul(cz_new, beta, cz_new - pool.cz)
    pool.z, pool.cz, pool.t = z_new, cz_new, t_new
    pool.L.mul_(shrink)
    pool.age += 1
    return retries


def backtracking_fista(
    y: Tensor,
    dictionary: Tensor,
    lam: float,
    steps: int = 1000,
    z0: Tensor | None = None,
    tol: float | None = None,
    positive: bool = False,
    *,
    gap_tol: float = 1e-4,
    block: int = 1024,
    L0: float | None = None,
    shrink: float = 0.9,
    check_every: int = 10,
    stats: dict[str, int] | None = None,
) -> Tensor:
    """argmin_z ½‖y − W_d z‖² + λ‖z‖₁ per row of ``y``, by FISTA with per-sample backtracking.

    Parameters
    ----------
    y : Tensor (B, D)
    dictionary : Tensor (D, K)   W_d, the atoms in its columns
    lam : float                  λ ≥ 0
    steps : int                  most iterations any sample gets (it then returns uncertified)
    z0 : Tensor (B, K), optional warm start (default zeros)
    tol : float, optional        also stop a sample when max |z_{k+1} − z_k| ≤ tol·max(1, max|z|)
                                 (the uncertified rule of :func:`~genoise.latent.ista.fista`)
    positive : bool              add the constraint z ≥ 0
    gap_tol : float              stop a sample once its duality gap is ≤ gap_tol·P(z), i.e.
                                 P(z) ≤ (1 + gap_tol)·P(z*); checked every ``check_every``
                                 iterations, in float64 when gap_tol is below float32's reach
    block : int                  rows solved together (the pool size)
    L0 : float, optional         initial step-size estimate, default 2·max_k ‖w_k‖²
    shrink : float               ρ in (0, 1]: L_i ← ρ L_i after each iteration (1 = never grow
                                 the step back, Beck & Teboulle's monotone backtracking)
    check_every : int            iterations between two stopping tests
    stats : dict, optional       filled with ``"iterations"`` (row-iterations: Σ over samples
                                 of the iterations each took), ``"retries"`` (rows recomputed
                                 by backtracking), ``"checks"`` (gap tests, free here) and
                                 ``"uncertified"`` (samples stopped by ``steps`` or ``tol``
                                 before their gap reached ``gap_tol``); the (·, K)×(K, K)
                                 products cost 2K²(iterations + retries) flops

    Returns
    -------
    Tensor (B, K), the codes (no gradient). A row's result does not depend on the other rows.

    Examples
    --------
    >>> import torch
    >>> from genoise.latent.backtracking import backtracking_fista
    >>> gen = torch.Generator().manual_seed(0)
    >>> W = torch.nn.functional.normalize(torch.randn(20, 40, generator=gen), dim=0)
    >>> z = backtracking_fista(torch.randn(5, 20, generator=gen), W, lam=0.5, gap_tol=1e-6)
    >>> z.shape
    torch.Size([5, 40])
    """
    y = check_sparse_problem(y, dictionary, lam, z0)
    if not 0.0 < shrink <= 1.0:
        raise ValueError(f"shrink must be in (0, 1], got {shrink}")
    y, w, gram, z0, dtype = working_precision(y, dictionary, z0, gap_tol)
    if L0 is None:
        L0 = 2.0 * float(torch.diagonal(gram).max())
    check_positive("L0", L0)
    z = solve_in_pools(
        y,
        w,
        gram,
        z0,
        lam,
        positive,
        lambda b, y_sq, rows, z0_rows, b64: _Pool(b, y_sq, rows, z0_rows, b64, gram, float(L0)),
        lambda pool: _step(pool, gram, lam, positive, shrink),
        steps=steps,
        tol=tol,
        gap_tol=gap_tol,
        block=block,
        check_every=check_every,
        stats=stats,
    )
    return z.to(dtype)
