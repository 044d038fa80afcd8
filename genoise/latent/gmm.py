"""Gaussian mixture model: the soft K-means, an energy whose discrete latent z = k is
marginalised at β = 1 (LeCun et al., "A Tutorial on Energy-Based Learning", 2006,
§ latent variables; Dempster, Laird & Rubin 1977 for EM).

    E(y, z = k) = −log π_k − log N(y; μ_k, Σ_k)
    F_1(y) = −log Σ_k exp(−E(y, k)) = −log p(y)          (exact logsumexp)
    F_∞(y) = min_k E(y, k)                                (hard assignment)

Fitting is expectation-maximisation in torch, batched over samples; log-densities use
the Cholesky factor of the precision, P_k = L_k L_kᵀ:
log N(y; μ_k, Σ_k) = −D/2 log 2π + log det L_k − ½ ‖L_kᵀ (y − μ_k)‖², as in scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genoise._checks import check_choice, check_positive
from genoise.energy.base import Energy
from genoise.latent._estimator import as_data, check_features, check_fitted, make_generator, resolve_dtype

COVARIANCE_TYPES = ("full", "diag")
_CHUNK_ELEMENTS = 1 << 24  # bound on (components × samples × features) per batched step


def _component_chunks(k: int, n: int, d: int) -> list[tuple[int, int]]:
    """Slices (start, stop) of components so that one batched step holds ≲ 2^24 numbers."""
    step = max(1, _CHUNK_ELEMENTS // max(1, n * d))
    return [(s, min(k, s + step)) for s in range(0, k, step)]


def precision_cholesky(covariances: Tensor, covariance_type: str) -> Tensor:
    """Cholesky factor L of every precision Σ_k⁻¹ = L Lᵀ: (K, D, D) full, (K, D) diag."""
    if covariance_type == "diag":
        if bool((covariances <= 0).any()):
            raise ValueError("a diagonal covariance is not positive; increase reg_covar")
        return covariances.rsqrt()
    chol, info = torch.linalg.cholesky_ex(covariances)
    if bool((info != 0).any()):
        raise ValueError("a covariance matrix is not positive definite; increase reg_covar")
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
    return torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False).mT


def diag_features(y: Tensor) -> Tensor:
    """φ(y) = [y², y, 1] (N, 2D + 1): a diagonal GMM's log-densities and its M-step
    statistics are both linear in φ, so each EM iteration is two matmuls."""
    return torch.cat([y * y, y, torch.ones_like(y[:, :1])], dim=1)


def diag_log_joint_matrix(log_weights: Tensor, means: Tensor, prec_chol: Tensor) -> Tensor:
    """A (2D + 1, K) with φ(y) A = log π_k + log N(y; μ_k, diag σ_k²) for φ of :func:`diag_features`.

    With precisions P_kd = L_kd² = 1/σ_kd²,
        log N(y; μ_k, σ_k²) = −½ Σ_d P_kd (y_d − μ_kd)² + Σ_d log L_kd − D/2 log 2π
                            = y²·(−½ P_k) + y·(P_k μ_k) + c_k,
        c_k = −½ Σ_d P_kd μ_kd² + Σ_d log L_kd − D/2 log 2π,
    the expansion scikit-learn also uses (one (N, K) product instead of (N, K, D) differences).
    """
    d = means.shape[1]
    prec = prec_chol * prec_chol
    const = (-0.5 * (prec * means * means).sum(-1) + prec_chol.log().sum(-1)
             - 0.5 * d * math.log(2 * math.pi) + log_weights)
    return torch.cat([-0.5 * prec, prec * means, const[:, None]], dim=1).T


def log_gaussian(y: Tensor, means: Tensor, prec_chol: Tensor, covariance_type: str) -> Tensor:
    """log N(y_n; μ_k, Σ_k) for y (N, D): (N, K), batched (chunks of components, full)."""
    n, d = y.shape
    if covariance_type == "diag":
        zeros = torch.zeros(means.shape[0], dtype=means.dtype, device=means.device)
        return diag_features(y) @ diag_log_joint_matrix(zeros, means, prec_chol)
    k = means.shape[0]
    maha = torch.empty(n, k, dtype=y.dtype, device=y.device)
    for s, e in _component_chunks(k, n, d):
        pc = prec_chol[s:e]
        # ‖Lᵀ(y − μ)‖² = ‖y L − μ L‖² per component, one batched matmul
        proj = torch.matmul(y, pc) - torch.einsum("kd,kde->ke", means[s:e], pc)[:, None, :]
        maha[:, s:e] = (proj**2).sum(-1).T
    log_det = torch.diagonal(prec_chol, dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * (d * math.log(2 * math.pi) + maha) + log_det


def exp_normalise_(log_joint: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """In place on log_joint (N, K): e = exp(log_joint − m) with m the row maxima.

    Returns (e, s, log p) with s = Σ_k e (N, 1), responsibilities e / s and
    log p(y) = m + log s = logsumexp_k log_joint (N,). No (N, K) temporary is allocated.
    """
    m = log_joint.amax(dim=1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = log_joint.sub_(m).exp_()
    s = e.sum(dim=1, keepdim=True)
    return e, s, (m + s.log()).squeeze(1)


def diag_parameters(sums: Tensor, n: int, reg_covar: float) -> tuple[Tensor, Tensor, Tensor]:
    """M-step of a diagonal GMM from sums = Σ_n r_nk φ(y_n) (K, 2D + 1) = [Σ r y², Σ r y, N_k]:
    π_k = N_k / N, μ_k = Σ r y / N_k, σ_k² = Σ r y² / N_k − μ_k² + reg_covar (scikit-learn's
    formula, cancellation-prone, kept for parity; round-off below reg_covar is clamped)."""
    d = (sums.shape[1] - 1) // 2
    nk = sums[:, -1] + 10 * torch.finfo(sums.dtype).eps
    means = sums[:, d:2 * d] / nk[:, None]
    covariances = (sums[:, :d] / nk[:, None] - means * means + reg_covar).clamp_min(reg_covar)
    return nk / n, means, covariances


def diag_em_step(features: Tensor, weights: Tensor, means: Tensor, prec_chol: Tensor,
                 reg_covar: float, buffer: Tensor) -> tuple[float, tuple[Tensor, Tensor, Tensor]]:
    """One EM iteration of a diagonal GMM on φ(y) (N, 2D + 1), reusing ``buffer`` (N, K).

    E-step: log π_k + log N(y_n; μ_k, σ_k²) = φ(y_n) A (one matmul into ``buffer``), then
    e_nk = exp(· − max_k ·) in place (:func:`exp_normalise_`); the responsibilities
    r_nk = e_nk / s_n are formed only when K < 2D + 1. M-step: Σ_n r_nk φ(y_n) = eᵀ (φ / s),
    accumulated block by block right after each block's E-step (one pass over φ), scaling
    whichever of the exponentials and the features is narrower (Dempster, Laird & Rubin
    1977; Bishop 2006, §9.2). Returns (mean log-likelihood at the E-step,
    new parameters).
    """
    n, width = features.shape
    a = diag_log_joint_matrix(weights.log(), means, prec_chol)
    sums = features.new_zeros(a.shape[1], width)
    total = features.new_zeros(())
    # Row blocks of ≈ 2 MB of features: the M-step reads each block while it is still in cache
    # from the E-step, so φ (N, 2D + 1) crosses the memory bus once per iteration, not twice.
    rows = max(1, (1 << 18) // width)
    for start in range(0, n, rows):
        block, out = features[start:start + rows], buffer[start:start + rows]
        e, s, log_prob = exp_normalise_(torch.mm(block, a, out=out))
        total += log_prob.sum()
        # Divide the narrower operand by s: e (rows, K) when K < 2D + 1, else the features.
        if e.shape[1] < width:
            sums.addmm_(e.div_(s).T, block)
        else:
            sums.addmm_(e.T, block / s)
    return float(total) / n, diag_parameters(sums, n, reg_covar)


def estimate_parameters(y: Tensor, resp: Tensor, reg_covar: float,
                        covariance_type: str) -> tuple[Tensor, Tensor, Tensor]:
    """M-step: weights (K,), means (K, D), covariances (K, D, D) or (K, D) from resp (N, K)."""
    if covariance_type == "diag":
        return diag_parameters(resp.T @ diag_features(y), y.shape[0], reg_covar)
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
    means = resp.T @ y / nk[:, None]
    k, d = means.shape
    covariances = torch.empty(k, d, d, dtype=y.dtype, device=y.device)
    for s, e in _component_chunks(k, y.shape[0], d):
        diff = y[None] - means[s:e, None, :]  # (k', N, D)
        covariances[s:e] = (resp.T[s:e, :, None] * diff).mT @ diff / nk[s:e, None, None]
    covariances += reg_covar * torch.eye(d, dtype=y.dtype, device=y.device)
    return nk / y.shape[0], means, covariances


class GaussianMixture(Energy):
    """Gaussian mixture fitted by EM, scikit-learn style, as an :class:`Energy` whose
    latent is the component index.

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag"}
    tol : float          stop when the mean log-likelihood gains less than ``tol``
    reg_covar : float    added to the covariance diagonals (scikit-learn's default 1e-6)
    max_iter : int
    n_init : int         restarts; the highest final lower bound wins
    init_params : {"kmeans", "random"}
        Initial responsibilities: hard K-means labels or random normalised weights.
    weights_init, means_init, precisions_init : array or None
        Explicit initial parameters (precisions: (K, D, D) full, (K, D) diag), overriding
        those from ``init_params`` (same semantics as scikit-learn's).
    seed : int, torch.Generator or None
    dtype : torch.dtype, "float32"/"float64" or None (keep the input's)

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_ (K, D, D) or (K, D),
    precisions_cholesky_, converged_ (bool), n_iter_ (int),
    lower_bound_ (float, mean log-likelihood per sample at the last E-step)

    References
    ----------
    Dempster, Laird & Rubin, "Maximum likelihood from incomplete data via the EM
    algorithm" (1977); Bishop, "Pattern Recognition and Machine Learning" (2006), §9.2.

    Examples
    --------
    >>> import torch
    >>> y = torch.cat([torch.randn(100, 2) - 4, torch.randn(100, 2) + 4]).double()
    >>> gmm = GaussianMixture(2, seed=0).fit(y)
    >>> bool(torch.allclose(gmm.free_energy(y, beta=1.0), -gmm.score_samples(y)))
    True
    """

    has_latent = True

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full", tol: float = 1e-3,
                 reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1,
                 init_params: str = "kmeans", weights_init: Any = None, means_init: Any = None,
                 precisions_init: Any = None, seed: int | torch.Generator | None = None,
                 dtype: torch.dtype | str | None = None) -> None:
        super().__init__()
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.seed = seed
        self.dtype = dtype
        self.means_: Tensor | None = None
        self._fit_cache: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ fitting
    def _check_params(self, n: int) -> None:
        check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        check_choice("init_params", self.init_params, ("kmeans", "random"))
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"n_components must be a positive integer, got {k!r}")
        if k > n:
            raise ValueError(f"n_components={k} is larger than the number of samples ({n})")
        for name in ("max_iter", "n_init"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("reg_covar", self.reg_covar, allow_zero=True)

    def _initial_resp(self, y: Tensor, generator: torch.Generator) -> Tensor:
        k = self.n_components
        if self.means_init is not None:  # hard-assign to the given means
            from genoise.latent.kmeans import nearest

            labels = nearest(y, as_data("means_init", self.means_init, dtype=y.dtype, device=y.device))[0]
        elif self.init_params == "kmeans":
            from genoise.latent.kmeans import KMeans

            labels = KMeans(k, seed=generator, max_iter=100).fit(y).labels_
        else:
            resp = torch.rand(y.shape[0], k, generator=generator, dtype=y.dtype).to(y.device)
            return resp / resp.sum(1, keepdim=True)
        return torch.nn.functional.one_hot(labels, k).to(y.dtype)

    def _initialise(self, y: Tensor, generator: torch.Generator) -> None:
        k, d = self.n_components, y.shape[1]
        weights, means, covariances = estimate_parameters(
            y, self._initial_resp(y, generator), self.reg_covar, self.covariance_type)
        shape = {"full": (k, d, d), "diag": (k, d)}[self.covariance_type]
        if self.weights_init is not None:
            weights = as_data("weights_init", self.weights_init, dtype=y.dtype, device=y.device, ndim=1)
            if weights.shape != (k,) or bool((weights < 0).any()):
                raise ValueError(f"weights_init must be {k} non-negative numbers, got {tuple(weights.shape)}")
            weights = weights / weights.sum()
        if self.means_init is not None:
            means = as_data("means_init", self.means_init, dtype=y.dtype, device=y.device)
            if means.shape != (k, d):
                raise ValueError(f"means_init must have shape ({k}, {d}), got {tuple(means.shape)}")
        if self.precisions_init is not None:
            prec = as_data("precisions_init", self.precisions_init, dtype=y.dtype, device=y.device,
                           ndim=len(shape))
            if prec.shape != shape:
                raise ValueError(f"precisions_init must have shape {shape} for covariance_type="
                                 f"{self.covariance_type!r}, got {tuple(prec.shape)}")
            covariances = 1.0 / prec if self.covariance_type == "diag" else torch.linalg.inv(prec)
        self._set(weights, means, covariances)

    def _set(self, weights: Tensor, means: Tensor, covariances: Tensor) -> None:
        self.weights_, self.means_, self.covariances_ = weights, means, covariances
        self.precisions_cholesky_ = precision_cholesky(covariances, self.covariance_type)

    def _em_step(self, y: Tensor, features: Tensor | None,
                 buffer: Tensor | None) -> tuple[float, tuple[Tensor, Tensor, Tensor]]:
        """E-step then M-step; returns (mean log-likelihood at the E-step, new parameters)."""
        if self.covariance_type == "diag":
            return diag_em_step(features, self.weights_, self.means_, self.precisions_cholesky_,
                                self.reg_covar, buffer)
        e, s, log_prob = exp_normalise_(self._log_joint(y))
        resp = e.div_(s)
        return float(log_prob.mean()), estimate_parameters(y, resp, self.reg_covar, self.covariance_type)

    def fit(self, y: Any) -> GaussianMixture:
        """EM on y (N, D) until the mean log-likelihood gains < ``tol``; the restart with the
        highest final bound wins."""
        from genoise.train.estimator import run_steps

        run_steps(self, y, make_generator(self.seed))
        return self

    # ------------------------------------------------------------------ step-wise fit
    # One step is one EM iteration; restarts follow one another (as in ``fit``).
    # ``converged_`` keeps scikit-learn's meaning; ``finished_`` ends the loop.
    def init_fit(self, y: Any, generator: torch.Generator) -> None:
        """Validate y (N, D), initialise the first restart from ``generator``."""
        data = as_data("y", y, dtype=resolve_dtype(self.dtype))
        self._check_params(data.shape[0])
        if data.shape[0] < 2:
            raise ValueError(f"y needs at least 2 samples, got {data.shape[0]}")
        features, buffer = None, None
        if self.covariance_type == "diag":  # φ(y) once per fit, one (N, K) buffer for all E-steps
            features = diag_features(data)
            buffer = torch.empty(data.shape[0], self.n_components, dtype=data.dtype, device=data.device)
        self._fit_cache = (y, data, features, buffer)
        self._generator = generator
        self._restart, self._best, self._best_bound = 0, None, -math.inf
        self._bound, self._iter = -math.inf, 0
        self._initialise(data, generator)
        self.converged_, self.finished_ = False, False
        self.n_features_in_ = data.shape[1]

    def fit_step(self, y: Any) -> dict[str, float]:
        """One EM iteration; returns the mean log-likelihood at its E-step and the restart."""
        if self._fit_cache is None or self._fit_cache[0] is not y:
            raise ValueError("fit_step(y) needs the y given to init_fit(y, generator)")
        _, data, features, buffer = self._fit_cache
        previous = self._bound
        self._bound, parameters = self._em_step(data, features, buffer)
        self._set(*parameters)
        self._iter += 1
        row = {"restart": self._restart + 1, "log_likelihood": self._bound}
        converged = abs(self._bound - previous) < self.tol
        if converged or self._iter >= self.max_iter:
            if self._bound > self._best_bound or self._best is None:
                self._best_bound = self._bound
                self._best = (self.weights_, self.means_, self.covariances_, converged, self._iter)
            self._restart += 1
            if self._restart < self.n_init:
                self._initialise(data, self._generator)
                self._bound, self._iter = -math.inf, 0
            else:
                weights, means, covariances, self.converged_, self.n_iter_ = self._best
                self._set(weights, means, covariances)
                self.lower_bound_, self.finished_ = self._best_bound, True
        return row

    _STATE = ("weights_", "means_", "covariances_", "precisions_cholesky_", "_bound", "_iter", "_restart",
              "_best", "_best_bound", "converged_", "finished_", "n_iter_", "lower_bound_", "n_features_in_")

    def state_dict(self) -> dict[str, Any]:
        """The fit in progress (not the data, not the generator)."""
        return {name: getattr(self, name, None) for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])

    # ------------------------------------------------------------------ estimator API
    def _input(self, y: Any) -> Tensor:
        check_fitted(self, "means_")
        y = as_data("y", y, dtype=self.means_.dtype, device=self.means_.device)
        check_features("y", y, self.means_.shape[1])
        return y

    def _log_joint(self, y: Tensor) -> Tensor:
        """log π_k + log N(y; μ_k, Σ_k): (N, K)."""
        if self.covariance_type == "diag":
            return diag_features(y) @ diag_log_joint_matrix(self.weights_.log(), self.means_,
                                                            self.precisions_cholesky_)
        return log_gaussian(y, self.means_, self.precisions_cholesky_, self.covariance_type) + \
            self.weights_.log()

    def score_samples(self, y: Any) -> Tensor:
        """log p(y) per sample, (N,)."""
        return torch.logsumexp(self._log_joint(self._input(y)), dim=1)

    def score(self, y: Any) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(y).mean())

    def predict_proba(self, y: Any) -> Tensor:
        """Posterior responsibilities p(z = k | y), (N, K)."""
        return torch.softmax(self._log_joint(self._input(y)), dim=1)

    def predict(self, y: Any) -> Tensor:
        return self._log_joint(self._input(y)).argmax(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw n samples: (y (n, D), component labels (n,))."""
        check_fitted(self, "means_")
        labels = torch.multinomial(self.weights_, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means_.shape[1], generator=generator, dtype=self.means_.dtype)
        if self.covariance_type == "diag":
            return self.means_[labels] + noise * self.covariances_[labels].sqrt(), labels
        chol = torch.linalg.cholesky(self.covariances_)[labels]
        return self.means_[labels] + (chol @ noise[:, :, None]).squeeze(-1), labels

    # ------------------------------------------------------------------ energy surface
    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z) = Σ_k z_k (−log π_k − log N(y; μ_k, Σ_k)) for one-hot z (B, K); (B,).
        With z = None, the most probable component (β = ∞)."""
        energies = -self._log_joint(self._input(y))
        if z is None:
            return energies.min(1).values
        return (energies * z.to(energies.dtype)).sum(-1)

    def latent_candidates(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_fitted(self, "means_")
        return torch.eye(self.n_components, dtype=self.means_.dtype, device=self.means_.device)

    def energies_over_latents(self, y: Tensor, x: Tensor | None, candidates: Tensor) -> Tensor:
        """E(y_b, c_j) for all samples and candidate codes: (B, K') (linear in z)."""
        energies = -self._log_joint(self._input(y))
        return energies @ candidates.to(energies.dtype).T
