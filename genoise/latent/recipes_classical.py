"""Recipe entry points (``genoise train pca-mnist | kmeans-mnist | vae-mnist | ae-mnist``)
and the ``genoise demo`` section of the classical and auto-encoder latent models.

Each entry is ``fn(run: Run) -> dict`` of final metrics; it fits on the training split
(MNIST from the data folder, scikit-learn's 8×8 digits when no folder is set or
``dataset=digits``), logs metrics to ``metrics.jsonl`` and saves PNG pictures in the run
folder.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise.data import ImageData, load_dataset
from genoise.latent.autoencoders import AutoEncoder, DenoisingAutoEncoder, MaskedAutoEncoder, fit_autoencoder
from genoise.latent.kmeans import KMeans
from genoise.latent.pca import PCA
from genoise.latent.vae import VAE
from genoise.train.run import Run


# ---------------------------------------------------------------------- helpers
def load_split(run: Run, split: str, subset: int = 0) -> ImageData:
    """The configured data set (fallback to digits without a data folder), optionally the
    first ``subset`` samples of a seeded permutation."""
    data = load_dataset(run.config.get("dataset", "mnist"), split, data_dir=run.data_dir, fallback=True)
    if subset and subset < data.images.shape[0]:
        order = torch.randperm(data.images.shape[0], generator=torch.Generator().manual_seed(
            int(run.config.get("seed", 0))))[:subset]
        data = ImageData(data.images[order], data.labels[order])
    return data


def image_grid(images: Tensor, ncol: int | None = None, *, normalise: bool = False) -> np.ndarray:
    """Tile images (N, C, H, W) into one (rows·H, ncol·W[, C]) array for ``imshow``;
    ``normalise`` rescales each image to [0, 1] (for signed filters)."""
    images = images.detach().float().cpu()
    n, c, h, w = images.shape
    if normalise:
        flat = images.reshape(n, -1)
        low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        images = ((flat - low) / (high - low).clamp_min(1e-12)).reshape(n, c, h, w)
    ncol = ncol or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    canvas = torch.ones(c, rows * (h + 1) - 1, ncol * (w + 1) - 1)
    for index in range(n):
        r, col = divmod(index, ncol)
        canvas[:, r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = images[index]
    out = canvas.permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def save_grid(run: Run, images: Tensor, name: str, title: str, *, normalise: bool = False,
              ncol: int | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, ncol, normalise=normalise)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    run.save_figure(fig, name)
    return name


def _purity(labels: Tensor, clusters: Tensor, k: int) -> float:
    """Fraction of samples whose label is the majority label of their cluster."""
    counts = torch.zeros(k, int(labels.max()) + 1).index_put_((clusters, labels), torch.ones(len(labels)),
                                                               accumulate=True)
    return float(counts.max(1).values.sum() / len(labels))


# ---------------------------------------------------------------------- PCA
def pca_recipe(run: Run) -> dict[str, Any]:
    """PCA by SVD: components grid, explained-variance curve, test reconstruction energy."""
    import matplotlib.pyplot as plt

    cfg = run.config
    train, test = load_split(run, "train", int(cfg["train_subset"])), load_split(run, "test")
    shape = train.images.shape[1:]
    y = train.images.flatten(1).to(run.device)
    k = min(int(cfg["n_components"]), *y.shape)
    start = time.perf_counter()
    pca = PCA(k, whiten=bool(cfg["whiten"])).fit(y)
    seconds = time.perf_counter() - start
    cumulative = pca.explained_variance_ratio_.cumsum(0).cpu()
    for j in range(k):
        run.log({"component": j + 1, "explained_variance_ratio": float(pca.explained_variance_ratio_[j]),
                 "cumulative": float(cumulative[j])}, step=j + 1)
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
            "test_reconstruction_energy": test_energy, "fit_seconds": seconds}


# ---------------------------------------------------------------------- K-means
def kmeans_recipe(run: Run) -> dict[str, Any]:
    """K-means (k-means++, restarts): prototypes grid, inertia, cluster purity."""
    cfg = run.config
    train, test = load_split(run, "train", int(cfg["train_subset"])), load_split(run, "test")
    shape = train.images.shape[1:]
    y = train.images.flatten(1).to(run.device)
    k = int(cfg["n_clusters"])
    start = time.perf_counter()
    km = KMeans(k, n_init=int(cfg["n_init"]), max_iter=int(cfg["max_iter"]), seed=int(cfg["seed"])).fit(y)
    seconds = time.perf_counter() - start
    y_test = test.images.flatten(1).to(run.device)
    metrics = {"n_train": y.shape[0], "n_clusters": k, "n_iter": km.n_iter_, "fit_seconds": seconds,
               "train_energy": km.inertia_ / y.shape[0],
               "test_energy": float(km.free_energy(y_test).mean()),
               "train_purity": _purity(train.labels, km.labels_.cpu(), k),
               "test_purity": _purity(test.labels, km.predict(y_test).cpu(), k)}
    run.log(metrics, step=km.n_iter_)
    order = km.labels_.bincount(minlength=k).argsort(descending=True)
    save_grid(run, km.cluster_centers_[order].reshape(k, *shape), "prototypes.png",
              f"K-means prototypes (k={k}, most populated first)")
    return metrics


# ---------------------------------------------------------------------- auto-encoders
def _train(run: Run, model: torch.nn.Module, y: Tensor, y_test: Tensor) -> list[float]:
    cfg = run.config

    def on_epoch(epoch: int, loss: float) -> None:
        with torch.no_grad():
            record = {"epoch": epoch + 1, "train_loss": loss,
                      "test_energy": float(model.free_energy(y_test).mean())}
            if isinstance(model, VAE):
                record["test_elbo"] = float(model.elbo(y_test, torch.Generator().manual_seed(0)).mean())
        run.log(record, step=epoch + 1)

    return fit_autoencoder(model, y, epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]),
                           lr=float(cfg["lr"]), generator=torch.Generator().manual_seed(int(cfg["seed"])),
                           progress=run.progress, on_epoch=on_epoch)


def ae_recipe(run: Run) -> dict[str, Any]:
    """Bottleneck / denoising / masked auto-encoder: reconstructions grid, test energy."""
    cfg = run.config
    torch.manual_seed(int(cfg["seed"]))
    train, test = load_split(run, "train", int(cfg["train_subset"])), load_split(run, "test")
    shape = tuple(train.images.shape[1:])
    dim = math.prod(shape)
    y, y_test = train.images.flatten(1).to(run.device), test.images.flatten(1).to(run.device)
    common = {"hidden": list(cfg["hidden"])}
    kind = cfg["kind"]
    if kind == "denoising":
        model = DenoisingAutoEncoder(dim, int(cfg["latent_dim"]), noise_std=float(cfg["noise_std"]), **common)
    elif kind == "masked":
        patch = max(1, shape[-1] // 7)
        model = MaskedAutoEncoder(dim, int(cfg["latent_dim"]), mask_ratio=float(cfg["mask_ratio"]),
                                  patch_size=patch, image_shape=shape, **common)
    else:
        model = AutoEncoder(dim, int(cfg["latent_dim"]), **common)
    model.to(run.device)
    history = _train(run, model, y, y_test)
    with torch.no_grad():
        pairs = torch.stack([y_test[:16], model.reconstruct(y_test[:16])], 1).reshape(32, *shape)
        energy = float(model.free_energy(y_test).mean())
    save_grid(run, pairs, "reconstructions.png", f"{kind} AE: test digit | reconstruction", ncol=8)
    return {"kind": kind, "first_loss": history[0], "final_loss": history[-1],
            "test_reconstruction_energy": energy}


def vae_recipe(run: Run) -> dict[str, Any]:
    """VAE (β-VAE weight ``kl_weight``): samples grid, 2-D latent map, test ELBO."""
    import matplotlib.pyplot as plt

    cfg = run.config
    torch.manual_seed(int(cfg["seed"]))
    train, test = load_split(run, "train", int(cfg["train_subset"])), load_split(run, "test")
    shape = tuple(train.images.shape[1:])
    y, y_test = train.images.flatten(1).to(run.device), test.images.flatten(1).to(run.device)
    vae = VAE(y.shape[1], int(cfg["latent_dim"]), list(cfg["hidden"]), kl_weight=float(cfg["kl_weight"]))
    vae.to(run.device)
    history = _train(run, vae, y, y_test)
    with torch.no_grad():
        elbo = float(vae.elbo(y_test, torch.Generator().manual_seed(0), num_samples=4).mean())
        samples = vae.sample(64, torch.Generator().manual_seed(int(cfg["seed"])))
        mu = vae.encode(y_test)[0]
    save_grid(run, samples.reshape(64, *shape), "samples.png", "VAE samples: Dec(z), z ~ N(0, I)")
    projected = mu if mu.shape[1] == 2 else PCA(2).fit(mu).transform(mu)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    sc = axes[0].scatter(*projected.cpu().T.numpy(), c=test.labels.numpy(), cmap="tab10", s=3)
    fig.colorbar(sc, ax=axes[0], label="digit")
    axes[0].set_title("test posterior means μ(y)" + ("" if mu.shape[1] == 2 else " (PCA to 2-D)"))
    if mu.shape[1] == 2:  # the learned manifold: decode a grid of latent points (Kingma & Welling, fig. 4)
        grid = torch.linspace(-2.0, 2.0, 15)
        z = torch.stack(torch.meshgrid(grid, grid.flip(0), indexing="xy"), -1).reshape(-1, 2)
        with torch.no_grad():
            images = vae.decode(z.to(run.device)).reshape(-1, *shape)
        axes[1].imshow(image_grid(images, 15), cmap="gray")
        axes[1].set_title("decoded latent grid z ∈ [−2, 2]² (prior scale)")
    axes[1].axis("off")
    run.save_figure(fig, "latent_map.png")
    return {"latent_dim": int(cfg["latent_dim"]), "first_loss": history[0], "final_loss": history[-1],
            "test_elbo": elbo}


# ---------------------------------------------------------------------- demo
def demo_section(run: Run, full: bool) -> str:
    """``genoise demo`` section: K-means prototypes, PCA components and a 2-D VAE."""
    dataset = "mnist" if run.data_dir is not None else "digits"
    subset = 0 if full else 6000
    base = {"dataset": dataset, "seed": 0, "train_subset": subset}
    # about 1,500 VAE steps on the subset / the small digits set, 20 epochs on full MNIST
    epochs = 20 if full and dataset == "mnist" else (30 if dataset == "mnist" else 120)
    km = kmeans_recipe(run.subrun("kmeans", config={**base, "n_clusters": 32, "n_init": 1,
                                                    "max_iter": 100}))
    pca = pca_recipe(run.subrun("pca", config={**base, "n_components": 64 if dataset == "mnist" else 16,
                                               "whiten": False}))
    vae = vae_recipe(run.subrun("vae", config={**base, "latent_dim": 2, "hidden": [256], "kl_weight": 1.0,
                                               "epochs": epochs, "batch_size": 128,
                                               "lr": 1e-3}))
    return "\n".join([
        "## Classical latent models: K-means, PCA, VAE",
        "",
        f"Data: {dataset} ({km['n_train']} training images). Energies are per test image.",
        "",
        "| model | energy | test value | other |",
        "|---|---|---:|---|",
        f"| K-means, k = 32 | min_k ‖y − w_k‖² | {km['test_energy']:.3f} | "
        f"purity {km['test_purity']:.3f}, {km['fit_seconds']:.1f} s |",
        f"| PCA, k = {pca['n_components']} | ‖(WᵀW − I)(y − μ)‖² | {pca['test_reconstruction_energy']:.3f} | "
        f"{pca['explained_variance']:.3f} of the variance |",
        f"| VAE, 2-D latent | −ELBO (nats) | {-vae['test_elbo']:.1f} | |",
        "",
        f"![K-means prototypes]({run.name}/kmeans/prototypes.png) "
        f"![PCA components]({run.name}/pca/components.png)",
        "",
        f"![VAE samples]({run.name}/vae/samples.png) ![VAE latent map]({run.name}/vae/latent_map.png)",
    ])
