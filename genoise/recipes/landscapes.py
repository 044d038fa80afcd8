"""Foundation experiment (a): energy landscapes of 2-D toy sets, shaped three ways.

An MLP energy E(y), y ∈ R², is trained on each toy set (two moons, spiral, rings,
Gaussian mixture) by one method of each contrastive family of LeCun's taxonomy
(LeCun et al., "A Tutorial on Energy-Based Learning", 2006; the "C1/C2/C3" classes of
the SSL lectures):

* **C1 — NLL over a grid.** The partition function is estimated on a G×G grid over the
  square [-lim, lim]², one point drawn uniformly in each cell at every step (stratified
  sampling, so that the network cannot hide low energy between fixed nodes):
  L = E(y) + log Σ_g exp(-E(y_g)) + log ΔA. Every grid point is pushed up in proportion to
  its probability.
* **C2 — hinge with Langevin negatives.** Contrastive points ŷ come from persistent
  Langevin chains on exp(-E) (Du & Mordatch 2019):
  L = [m + E(y) - E(ŷ)]⁺ + α (E(y)² + E(ŷ)²)  (the α term keeps energies bounded).
* **C3 — denoising.** Denoising score matching (Vincent 2011): the energy gradient at a
  corrupted point ỹ = y + σε must point back to the data,
  L = ½ ‖σ ∇E(ỹ) - (ỹ - y)/σ‖².

The rest of the contrastive catalogue (``genoise.energy``, ``genoise.generative``):

* **CD-k** — contrastive divergence (Hinton 2002): ŷ from k Langevin steps started at the
  data batch; L = E(y) − E(ŷ) + α (E(y)² + E(ŷ)²).
* **HMC-PCD** — the same loss with persistent Hamiltonian Monte Carlo chains
  (Tieleman 2008; Neal 2011), step size adapted by dual averaging.
* **ESM / SSM** — explicit score matching with the exact Hessian trace (Hyvärinen 2005)
  and sliced score matching with variance reduction (Song et al. 2019): no negatives at all.
* **NCE** — noise-contrastive estimation (Gutmann & Hyvärinen 2010) against K uniform
  noise points per data point on the square; the MLP's bias learns the normaliser.
* **EBGAN** — the discriminator of an energy-based GAN (Zhao, Mathieu & LeCun 2017), an
  MLP auto-encoder whose reconstruction error is the energy, its contrastive points made
  by an MLP generator.

The held-out score that can fail: the mean log-likelihood of held-out points under the
Gibbs distribution P_β(y) = exp(-βE(y)) / Z_β with Z_β summed on the grid (β picked on
a validation split, since only C1 and C3 are calibrated at β = 1), against a Gaussian
kernel-density estimate from scikit-learn (bandwidth by cross-validation) fitted on the
same training points, and the uniform density on the square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise._checks import check_choice
from genoise.data.toys import TOYS, make_toy, toy_limits
from genoise.energy.contrastive_divergence import ContrastiveDivergence, contrastive_divergence_loss
from genoise.energy.hmc import PersistentHMCSampler
from genoise.energy.losses import nce_loss
from genoise.energy.networks import ScalarEnergy
from genoise.energy.samplers import PersistentLangevinSampler, ReplayBuffer, uniform_init
from genoise.energy.score_matching import explicit_score_matching_loss, sliced_score_matching_loss
from genoise.generative.gan import GANLoss, train_gan
from genoise.generative.networks import MLPGenerator, mlp_autoencoder_energy
from genoise.io import atomic_write_text
from genoise.nn import MLP
from genoise.train import NonFiniteLossError, Run, Trainer

METHODS = ("nll", "hinge", "denoising", "cd", "hmc_pcd", "esm", "ssm", "nce", "ebgan")
BASE_METHODS = ("nll", "hinge", "denoising")  # the recipe's default and the demo
METHOD_TITLES = {"nll": "C1: NLL on grid", "hinge": "C2: hinge + Langevin",
                 "denoising": "C3: denoising", "cd": "CD-k (Langevin)", "hmc_pcd": "HMC-PCD",
                 "esm": "explicit SM", "ssm": "sliced SM (VR)", "nce": "NCE (uniform noise)",
                 "ebgan": "EBGAN discriminator", "kde": "KDE baseline"}
BETAS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class LandscapeConfig:
    steps: int = 600
    batch_size: int = 256
    lr: float = 3e-3
    hidden: int = 64
    grid: int = 40           # training grid for C1
    eval_grid: int = 128     # grid that normalises the Gibbs distribution at evaluation
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 2000
    margin: float = 1.0
    alpha: float = 0.1
    langevin_steps: int = 10
    langevin_step_size: float = 0.02
    sigma: float = 0.1
    cd_steps: int = 10
    hmc_leapfrog: int = 5
    nce_noise: int = 4
    curvature_weight: float = 0.01
    ebgan_margin: float = 0.5
    seed: int = 0


def grid_points(lim: float, size: int) -> tuple[Tensor, float]:
    """Centres of a size×size grid over [-lim, lim]² (size², 2) and the cell area."""
    step = 2 * lim / size
    axis = torch.linspace(-lim + step / 2, lim - step / 2, size)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), step * step


def make_energy(hidden: int) -> ScalarEnergy:
    return ScalarEnergy(MLP(2, [hidden, hidden, hidden], 1, activation="silu"))


def _contrastive_step(negatives, alpha: float):
    """L = E(y) − E(ŷ) + α (E(y)² + E(ŷ)²) with ŷ = ``negatives(y)`` (CD-k, HMC-PCD)."""

    def step(model, batch, generator):
        (y,) = batch
        y_hat = negatives(y)
        e_pos, e_neg = model(y), model(y_hat)
        reg = alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        return {"loss": contrastive_divergence_loss(e_pos, e_neg) + reg,
                "energy_gap": (e_neg - e_pos).mean().detach()}

    return step


def _score_or_nce_step(method: str, cfg: LandscapeConfig, lim: float):
    log_q = -math.log((2 * lim) ** 2)  # uniform noise on the square

    def esm(model, batch, generator):
        return explicit_score_matching_loss(model, batch[0], curvature_weight=cfg.curvature_weight)

    def ssm(model, batch, generator):
        return sliced_score_matching_loss(model, batch[0], generator, variance_reduction=True,
                                          curvature_weight=cfg.curvature_weight)

    def nce(model, batch, generator):
        (y,) = batch
        shape = (y.shape[0] * cfg.nce_noise, 2)
        noise = (torch.rand(shape, generator=generator, device=y.device) * 2 - 1) * lim
        e_noise = model(noise).reshape(y.shape[0], cfg.nce_noise)
        return nce_loss(model(y), e_noise, torch.full((y.shape[0],), log_q, device=y.device),
                        torch.full_like(e_noise, log_q))

    return {"esm": esm, "ssm": ssm, "nce": nce}[method]


def _step_fn(method: str, energy: ScalarEnergy, cfg: LandscapeConfig, lim: float,
             sampler: PersistentLangevinSampler | None):
    if method in ("cd", "hmc_pcd"):
        return _contrastive_step(sampler, cfg.alpha)
    if method in ("esm", "ssm", "nce"):
        return _score_or_nce_step(method, cfg, lim)
    grid, area = grid_points(lim, cfg.grid)
    log_area, cell = math.log(area), math.sqrt(area)

    def nll(model, batch, generator):
        (y,) = batch
        # Stratified Monte-Carlo estimate of Z: one uniform point per grid cell, redrawn every
        # step, so the network cannot hide low energy between fixed grid nodes.
        jitter = (torch.rand(grid.shape, generator=generator, device=y.device) - 0.5) * cell
        log_z = torch.logsumexp(-model(grid.to(y.device) + jitter), dim=0) + log_area
        return model(y).mean() + log_z

    def hinge(model, batch, generator):
        (y,) = batch
        y_hat = sampler.sample(y.shape[0])
        e_pos, e_neg = model(y), model(y_hat)
        loss = torch.relu(cfg.margin + e_pos - e_neg).mean()
        reg = cfg.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        return {"loss": loss + reg, "energy_gap": (e_neg - e_pos).mean().detach()}

    def denoising(model, batch, generator):
        (y,) = batch
        noise = torch.randn(y.shape, generator=generator, device=y.device)
        y_tilde = (y + cfg.sigma * noise).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(y_tilde).sum(), y_tilde, create_graph=True)
        return 0.5 * (cfg.sigma * grad - noise).pow(2).sum(dim=1).mean()

    return {"nll": nll, "hinge": hinge, "denoising": denoising}[method]


def train_landscape(toy: str, method: str, run: Run | None = None,
                    cfg: LandscapeConfig | None = None) -> tuple[ScalarEnergy, dict[str, Any]]:
    """Train one MLP energy on ``toy`` with ``method`` ∈ {nll, hinge, denoising}."""
    check_choice("toy", toy, TOYS)
    check_choice("method", method, METHODS)
    cfg = cfg or LandscapeConfig()
    torch.manual_seed(cfg.seed)
    lim = toy_limits(toy)
    train = make_toy(toy, cfg.n_train, seed=cfg.seed)
    if method == "ebgan":
        return _train_ebgan(toy, train, run, cfg)
    energy = make_energy(cfg.hidden)
    sampler, extra = _negatives(method, energy, cfg, lim)
    optimizer = torch.optim.Adam(energy.parameters(), lr=cfg.lr)
    trainer = Trainer(energy, optimizer, _step_fn(method, energy, cfg, lim, sampler), (train,),
                      run=run, max_steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed,
                      checkpoint_every=None, log_every=max(cfg.steps // 10, 1), extra_state=extra,
                      progress=False if run is None else run.progress, grad_clip=10.0,
                      desc=f"landscape: {toy} {method}", kind=f"landscape-{method}")
    metrics = trainer.fit(resume=bool(run and run.resume))
    return energy, metrics


def _negatives(method: str, energy: ScalarEnergy, cfg: LandscapeConfig, lim: float) -> tuple[Any, dict]:
    """The source of contrastive points of ``method`` (or None) and its Trainer extra state."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    clamp = lambda v: v.clamp(-lim, lim)  # noqa: E731
    if method in ("hinge", "hmc_pcd"):  # persistent chains, started uniformly on the square
        buffer = ReplayBuffer(10_000, uniform_init(2, low=-lim, high=lim), generator=gen)
    if method == "hinge":
        sampler = PersistentLangevinSampler(energy, buffer, steps=cfg.langevin_steps,
                                            step_size=cfg.langevin_step_size, projection=clamp)
        return sampler, {"sampler": sampler}
    if method == "cd":
        cd = ContrastiveDivergence(energy, k=cfg.cd_steps, sampler="langevin", projection=clamp,
                                   step_size=cfg.langevin_step_size, generator=gen)
        return cd.negatives, {"sampler": cd}
    if method == "hmc_pcd":
        sampler = PersistentHMCSampler(energy, buffer, steps=1, leapfrog_steps=cfg.hmc_leapfrog,
                                       step_size=cfg.langevin_step_size, projection=clamp)
        return lambda y: sampler.sample(y.shape[0]), {"sampler": sampler}
    return None, {}


