"""The solvers behind :class:`~genoise.latent.pca.PCA`: the leading right singular vectors
and singular values of the centred data X − 1μᵀ, by three routes (the same three as
scikit-learn's ``svd_solver``, so that a side-by-side timing compares like with like).

* ``full`` — exact. For a tall X (n ≥ d) a Householder QR, X − 1μᵀ = Q R, then the SVD of
  the small R (d × d): R = U_R S Vᵀ gives the right factors S, Vᵀ of the data without ever
  forming Q or U (Golub & Van Loan, *Matrix Computations*, §5.4.5, "R-SVD"). LAPACK's
  thin SVD takes the same QR path internally but also builds the n × d factor U, which PCA
  never uses: three times the arithmetic. For a wide X, the thin SVD of X − 1μᵀ.
  Backward stable: singular values accurate to ε·σ₁.
* ``covariance_eigh`` — the eigen-decomposition of the d × d Gram matrix
  C = (X − 1μᵀ)ᵀ(X − 1μᵀ) = V S² Vᵀ. Half the arithmetic of the QR (C is symmetric: only
  one triangle is multiplied out) and a d × d eigen-problem, of which only the k wanted
  eigenpairs are computed when k < d. Squaring the data squares its condition number, so
  a variance is accurate to ε·σ₁² in absolute terms (ample for the leading components; in
  float32 the trailing ones are noise). C is XᵀX − n μμᵀ (scikit-learn's formula, no pass
  over centred data) only when that loses less than a digit; otherwise the data are
  centred a block of rows at a time while C is accumulated (``centred_gram``), which
  avoids both an n × d copy and the cancellation of the shortcut. On the CPU, C is a BLAS
  ``syrk`` and the eigenpairs come from LAPACK's ``syevr`` (MRRR, a subset) or ``syevd``
  (all), both through scipy, whose OpenBLAS threads threadpoolctl controls (as
  scikit-learn's): torch has neither a symmetric rank-k product nor a subset
  eigen-solver. Elsewhere (CUDA), C is accumulated by block-rows of its upper triangle
  and ``torch.linalg.eigh`` solves.
* ``randomized`` — Halko, Martinsson & Tropp (2011), Algorithm 4.4: a Gaussian test
  matrix Ω (d × l, l = k + oversampling), q power iterations Y = (AAᵀ)^q A Ω, Q = orth(Y),
  then the exact SVD of the small B = QᵀA. Approximate: the leading variances are
  accurate to about (σ_{l+1}/σ_j)^{2q+1}. The centring is implicit
  (A Ω = X Ω − 1(μᵀΩ)), so X is never copied. Between products the basis is renormalised
  by an LU factorisation, Q ← P L for Y = P L U (scikit-learn's default): cheaper than a
  QR and as good at keeping the columns apart; the last basis is orthonormalised by a QR.

Every solver returns (s, Vᵀ, t): singular values (descending), right singular vectors as
rows, and t = ‖X − 1μᵀ‖²_F, the total sum of squares that the variance ratios and the
variance of the discarded directions need when only k of the min(n, d) values are
computed.

``choose_solver`` applies scikit-learn's ``svd_solver="auto"`` rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import torch
from torch import Tensor

Solver = Literal["full", "covariance_eigh", "randomized"]
SOLVERS: tuple[str, ...] = ("auto", "full", "covariance_eigh", "randomized")

_ROWS = 2048  # rows centred at a time
_BLOCK = 256  # columns per block-row of C's upper triangle (the torch path)
_MAX_SHIFT = 4.0  # largest ‖Y‖²_F / ‖Y − 1μᵀ‖²_F for which C = YᵀY − n μμᵀ


def choose_solver(n: int, d: int, k: int | float | None) -> Solver:
    """scikit-learn's ``svd_solver="auto"`` (≥ 1.5): ``covariance_eigh`` when d ≤ 1000 and
    n ≥ 10·d (tall and thin); ``full`` when the problem is small (max(n, d) ≤ 500) or all
    or a fraction of the components are asked for; ``randomized`` when an integer
    k < 0.8·min(n, d) components are asked for; ``full`` otherwise."""
    if d <= 1000 and n >= 10 * d:
        return "covariance_eigh"
    if max(n, d) <= 500:
        return "full"
    if isinstance(k, int) and not isinstance(k, bool) and 1 <= k < 0.8 * min(n, d):
        return "randomized"
    return "full"


def _centred_chunks(y: Tensor, mean: Tensor) -> Iterator[Tensor]:
    """Y − 1μᵀ, ``_ROWS`` rows at a time, each written into the same reused buffer."""
    n = y.shape[0]
    buffer = torch.empty(min(_ROWS, n), y.shape[1], dtype=y.dtype, device=y.device)
    for start in range(0, n, _ROWS):
        chunk = buffer[: min(_ROWS, n - start)]
        torch.sub(y[start : start + _ROWS], mean, out=chunk)
        yield chunk


def _scipy_backed(t: Tensor) -> bool:
    """Whether scipy's BLAS/LAPACK can work on t in place: a float32/float64 CPU tensor."""
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


