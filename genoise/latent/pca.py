"""Principal component analysis as an energy: the architectural way to limit the volume
of low energy (LeCun et al., "A Tutorial on Energy-Based Learning", 2006; slides "PCA").

With W (k, D) holding k orthonormal principal directions and μ the data mean, the
energy of y with latent code z ∈ R^k is the squared reconstruction error

    E(y, z) = ‖y − μ − Wᵀ z‖²,

minimised in closed form at z* = W (y − μ), so the free energy is the distance of y to
the principal subspace,

    F_∞(y) = ‖(WᵀW − I)(y − μ)‖².

Only a k-dimensional affine subspace has zero energy: the volume of low energy is
limited by the bottleneck k < D.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genoise.energy.base import Energy
from genoise.energy.functional import _check_beta
from genoise.latent._estimator import as_data, check_features, check_fitted, make_generator, resolve_dtype
from genoise.latent.pca_solvers import (
    SOLVERS,
    choose_solver,
    svd_covariance_eigh,
    svd_full,
    svd_randomized,
)


class PCA(Energy):
    """PCA fitted by an SVD of the centred data (torch.linalg), scikit-learn style.

    Parameters
    ----------
    n_components : int, float in (0, 1) or None
        Number of components k; a float keeps the fewest components explaining that
        fraction of the variance; ``None`` keeps min(N, D).
    whiten : bool
        Scale codes to unit variance: z = W (y − μ) / sqrt(explained_variance_).
    dtype : torch.dtype or "float32"/"float64" or None
        Compute precision (``None`` keeps the input's).
    svd_solver : "auto", "full", "covariance_eigh" or "randomized"
        How the SVD is computed (:mod:`genoise.latent.pca_solvers`): ``full`` exact (the
        R-SVD of a tall matrix: QR, then the SVD of R), ``covariance_eigh`` the
        eigen-decomposition of the centred d × d Gram matrix (fastest for n ≫ d; variances
        accurate to ε·σ₁² absolutely), ``randomized`` Halko et al.'s range finder (an
        integer ``n_components`` only; approximate). ``auto`` picks as scikit-learn ≥ 1.5
        does (:func:`~genoise.latent.pca_solvers.choose_solver`); the choice is kept in
        ``svd_solver_``.
    seed : int, torch.Generator or None
        The random test matrix of ``randomized`` (``None``: a fresh seed). The other
        solvers draw nothing.

    Attributes
    ----------
    components_ : Tensor (k, D)         principal directions (rows, orthonormal)
    explained_variance_ : Tensor (k,)   variance along each direction (ddof = 1)
    explained_variance_ratio_ : Tensor (k,)
    singular_values_ : Tensor (k,)
    mean_ : Tensor (D,)
    noise_variance_ : float             mean variance of the discarded directions
    n_components_ : int

    References
    ----------
    Pearson (1901); Hotelling (1933); LeCun et al. (2006), "A Tutorial on Energy-Based
    Learning"; Halko, Martinsson & Tropp (2011), "Finding structure with randomness"
    (the randomized solver). Component signs follow scikit-learn ≥ 1.5 (largest-magnitude
    entry of every component positive).

    Examples
    --------
    >>> import torch
    >>> y = torch.randn(100, 5, dtype=torch.float64)
    >>> pca = PCA(n_components=2).fit(y)
    >>> pca.free_energy(y).shape
    torch.Size([100])
    """

    has_latent = True

    def __init__(self, n_components: int | float | None = None, *, whiten: bool = False,
                 dtype: torch.dtype | str | None = None, svd_solver: str = "auto",
                 seed: int | torch.Generator | None = None) -> None:
        super().__init__()
        self.n_components = n_components
        self.whiten = whiten
        self.dtype = dtype
        self.svd_solver = svd_solver
        self.seed = seed
        self.components_: Tensor | None = None
        self._fit_cache: tuple[Any, Tensor] | None = None
        self._generator: torch.Generator | None = None

    # ------------------------------------------------------------------ fitting
    def _count(self, max_k: int) -> int | None:
        """``n_components`` as a validated integer count, or None for a fraction or None."""
        k = self.n_components
        if k is None:
            return None
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise ValueError(f"n_components must be an int, a float in (0, 1) or None; got {k!r}")
        if isinstance(k, float) and not k.is_integer():
            if not 0 < k < 1:
                raise ValueError(f"n_components as a fraction must be in (0, 1), got {k}")
            return None
        k = int(k)
        if not 1 <= k <= max_k:
            raise ValueError(f"n_components={k} must be between 1 and min(n_samples, n_features)={max_k}")
        return k

    def _n_keep(self, ratio: Tensor, max_k: int) -> int:
        """The number of components to keep, given the variance ratios of all min(n, d)."""
        count = self._count(max_k)
        if count is not None:
            return count
        if self.n_components is None:
            return max_k
        fraction = torch.tensor(self.n_components, dtype=ratio.dtype, device=ratio.device)
        return min(int(torch.searchsorted(ratio.cumsum(0), fraction)) + 1, max_k)

    def fit(self, y: Any) -> PCA:
        """Fit on data y (N, D): mean, then SVD of y − μ = U S Vᵀ; W = first k rows of Vᵀ."""
        from genoise.train.estimator import run_steps

        run_steps(self, y, make_generator(self.seed))
        return self

    # ------------------------------------------------------------------ step-wise fit (one step)
    def init_fit(self, y: Any, generator: torch.Generator) -> None:
        """Validate y (N, D) and the solver; only ``randomized`` draws from ``generator``."""
        if self.svd_solver not in SOLVERS:
            names = ", ".join(map(repr, SOLVERS))
            raise ValueError(f"svd_solver must be one of {names}; got {self.svd_solver!r}")
        data = as_data("y", y, dtype=resolve_dtype(self.dtype))
        if data.shape[0] < 2:
            raise ValueError(f"y needs at least 2 samples to estimate a variance, got {data.shape[0]}")
        if self.svd_solver == "randomized" and self._count(min(data.shape)) is None:
            raise ValueError(f"svd_solver='randomized' needs an integer n_components, "
                             f"got {self.n_components!r}")
        self._fit_cache = (y, data)
        self._generator = generator
        self.converged_ = False

    def fit_step(self, y: Any) -> dict[str, float]:
        """The whole fit (one SVD); returns the explained variance ratio of the k components."""
        data = self._fit_cache[1] if self._fit_cache is not None and self._fit_cache[0] is y else \
            as_data("y", y, dtype=resolve_dtype(self.dtype))
        self._fit_svd(data, self._generator if self._generator is not None else make_generator(self.seed))
        self.converged_ = True
        return {"explained_variance": float(self.explained_variance_ratio_.sum())}

    _STATE = ("mean_", "components_", "singular_values_", "explained_variance_",
              "explained_variance_ratio_", "n_components_", "noise_variance_", "n_features_in_", "converged_",
              "svd_solver_")

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name, None) for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:  # files written before svd_solver_ existed lack it
            setattr(self, name, state.get(name) if name == "svd_solver_" else state[name])

    def _fit_svd(self, y: Tensor, generator: torch.Generator) -> None:
        n, d = y.shape
        wanted = self._count(min(n, d))  # an integer k: covariance_eigh and randomized compute only k
        solver = self.svd_solver if self.svd_solver != "auto" else \
            choose_solver(n, d, wanted if wanted is not None else self.n_components)
        mean = y.mean(0)
        if solver == "randomized":  # an integer k: init_fit checked it, auto picks it for one only
            s, vh, total = svd_randomized(y, mean, wanted, generator)
        elif solver == "covariance_eigh":
            s, vh, total = svd_covariance_eigh(y, mean, wanted)
        else:
            s, vh, total = svd_full(y, mean)
        # sklearn >= 1.5 sign convention: the largest-|.| entry of each component is positive
        pivot = vh.abs().argmax(dim=1)
        signs = torch.sign(vh.gather(1, pivot[:, None]))
        vh = vh * torch.where(signs == 0, torch.ones_like(signs), signs)
        power = s.square()
        variance = power / (n - 1)
        ratio = power / total
        k = self._n_keep(ratio, min(n, d))
        if s.numel() > k:  # all min(n, d) values at hand: the mean of the discarded ones
            self.noise_variance_ = float(variance[k:].mean())
        else:  # only k computed: what the total leaves, spread over the other min(n, d) − k
            left = min(n, d) - k
            self.noise_variance_ = float((total - power.sum()) / (n - 1) / left) if left else 0.0
        self.mean_ = mean
        self.components_ = vh[:k]
        self.singular_values_ = s[:k]
        self.explained_variance_ = variance[:k]
        self.explained_variance_ratio_ = ratio[:k]
        self.n_components_ = k
        self.n_features_in_ = d
        self.svd_solver_ = solver

    def _input(self, y: Any) -> Tensor:
        check_fitted(self, "components_")
        y = as_data("y", y, dtype=self.components_.dtype, device=self.components_.device)
        check_features("y", y, self.n_features_in_)
        return y

    def _scale(self) -> Tensor:
        """Per-component scale s with y − μ ≈ Wᵀ (s ⊙ z): √variance when whitening, else 1."""
        if self.whiten:
            return self.explained_variance_.clamp_min(torch.finfo(self.mean_.dtype).tiny).sqrt()
        return torch.ones_like(self.explained_variance_)

    # ------------------------------------------------------------------ estimator API
    def transform(self, y: Any) -> Tensor:
        """Codes z = W (y − μ) (divided by √variance when whitening): (N, k)."""
        y = self._input(y)
        return (y - self.mean_) @ self.components_.T / self._scale()

    def fit_transform(self, y: Any) -> Tensor:
        return self.fit(y).transform(y)

    def inverse_transform(self, z: Any) -> Tensor:
        """Reconstruction μ + Wᵀ (s ⊙ z): (N, D)."""
        check_fitted(self, "components_")
        z = as_data("z", z, dtype=self.components_.dtype, device=self.components_.device)
        check_features("z", z, self.n_components_)
        return self.mean_ + (z * self._scale()) @ self.components_

    # ------------------------------------------------------------------ energy surface
    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z) = ‖y − μ − Wᵀ(s ⊙ z)‖² per sample, (B,); z = the optimal code when None."""
        if z is None:
            z = self.transform(y)
        y = self._input(y)
        z = z.to(y.dtype)
        return ((y - self.mean_ - (z * self._scale()) @ self.components_) ** 2).sum(-1)

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf,
                    **kwargs: Any) -> Tensor:
        """F_β(y), closed form.

        β = ∞: ‖(WᵀW − I)(y − μ)‖². Finite β, with the flat (Lebesgue) measure on z:
        −(1/β) log ∫ exp(−β E(y, z)) dz = F_∞(y) − (k / 2β) log(π / β) + (1/β) Σ log s_j
        (a Gaussian integral; s_j = 1 without whitening).
        """
        beta = _check_beta(beta)
        y = self._input(y)
        centred = y - self.mean_
        residual = centred - (centred @ self.components_.T) @ self.components_
        f_inf = (residual**2).sum(-1)
        if math.isinf(beta):
            return f_inf
        k = self.n_components_
        return f_inf - (k / (2 * beta)) * math.log(math.pi / beta) + float(self._scale().log().sum()) / beta

    def initial_latent(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        check_fitted(self, "components_")
        return torch.zeros(y.shape[0], self.n_components_, dtype=self.components_.dtype,
                           device=self.components_.device)

    def score(self, y: Any) -> float:
        """Minus the mean squared reconstruction error (higher is better)."""
        return -float(self.free_energy(self._input(y)).mean())