def _train_ebgan(toy: str, train: Tensor, run: Run | None, cfg: LandscapeConfig):
    """EBGAN on the toy: the trained discriminator (an auto-encoder energy) is the landscape."""
    generator = MLPGenerator(latent_dim=2, out_dim=2, hidden=(cfg.hidden, cfg.hidden))
    energy = mlp_autoencoder_energy(2, (cfg.hidden, cfg.hidden), code=8)
    metrics = train_gan(generator, energy, train, cfg.steps, loss=GANLoss("ebgan", margin=cfg.ebgan_margin),
                        batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, run=run,
                        progress=False if run is None else run.progress, checkpoint_every=None,
                        log_every=max(cfg.steps // 10, 1))
    return energy, metrics


@torch.no_grad()
def gibbs_log_likelihood(energy: ScalarEnergy, points: Tensor, lim: float, grid_size: int,
                         beta: float = 1.0) -> float:
    """Mean log P_β(y) of ``points`` with Z_β summed on a grid over [-lim, lim]²."""
    grid, area = grid_points(lim, grid_size)
    log_z = torch.logsumexp(-beta * energy(grid), dim=0) + math.log(area)
    return float((-beta * energy(points) - log_z).mean())


def kde_baseline(train: Tensor, seed: int = 0):
    """Gaussian KDE (scikit-learn), bandwidth by 5-fold cross-validated likelihood."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KernelDensity

    search = GridSearchCV(KernelDensity(kernel="gaussian"),
                          {"bandwidth": np.logspace(-1.7, -0.3, 12)}, cv=5)
    search.fit(train.numpy())
    return search.best_estimator_


def evaluate_landscape(energy: ScalarEnergy, toy: str, cfg: LandscapeConfig) -> dict[str, float]:
    """Pick β on the validation split, then score the test split (same seeds every method)."""
    lim = toy_limits(toy)
    val = make_toy(toy, cfg.n_val, seed=cfg.seed + 1000)
    test = make_toy(toy, cfg.n_test, seed=cfg.seed + 2000)
    scores = {b: gibbs_log_likelihood(energy, val, lim, cfg.eval_grid, b) for b in BETAS}
    beta = max(scores, key=scores.get)
    return {"beta": beta, "test_loglik": gibbs_log_likelihood(energy, test, lim, cfg.eval_grid, beta),
            "test_loglik_beta1": gibbs_log_likelihood(energy, test, lim, cfg.eval_grid, 1.0)}


def run_landscapes(run: Run, toys: tuple[str, ...] = TOYS, methods: tuple[str, ...] = BASE_METHODS,
                   cfg: LandscapeConfig | None = None) -> list[dict[str, Any]]:
    """Train every (toy, method), evaluate, draw the heat maps; returns one row per pair."""
    cfg = cfg or LandscapeConfig()
    rows, energies = [], {}
    for toy in toys:
        row: dict[str, Any] = {"toy": toy, "uniform": -math.log((2 * toy_limits(toy)) ** 2)}
        for method in methods:
            try:
                energy, _ = train_landscape(toy, method, run.subrun(f"{toy}-{method}"), cfg)
            except NonFiniteLossError as err:  # DivergedError included: report the cell, go on
                row.update({method: None, f"{method}_beta": None, f"{method}_status": f"diverged ({err})"})
                energies[(toy, method)] = None
                run.log({"toy": toy, "method": method, "status": "diverged"})
                continue
            energy.eval()
            result = evaluate_landscape(energy, toy, cfg)
            row.update({method: result["test_loglik"], f"{method}_beta": result["beta"],
                        f"{method}_status": "trained"})
            energies[(toy, method)] = lambda pts, e=energy, b=result["beta"]: b * e(pts)
            run.log({"toy": toy, "method": method, "status": "trained", **result})
        # the baseline after the trainings, so that a run stopped inside them skips it
        kde = kde_baseline(make_toy(toy, cfg.n_train, seed=cfg.seed))
        test = make_toy(toy, cfg.n_test, seed=cfg.seed + 2000)
        row.update({"kde": float(kde.score_samples(test.numpy()).mean()),
                    "kde_bandwidth": float(kde.bandwidth)})
        energies[(toy, "kde")] = lambda pts, kde=kde: -torch.from_numpy(kde.score_samples(pts.numpy()))
        rows.append(row)
    plot_landscapes(run, energies, toys, (*methods, "kde"), cfg)
    return rows


@torch.no_grad()
def plot_landscapes(run: Run, energies: dict, toys, columns, cfg: LandscapeConfig,
                    name: str = "landscapes.png") -> None:
    """Heat maps of β·E (β picked on validation; −log density for the KDE), dark = low
    energy, training points overlaid (white)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(toys), len(columns), figsize=(3 * len(columns), 3 * len(toys)),
                             squeeze=False)
    for i, toy in enumerate(toys):
        lim = toy_limits(toy)
        grid, _ = grid_points(lim, 100)
        data = make_toy(toy, 400, seed=cfg.seed)
        for j, column in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(METHOD_TITLES[column], fontsize=10)
            if j == 0:
                ax.set_ylabel(toy, fontsize=10)
            if energies[(toy, column)] is None:
                ax.text(0.5, 0.5, "diverged", ha="center", va="center", transform=ax.transAxes)
                continue
            values = energies[(toy, column)](grid).reshape(100, 100).double()
            finite = values[torch.isfinite(values)]
            values = torch.nan_to_num(values, posinf=float(finite.max()), neginf=float(finite.min()))
            values = values - values.min()
            # β·E is a log-density up to a constant: clip at 20 nats, or at the top quarter,
            # so that the structure of the low-energy region shows.
            values = values.clamp(max=min(20.0, float(torch.quantile(values, 0.75))))
            ax.imshow(values.numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="magma")
            ax.scatter(data[:, 0], data[:, 1], s=1.5, c="white", alpha=0.6)
    fig.suptitle("Energy landscapes (dark = low energy; points = training data)")
    run.save_figure(fig, name)


def _trained(row: dict[str, Any], method: str) -> bool:
    return row.get(f"{method}_status", "trained") == "trained" and row.get(method) is not None


def landscape_table(rows: list[dict[str, Any]], methods=BASE_METHODS) -> str:
    """Held-out log-likelihood per toy (rows) and method (columns); a diverged training
    shows ``diverged`` and makes its column's mean ``—``."""
    head = "| toy | " + " | ".join(METHOD_TITLES[m] for m in methods) + " | KDE (sklearn) | uniform |"
    sep = "|---|" + "---:|" * (len(methods) + 2)
    lines = [head, sep]
    for row in rows:
        cells = [f"{row[m]:.3f} (β={row[f'{m}_beta']:g})" if _trained(row, m) else "diverged"
                 for m in methods]
        lines.append(f"| {row['toy']} | " + " | ".join(cells)
                     + f" | {row['kde']:.3f} | {row['uniform']:.3f} |")
    means = [f"**{np.mean([r[m] for r in rows]):.3f}**" if all(_trained(r, m) for r in rows) else "—"
             for m in methods]
    means += [f"**{np.mean([r[m] for r in rows]):.3f}**" for m in ("kde", "uniform")]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)


