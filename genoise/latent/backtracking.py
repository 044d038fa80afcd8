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
(:func:`~genoise.latent.ista.duality_gap`). In float32 that gap is only exact to ≈1e-6
relative (W_dᵀy and zG carry float32 rounding), so for ``gap_tol`` below 1000 ε a
sample's certificate is recomputed from float64 W_dᵀy and zG before it is accepted (the
iterate stays float32, only the proof is float64), and below 100 ε (≈1e-5), where a
float32 iterate can no longer be certified, the whole solve runs in float64 and the codes
are cast back.

The samples are solved in a pool of ``block`` rows: certified rows leave the pool and
fresh rows enter it, so the (n, K)×(K, K) product keeps a size at which the CPU runs near
its matmul peak and elementwise work stays in cache, and slow samples do not hold up the
rest. No Python loop runs over samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise._checks import check_positive
from genoise.latent.ista import check_sparse_problem, duality_gap


class _Pool:
    """The state of the rows being solved: codes z, extrapolated points v, their correlations
    with the residual c_z = W_dᵀy − zG and c_v = W_dᵀy − vG, momenta t and step sizes 1/L."""

    def __init__(
        self,
        b: Tensor,
        y_sq: Tensor,
        rows: Tensor,
        z0: Tensor | None,
        gram: Tensor,
        L0: float,
        b64: Tensor | None = None,
    ) -> None:
        self.rows, self.b, self.y_sq, self.b64 = rows, b, y_sq, b64  # b64: float64 W_dᵀy, or None
        self.z = torch.zeros_like(b) if z0 is None else z0.clone()
        self.cz = b.clone() if z0 is None else torch.addmm(b, self.z, gram, alpha=-1.0)
        self.v, self.cv = self.z.clone(), self.cz.clone()
        n = b.shape[0]
        self.t = torch.ones(n, 1, dtype=b.dtype, device=b.device)
        self.L = torch.full((n, 1), L0, dtype=b.dtype, device=b.device)
        self.age = torch.zeros(n, dtype=torch.long, device=b.device)
        self.fields = self.FIELDS + (() if b64 is None else ("b64",))

    FIELDS = ("rows", "b", "y_sq", "z", "cz", "v", "cv", "t", "L", "age")

    def keep(self, mask: Tensor) -> None:
        index = mask.nonzero()[:, 0]  # index_select: ~5× faster row gathers than mask indexing
        for name in self.fields:
            setattr(self, name, getattr(self, name).index_select(0, index))

    def extend(self, other: _Pool) -> None:
        for name in self.fields:
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))


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
                                 by backtracking) and ``"uncertified"`` (samples stopped by
                                 ``steps`` or ``tol`` before their gap reached ``gap_tol``); the
                                 (·, K)×(K, K) products cost 2K²(iterations + retries) flops

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
    check_positive("gap_tol", gap_tol, allow_zero=True)
    check_positive("block", block)
    check_positive("check_every", check_every)
    if not 0.0 < shrink <= 1.0:
        raise ValueError(f"shrink must be in (0, 1], got {shrink}")
    w = dictionary.detach()
    y = y.detach()
    eps = torch.finfo(w.dtype).eps
    if w.dtype != torch.float64 and gap_tol < 100 * eps:
        # Below ≈1e-5 (float32) the iterate itself cannot be certified: solve in float64.
        z = backtracking_fista(
            y.double(),
            w.double(),
            lam,
            steps,
            None if z0 is None else z0.double(),
            tol,
            positive,
            gap_tol=gap_tol,
            block=block,
            L0=L0,
            shrink=shrink,
            check_every=check_every,
            stats=stats,
        )
        return z.to(w.dtype)
    gram = w.T @ w
    if L0 is None:
        L0 = 2.0 * float(torch.diagonal(gram).max())
    check_positive("L0", L0)
    exact = w.dtype != torch.float64 and gap_tol < 1000 * eps
    gram64, w64 = (gram.double(), w.double()) if exact else (None, None)  # the float64 proof
    z0 = None if z0 is None else z0.detach().to(w.dtype)
    n, block, check_every = y.shape[0], int(block), int(check_every)
    out = torch.zeros(n, w.shape[1], dtype=w.dtype, device=w.device)

    def admit(start: int, stop: int) -> _Pool:
        rows = torch.arange(start, stop, device=w.device)
        part = y[start:stop]
        return _Pool(
            part @ w,
            part.double().pow(2).sum(dim=1),
            rows,
            None if z0 is None else z0[start:stop],
            gram,
            float(L0),
            None if w64 is None else part.double() @ w64,
        )

    queued = min(block, n)
    pool = admit(0, queued)
    count = {"iterations": 0, "retries": 0, "uncertified": 0}
    with torch.no_grad():
        while pool.rows.numel():
            for _ in range(check_every):
                last = pool.z
                count["iterations"] += pool.rows.numel()
                count["retries"] += _step(pool, gram, lam, positive, shrink)
            primal, gap = duality_gap(pool.y_sq, pool.b, pool.z, pool.b - pool.cz, lam, positive)
            done = gap <= gap_tol * primal.clamp_min(1e-30)
            if exact and bool(done.any()):
                i = done.nonzero()[:, 0]
                z64 = pool.z[i].double()
                b64 = pool.b64[i]  # computed once per row at admission, not at every check
                primal, gap = duality_gap(pool.y_sq[i], b64, z64, z64 @ gram64, lam, positive)
                done[i] = gap <= gap_tol * primal.clamp_min(1e-300)
            certified = done.clone()
            if tol is not None:
                scale = pool.z.abs().amax(dim=1).clamp_min(1.0)
                done |= (pool.z - last).abs().amax(dim=1) <= tol * scale
            spent = pool.age >= steps
            done |= spent
            finished = int(done.sum())
            # Leaving the pool copies every state tensor: rows leave once an eighth of the pool
            # is done (the others iterate on and are tested again at the next check).
            if finished and (8 * finished >= pool.rows.numel() or bool(spent.any())):
                count["uncertified"] += int((done & ~certified).sum())
                out[pool.rows[done]] = pool.z[done]
                pool.keep(~done)
            if queued < n and pool.rows.numel() <= block // 2:
                stop = min(n, queued + block - pool.rows.numel())
                pool.extend(admit(queued, stop))
                queued = stop
    if stats is not None:
        stats.update(count)
    return out
