"""Predictive sparse decomposition, PSD (Kavukcuoglu, Ranzato & LeCun, "Fast Inference in
Sparse Coding Algorithms with Applications to Object Recognition", 2008): a sparse
auto-encoder whose encoder f_e is trained jointly with the dictionary W_d.

    E(y, z) = ½‖y − W_d z‖² + λ‖z‖₁ + α‖z − f_e(y)‖²,     f_e(y) = g ⊙ tanh(W_e y + b).

Training alternates, on minibatches: (1) z* = argmin_z E(y, z), a lasso problem on the
augmented system ½‖[y; √(2α) f_e(y)] − [W_d; √(2α) I] z‖² + λ‖z‖₁, solved by FISTA from
z = f_e(y); (2) one gradient step of E(y, z*) on W_d (then columns renormalised) and
on the encoder (W_e, b, g). After training, f_e(y) alone is a fast approximation of the
sparse code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genoise._checks import check_finite, check_ndim, check_positive
from genoise.energy.base import Energy
from genoise.latent.dictionary import init_dictionary, normalize_columns
from genoise.latent.ista import fista


class PSD(Energy):
    """Predictive sparse decomposition: energy, inference, and a ``fit`` loop.

    Parameters
    ----------
    n_features : int    D.
    n_atoms : int       K.
    lam : float         λ ≥ 0, sparsity weight.
    alpha : float       α > 0, weight of the prediction term ‖z − f_e(y)‖².
    max_iter : int      passes (epochs) over the data in :meth:`fit`.
    batch_size : int    minibatch size in :meth:`fit`.
    lr : float          SGD step size in :meth:`fit`.
    seed : int          seeds the initial dictionary and encoder, and the minibatch order.

    Attributes
    ----------
    history_ : list[float]   mean energy E(y, z*) of every epoch of :meth:`fit`.
    """

    has_latent = True

    def __init__(self, n_features: int, n_atoms: int, lam: float, alpha: float = 1.0, *,
                 max_iter: int = 5, batch_size: int = 128, lr: float = 1e-2, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_positive("lam", lam, allow_zero=True)
        check_positive("alpha", alpha)
        check_positive("lr", lr)
        for name, value in (("max_iter", max_iter), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.max_iter, self.batch_size, self.lr, self.seed = max_iter, batch_size, float(lr), seed
        gen = torch.Generator().manual_seed(seed)
        self.lam, self.alpha = float(lam), float(alpha)
        w = init_dictionary(torch.zeros(1, n_features, dtype=dtype), n_atoms, gen)
        self.dictionary = nn.Parameter(w)
        self.encoder_weight = nn.Parameter(0.5 * w.T.clone())
        self.encoder_bias = nn.Parameter(torch.zeros(n_atoms, dtype=dtype))
        self.encoder_gain = nn.Parameter(torch.ones(n_atoms, dtype=dtype))

    def encode(self, y: Tensor) -> Tensor:
        """f_e(y) = g ⊙ tanh(W_e y + b): (B, D) → (B, K)."""
        check_ndim("y", y, 2)
        if y.shape[1] != self.dictionary.shape[0]:
            raise ValueError(f"y has D={y.shape[1]} features, the model expects {self.dictionary.shape[0]}")
        return self.encoder_gain * torch.tanh(y @ self.encoder_weight.T + self.encoder_bias)

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        if z is None:
            raise ValueError("PSD.energy needs the code z (B, K); use free_energy(y) for min_z E")
        residual = y - z @ self.dictionary.T
        return (0.5 * residual.pow(2).sum(1) + self.lam * z.abs().sum(1)
                + self.alpha * (z - self.encode(y)).pow(2).sum(1))

    def infer_code(self, y: Tensor, steps: int = 100, tol: float | None = 1e-5) -> Tensor:
        """z* = argmin_z E(y, z) by FISTA on the augmented lasso problem, from z = f_e(y)."""
        check_finite("y", y)
        with torch.no_grad():
            prediction = self.encode(y)
            k = self.dictionary.shape[1]
            scale = math.sqrt(2.0 * self.alpha)
            w_aug = torch.cat([self.dictionary, scale * torch.eye(k, dtype=y.dtype, device=y.device)])
            y_aug = torch.cat([y, scale * prediction], dim=1)
            return fista(y_aug, w_aug, self.lam, steps=steps, tol=tol, z0=prediction)

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf, **kwargs) -> Tensor:
        """F_∞(y) = E(y, z*) (β = ∞ only)."""
        if not (isinstance(beta, (int, float)) and math.isinf(beta) and beta > 0):
            raise ValueError(f"PSD.free_energy supports only beta=inf, got {beta!r}")
        return self.energy(y, z=self.infer_code(y.detach()))

    def fit(self, y: Tensor) -> PSD:
        """Train dictionary and encoder jointly by SGD on minibatches of y (N, D), ``max_iter``
        epochs; ``history_`` gets the mean energy E(y, z*) of every epoch."""
        check_ndim("y", y, 2)
        check_finite("y", y)
        gen = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        self.history_: list[float] = []
        for _ in range(self.max_iter):
            order = torch.randperm(y.shape[0], generator=gen)
            total = 0.0
            for start in range(0, y.shape[0], self.batch_size):
                batch = y[order[start:start + self.batch_size]]
                loss = self.energy(batch, z=self.infer_code(batch)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    self.dictionary.copy_(normalize_columns(self.dictionary))
                total += float(loss.detach()) * batch.shape[0]
            self.history_.append(total / y.shape[0])
        return self
