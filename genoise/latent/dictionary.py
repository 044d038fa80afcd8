"""Dictionary learning for sparse coding, and scikit-learn–style estimators.

Learning minimises the average sparse-coding energy over the data and the dictionary,

    min_{W_d : ‖w_k‖ = 1}  (1/N) Σ_n min_z ½‖y_n − W_d z‖² + λ‖z‖₁,

by alternating, on minibatches, inference of the codes (FISTA with momentum restart and
per-sample stopping, from zero) and an update of W_d:

* ``update="bcd"`` (default) — online block-coordinate descent of Mairal, Bach, Ponce
  & Sapiro, "Online Dictionary Learning for Sparse Coding" (ICML 2009, Alg. 2): keep
  the sufficient statistics A ← ρA + Σ z zᵀ (K, K), C ← ρC + Σ y zᵀ (D, K) and update
  each atom  u_k = w_k + (c_k − W_d a_k)/A_kk,  w_k = u_k/‖u_k‖.
* ``update="gradient"`` — the same surrogate ½tr(W_dᵀW_d A) − tr(W_dᵀC), minimised by
  ``n_steps`` vectorised projected-gradient steps W_d ← P(W_d − (W_d A − C)/λ_max(A)),
  P normalising every column (no loop over atoms; on MNIST it needs ~20 steps to match one
  BCD sweep, so BCD stays the default).

``positive_dictionary=True`` adds the projection onto W_d ≥ 0 to both updates; with
non-negative codes this is non-negative sparse coding (Hoyer 2004), whose atoms on MNIST
are pen strokes instead of whole-digit prototypes.

An atom never used (A_kk ≈ 0) is re-drawn from a random training sample, seeded; an atom
whose update collapses to ~0 keeps its previous value.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_ndim, check_positive
from genoise.latent.ista import check_dictionary, sparse_coding_objective, sparse_encode


def normalize_columns(dictionary: Tensor, eps: float = 1e-12) -> Tensor:
    """Project every column (atom) onto the unit sphere."""
    return dictionary / dictionary.norm(dim=0, keepdim=True).clamp_min(eps)


def init_dictionary(y: Tensor, n_atoms: int, generator: torch.Generator | None = None,
                    method: str = "random") -> Tensor:
    """Initial W_d (D, K) with unit-norm columns.

    ``method="random"``: Gaussian atoms; ``"data"``: K random training samples (with
    replacement if K > N), a sample of zero norm replaced by Gaussian noise (learning then
    tends to keep whole exemplars). Parts (pen strokes on MNIST) need non-negative atoms
    and codes, see :class:`DictionaryLearner`.
    """
    check_choice("init", method, ("random", "data"))
    if method == "random":
        return normalize_columns(torch.randn(y.shape[1], n_atoms, generator=generator, dtype=y.dtype))
    n = y.shape[0]
    index = torch.randint(n, (n_atoms,), generator=generator) if n_atoms > n else \
        torch.randperm(n, generator=generator)[:n_atoms]
    atoms = y[index].T.clone()
    noise = torch.randn(atoms.shape, generator=generator, dtype=atoms.dtype)
    dead = atoms.norm(dim=0) < 1e-8
    atoms[:, dead] = noise[:, dead]
    return normalize_columns(atoms)


def update_dictionary_bcd(dictionary: Tensor, A: Tensor, C: Tensor, *, n_sweeps: int = 1,
                          positive: bool = False, eps: float = 1e-10) -> tuple[Tensor, Tensor]:
    """One (or ``n_sweeps``) block-coordinate sweep of Mairal et al. 2009, Alg. 2.

    Minimises ½ tr(W_dᵀW_d A) − tr(W_dᵀC) over unit-norm columns, one atom at a time
    (a loop over the K atoms, not over samples). ``positive=True`` projects every atom onto
    the non-negative orthant before normalising (non-negative atoms, as in NMF). Returns the
    new dictionary and a bool mask (K,) of atoms that could not be updated (unused or collapsed).
    """
    w = dictionary.clone()
    diag = torch.diagonal(A)
    dead = diag <= eps
    # u_k = w_k + (c_k − W_d a_k)/A_kk = (w_k + c_k/A_kk) − W_d (a_k/A_kk): one fused addmv per
    # atom; an unused atom gets the scale 0 and stays where it is.
    inv = torch.where(dead, torch.zeros_like(diag), 1.0 / diag.clamp_min(eps))
    c_scaled, a_scaled = C * inv, A * inv
    for _ in range(n_sweeps):
        for k in range(w.shape[1]):
            u = torch.addmv(w[:, k] + c_scaled[:, k], w, a_scaled[:, k], alpha=-1.0)
            if positive:
                u = u.clamp_min(0.0)
            w[:, k] = u / torch.linalg.vector_norm(u).clamp_min(eps)
    collapsed = torch.linalg.vector_norm(w, dim=0) < 0.5          # u was ~0: keep the old atom
    w[:, collapsed] = dictionary[:, collapsed]
    return w, dead | collapsed


def update_dictionary_gradient(dictionary: Tensor, A: Tensor, C: Tensor, *, n_steps: int = 5,
                               positive: bool = False, eps: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Projected gradient on the same surrogate as :func:`update_dictionary_bcd`, vectorised.

    f(W_d) = ½ tr(W_dᵀW_d A) − tr(W_dᵀC),  ∇f = W_d A − C,  Lipschitz constant λ_max(A):
    ``n_steps`` times  W_d ← P(W_d − (W_d A − C)/λ_max(A)),  P normalising every column.
    All K atoms move at once (one (D, K)×(K, K) product per step, no loop over atoms).
    Returns the new dictionary and the mask (K,) of unused atoms (A_kk ≈ 0), left unchanged.
    """
    w = dictionary
    dead = torch.diagonal(A) <= eps
    L = float(torch.linalg.eigvalsh(A)[-1])
    if L <= eps:
        return w.clone(), dead
    for _ in range(n_steps):
        u = w - (w @ A - C) / L
        w = normalize_columns(torch.where(dead, w, u.clamp_min(0.0) if positive else u))
    return w, dead


