"""CLI entry points: ``genoise train <method>-<dataset>``, ``evaluate_run`` (``genoise eval
linear|knn RUN_DIR``) and the demo section.

Configuration keys (every recipe ``genoise/recipes/<method>-<dataset>.yaml``):

method, dataset, backbone (conv | resnet18), out_dim, width, pool_grid (conv: average-pool
to a pool_grid × pool_grid map; 1 = global pooling), proj_hidden, proj_dim,
proj_layers (-1: the method's default), method_options (dict of constructor arguments),
epochs, batch_size, lr, weight_decay, warmup_epochs, n_local (multi-crop views),
train_subset (0 = all), seed, device, data_dir.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from genoise.data import ImageData, load_dataset
from genoise.io import atomic_write_text
from genoise.ssl.augment import DATASET_PRESET, PRESETS, ViewAugment
from genoise.ssl.backbones import accepts_size, make_backbone
from genoise.ssl.evaluate import extract_features, knn_accuracy, linear_probe, pca_plot
from genoise.ssl.methods import build_method
from genoise.train import CHECKPOINT_NAME, Run, load_checkpoint

DEFAULTS: dict[str, Any] = {
    "method": "vicreg", "dataset": "digits", "backbone": "conv", "out_dim": 128, "width": 32,
    "pool_grid": 1, "proj_hidden": 512, "proj_dim": 512, "proj_layers": -1, "method_options": {},
    "epochs": 20,
    "batch_size": 256, "lr": 2e-3, "weight_decay": 1e-5, "warmup_epochs": 1.0, "n_local": 0,
    "train_subset": 0, "seed": 0, "data_dir": None,
}


def _config(config: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in config.items() if v is not None or k == "data_dir"}}


def load_data(config: dict[str, Any], data_dir: Any = None) -> tuple[ImageData, ImageData]:
    """Train / test images of ``config["dataset"]`` (first ``train_subset`` training images)."""
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    train = load_dataset(config["dataset"], "train", data_dir=data_dir)
    test = load_dataset(config["dataset"], "test", data_dir=data_dir)
    if config.get("train_subset"):
        g = torch.Generator().manual_seed(int(config.get("seed", 0)))
        keep = torch.randperm(train.images.shape[0], generator=g)[: int(config["train_subset"])]
        train = ImageData(train.images[keep], train.labels[keep])
    return train, test


def build_from_config(config: dict[str, Any], images: torch.Tensor):
    """(method, augment) for a recipe configuration and the shape of ``images``."""
    config = _config(config)
    channels, size = int(images.shape[1]), int(images.shape[2])
    backbone = make_backbone(config["backbone"], in_channels=channels, image_size=size,
                             out_dim=int(config["out_dim"]), width=int(config["width"]),
                             pool_grid=int(config["pool_grid"]))
    kwargs = {"proj_hidden": int(config["proj_hidden"]), "proj_dim": int(config["proj_dim"]),
              **dict(config["method_options"] or {})}
    if int(config["proj_layers"]) >= 0:
        kwargs["proj_layers"] = int(config["proj_layers"])
    method = build_method(config["method"], backbone, **kwargs)
    preset = PRESETS[DATASET_PRESET[config["dataset"]]]
    local = preset.local_size if accepts_size(backbone, channels, preset.local_size) else size
    augment = ViewAugment(preset, n_local=int(config["n_local"]), local_size=local)
    return method, augment


def pretrain_recipe(run: Run) -> dict[str, Any]:
    """``genoise train <method>-<dataset>``: pre-train, then linear probe + kNN on frozen
    features, a 2-D PCA plot of the test embeddings, ``summary.json``."""
    from genoise.ssl.pretrain import pretrain

    config = _config(run.config)
    torch.manual_seed(int(config["seed"]))
    train, test = load_data(config, run.data_dir)
    method, augment = build_from_config(config, train.images)
    start = time.perf_counter()
    _, row = pretrain(method, train, augment=augment, test=test, run=run, epochs=float(config["epochs"]),
                      batch_size=int(config["batch_size"]), lr=float(config["lr"]),
                      weight_decay=float(config["weight_decay"]),
                      warmup_epochs=float(config["warmup_epochs"]), seed=int(config["seed"]))
    seconds = time.perf_counter() - start
    results = _frozen_eval(method.backbone, train, test, run.device)
    figure = pca_plot(extract_features(method.backbone, test.images, device=run.device), test.labels,
                      title=f"{config['method']} on {config['dataset']}: test features (PCA)")
    run.save_figure(figure, "embedding_pca.png")
    return {**results, "probe_test_acc": row.get("probe_test_acc"), "rankme": row.get("rankme"),
            "pretrain_seconds": seconds, "steps": row.get("step")}


def _frozen_eval(backbone: torch.nn.Module, train: ImageData, test: ImageData, device: Any,
                 kinds: tuple[str, ...] = ("linear", "knn")) -> dict[str, float]:
    f_train = extract_features(backbone, train.images, device=device)
    f_test = extract_features(backbone, test.images, device=device)
    out: dict[str, float] = {}
    if "linear" in kinds:
        out.update(linear_probe(f_train, train.labels, f_test, test.labels))
    if "knn" in kinds:
        out.update(knn_accuracy(f_train, train.labels, f_test, test.labels))
    return out


def evaluate_run(run_dir: str | Path, kind: str = "linear", *, data_dir: Any = None,
                 device: str = "cpu") -> dict[str, float]:
    """Offline evaluation of a finished (or interrupted) run's frozen backbone: ``kind`` is
    ``"linear"`` (linear probe, L2 chosen on a 10 % split of train) or ``"knn"`` (weighted
    kNN, k = 20 and 200, T = 0.07). Writes ``eval_<kind>.json`` in the run folder."""
    if kind not in ("linear", "knn"):
        raise ValueError(f"kind must be 'linear' or 'knn', got {kind!r}")
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    config = _config(yaml.safe_load((run_dir / "config.yaml").read_text()) or {})
    train, test = load_data(config, data_dir)
    method, _ = build_from_config(config, train.images)
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)["model"]
    prefix = "method.backbone."
    method.backbone.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    method.backbone.to(device)
    result = _frozen_eval(method.backbone, train, test, device, kinds=(kind,))
    atomic_write_text(run_dir / f"eval_{kind}.json", json.dumps(result, indent=2) + "\n")
    return result


def demo_section(run: Run, full: bool) -> str:
    """Pre-train SimCLR (the best method in our digits/MNIST runs) on a short budget and
    compare its frozen features with the same network at random initialisation."""
    data_dir = run.data_dir
    dataset = "mnist" if data_dir is not None else "digits"
    config = {**DEFAULTS, "method": "simclr", "dataset": dataset, "epochs": 10 if full else 4,
              "train_subset": 0 if dataset == "digits" else (20000 if full else 5000),
              "batch_size": 256 if dataset == "mnist" else 128, "method_options": {"temperature": 0.2}}
    train, test = load_data(config, data_dir)
    if dataset == "mnist":
        test = ImageData(test.images[:2000], test.labels[:2000])
    torch.manual_seed(0)
    method, augment = build_from_config(config, train.images)
    random_init = _frozen_eval(method.backbone, train, test, run.device)
    run.config = config
    run.save_config()
    start = time.perf_counter()
    from genoise.ssl.pretrain import pretrain

    pretrain(method, train, augment=augment, test=test, run=run, epochs=config["epochs"],
             batch_size=config["batch_size"], lr=config["lr"], progress=run.progress)
    seconds = time.perf_counter() - start
    trained = _frozen_eval(method.backbone, train, test, run.device)
    run.save_figure(pca_plot(extract_features(method.backbone, test.images), test.labels,
                             title=f"SimCLR on {dataset}: test features (PCA)"), "embedding_pca.png")
    rows = "\n".join(f"| {name} | {r['linear_acc']:.1f} | {r['knn_k20']:.1f} | {r['knn_k200']:.1f} |"
                     for name, r in (("random init", random_init), ("SimCLR", trained)))
    return (f"## Self-supervised learning (SimCLR, {dataset})\n\n"
            f"{config['epochs']} epochs on {train.images.shape[0]} training images in {seconds:.0f} s; "
            f"frozen features scored on {test.images.shape[0]} test images.\n\n"
            "| backbone | linear probe % | kNN k=20 % | kNN k=200 % |\n|---|---:|---:|---:|\n"
            f"{rows}\n\n![embedding](embedding_pca.png)\n")
