"""Sparse coding as an energy with a latent code (Olshausen & Field 1996; LeCun et al. 2006).

    E(y, z) = ½‖y − W_d z‖² + λ‖z‖₁,        F_∞(y) = min_z E(y, z),

with y (D,), the code z (K,) and the dictionary W_d (D, K), unit-norm atoms in its
columns. The L1 term is the latent regulariser R(z) that limits the volume of y's that
get a low free energy. The minimisation over z is a lasso problem, solved by FISTA
(:mod:`genoise.latent.ista`) rather than generic gradient descent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genoise._checks import check_finite, check_ndim, check_positive, check_same_batch
from genoise.energy.base import Energy
from genoise.latent.ista import check_dictionary, check_sparse_problem, sparse_encode


class SparseCodingEnergy(Energy):
    """E(y, z) = ½‖y − W_d z‖² + λ‖z‖₁ with a learnable dictionary W_d (D, K).

    Parameters
    ----------
    dictionary : Tensor (D, K)
        Initial atoms (copied into the parameter ``self.dictionary``).
    lam : float
        λ ≥ 0, the weight of the L1 regulariser.
    algorithm : {"fista", "ista", "cd"}
        The solver :meth:`free_energy` and :meth:`infer_code` use.
    steps, tol
        Solver budget and stopping tolerance.

    Examples
    --------
    >>> import torch
    >>> W = torch.nn.functional.normalize(torch.randn(16, 32), dim=0)
    >>> model = SparseCodingEnergy(W, lam=0.2)
    >>> y = torch.randn(4, 16)
    >>> model.free_energy(y).shape      # min_z E(y, z), by FISTA
    torch.Size([4])
    """

    has_latent = True

    def __init__(self, dictionary: Tensor, lam: float, *, algorithm: str = "fista",
                 steps: int = 500, tol: float | None = 1e-7) -> None:
        super().__init__()
        check_dictionary(dictionary)
        self.lam = float(check_positive("lam", lam, allow_zero=True))
        self.dictionary = nn.Parameter(dictionary.detach().clone())
        self.algorithm, self.steps, self.tol = algorithm, steps, tol

    @property
    def n_features(self) -> int:
        return self.dictionary.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.dictionary.shape[1]

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z), shape (B,); differentiable in z and in the dictionary."""
        if z is None:
            raise ValueError("SparseCodingEnergy.energy needs the code z (B, K); "
                             "use free_energy(y) for min_z E(y, z)")
        check_ndim("y", y, 2)
        check_ndim("z", z, 2)
        check_same_batch(y=y, z=z)
        if y.shape[1] != self.n_features or z.shape[1] != self.n_atoms:
            raise ValueError(f"y must be (B, {self.n_features}) and z (B, {self.n_atoms}); got "
                             f"{tuple(y.shape)} and {tuple(z.shape)}")
        residual = y - z @ self.dictionary.T
        return 0.5 * residual.pow(2).sum(dim=1) + self.lam * z.abs().sum(dim=1)

    def reconstruct(self, z: Tensor) -> Tensor:
        """W_d z for every code: (B, K) → (B, D)."""
        return z @ self.dictionary.T

    def infer_code(self, y: Tensor, *, algorithm: str | None = None, steps: int | None = None,
                   tol: float | None = math.nan, z0: Tensor | None = None) -> Tensor:
        """z* = argmin_z E(y, z), (B, D) → (B, K), without gradient."""
        return sparse_encode(y, self.dictionary.detach(), self.lam, algorithm or self.algorithm,
                             steps=self.steps if steps is None else steps,
                             tol=self.tol if tol is not None and math.isnan(tol) else tol, z0=z0)

    def initial_latent(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        return torch.zeros(y.shape[0], self.n_atoms, dtype=self.dictionary.dtype, device=y.device)

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf,
                    **kwargs) -> Tensor:
        """F_∞(y) = min_z E(y, z) = E(y, z*) with z* from the solver (FISTA by default).

        Differentiable in ``y`` and in the dictionary through E(y, z*) with z* held fixed:
        by the envelope theorem this is the exact gradient of the free energy.
        Only β = ∞ is supported (the Laplace-prior integral has no closed form).
        """
        if not (isinstance(beta, (int, float)) and math.isinf(beta) and beta > 0):
            raise ValueError(f"SparseCodingEnergy.free_energy supports only beta=inf, got {beta!r}")
        check_finite("y", y)
        check_sparse_problem(y.detach(), self.dictionary.detach(), self.lam)
        z = self.infer_code(y.detach())
        return self.energy(y, z=z)