class DictionaryLearner:
    """Learn a sparse-coding dictionary: min over W_d, Z of ½‖Y − Z W_dᵀ‖² + λ‖Z‖₁ (per sample).

    Parameters
    ----------
    n_atoms : int                K, the number of atoms.
    lam : float                  λ ≥ 0.
    n_epochs : int               passes over the data.
    batch_size : int             minibatch size.
    update : {"bcd", "gradient"} dictionary step (see the module docstring).
    init : {"random", "data"}    initial atoms (see :func:`init_dictionary`).
    n_steps : int                projected-gradient steps per minibatch (``update="gradient"``).
    forget : float               ρ in (0, 1], the forgetting factor of the BCD statistics
                                 per minibatch.
    n_iter, tol                  FISTA budget per minibatch (momentum restart, per-sample stop).
    positive_dictionary : bool   non-negative atoms (projected after every update); with
                                 ``positive`` codes this is sparse NMF (Hoyer 2004): no
                                 cancellation, so atoms become parts (strokes on MNIST).
    n_eval : int                 training samples on which ``objective_`` is measured.
    positive : bool              non-negative codes z ≥ 0 (part-based atoms, e.g. pen strokes
                                 on MNIST, as in non-negative sparse coding, Hoyer 2002).
    seed : int                   seeds the initial atoms, the minibatch order, re-draws.
    dtype : torch.dtype          computation dtype (float32 default).
    callback : callable(epoch, objective), optional

    Attributes
    ----------
    dictionary_ : Tensor (D, K)  unit-norm atoms in columns.
    components_ : Tensor (K, D)  the same atoms in rows (scikit-learn layout).
    objective_ : list[float]     mean energy over ``n_eval`` fixed random training samples
                                 after init and after every epoch (codes recomputed by FISTA).
    n_resampled_ : int           atoms re-drawn because they went unused.

    Examples
    --------
    >>> import torch
    >>> Y = torch.randn(500, 20, generator=torch.Generator().manual_seed(0))
    >>> learner = DictionaryLearner(n_atoms=30, lam=0.5, n_epochs=2, seed=0).fit(Y)
    >>> learner.components_.shape, learner.transform(Y[:3]).shape
    (torch.Size([30, 20]), torch.Size([3, 30]))
    """

    def __init__(self, n_atoms: int, lam: float, *, n_epochs: int = 10, batch_size: int = 256,
                 update: str = "bcd", init: str = "random", n_steps: int = 5, forget: float = 0.9,
                 n_iter: int = 100, tol: float | None = 1e-4, positive: bool = False, seed: int = 0,
                 positive_dictionary: bool = False, n_eval: int = 2000,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 callback: Callable[[int, float], None] | None = None) -> None:
        self.n_atoms, self.lam, self.n_epochs, self.batch_size = n_atoms, lam, n_epochs, batch_size
        self.update, self.init, self.n_steps, self.forget = update, init, n_steps, forget
        self.n_iter, self.tol, self.positive, self.n_eval = n_iter, tol, positive, n_eval
        self.positive_dictionary = positive_dictionary
        self.seed, self.dtype, self.device, self.callback = seed, dtype, device, callback

    # ------------------------------------------------------------------ helpers
    def _check(self, Y: Tensor) -> Tensor:
        Y = torch.as_tensor(Y)
        check_ndim("Y", Y, 2)
        check_finite("Y", Y)
        return Y.to(device=self.device, dtype=self.dtype)

    def _objective(self, Y: Tensor, W: Tensor) -> float:
        total = 0.0
        for start in range(0, Y.shape[0], 4096):
            chunk = Y[start:start + 4096]
            z = sparse_encode(chunk, W, self.lam, "fista", n_iter=max(self.n_iter, 200), tol=self.tol,
                              positive=self.positive)
            total += float(sparse_coding_objective(chunk, W, z, self.lam).sum())
        return total / Y.shape[0]

    # ------------------------------------------------------------------ API
    def fit(self, Y: Tensor, dictionary: Tensor | None = None) -> DictionaryLearner:
        """Learn W_d from Y (N, D); optional initial ``dictionary`` (D, K)."""
        Y = self._check(Y)
        check_positive("lam", self.lam, allow_zero=True)
        check_choice("update", self.update, ("bcd", "gradient"))
        if not isinstance(self.n_atoms, int) or self.n_atoms < 1:
            raise ValueError(f"n_atoms must be an integer >= 1, got {self.n_atoms!r}")
        if not 0 < self.forget <= 1:
            raise ValueError(f"forget must be in (0, 1], got {self.forget}")
        gen = torch.Generator().manual_seed(self.seed)
        if dictionary is None:
            W = init_dictionary(Y.cpu(), self.n_atoms, gen, self.init).to(Y.device)
            if self.positive_dictionary:
                W = normalize_columns(W.abs())
        else:
            check_dictionary(dictionary)
            if dictionary.shape != (Y.shape[1], self.n_atoms):
                raise ValueError(f"dictionary must be (D, K)=({Y.shape[1]}, {self.n_atoms}), "
                                 f"got {tuple(dictionary.shape)}")
            W = normalize_columns(dictionary.to(Y))
        K = self.n_atoms
        A = torch.zeros(K, K, dtype=Y.dtype, device=Y.device)
        C = torch.zeros(Y.shape[1], K, dtype=Y.dtype, device=Y.device)
        # The objective curve is evaluated on a fixed seeded subset (cost independent of N).
        eval_idx = torch.randperm(Y.shape[0], generator=gen)[:self.n_eval].to(Y.device)
        Y_eval = Y[eval_idx]
        self.objective_ = [self._objective(Y_eval, W)]
        self.n_resampled_ = 0
        for epoch in range(self.n_epochs):
            order = torch.randperm(Y.shape[0], generator=gen).to(Y.device)
            for start in range(0, Y.shape[0], self.batch_size):
                batch = Y[order[start:start + self.batch_size]]
                z = sparse_encode(batch, W, self.lam, "fista", n_iter=self.n_iter, tol=self.tol,
                                  positive=self.positive)
                if self.update == "bcd":
                    A = self.forget * A + z.T @ z
                    C = self.forget * C + batch.T @ z
                    W, dead = update_dictionary_bcd(W, A, C, positive=self.positive_dictionary)
                else:
                    A = self.forget * A + z.T @ z
                    C = self.forget * C + batch.T @ z
                    W, dead = update_dictionary_gradient(W, A, C, n_steps=self.n_steps,
                                                         positive=self.positive_dictionary)
                W = self._resample(W, dead, Y, A, C, gen)
            self.objective_.append(self._objective(Y_eval, W))
            if self.callback is not None:
                self.callback(epoch, self.objective_[-1])
        self.dictionary_ = W
        self.components_ = W.T.contiguous()
        return self

    def _resample(self, W: Tensor, dead: Tensor, Y: Tensor, A: Tensor, C: Tensor,
                  gen: torch.Generator) -> Tensor:
        # Only re-draw atoms that have never been used: the statistics of a used atom
        # keep it meaningful even if this minibatch ignored it.
        dead = dead & (torch.diagonal(A) <= 1e-10)
        count = int(dead.sum())
        if count == 0:
            return W
        pick = torch.randint(Y.shape[0], (count,), generator=gen).to(Y.device)
        fresh = Y[pick].T + 1e-3 * torch.randn(Y.shape[1], count, generator=gen, dtype=Y.dtype).to(Y.device)
        W = W.clone()
        W[:, dead] = normalize_columns(fresh.clamp_min(0.0) if self.positive_dictionary else fresh)
        self.n_resampled_ += count
        return W

    def transform(self, Y: Tensor, *, algorithm: str = "fista", n_iter: int = 500,
                  tol: float | None = 1e-7) -> Tensor:
        """Codes Z* = argmin_Z ½‖Y − Z W_dᵀ‖² + λ‖Z‖₁ of Y (N, D): (N, K)."""
        if not hasattr(self, "dictionary_"):
            raise ValueError("DictionaryLearner is not fitted; call fit(Y) first")
        Y = self._check(Y)
        return sparse_encode(Y, self.dictionary_, self.lam, algorithm, n_iter=n_iter, tol=tol,
                             positive=self.positive)

    def fit_transform(self, Y: Tensor) -> Tensor:
        return self.fit(Y).transform(Y)

    def score(self, Y: Tensor) -> float:
        """Minus the mean sparse-coding energy of Y (higher is better)."""
        Y = self._check(Y)
        return -self._objective(Y, self.dictionary_)


class SparseCoder:
    """Sparse codes against a fixed dictionary (scikit-learn's ``SparseCoder``, in torch).

    ``SparseCoder(components (K, D), lam, algorithm="fista"|"ista"|"cd").transform(Y)``
    returns argmin_Z ½‖Y − Z·components‖² + λ‖Z‖₁ row by row, batched.
    """

    def __init__(self, components: Tensor, lam: float, *, algorithm: str = "fista",
                 n_iter: int = 500, tol: float | None = 1e-7) -> None:
        self.components = components
        self.lam, self.algorithm, self.n_iter, self.tol = lam, algorithm, n_iter, tol

    def fit(self, Y: Tensor | None = None) -> SparseCoder:
        return self

    def transform(self, Y: Tensor) -> Tensor:
        components = torch.as_tensor(self.components)
        check_ndim("components", components, 2)
        return sparse_encode(torch.as_tensor(Y).to(components.dtype), components.T, self.lam,
                             self.algorithm, n_iter=self.n_iter, tol=self.tol)
