"""Contrastive divergence: maximum-likelihood training of any energy with MCMC negatives.

Hinton, "Training Products of Experts by Minimizing Contrastive Divergence" (Neural
Computation, 2002) — CD-k; Tieleman, "Training Restricted Boltzmann Machines using
Approximations to the Likelihood Gradient" (ICML 2008) — persistent CD (PCD).

For the Gibbs distribution p_θ(y) = exp(−E_θ(y)) / Z_θ (β = 1; LeCun et al. 2006, §2.2) the
gradient of the negative log-likelihood of a data set is

    ∇θ (−E_data[log p_θ(y)]) = E_data[∇θ E_θ(y)] − E_{p_θ}[∇θ E_θ(y)],

the data term minus the model term. The model expectation is intractable; CD-k estimates it
with samples ŷ of k MCMC steps started at the data batch, PCD with chains that persist
across batches (a :class:`~genoise.energy.ReplayBuffer`). Either way the estimate is the
gradient of the surrogate loss

    L(θ) = (1/N) Σ_i E_θ(y_i) − (1/M) Σ_j E_θ(ŷ_j),     ŷ held constant

(:func:`contrastive_divergence_loss`). The MCMC kernel is Langevin dynamics
(:func:`~genoise.energy.langevin_sample`), HMC (:func:`~genoise.energy.hmc.hmc_sample`), or,
for binary y ∈ {0, 1}^D, systematic-scan Gibbs sampling (:func:`gibbs_binary_sample`), the
kernel of Hinton's CD, where one CD step is one sweep over the D sites.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genoise._checks import check_choice, check_finite, check_int, check_ndim, check_positive, has_nan
from genoise.energy.base import Energy, check_answers, check_energy_output
from genoise.energy.hmc import hmc_sample
from genoise.energy.minimize import EnergyFn, Projection, draw_noise, langevin_sample
from genoise.energy.samplers import ReplayBuffer, as_energy_fn

__all__ = ["ContrastiveDivergence", "contrastive_divergence_loss", "gibbs_binary_sample"]

_SAMPLERS = ("langevin", "hmc", "gibbs")
_DEFAULT_STEP_SIZE = {"langevin": 0.01, "hmc": 0.1, "gibbs": 1.0}


def contrastive_divergence_loss(energy_data: Tensor, energy_samples: Tensor) -> Tensor:
    """L = mean_i E(y_i) − mean_j E(ŷ_j), a scalar (Hinton 2002).

    Parameters
    ----------
    energy_data : Tensor (N,)
        Energies of the data batch, with the graph to the energy's parameters.
    energy_samples : Tensor (M,)
        Energies of the MCMC samples ŷ (detached samples: only the parameters carry gradient);
        M may differ from N.

    Returns
    -------
    Tensor ()
        Its gradient E_data[∇θE] − E_ŷ[∇θE] is the Monte-Carlo estimate of the
        negative log-likelihood gradient. No reduction option: the means are the estimator.
    """
    for name, energies in (("energy_data", energy_data), ("energy_samples", energy_samples)):
        check_ndim(name, energies, 1)
        if energies.numel() == 0:
            raise ValueError(f"{name} is empty; the loss needs at least one energy")
        check_finite(name, energies)
    return energy_data.mean() - energy_samples.mean()


def _check_binary(name: str, y: Tensor) -> Tensor:
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"{name} must be binary (values in {{0, 1}}) for Gibbs sampling, got "
                         f"values in [{float(y.min())}, {float(y.max())}]")
    return y


def gibbs_binary_sample(fn: Energy | EnergyFn, init: Tensor, *, sweeps: int = 1,
                        generator: torch.Generator | None = None) -> Tensor:
    """Systematic-scan single-site Gibbs sampling of p(y) ∝ exp(−fn(y)) on {0, 1}^D.

    A sweep visits the sites i = 0, …, D−1 in order (the D entries of ``y[b]`` flattened) and
    redraws each from its conditional given the others (Geman & Geman 1984; Hinton 2002):

        p(y_i = 1 | y_¬i) = sigmoid(fn(y with y_i = 0) − fn(y with y_i = 1)),

    both configurations of all B chains scored in one batched call of ``fn`` on (2B, ...).
    Each site update leaves p invariant, hence so does a sweep.

    Parameters
    ----------
    fn : callable ``fn(y) -> (B,)`` or Energy
        The energy (β = 1); an unconditional :class:`Energy` is used through its free energy.
        ``fn`` may return +inf for a forbidden configuration.
    init : Tensor (B, *shape)
        Binary starting points (0/1 values, usually float), one chain per row.
    sweeps : int >= 0
        Number of full sweeps.
    generator : torch.Generator, optional
        Draws the uniforms of the site updates (on ``init``'s device).

    Returns
    -------
    Tensor (B, *shape)
        The samples, detached, in ``init``'s dtype.
    """
    check_int("sweeps", sweeps, min=0)
    check_answers("init", init)
    _check_binary("init", init)
    fn = as_energy_fn(fn)
    y = init.detach().clone()
    batch = y.shape[0]
    flat = y.view(batch, -1)  # the sites; writes go through to y
    with torch.no_grad():
        for _ in range(sweeps):
            for site in range(flat.shape[1]):
                pair = flat.repeat(2, 1)
                pair[:batch, site] = 0
                pair[batch:, site] = 1
                energies = check_energy_output("gibbs_binary_sample fn",
                                               fn(pair.view(2 * batch, *y.shape[1:])), 2 * batch)
                prob_one = torch.sigmoid(energies[:batch] - energies[batch:])
                if has_nan(prob_one):
                    raise ValueError(f"the conditional of site {site} is undefined: fn returned NaN, "
                                     "or +inf for both of its values")
                uniform = draw_noise((batch,), prob_one, generator, "uniform")
                flat[:, site] = (uniform < prob_one).to(flat.dtype)
    return y


class ContrastiveDivergence:
    """CD-k (Hinton 2002) or persistent CD (Tieleman 2008) as a training strategy for any energy.

    :meth:`negatives` runs ``k`` MCMC steps on p(y) ∝ exp(−F(y)) — from the data batch (CD-k)
    or, with ``persistent=True``, from chains drawn from ``buffer`` and written back (PCD) —
    and :meth:`loss` returns :func:`contrastive_divergence_loss`, whose gradient is the
    data term minus the chain term.

    Parameters
    ----------
    energy : Energy or callable ``fn(y) -> (B,)``
        The model; an unconditional :class:`Energy` is used through its free energy F(y).
    k : int >= 1
        MCMC steps per call: Langevin steps, HMC iterations, or Gibbs sweeps.
    sampler : {"langevin", "hmc", "gibbs"}
        The kernel; ``"gibbs"`` (:func:`gibbs_binary_sample`) needs binary y ∈ {0, 1}^D.
    persistent : bool
        PCD: the chains start from ``buffer`` instead of the data.
    buffer : ReplayBuffer, optional
        The persistent chains; required with (and only with) ``persistent=True``. Its own
        generator draws the starting chains (and re-initialisations).
    step_size : float, optional
        Langevin ε (default 0.01) or HMC leapfrog ε (default 0.1); unused by Gibbs.
    noise_std : float, optional
        Langevin noise σ (default √ε, the exact diffusion).
    leapfrog_steps : int >= 1
        HMC trajectory length L.
    projection : callable, optional
        Langevin / HMC projection of the samples (e.g. a clamp to the data range).
    generator : torch.Generator, optional
        Drives the MCMC noise.

    Attributes
    ----------
    last_accept_rate : float
        HMC's mean acceptance probability of the last call (NaN for the other samplers).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> energy = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 1), nn.Flatten(0))
    >>> cd = ContrastiveDivergence(energy, k=5, generator=torch.Generator().manual_seed(0))
    >>> out = cd.loss(torch.randn(32, 2))
    >>> out["loss"].backward()
    >>> sorted(out)
    ['energy_data', 'energy_samples', 'loss']
    """

    def __init__(self, energy: Energy | EnergyFn, *, k: int = 1, sampler: str = "langevin",
                 persistent: bool = False, buffer: ReplayBuffer | None = None,
                 step_size: float | None = None, noise_std: float | None = None,
                 leapfrog_steps: int = 10, projection: Projection | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.k = check_int("k", k, min=1)
        self.sampler = check_choice("sampler", sampler, _SAMPLERS)
        if persistent and buffer is None:
            raise ValueError("persistent=True (PCD) needs a buffer: a ReplayBuffer holding the chains")
        if buffer is not None and not persistent:
            raise ValueError("a buffer is only used with persistent=True; CD-k starts at the data")
        self.step_size = float(check_positive(
            "step_size", _DEFAULT_STEP_SIZE[sampler] if step_size is None else step_size))
        if noise_std is not None:
            check_positive("noise_std", noise_std, allow_zero=True)
        self.energy = energy
        self.persistent = bool(persistent)
        self.buffer = buffer
        self.noise_std = noise_std
        self.leapfrog_steps = check_int("leapfrog_steps", leapfrog_steps, min=1)
        self.projection = projection
        self.generator = generator
        self.last_accept_rate = float("nan")

    def _check_batch(self, y: Tensor) -> None:
        check_answers("y", y)
        if self.sampler == "gibbs":
            _check_binary("y", y)
        elif not y.is_floating_point():
            raise ValueError(f"y must be a floating-point tensor for {self.sampler} sampling, got {y.dtype}")
        else:
            check_finite("y", y)

    def _run_chains(self, start: Tensor) -> Tensor:
        fn = as_energy_fn(self.energy)
        if self.sampler == "gibbs":
            return gibbs_binary_sample(fn, start, sweeps=self.k, generator=self.generator)
        if self.sampler == "hmc":
            result = hmc_sample(fn, start, steps=self.k, leapfrog_steps=self.leapfrog_steps,
                                step_size=self.step_size, generator=self.generator,
                                projection=self.projection)
            self.last_accept_rate = result.accept_rate
            return result.samples
        return langevin_sample(fn, start, steps=self.k, step_size=self.step_size,
                               noise_std=self.noise_std, generator=self.generator,
                               projection=self.projection)

    def negatives(self, y: Tensor) -> Tensor:
        """The MCMC samples ŷ (B, *shape), detached, for the data batch ``y`` (B, *shape).

        CD-k starts the chains at ``y``; PCD draws B chains from the buffer (``y`` only sets
        B and the shape), runs them and writes them back.
        """
        self._check_batch(y)
        if not self.persistent:
            return self._run_chains(y.detach())
        start, index = self.buffer.sample(y.shape[0])
        if start.shape[1:] != y.shape[1:]:
            raise ValueError(f"buffer samples have shape {tuple(start.shape[1:])} per chain, "
                             f"the data {tuple(y.shape[1:])}")
        samples = self._run_chains(start)
        self.buffer.update(index, samples)
        return samples

    def loss(self, y: Tensor) -> dict[str, Tensor]:
        """``{"loss", "energy_data", "energy_samples"}``: the CD loss of the batch ``y``
        (B, *shape), with gradient to the energy's parameters, and the detached mean energies
        of the data and of the samples."""
        samples = self.negatives(y)
        fn = as_energy_fn(self.energy)
        energy_data = check_energy_output("energy", fn(y), y.shape[0], y=y)
        energy_samples = check_energy_output("energy", fn(samples), samples.shape[0], y=samples)
        return {"loss": contrastive_divergence_loss(energy_data, energy_samples),
                "energy_data": energy_data.detach().mean(),
                "energy_samples": energy_samples.detach().mean()}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"last_accept_rate": self.last_accept_rate}
        if self.generator is not None:
            state["generator_state"] = self.generator.get_state()
        if self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_accept_rate = float(state.get("last_accept_rate", float("nan")))
        if self.generator is not None and "generator_state" in state:
            self.generator.set_state(state["generator_state"])
        if self.buffer is not None and "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
