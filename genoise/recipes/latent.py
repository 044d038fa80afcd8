"""Recipes of the classical and auto-encoder latent models (``genoise train pca-mnist |
kmeans-mnist | ae-mnist | vae-mnist``) and their ``genoise demo`` section.

Each entry ``train_<model>(run) -> dict`` fits on the training split of
``run.config["dataset"]`` (MNIST from the data folder, or ``dataset=digits``), logs a
metrics row per step, writes ``last.pt`` (resumable bit-for-bit with ``--resume``) and
PNG pictures in the run folder, and returns the final metrics. PCA and K-means go
through :func:`genoise.train.estimator.fit_estimator`, the auto-encoders and the VAE
through :class:`genoise.train.Trainer`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genoise.data import ImageData, load_dataset
from genoise.latent.autoencoders import AutoEncoder, DenoisingAutoEncoder, MaskedAutoEncoder
from genoise.latent.figures import image_grid, image_grid_figure
from genoise.latent.kmeans import KMeans
from genoise.latent.pca import PCA
from genoise.latent.vae import VAE
from genoise.train import Trainer
from genoise.train.estimator import fit_estimator
from genoise.train.run import Run


# ---------------------------------------------------------------------- helpers
def load_split(run: Run, split: str, subset: int = 0) -> ImageData:
    """``run.config["dataset"]``'s ``split``: the first ``subset`` samples (0: all) of a
    permutation seeded by ``run.config["seed"]``. Never another data set than the one named."""
    return load_dataset(run.config["dataset"], split, data_dir=run.data_dir, subset=int(subset),
                        seed=int(run.config["seed"]))


def int_list(cfg: dict[str, Any], key: str, minimum: int = 1) -> list[int]:
    """``cfg[key]`` as a non-empty list of ints >= ``minimum``; one-line ``ValueError`` naming the key."""
    value = cfg[key]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        raise ValueError(f"{key} must be a non-empty list of integers >= {minimum}, got {value!r}")
    return list(value)


def save_grid(run: Run, images: Tensor, name: str, title: str, *, normalise: bool = False,
              ncol: int | None = None) -> str:
    """Save :func:`~genoise.latent.figures.image_grid_figure` as ``name`` in the run folder."""
    run.save_figure(image_grid_figure(images, title, ncol=ncol, normalise=normalise), name)
    return name


def purity(labels: Tensor, clusters: Tensor, k: int) -> float:
    """Fraction of samples whose label is the majority label of their cluster."""
    counts = torch.zeros(k, int(labels.max()) + 1).index_put_((clusters, labels), torch.ones(len(labels)),
                                                               accumulate=True)
    return float(counts.max(1).values.sum() / len(labels))


# ---------------------------------------------------------------------- PCA
def train_pca(run: Run) -> dict[str, Any]:
    """PCA (one step, ``svd_solver`` as scikit-learn's): components grid, explained-variance curve,
    test reconstruction energy."""
    import matplotlib.pyplot as plt

    cfg = run.config
    train, test = load_split(run, "train", cfg["train_subset"]), load_split(run, "test")
    shape = train.images.shape[1:]
    y = train.images.flatten(1).to(run.device)
    k = min(int(cfg["n_components"]), *y.shape)
    pca = PCA(k, whiten=bool(cfg["whiten"]), svd_solver=str(cfg["svd_solver"]))
    start = time.perf_counter()
    fit_estimator(pca, y, run=run, max_steps=1, desc="pca", kind="estimator-pca", seed=int(cfg["seed"]))
    seconds = time.perf_counter() - start
    cumulative = pca.explained_variance_ratio_.cumsum(0).cpu()
    test_energy = float(pca.free_energy(test.images.flatten(1).to(run.device)).mean())
    shown = min(k, 64)
    save_grid(run, pca.components_[:shown].reshape(shown, *shape), "components.png",
              f"first {shown} principal components", normalise=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(1, k + 1), cumulative.numpy(), marker=".")
    ax.set_xlabel("number of components k")
    ax.set_ylabel("cumulative explained variance")
    ax.grid(alpha=0.3)
    run.save_figure(fig, "explained_variance.png")
    return {"n_train": y.shape[0], "n_components": k, "explained_variance": float(cumulative[-1]),
            "test_reconstruction_energy": test_energy, "fit_seconds": seconds, "svd_solver": pca.svd_solver_}


# ---------------------------------------------------------------------- K-means
def train_kmeans(run: Run) -> dict[str, Any]:
    """K-means (k-means++, restarts; one Lloyd iteration per step): prototypes grid,
    energy (mean squared distance to the nearest prototype), cluster purity."""
    cfg = run.config
    train, test = load_split(run, "train", cfg["train_subset"]), load_split(run, "test")
    shape = train.images.shape[1:]
    y = train.images.flatten(1).to(run.device)
    k = int(cfg["n_clusters"])
    km = KMeans(k, n_init=int(cfg["n_init"]), max_iter=int(cfg["max_iter"]), seed=int(cfg["seed"]))
    start = time.perf_counter()
    done = fit_estimator(km, y, run=run, max_steps=km.n_init * km.max_iter, desc=f"k-means (k={k})",
                         kind="estimator-kmeans", seed=int(cfg["seed"]))
    seconds = time.perf_counter() - start
    y_test = test.images.flatten(1).to(run.device)
    metrics = {"n_train": y.shape[0], "n_clusters": k, "n_iter": km.n_iter_, "fit_seconds": seconds,
               "train_energy": km.inertia_ / y.shape[0],
               "test_energy": float(km.free_energy(y_test).mean()),
               "train_purity": purity(train.labels, km.labels_.cpu(), k),
               "test_purity": purity(test.labels, km.predict(y_test).cpu(), k)}
    run.log(metrics, step=done["step"])
    order = km.labels_.bincount(minlength=k).argsort(descending=True)
    save_grid(run, km.cluster_centers_[order].reshape(k, *shape), "prototypes.png",
              f"K-means prototypes (k={k}, most populated first)")
    return metrics


# ---------------------------------------------------------------------- auto-encoders
def _loss_step(model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
    return model.loss(batch[0], generator)


def fit_model(run: Run, model: nn.Module, y: Tensor, y_test: Tensor, *, desc: str,
              kind: str) -> dict[str, Any]:
    """Adam on minibatches of y through :class:`~genoise.train.Trainer` (``epochs`` passes),
    a metrics row per epoch with the test energy (and the test ELBO of a VAE)."""
    cfg = run.config
    batch_size = int(cfg["batch_size"])
    steps_per_epoch = max(1, y.shape[0] // batch_size)

    def evaluate(trainer: Trainer, step: int, row: dict[str, float]) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            record = {"test_energy": float(model.free_energy(y_test).mean())}
            if isinstance(model, VAE):
                record["test_elbo"] = float(model.elbo(y_test, torch.Generator().manual_seed(0)).mean())
        return record

    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=float(cfg["lr"])), _loss_step, (y,),
                      run=run, max_steps=int(cfg["epochs"]) * steps_per_epoch, batch_size=batch_size,
                      seed=int(cfg["seed"]), log_every=steps_per_epoch, checkpoint_every=steps_per_epoch,
                      callbacks=[evaluate], desc=desc, kind=kind)
    out = trainer.fit()
    model.eval()
    return out


def _images(run: Run, subset: int) -> tuple[ImageData, ImageData, Tensor, Tensor]:
    train, test = load_split(run, "train", subset), load_split(run, "test")
    return train, test, train.images.flatten(1).to(run.device), test.images.flatten(1).to(run.device)


def build_autoencoder(kind: str, shape: tuple[int, ...], cfg: dict[str, Any]) -> AutoEncoder:
    """The ``kind`` ∈ {bottleneck, denoising, masked} auto-encoder of ``cfg`` for images ``shape``."""
    dim, common = math.prod(shape), {"hidden": int_list(cfg, "hidden")}
    if kind == "denoising":
        return DenoisingAutoEncoder(dim, int(cfg["latent_dim"]), noise_std=float(cfg["noise_std"]), **common)
    if kind == "masked":
        return MaskedAutoEncoder(dim, int(cfg["latent_dim"]), mask_ratio=float(cfg["mask_ratio"]),
                                 patch_size=max(1, shape[-1] // 7), image_shape=shape, **common)
    return AutoEncoder(dim, int(cfg["latent_dim"]), **common)


def train_ae(run: Run) -> dict[str, Any]:
    """Bottleneck / denoising / masked auto-encoder: reconstructions grid, test energy."""
    cfg = run.config
    torch.manual_seed(int(cfg["seed"]))  # the network's initial weights
    train, _, y, y_test = _images(run, cfg["train_subset"])
    shape = tuple(train.images.shape[1:])
    kind = cfg["kind"]
    model = build_autoencoder(kind, shape, cfg).to(run.device)
    out = fit_model(run, model, y, y_test, desc=f"{kind} auto-encoder", kind=f"latent-ae-{kind}")
    with torch.no_grad():
        pairs = torch.stack([y_test[:16], model.reconstruct(y_test[:16])], 1).reshape(32, *shape)
        energy = float(model.free_energy(y_test).mean())
    save_grid(run, pairs, "reconstructions.png", f"{kind} AE: test digit | reconstruction", ncol=8)
    return {"kind": kind, "steps": out["step"], "final_loss": out.get("loss"),
            "test_reconstruction_energy": energy}


def train_vae(run: Run) -> dict[str, Any]:
    """VAE (β-VAE weight ``kl_weight``): samples grid, 2-D latent map, test ELBO."""
    cfg = run.config
    torch.manual_seed(int(cfg["seed"]))  # the network's initial weights
    train, test, y, y_test = _images(run, cfg["train_subset"])
    shape = tuple(train.images.shape[1:])
    vae = VAE(y.shape[1], int(cfg["latent_dim"]), int_list(cfg, "hidden"), kl_weight=float(cfg["kl_weight"]))
    out = fit_model(run, vae.to(run.device), y, y_test, desc="vae", kind="latent-vae")
    with torch.no_grad():
        elbo = float(vae.elbo(y_test, torch.Generator().manual_seed(0), num_samples=4).mean())
        samples = vae.sample(64, torch.Generator().manual_seed(int(cfg["seed"])))
        mu = vae.encode(y_test)[0]
    save_grid(run, samples.reshape(64, *shape), "samples.png", "VAE samples: Dec(z), z ~ N(0, I)")
    _latent_map(run, vae, mu, test.labels, shape)
    return {"latent_dim": int(cfg["latent_dim"]), "steps": out["step"], "final_loss": out.get("loss"),
            "test_elbo": elbo}


def _latent_map(run: Run, vae: VAE, mu: Tensor, labels: Tensor, shape: tuple[int, ...]) -> None:
    """Test posterior means coloured by digit; with a 2-D latent, the decoded latent grid
    (Kingma & Welling 2014, fig. 4)."""
    import matplotlib.pyplot as plt

    projected = mu if mu.shape[1] == 2 else PCA(2).fit(mu).transform(mu)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    sc = axes[0].scatter(*projected.cpu().T.numpy(), c=labels.numpy(), cmap="tab10", s=3)
    fig.colorbar(sc, ax=axes[0], label="digit")
    axes[0].set_title("test posterior means μ(y)" + ("" if mu.shape[1] == 2 else " (PCA to 2-D)"))
    if mu.shape[1] == 2:
        grid = torch.linspace(-2.0, 2.0, 15)
        z = torch.stack(torch.meshgrid(grid, grid.flip(0), indexing="xy"), -1).reshape(-1, 2)
        with torch.no_grad():
            images = vae.decode(z.to(mu.device)).reshape(-1, *shape)
        axes[1].imshow(image_grid(images, 15), cmap="gray")
        axes[1].set_title("decoded latent grid z ∈ [−2, 2]² (prior scale)")
    axes[1].axis("off")
    run.save_figure(fig, "latent_map.png")


# ---------------------------------------------------------------------- demo
def demo_config(dataset: str, full: bool) -> dict[str, dict[str, Any]]:
    """The demo's settings of the three models (K-means, PCA, 2-D VAE)."""
    base = {"dataset": dataset, "seed": 0, "train_subset": 0 if full else 6000}
    # about 1,500 VAE steps on the subset / the small digits set, 20 epochs on full MNIST
    epochs = 20 if full and dataset == "mnist" else (30 if dataset == "mnist" else 120)
    return {"kmeans": {**base, "n_clusters": 32, "n_init": 1, "max_iter": 100},
            "pca": {**base, "n_components": 64 if dataset == "mnist" else 16, "whiten": False,
                    "svd_solver": "auto"},
            "vae": {**base, "latent_dim": 2, "hidden": [256], "kl_weight": 1.0, "epochs": epochs,
                    "batch_size": 128, "lr": 1e-3}}


def demo(run: Run, full: bool, *, config: dict[str, dict[str, Any]] | None = None) -> str:
    """``genoise demo`` section: K-means prototypes, PCA components and a 2-D VAE (MNIST with
    a data folder, else the 8×8 digits, chosen explicitly). ``config`` replaces
    :func:`demo_config` (tests run the section at tiny size)."""
    dataset = "mnist" if run.data_dir is not None else "digits"
    config = config or demo_config(dataset, full)
    km = train_kmeans(run.subrun("kmeans", config=config["kmeans"]))
    pca = train_pca(run.subrun("pca", config=config["pca"]))
    vae = train_vae(run.subrun("vae", config=config["vae"]))
    return "\n".join([
        "## Classical latent models: K-means, PCA, VAE",
        "",
        f"Data: {config['kmeans']['dataset']} ({km['n_train']} training images). "
        "Energies are per test image.",
        "",
        "| model | energy | test value | other |",
        "|---|---|---:|---|",
        f"| K-means, k = {km['n_clusters']} | min_k ‖y − w_k‖² | {km['test_energy']:.3f} | "
        f"purity {100 * km['test_purity']:.1f} %, {km['fit_seconds']:.1f} s |",
        f"| PCA, k = {pca['n_components']} | ‖(WᵀW − I)(y − μ)‖² | {pca['test_reconstruction_energy']:.3f} | "
        f"{100 * pca['explained_variance']:.1f} % of the variance |",
        f"| VAE, {vae['latent_dim']}-D latent | −ELBO (nats) | {-vae['test_elbo']:.1f} | |",
        "",
        "![K-means prototypes](kmeans/prototypes.png) ![PCA components](pca/components.png)",
        "",
        "![VAE samples](vae/samples.png) ![VAE latent map](vae/latent_map.png)",
    ])