def _gram(chunks: Iterable[Tensor], d: int, dtype: torch.dtype, device: torch.device,
          blas: bool) -> Tensor:
    """Σ_chunks chunkᵀ chunk, (d, d), symmetric: a BLAS ``syrk`` per chunk when ``blas``
    (scipy; float32/float64 CPU chunks), else the block-rows of the upper triangle."""
    if blas:
        from scipy.linalg.blas import dsyrk, ssyrk

        syrk = dsyrk if dtype == torch.float64 else ssyrk
        upper = np.zeros((d, d), dtype=np.float64 if dtype == torch.float64 else np.float32, order="F")
        for chunk in chunks:  # a C-contiguous chunk's .numpy().T is Fortran-ordered: no copy
            upper = syrk(1.0, chunk.numpy().T, beta=1.0, c=upper, overwrite_c=1)
        gram = torch.from_numpy(upper)
    else:
        gram = torch.zeros(d, d, dtype=dtype, device=device)
        for chunk in chunks:
            for col in range(0, d, _BLOCK):
                gram[col : col + _BLOCK, col:].addmm_(chunk[:, col : col + _BLOCK].T, chunk[:, col:])
    return gram.triu() + gram.triu(1).T


def centred_gram(y: Tensor, mean: Tensor, *, scipy: bool | None = None) -> Tensor:
    """C = (Y − 1μᵀ)ᵀ(Y − 1μᵀ), (d, d), symmetric.

    The rounding error of a Gram matrix is bounded by a multiple of ε·trace of what is
    multiplied, so forming YᵀY and subtracting n μμᵀ (no pass over the centred data) loses a
    factor κ = ‖Y‖²_F / ‖Y − 1μᵀ‖²_F against centring first. That is done when κ ≤ 4 (less
    than one digit; MNIST's pixels have κ ≈ 1.7); data far from the origin (large κ, where
    the subtraction would cancel catastrophically) are centred ``_ROWS`` rows at a time.
    ``scipy=None``: scipy's ``syrk`` for float32/float64 CPU tensors, torch otherwise.
    """
    n, d = y.shape
    blas = _scipy_backed(y) if scipy is None else scipy
    if y.is_contiguous() and _shortcut_total(y, mean) is not None:
        return torch.addr(_gram((y,), d, y.dtype, y.device, blas), mean, mean, alpha=-n)
    return _gram(_centred_chunks(y, mean), d, y.dtype, y.device, blas)


def _shortcut_total(y: Tensor, mean: Tensor) -> Tensor | None:
    """‖Y − 1μᵀ‖²_F as ‖Y‖²_F − n‖μ‖² when κ = ‖Y‖²_F / ‖Y − 1μᵀ‖²_F ≤ ``_MAX_SHIFT``, i.e.
    when quantities of the centred data may be formed from the uncentred ones minus the
    mean's share (``centred_gram``); None when that would cancel."""
    squares = torch.linalg.vector_norm(y).square()
    total = squares - y.shape[0] * mean.square().sum()
    return total if bool(squares <= _MAX_SHIFT * total) else None


def centred_sum_of_squares(y: Tensor, mean: Tensor) -> Tensor:
    """‖Y − 1μᵀ‖²_F without an n × d copy: ‖Y‖²_F − n‖μ‖² when that cannot cancel (as in
    ``centred_gram``), else summed over centred row chunks."""
    total = _shortcut_total(y, mean)
    if total is not None:
        return total
    return sum((torch.linalg.vector_norm(chunk).square() for chunk in _centred_chunks(y, mean)),
               y.new_zeros(()))


