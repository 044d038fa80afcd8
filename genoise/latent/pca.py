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
from genoise.latent._estimator import as_data, check_features, check_fitted, resolve_dtype


class PCA(Energy):
    """PCA fitted by a thin SVD of the centred data (torch.linalg), scikit-learn style.

    Parameters
    ----------
    n_components : int, float in (0, 1) or None
        Number of components k; a float keeps the fewest components explaining that
        fraction of the variance; ``None`` keeps min(N, D).
    whiten : bool
        Scale codes to unit variance: z = W (y − μ) / sqrt(explained_variance_).
    dtype : torch.dtype or "float32"/"float64" or None
        Compute precision (``None`` keeps the input's).

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
    Learning". Component signs follow scikit-learn ≥ 1.5 (largest-magnitude entry of
    every component positive).

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
                 dtype: torch.dtype | str | None = None) -> None:
        super().__init__()
        self.n_components = n_components
        self.whiten = whiten
        self.dtype = dtype
        self.components_: Tensor | None = None
        self._fit_cache: tuple[Any, Tensor] | None = None

    # ------------------------------------------------------------------ fitting
    def _n_keep(self, ratio: Tensor, max_k: int) -> int:
        k = self.n_components
        if k is None:
            return max_k
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise ValueError(f"n_components must be an int, a float in (0, 1) or None; got {k!r}")
        if isinstance(k, float) and not k.is_integer():
            if not 0 < k < 1:
                raise ValueError(f"n_components as a fraction must be in (0, 1), got {k}")
            return min(int(torch.searchsorted(ratio.cumsum(0), torch.tensor(k, dtype=ratio.dtype))) + 1,
                       max_k)
        k = int(k)
        if not 1 <= k <= max_k:
            raise ValueError(f"n_components={k} must be between 1 and min(n_samples, n_features)={max_k}")
        return k

    def fit(self, y: Any) -> PCA:
        """Fit on data y (N, D): mean, then SVD of y − μ = U S Vᵀ; W = first k rows of Vᵀ."""
        from genoise.train.estimator import run_steps

        run_steps(self, y, torch.Generator())
        return self

    # ------------------------------------------------------------------ step-wise fit (one step)
    def init_fit(self, y: Any, generator: torch.Generator) -> None:
        """Validate y (N, D); PCA draws nothing from ``generator``."""
        data = as_data("y", y, dtype=resolve_dtype(self.dtype))
        if data.shape[0] < 2:
            raise ValueError(f"y needs at least 2 samples to estimate a variance, got {data.shape[0]}")
        self._fit_cache = (y, data)
        self.converged_ = False

    def fit_step(self, y: Any) -> dict[str, float]:
        """The whole fit (one SVD); returns the explained variance ratio of the k components."""
        data = self._fit_cache[1] if self._fit_cache is not None and self._fit_cache[0] is y else \
            as_data("y", y, dtype=resolve_dtype(self.dtype))
        self._fit_svd(data)
        self.converged_ = True
        return {"explained_variance": float(self.explained_variance_ratio_.sum())}

    _STATE = ("mean_", "components_", "singular_values_", "explained_variance_",
              "explained_variance_ratio_", "n_components_", "noise_variance_", "n_features_in_", "converged_")

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name, None) for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])

    def _fit_svd(self, y: Tensor) -> None:
        n, d = y.shape
        mean = y.mean(0)
        _, s, vh = torch.linalg.svd(y - mean, full_matrices=False)
        # sklearn >= 1.5 sign convention: the largest-|.| entry of each component is positive
        pivot = vh.abs().argmax(dim=1)
        signs = torch.sign(vh.gather(1, pivot[:, None]))
        vh = vh * torch.where(signs == 0, torch.ones_like(signs), signs)
        variance = s**2 / (n - 1)
        ratio = variance / variance.sum()
        k = self._n_keep(ratio, min(n, d))
        self.mean_ = mean
        self.components_ = vh[:k]
        self.singular_values_ = s[:k]
        self.explained_variance_ = variance[:k]
        self.explained_variance_ratio_ = ratio[:k]
        self.n_components_ = k
        rest = variance[k:]
        self.noise_variance_ = float(rest.mean()) if rest.numel() else 0.0
        self.n_features_in_ = d

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
