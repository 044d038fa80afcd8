"""The row pool shared by the certified sparse-inference solvers (backtracking FISTA, ADMM).

Both solvers minimise P(z) = ½‖y − W_d z‖² + λ‖z‖₁ for every row of y at once and stop a
row when its duality gap certifies P(z) − P(z*) ≤ ``gap_tol``·P(z)
(:func:`~genoise.latent.ista.duality_gap`). The rows are solved in a pool of ``block`` rows:
certified rows leave the pool and fresh rows enter it, so the (n, K)×(K, K) product keeps a
size at which the CPU runs near its matmul peak, the elementwise work stays in cache, and slow
rows do not hold up the rest. A solver supplies its per-row state (a :class:`RowPool`) and one
iteration (``step``); :func:`solve_in_pools` does the admission, the certificates and the
bookkeeping. No Python loop runs over rows.

Precision (:func:`working_precision`): in float32 the gap is exact only to ≈1e-6 relative
(W_dᵀy and zG carry float32 rounding), so below 1000 ε a row's certificate is recomputed
from float64 W_dᵀy and zG before it is accepted (the iterate stays float32, only the proof is
float64); below 100 ε (≈1e-5), where a float32 iterate can no longer be certified, the whole
solve runs in float64 and the codes are cast back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genoise._checks import check_positive
from genoise.latent.ista import duality_gap


class RowPool:
    """Per-row state of a pooled solve. Every attribute named in ``fields`` has the rows on
    dimension 0. The base fields: ``rows`` (indices into the input), ``b`` = W_dᵀy, ``y_sq`` =
    ‖y‖², ``z`` (the codes being certified), ``age`` (iterations taken) and, when the proof is
    float64, ``b64``. A solver's subclass adds its own fields and may override
    :meth:`product`."""

    fields: tuple[str, ...] = ("rows", "b", "y_sq", "z", "age")

    def __init__(self, b: Tensor, y_sq: Tensor, rows: Tensor, z0: Tensor | None,
                 b64: Tensor | None = None) -> None:
        self.rows, self.b, self.y_sq, self.b64 = rows, b, y_sq, b64
        self.z = torch.zeros_like(b) if z0 is None else z0.clone()
        self.age = torch.zeros(b.shape[0], dtype=torch.long, device=b.device)
        if b64 is not None:
            self.fields = (*self.fields, "b64")

    def product(self, gram: Tensor) -> Tensor:
        """zG = z W_dᵀW_d for every row (one product, unless a solver keeps W_dᵀy − zG)."""
        return self.z @ gram

    def motion(self) -> Tensor:
        """The state whose change between two iterations the ``tol`` rule measures: z, unless a
        solver's codes can stand still away from the optimum (ADMM's u while its dual moves)."""
        return self.z

    def keep(self, mask: Tensor) -> None:
        index = mask.nonzero()[:, 0]  # index_select: ~5× faster row gathers than mask indexing
        for name in self.fields:
            setattr(self, name, getattr(self, name).index_select(0, index))

    def extend(self, other: RowPool) -> None:
        for name in self.fields:
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))


def working_precision(y: Tensor, w: Tensor, z0: Tensor | None,
                      gap_tol: float) -> tuple[Tensor, Tensor, Tensor, Tensor | None, torch.dtype]:
    """(y, W_d, G = W_dᵀW_d, z0), detached, in the dtype the solve runs in, and the dtype the
    codes are returned in: float64 when ``gap_tol`` is below 100 ε of a lower precision (see
    the module docstring)."""
    check_positive("gap_tol", gap_tol, allow_zero=True)
    dtype = w.dtype
    y, w = y.detach(), w.detach()
    z0 = None if z0 is None else z0.detach()
    if dtype != torch.float64 and gap_tol < 100 * torch.finfo(dtype).eps:
        y, w, z0 = y.double(), w.double(), None if z0 is None else z0.double()
    else:
        z0 = None if z0 is None else z0.to(dtype)
    return y, w, w.T @ w, z0, dtype


def solve_in_pools(
    y: Tensor,
    w: Tensor,
    gram: Tensor,
    z0: Tensor | None,
    lam: float,
    positive: bool,
    make_pool: Callable[[Tensor, Tensor, Tensor, Tensor | None, Tensor | None], RowPool],
    step: Callable[[RowPool], int],
    *,
    steps: int,
    tol: float | None,
    gap_tol: float,
    block: int,
    check_every: int,
    stats: dict | None = None,
) -> Tensor:
    """Solve every row of ``y`` (B, D), with W_d = ``w`` and G = ``gram`` (as
    :func:`working_precision` gives them), with ``step`` until its gap is certified (or it has taken
    ``steps`` iterations, or its state (:meth:`RowPool.motion`) moved by at most
    ``tol``·max(1, max|z|) in the last one).

    ``make_pool(b, y_sq, rows, z0_rows, b64)`` builds the state of newly admitted rows;
    ``step(pool)`` runs one iteration of every row in the pool and returns the number of rows it
    recomputed (backtracking retries; 0 for solvers without). ``stats``, if given, receives
    ``iterations`` (Σ over rows of the iterations each took), ``retries``, ``checks`` (rows whose
    gap was computed: each costs a (1, K)×(K, K) product unless the solver keeps W_dᵀr) and
    ``uncertified`` (rows stopped by ``steps`` or ``tol`` before their gap reached ``gap_tol``).
    """
    check_positive("block", block)
    check_positive("check_every", check_every)
    exact = w.dtype != torch.float64 and gap_tol < 1000 * torch.finfo(w.dtype).eps
    gram64, w64 = (gram.double(), w.double()) if exact else (None, None)  # the float64 proof
    n, block, check_every = y.shape[0], int(block), int(check_every)
    out = torch.zeros(n, w.shape[1], dtype=w.dtype, device=w.device)

    def admit(start: int, stop: int) -> RowPool:
        part = y[start:stop]
        return make_pool(
            part @ w,
            part.double().pow(2).sum(dim=1),
            torch.arange(start, stop, device=w.device),
            None if z0 is None else z0[start:stop],
            None if w64 is None else part.double() @ w64,
        )

    queued = min(block, n)
    pool = admit(0, queued)
    count = {"iterations": 0, "retries": 0, "checks": 0, "uncertified": 0}
    with torch.no_grad():
        while pool.rows.numel():
            for _ in range(check_every):
                last = pool.motion()
                count["iterations"] += pool.rows.numel()
                count["retries"] += step(pool)
            count["checks"] += pool.rows.numel()
            primal, gap = duality_gap(pool.y_sq, pool.b, pool.z, pool.product(gram), lam, positive)
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
                done |= (pool.motion() - last).abs().amax(dim=1) <= tol * scale
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
