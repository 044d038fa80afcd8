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
  ``update_steps`` vectorised projected-gradient steps W_d ← P(W_d − (W_d A − C)/λ_max(A)),
  P normalising every column (no loop over atoms; on MNIST it needs ~20 steps to match one
  BCD sweep, so BCD stays the default).

``positive_dictionary=True`` adds the projection onto W_d ≥ 0 to both updates; with
non-negative codes this is non-negative sparse coding (Hoyer 2004), whose atoms on MNIST
are pen strokes instead of whole-digit prototypes.

An atom never used (A_kk ≈ 0) is re-drawn from a random training sample, seeded; an atom
whose update collapses to ~0 keeps its previous value.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_ndim, check_positive
from genoise.latent.ista import ALGORITHMS, check_dictionary, sparse_coding_objective, sparse_encode


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

    Scikit-learn style: every hyper-parameter in the constructor, ``fit(y)`` learns,
    ``transform(y)`` codes. ``fit`` runs step by step (one minibatch per step, see
    :func:`genoise.train.estimator.fit_estimator`, which checkpoints and resumes it).

    Parameters
    ----------
    n_atoms : int                K, the number of atoms.
    lam : float                  λ ≥ 0.
    max_iter : int               passes (epochs) over the data.
    batch_size : int             minibatch size.
    update : {"bcd", "gradient"} dictionary step (see the module docstring).
    init : {"random", "data"}    initial atoms (see :func:`init_dictionary`).
    dict_init : Tensor (D, K), optional   explicit initial atoms (renormalised).
    update_steps : int           projected-gradient steps per minibatch (``update="gradient"``).
    forget : float               ρ in (0, 1], the forgetting factor of the BCD statistics
                                 per minibatch.
    code_max_iter, code_tol      the coding budget per minibatch while learning (iterations,
                                 and the per-sample stop on the codes' change).
    code_algorithm : str         the solver that codes each minibatch while learning (any
                                 :func:`~genoise.latent.ista.sparse_encode` name; default
                                 ``"fista"`` with momentum restart, the setting of every recorded
                                 table; ``"admm"`` also stops a sample on a certified gap of 1e-4).
                                 ``objective_`` is measured with FISTA whichever is chosen.
    positive : bool              non-negative codes z ≥ 0 (non-negative sparse coding, Hoyer 2002).
    positive_dictionary : bool   non-negative atoms (projected after every update); with
                                 ``positive`` codes this is sparse NMF (Hoyer 2004): no
                                 cancellation, so atoms become parts (strokes on MNIST).
    n_eval : int                 training samples on which ``objective_`` is measured.
    transform_algorithm, transform_max_iter, transform_tol
                                 the solver of :meth:`transform` and :meth:`score` (any
                                 :func:`~genoise.latent.ista.sparse_encode` name; ``"auto"``
                                 certifies the duality gap to 1e-4 relative with the fastest
                                 solver for the device).
    seed : int                   seeds the initial atoms, the minibatch order, re-draws.
    dtype : torch.dtype          computation dtype (float32 default).
    device : str or torch.device

    Attributes
    ----------
    dictionary_ : Tensor (D, K)  unit-norm atoms in columns.
    components_ : Tensor (K, D)  the same atoms in rows (scikit-learn layout).
    objective_ : list[float]     mean energy over ``n_eval`` fixed random training samples
                                 after init and after every epoch (codes recomputed by FISTA).
    n_resampled_ : int           atoms re-drawn because they went unused.

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, "Online Dictionary Learning for Sparse Coding" (ICML 2009).

    Examples
    --------
    >>> import torch
    >>> y = torch.randn(500, 20, generator=torch.Generator().manual_seed(0))
    >>> learner = DictionaryLearner(n_atoms=30, lam=0.5, max_iter=2, seed=0).fit(y)
    >>> learner.components_.shape, learner.transform(y[:3]).shape
    (torch.Size([30, 20]), torch.Size([3, 30]))
    """

    def __init__(self, n_atoms: int, lam: float, *, max_iter: int = 10, batch_size: int = 256,
                 update: str = "bcd", init: str = "random", dict_init: Tensor | None = None,
                 update_steps: int = 5, forget: float = 0.9, code_max_iter: int = 100,
                 code_tol: float | None = 1e-4, code_algorithm: str = "fista", positive: bool = False,
                 positive_dictionary: bool = False,
                 n_eval: int = 2000, transform_algorithm: str = "auto", transform_max_iter: int = 500,
                 transform_tol: float | None = 1e-7, seed: int = 0, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu") -> None:
        self.n_atoms, self.lam, self.max_iter, self.batch_size = n_atoms, lam, max_iter, batch_size
        self.update, self.init, self.dict_init = update, init, dict_init
        self.update_steps, self.forget = update_steps, forget
        self.code_max_iter, self.code_tol, self.code_algorithm = code_max_iter, code_tol, code_algorithm
        self.positive, self.n_eval = positive, n_eval
        self.positive_dictionary = positive_dictionary
        self.transform_algorithm, self.transform_max_iter = transform_algorithm, transform_max_iter
        self.transform_tol = transform_tol
        self.seed, self.dtype, self.device = seed, dtype, device
        self._fit_cache: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ helpers
    def _check(self, y: Tensor) -> Tensor:
        y = torch.as_tensor(y)
        check_ndim("y", y, 2)
        check_finite("y", y)
        return y.to(device=self.device, dtype=self.dtype)

    def _check_params(self) -> None:
        check_positive("lam", self.lam, allow_zero=True)
        check_choice("update", self.update, ("bcd", "gradient"))
        check_choice("code_algorithm", self.code_algorithm, ALGORITHMS)
        for name in ("n_atoms", "max_iter", "batch_size", "update_steps", "code_max_iter", "n_eval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0 < self.forget <= 1:
            raise ValueError(f"forget must be in (0, 1], got {self.forget}")

    def _objective(self, y: Tensor, w: Tensor) -> float:
        total = 0.0
        for start in range(0, y.shape[0], 4096):
            chunk = y[start:start + 4096]
            z = sparse_encode(chunk, w, self.lam, "fista", steps=max(self.code_max_iter, 200),
                              tol=self.code_tol, positive=self.positive)
            total += float(sparse_coding_objective(chunk, w, z, self.lam).sum())
        return total / y.shape[0]

    def _initial_dictionary(self, y: Tensor, generator: torch.Generator) -> Tensor:
        if self.dict_init is None:
            w = init_dictionary(y.cpu(), self.n_atoms, generator, self.init).to(y.device)
            return normalize_columns(w.abs()) if self.positive_dictionary else w
        check_dictionary(self.dict_init, "dict_init")
        if self.dict_init.shape != (y.shape[1], self.n_atoms):
            raise ValueError(f"dict_init must be (D, K)=({y.shape[1]}, {self.n_atoms}), "
                             f"got {tuple(self.dict_init.shape)}")
        return normalize_columns(self.dict_init.to(y))

    # ------------------------------------------------------------------ fitting
    def fit(self, y: Tensor) -> DictionaryLearner:
        """Learn W_d from y (N, D)."""
        from genoise.train.estimator import run_steps

        run_steps(self, y, torch.Generator().manual_seed(self.seed))
        return self

    def steps_per_epoch(self, n_samples: int) -> int:
        """Minibatches (fit steps) per pass over ``n_samples`` samples."""
        return -(-n_samples // self.batch_size)

    def init_fit(self, y: Tensor, generator: torch.Generator) -> None:
        """Validate y (N, D); draw the initial atoms and the evaluation subset from ``generator``."""
        data = self._check(y)
        self._check_params()
        self._fit_cache = (y, data)
        self._generator = generator
        w = self._initial_dictionary(data, generator)
        k = self.n_atoms
        self._A = torch.zeros(k, k, dtype=data.dtype, device=data.device)
        self._C = torch.zeros(data.shape[1], k, dtype=data.dtype, device=data.device)
        # The objective curve is evaluated on a fixed seeded subset (cost independent of N).
        self._eval_index = torch.randperm(data.shape[0], generator=generator)[:self.n_eval].to(data.device)
        self.objective_ = [self._objective(data[self._eval_index], w)]
        self.n_resampled_, self._epoch, self._position, self._order = 0, 0, 0, None
        self._set_dictionary(w)
        self.converged_ = False

    def _set_dictionary(self, w: Tensor) -> None:
        self.dictionary_ = w
        self.components_ = w.T.contiguous()

    def fit_step(self, y: Tensor) -> dict[str, float]:
        """One minibatch: FISTA codes, statistics A ← ρA + zᵀz, C ← ρC + yᵀz, dictionary
        update. At the end of an epoch the row holds the ``objective`` on the evaluation subset."""
        cached = self._fit_cache is not None and self._fit_cache[0] is y
        data = self._fit_cache[1] if cached else self._check(y)
        if self._position == 0:
            self._order = torch.randperm(data.shape[0], generator=self._generator).to(data.device)
        start = self._position * self.batch_size
        batch = data[self._order[start:start + self.batch_size]]
        w = self.dictionary_
        z = sparse_encode(batch, w, self.lam, self.code_algorithm, steps=self.code_max_iter,
                          tol=self.code_tol, positive=self.positive)
        self._A = self.forget * self._A + z.T @ z
        self._C = self.forget * self._C + batch.T @ z
        if self.update == "bcd":
            w, dead = update_dictionary_bcd(w, self._A, self._C, positive=self.positive_dictionary)
        else:
            w, dead = update_dictionary_gradient(w, self._A, self._C, n_steps=self.update_steps,
                                                 positive=self.positive_dictionary)
        self._set_dictionary(self._resample(w, dead, data))
        self._position += 1
        row = {"epoch": self._epoch + self._position / self.steps_per_epoch(data.shape[0])}
        if self._position == self.steps_per_epoch(data.shape[0]):
            self._epoch, self._position = self._epoch + 1, 0
            self.objective_.append(self._objective(data[self._eval_index], self.dictionary_))
            row["objective"] = self.objective_[-1]
            self.converged_ = self._epoch >= self.max_iter
        return row

    _STATE = ("dictionary_", "_A", "_C", "_eval_index", "_order", "_epoch", "_position", "objective_",
              "n_resampled_", "converged_")

    def state_dict(self) -> dict[str, object]:
        """The fit in progress (not the data, not the generator)."""
        return {name: getattr(self, name) for name in self._STATE}

    def load_state_dict(self, state: dict[str, object]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])
        self._set_dictionary(self.dictionary_)

    def _resample(self, w: Tensor, dead: Tensor, y: Tensor) -> Tensor:
        # Only re-draw atoms that have never been used: the statistics of a used atom
        # keep it meaningful even if this minibatch ignored it.
        dead = dead & (torch.diagonal(self._A) <= 1e-10)
        count = int(dead.sum())
        if count == 0:
            return w
        gen = self._generator
        pick = torch.randint(y.shape[0], (count,), generator=gen).to(y.device)
        fresh = y[pick].T + 1e-3 * torch.randn(y.shape[1], count, generator=gen, dtype=y.dtype).to(y.device)
        w = w.clone()
        w[:, dead] = normalize_columns(fresh.clamp_min(0.0) if self.positive_dictionary else fresh)
        self.n_resampled_ += count
        return w

    # ------------------------------------------------------------------ estimator API
    def _input(self, y: Tensor) -> Tensor:
        if not hasattr(self, "dictionary_"):
            raise ValueError("DictionaryLearner is not fitted; call fit(y) first")
        return self._check(y)

    def transform(self, y: Tensor) -> Tensor:
        """Codes Z* = argmin_Z ½‖Y − Z W_dᵀ‖² + λ‖Z‖₁ of y (N, D): (N, K), by
        ``transform_algorithm`` with ``transform_max_iter`` / ``transform_tol``."""
        return sparse_encode(self._input(y), self.dictionary_, self.lam, self.transform_algorithm,
                             steps=self.transform_max_iter, tol=self.transform_tol, positive=self.positive)

    def fit_transform(self, y: Tensor) -> Tensor:
        return self.fit(y).transform(y)

    def score(self, y: Tensor) -> float:
        """Minus the mean sparse-coding energy of y (higher is better)."""
        return -self._objective(self._input(y), self.dictionary_)


class SparseCoder:
    """Sparse codes against a fixed dictionary (scikit-learn's ``SparseCoder``, in torch).

    ``SparseCoder(components (K, D), lam, algorithm="auto"|"admm"|"fista_bt"|"fista"|"ista"|"cd")
    .transform(y)`` returns argmin_Z ½‖Y − Z·components‖² + λ‖Z‖₁ row by row, batched;
    ``max_iter`` and ``tol`` bound the solver. ``"auto"`` (default) certifies each code to
    the relative duality gap ``gap_tol`` (None: 1e-4) with the fastest solver for the
    device (:func:`~genoise.latent.ista.sparse_encode`); a ``gap_tol`` given is also used by
    ``"fista"``, ``"fista_bt"`` and ``"admm"``.
    """

    def __init__(self, components: Tensor, lam: float, *, algorithm: str = "auto",
                 max_iter: int = 500, tol: float | None = 1e-7, gap_tol: float | None = None) -> None:
        self.components = components
        self.lam, self.algorithm, self.max_iter, self.tol = lam, algorithm, max_iter, tol
        self.gap_tol = gap_tol

    def fit(self, y: Tensor | None = None) -> SparseCoder:
        """Nothing to learn (scikit-learn's convention); returns self."""
        return self

    def transform(self, y: Tensor) -> Tensor:
        components = torch.as_tensor(self.components)
        check_ndim("components", components, 2)
        extra = {} if self.gap_tol is None else {"gap_tol": self.gap_tol}
        return sparse_encode(torch.as_tensor(y).to(components.dtype), components.T, self.lam,
                             self.algorithm, steps=self.max_iter, tol=self.tol, **extra)