def train(run: Run) -> dict[str, Any]:
    """Entry of ``genoise train energy-landscapes``."""
    toys = tuple(run.config.get("toys") or TOYS)
    methods = tuple(run.config.get("methods") or BASE_METHODS)
    for toy in toys:
        check_choice("toys", toy, TOYS)
    for method in methods:
        check_choice("methods", method, METHODS)
    rows = run_landscapes(run, toys, methods, run.config_as(LandscapeConfig))
    table = landscape_table(rows, methods)
    atomic_write_text(run.dir / "table.md", table + "\n")
    print(table)
    return {"rows": rows}


def demo(run: Run, full: bool) -> str:
    """Demo: all toys × all methods; table of held-out log-likelihoods and the heat maps."""
    cfg = LandscapeConfig(steps=2000, hidden=128) if full else LandscapeConfig(steps=400)
    rows = run_landscapes(run, cfg=cfg)
    atomic_write_text(run.dir / "table.md", landscape_table(rows) + "\n")
    scores = [{m: r[m] if _trained(r, m) else -math.inf for m in BASE_METHODS} for r in rows]
    best = {r["toy"]: max(BASE_METHODS, key=s.get) for r, s in zip(rows, scores, strict=True)}
    beat_kde = [r["toy"] for r, s in zip(rows, scores, strict=True) if max(s.values()) > r["kde"]]
    beat_uniform = {m: sum(s[m] > r["uniform"] for r, s in zip(rows, scores, strict=True))
                    for m in BASE_METHODS}
    return "\n".join([
        "## (a) Energy landscapes in 2-D",
        "",
        f"MLP energy (3×{cfg.hidden} SiLU) trained {cfg.steps} steps per method. Score: mean "
        "log-likelihood of held-out points (nats, higher is better) under the Gibbs distribution "
        f"normalised on a {cfg.eval_grid}² grid, β chosen on a validation split; beside a "
        "scikit-learn Gaussian KDE (bandwidth by 5-fold CV) on the same training points and the "
        "uniform density on the square.",
        "",
        landscape_table(rows),
        "",
        f"Best energy method per toy: {', '.join(f'{t}: {m}' for t, m in best.items())}. "
        f"An energy method beats the KDE on: {', '.join(beat_kde) or 'none'}. "
        f"Toys (of {len(rows)}) where each method beats uniform: "
        + ", ".join(f"{m} {n}" for m, n in beat_uniform.items()) + ".",
        "",
        "![energy landscapes](landscapes.png)",
    ])
