"""Learned sparse encoders: LISTA and LCoD (Gregor & LeCun, "Learning Fast Approximations
of Sparse Coding", ICML 2010).

Both unfold a sparse-inference algorithm for T steps into a feed-forward network whose
matrices become free parameters, trained by back-propagation to predict the optimal
codes Z* (from FISTA run to convergence):  L(W_e, S, θ) = ½‖Z* − f_e(Y)‖² (mean over samples).

* LISTA (the paper's Alg. 3, unfolded ISTA):  B = W_e y;  Z(1) = h_θ(B);
  Z(t+1) = h_θ(B + S Z(t)).  Initialised at W_e = W_dᵀ/L, S = I − W_dᵀW_d/L, θ = λ/L,
  where it computes exactly T iterations of ISTA from z = 0.
* LCoD (the paper's Alg. 4, unfolded coordinate descent):  B = W_e y;  Z = 0;  repeat T
  times  Z̄ = h_θ(B);  k = argmax|Z − Z̄|;  B ← B + S_{:,k}(Z̄_k − Z_k);  Z_k ← Z̄_k;  then
  Z = h_θ(B).  Initialised at W_e = W_dᵀ, S = I − W_dᵀW_d, θ = λ (= T steps of CoD for
  unit-norm atoms). The argmax is a discrete choice: gradients flow through the values.

Here T counts the soft-threshold applications of LISTA (T = 1 is h_θ(W_e y)) and the
coordinate updates of LCoD, so that the untrained networks equal T iterations of ISTA
and T steps of CoD: a learned encoder is compared with its algorithm at equal depth.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genoise._checks import check_finite, check_ndim, check_positive
from genoise.latent.ista import (
    check_dictionary,
    coordinate_descent,
    fista,
    ista,
    lipschitz_constant,
    soft_threshold,
)


class LISTA(nn.Module):
    """Learned ISTA encoder f_e: (B, D) → (B, K) with T unfolded steps.

    Parameters
    ----------
    dictionary : Tensor (D, K)   W_d, used for the initialisation only.
    lam : float                  λ of the sparse-coding problem.
    n_steps : int                T ≥ 1.
    shared : bool                one S and θ for every step (the paper) or one per step.

    Attributes: ``encoder`` W_e (K, D), ``S`` (K, K) or (T−1, K, K), ``theta`` (K,).
    """

    def __init__(self, dictionary: Tensor, lam: float, n_steps: int = 3, *, shared: bool = True) -> None:
        super().__init__()
        check_dictionary(dictionary)
        check_positive("lam", lam, allow_zero=True)
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        w = dictionary.detach()
        L = lipschitz_constant(w)
        self.n_steps, self.shared = n_steps, shared
        self.encoder = nn.Parameter(w.T.clone() / L)
        s = torch.eye(w.shape[1], dtype=w.dtype) - w.T @ w / L
        if not shared:
            s = s.unsqueeze(0).repeat(max(n_steps - 1, 1), 1, 1)
        self.S = nn.Parameter(s)
        self.theta = nn.Parameter(torch.full((w.shape[1],), lam / L, dtype=w.dtype))

    def forward(self, y: Tensor) -> Tensor:
        check_ndim("y", y, 2)
        if y.shape[1] != self.encoder.shape[1]:
            raise ValueError(f"y has D={y.shape[1]} features, the encoder expects {self.encoder.shape[1]}")
        b = y @ self.encoder.T
        z = soft_threshold(b, self.theta)
        for t in range(self.n_steps - 1):
            s = self.S if self.shared else self.S[t]
            z = soft_threshold(b + z @ s.T, self.theta)
        return z


class LCoD(nn.Module):
    """Learned coordinate descent encoder (Gregor & LeCun 2010, Alg. 4), batched: every
    sample picks its own coordinate at every one of the T steps.

    Parameters as :class:`LISTA`; ``n_steps`` counts coordinate updates.
    """

    def __init__(self, dictionary: Tensor, lam: float, n_steps: int = 10) -> None:
        super().__init__()
        check_dictionary(dictionary)
        check_positive("lam", lam, allow_zero=True)
        if not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
        w = dictionary.detach()
        norms = (w * w).sum(dim=0)
        # Scale by the atom norms so the initial network is exactly CoD also for
        # non-unit atoms: z̄ = h_λ(B)/c  ==  h_{λ/c}(B/c).
        self.n_steps = n_steps
        self.encoder = nn.Parameter(w.T.clone() / norms[:, None])
        self.S = nn.Parameter((torch.diag(norms) - w.T @ w) / norms[:, None])
        self.theta = nn.Parameter(lam / norms)

    def forward(self, y: Tensor) -> Tensor:
        check_ndim("y", y, 2)
        if y.shape[1] != self.encoder.shape[1]:
            raise ValueError(f"y has D={y.shape[1]} features, the encoder expects {self.encoder.shape[1]}")
        b = y @ self.encoder.T
        z = torch.zeros_like(b)
        rows = torch.arange(y.shape[0], device=y.device)
        s_columns = self.S.T                        # row k of S.T is column k of S
        for _ in range(self.n_steps):
            z_bar = soft_threshold(b, self.theta)
            k = (z_bar - z).detach().abs().argmax(dim=1)
            delta = z_bar[rows, k] - z[rows, k]
            b = b + s_columns[k] * delta[:, None]
            z = z.index_put((rows, k), z_bar[rows, k])
        return soft_threshold(b, self.theta)


def code_prediction_error(z_pred: Tensor, z_star: Tensor) -> float:
    """Mean over samples of ½‖Z* − Z‖² (the training loss of the paper)."""
    return float(0.5 * (z_star - z_pred).pow(2).sum(dim=1).mean())


def solver_error_curves(y: Tensor, w: Tensor, lam: float, z_star: Tensor, steps: list[int], *,
                        cod_steps: list[int] = ()) -> dict[str, dict[int, float]]:
    """Code prediction error ½‖Z* − Z‖² (mean over samples) of T iterations of ISTA, FISTA
    (no restart) and CoD from z = 0, for every T in ``steps`` (CoD also at ``cod_steps``):
    the iterative baselines a learned encoder of depth T is compared with (Gregor & LeCun
    2010, fig. 3). Returns {"ISTA": {T: error}, "FISTA": {…}, "CoD": {…}}."""
    curves: dict[str, dict[int, float]] = {"ISTA": {}, "FISTA": {}, "CoD": {}}
    for t in steps:
        curves["ISTA"][t] = code_prediction_error(ista(y, w, lam, steps=t), z_star)
        curves["FISTA"][t] = code_prediction_error(fista(y, w, lam, steps=t, restart=False), z_star)
    for t in sorted(set(steps) | set(cod_steps)):
        curves["CoD"][t] = code_prediction_error(coordinate_descent(y, w, lam, steps=t), z_star)
    return curves


def train_encoder(encoder: nn.Module, y: Tensor, z_star: Tensor, *, epochs: int = 50,
                  batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                  callback: Callable[[int, float], None] | None = None) -> list[float]:
    """Fit ``encoder`` to predict the optimal codes: min ½‖Z* − f_e(Y)‖², Adam on minibatches.

    Parameters
    ----------
    encoder : nn.Module          :class:`LISTA`, :class:`LCoD` or any (B, D) → (B, K) map.
    y : Tensor (N, D)            inputs.
    z_star : Tensor (N, K)       target codes (e.g. FISTA to convergence).

    Returns the mean training loss of every epoch.
    """
    check_ndim("y", y, 2)
    check_ndim("z_star", z_star, 2)
    check_finite("y", y)
    check_finite("z_star", z_star)
    if y.shape[0] != z_star.shape[0]:
        raise ValueError(f"y has {y.shape[0]} samples but z_star has {z_star.shape[0]}")
    check_positive("lr", lr)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        order = torch.randperm(y.shape[0], generator=gen).to(y.device)
        total = 0.0
        for start in range(0, y.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss = 0.5 * (z_star[idx] - encoder(y[idx])).pow(2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        history.append(total / y.shape[0])
        if callback is not None:
            callback(epoch, history[-1])
    return history