def svd_full(y: Tensor, mean: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(s, Vᵀ, t) of the exact thin SVD of Y − 1μᵀ: all min(n, d) singular values; the
    R-SVD when n ≥ d (module docstring)."""
    n, d = y.shape
    centred = y - mean
    if n >= d:
        centred = torch.linalg.qr(centred, mode="r")[1]
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    return s, vh, s.square().sum()


def _eigh_top(c: Tensor, k: int, lapack: bool) -> tuple[Tensor, Tensor]:
    """The k largest eigenvalues (descending) of the symmetric c and their eigenvectors
    (columns): scipy's LAPACK (a subset when k < d) when ``lapack``, else torch."""
    d = c.shape[0]
    if lapack:
        from scipy.linalg import eigh

        subset = {"driver": "evr", "subset_by_index": [d - k, d - 1]} if k < d else {"driver": "evd"}
        values, vectors = eigh(c.numpy(), overwrite_a=True, check_finite=False, **subset)
        values, vectors = torch.from_numpy(values), torch.from_numpy(vectors)
    else:
        values, vectors = torch.linalg.eigh(c)
    return values.flip(0)[:k], vectors.flip(1)[:, :k]


def svd_covariance_eigh(y: Tensor, mean: Tensor, k: int | None = None, *, scipy: bool | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """(s, Vᵀ, t) from the eigen-decomposition of the centred Gram matrix: s = √λ (negative
    round-off clamped to 0), the k largest or (``k=None``) all min(n, d), descending;
    t = trace(C). ``scipy=None``: scipy's BLAS/LAPACK for float32/float64 CPU tensors
    (``False`` forces the torch path that other devices take)."""
    lapack = _scipy_backed(y) if scipy is None else scipy
    gram = centred_gram(y, mean, scipy=lapack)
    total = gram.diagonal().sum()
    values, vectors = _eigh_top(gram, min(y.shape) if k is None else min(k, *y.shape), lapack)
    return values.clamp_min(0.0).sqrt(), vectors.T.contiguous(), total


def _lu_basis(a: Tensor) -> Tensor:
    """P L for A = P L U (partial pivoting): a well-conditioned basis of A's columns, cheaper
    than a QR and defined even when A is rank-deficient (L is unit lower-triangular)."""
    lu, pivots = torch.linalg.lu_factor(a)
    lower = lu.tril(-1)
    lower.diagonal().fill_(1.0)
    order = list(range(a.shape[0]))  # LAPACK's row interchanges, applied in turn: Pᵀ A = L U
    for row, pivot in enumerate(pivots.tolist()):
        order[row], order[pivot - 1] = order[pivot - 1], order[row]
    basis = torch.empty_like(lower)
    basis[torch.tensor(order, device=a.device)] = lower
    return basis


def svd_randomized(y: Tensor, mean: Tensor, k: int, generator: torch.Generator, *,
                   oversamples: int = 10, power_iterations: int | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(s, Vᵀ, t): the k leading singular values and right vectors of Y − 1μᵀ,
    approximately, by a randomized range finder (module docstring). ``power_iterations=None``:
    scikit-learn's choice, 7 when k < 0.1·min(n, d) else 4. Ω is drawn on the CPU from
    ``generator``, so a seed gives the same Ω on any device."""
    n, d = y.shape
    if power_iterations is None:
        power_iterations = 7 if k < 0.1 * min(n, d) else 4
    width = min(k + oversamples, n, d)
    omega = torch.randn(d, width, generator=generator, dtype=y.dtype).to(y.device)

    def times(q: Tensor) -> Tensor:  # (Y − 1μᵀ) q
        return y @ q - mean @ q

    def times_t(q: Tensor) -> Tensor:  # (Y − 1μᵀ)ᵀ q, as (qᵀ Y)ᵀ: the faster GEMM layout
        return (q.T @ y).T - mean[:, None] * q.sum(0)

    q = omega
    for _ in range(power_iterations):
        q = _lu_basis(times_t(_lu_basis(times(q))))
    q = torch.linalg.qr(times(q))[0]
    _, s, vh = torch.linalg.svd(times_t(q).T, full_matrices=False)  # B = Qᵀ(Y − 1μᵀ), (width, d)
    return s[:k], vh[:k], centred_sum_of_squares(y, mean)
