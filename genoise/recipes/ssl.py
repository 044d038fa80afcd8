"""SSL recipes: ``genoise train <method>-<dataset>`` (:func:`train`), ``genoise eval
linear|knn RUN_DIR [key=value ...]`` (:func:`evaluate`) and the ``ssl`` demo section
(:func:`demo`).

The configuration keys, their meaning, ranges and defaults live in one place: the YAML
files ``genoise/recipes/_ssl.yaml`` (every key), ``_ssl-<dataset>.yaml`` (the data-set
presets) and the 30 ``<method>-<dataset>.yaml`` children. ``genoise recipes NAME``
prints them. The library pieces are in :mod:`genoise.ssl` (:func:`~genoise.ssl.methods.
build_from_config`, :func:`~genoise.ssl.pretrain.pretrain`, :mod:`genoise.ssl.evaluate`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from genoise.data import ImageData, load_dataset
from genoise.io import atomic_write_text
from genoise.ssl.evaluate import extract_features, knn_accuracy, linear_probe, pca_plot
from genoise.ssl.methods import build_from_config, check_method_options
from genoise.ssl.pretrain import pretrain
from genoise.train import CHECKPOINT_NAME, Run, load_checkpoint
from genoise.train.run_folder import read_run_config

KINDS = ("linear", "knn")
# genoise eval options: name -> (kinds it applies to, default, meaning)
EVALUATE_OPTIONS: dict[str, tuple[tuple[str, ...], Any, str]] = {
    "kind": (KINDS, "linear", "linear (linear probe) or knn (weighted kNN)"),
    "k": (("knn",), [20, 200], "neighbours of the kNN vote: an integer >= 1 or a list of them"),
    "temperature": (("knn",), 0.07, "temperature T of the kNN vote weights exp(s/T), > 0"),
    "iterations": (("linear",), 200, "L-BFGS iterations of each probe fit, >= 1"),
    "data_dir": (KINDS, None, "folder holding the data set (default: the run's, then GENOISE_DATA)"),
    "device": (KINDS, "cpu", "device of the feature extraction (cpu, cuda, cuda:N, auto)"),
    "progress": (KINDS, True, "show progress bars (true/false)"),
}


def _recipe_config(name: str) -> dict[str, Any] | None:
    """The effective default configuration of the shipped recipe ``name`` (``None`` if
    there is no such recipe)."""
    from genoise.recipes import load_recipe

    try:
        return dict(load_recipe(name).config)
    except ValueError:
        return None


def load_data(config: dict[str, Any], data_dir: Any = None) -> tuple[ImageData, ImageData]:
    """Train / test images of ``config["dataset"]``; ``train_subset`` > 0 keeps that many
    training images, the first of a permutation seeded by ``seed``."""
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    train_set = load_dataset(config["dataset"], "train", data_dir=data_dir,
                             subset=int(config.get("train_subset") or 0), seed=int(config.get("seed", 0)))
    return train_set, load_dataset(config["dataset"], "test", data_dir=data_dir)


def frozen_eval(backbone: torch.nn.Module, train_set: ImageData, test_set: ImageData, device: Any, *,
                kinds: tuple[str, ...] = KINDS, ks: tuple[int, ...] = (20, 200), temperature: float = 0.07,
                iterations: int = 200, progress: bool = False) -> dict[str, float]:
    """Linear-probe and/or weighted-kNN test accuracy (%) of the frozen ``backbone``."""
    f_train = extract_features(backbone, train_set.images, device=device, progress=progress,
                               desc="features (train)")
    f_test = extract_features(backbone, test_set.images, device=device, progress=progress,
                              desc="features (test)")
    out: dict[str, float] = {}
    if "linear" in kinds:
        out.update(linear_probe(f_train, train_set.labels, f_test, test_set.labels,
                                iterations=iterations, progress=progress))
    if "knn" in kinds:
        out.update(knn_accuracy(f_train, train_set.labels, f_test, test_set.labels, ks=ks,
                                temperature=temperature))
    return out


def validate(config: dict[str, Any]) -> None:
    """Checks beyond the YAML's types and ranges, run by ``genoise train`` before it writes
    anything: the keys of ``method_options`` must be hyper-parameters of ``method``."""
    check_method_options(str(config["method"]), config["method_options"])


def train(run: Run) -> dict[str, Any]:
    """``genoise train <method>-<dataset>``: pre-train, then linear probe + kNN on frozen
    features, a 2-D PCA plot of the test embeddings (``embedding_pca.png``)."""
    config = run.config
    torch.manual_seed(int(config["seed"]))
    train_set, test_set = load_data(config, run.data_dir)
    method, augment = build_from_config(config, train_set.images)
    start = time.perf_counter()
    _, row = pretrain(method, train_set, augment=augment, test=test_set, run=run,
                      epochs=float(config["epochs"]), batch_size=int(config["batch_size"]),
                      lr=float(config["lr"]), weight_decay=float(config["weight_decay"]),
                      warmup_epochs=float(config["warmup_epochs"]), seed=int(config["seed"]),
                      desc=str(config["method"]), kind=f"ssl-{config['method']}")
    seconds = time.perf_counter() - start
    results = frozen_eval(method.backbone, train_set, test_set, run.device, progress=run.progress,
                          iterations=int(config["probe_iterations"]))
    features = extract_features(method.backbone, test_set.images, device=run.device)
    run.save_figure(pca_plot(features, test_set.labels,
                             title=f"{config['method']} on {config['dataset']}: test features (PCA)"),
                    "embedding_pca.png")
    return {**results, "probe_test_acc": row.get("probe_test_acc"), "rankme": row.get("rankme"),
            "pretrain_seconds": seconds, "steps": row.get("step")}


def _evaluate_options(options: dict[str, Any]) -> dict[str, Any]:
    """Validate ``genoise eval`` options; returns every option with its default filled in."""
    unknown = sorted(set(options) - set(EVALUATE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown evaluation option(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(EVALUATE_OPTIONS)}")
    out = {name: options.get(name, default) for name, (_, default, _) in EVALUATE_OPTIONS.items()}
    if out["kind"] not in KINDS:
        raise ValueError(f"kind must be 'linear' or 'knn', got {out['kind']!r}")
    for name in options:
        if out["kind"] not in EVALUATE_OPTIONS[name][0]:
            raise ValueError(f"option {name} applies to kind={EVALUATE_OPTIONS[name][0][0]} only, "
                             f"not kind={out['kind']}")
    ks = out["k"] if isinstance(out["k"], (list, tuple)) else [out["k"]]
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise ValueError(f"k must be an integer >= 1 or a list of them, got {out['k']!r}")
    out["k"] = tuple(ks)
    t = out["temperature"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
        raise ValueError(f"temperature must be a number > 0, got {t!r}")
    it = out["iterations"]
    if isinstance(it, bool) or not isinstance(it, int) or it < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {it!r}")
    if not isinstance(out["progress"], bool):
        raise ValueError(f"progress must be true or false, got {out['progress']!r}")
    return out


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.yaml`` over the defaults of its recipe (run folders written before a
    key existed get that key's default); ``data_dir`` falls back to the folder the run used."""
    saved, info = read_run_config(run_dir)
    if "method" not in saved or "dataset" not in saved:
        raise ValueError(f"{run_dir / 'config.yaml'} is not the configuration of an SSL run "
                         "(no method/dataset)")
    recipe = info.get("recipe") or f"{saved['method']}-{saved['dataset']}"
    config = {**(_recipe_config(str(recipe)) or {}), **saved}
    if config.get("data_dir") is None:
        config["data_dir"] = info.get("data_dir")
    return config


def load_backbone(run_dir: Path, config: dict[str, Any], train_images: torch.Tensor) -> torch.nn.Module:
    """The pre-trained backbone of the SSL run folder ``run_dir`` (its ``last.pt``), built
    from the run's ``config``; ``train_images`` are what the method is built on (as in training)."""
    method, _ = build_from_config(config, train_images)
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)["model"]
    prefix = "method.backbone."
    method.backbone.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return method.backbone


def evaluate(run_dir: str | Path, **options: Any) -> dict[str, float]:
    """Offline evaluation of a run's frozen backbone (``last.pt``): ``kind="linear"`` (linear
    probe, L2 chosen on a 10 % split of train; option ``iterations``) or ``kind="knn"``
    (weighted kNN; options ``k`` (default 20 and 200) and ``temperature`` (0.07)); options
    ``data_dir``, ``device``, ``progress`` for both. Writes ``eval_<kind>.json`` in the run
    folder; see :data:`EVALUATE_OPTIONS`."""
    from genoise.train.run import resolve_device

    opts = _evaluate_options(options)
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{run_dir / CHECKPOINT_NAME}: no checkpoint to evaluate")
    config = _run_config(run_dir)
    device = resolve_device(opts["device"])
    train_set, test_set = load_data(config, opts["data_dir"])
    backbone = load_backbone(run_dir, config, train_set.images).to(device)
    result = frozen_eval(backbone, train_set, test_set, device, kinds=(opts["kind"],),
                         ks=opts["k"], temperature=float(opts["temperature"]),
                         iterations=opts["iterations"], progress=opts["progress"])
    atomic_write_text(run_dir / f"eval_{opts['kind']}.json", json.dumps(result, indent=2) + "\n")
    return result


def demo(run: Run, full: bool) -> str:
    """Pre-train SimCLR (the best method in our digits/MNIST runs) with its recipe's settings on
    a short budget and compare its frozen features with the same network at random init."""
    dataset = "mnist" if run.data_dir is not None else "digits"
    config = {**_recipe_config(f"simclr-{dataset}"), "epochs": 10 if full else 4,
              "train_subset": 0 if dataset == "digits" else (20000 if full else 5000),
              "device": str(run.device), "data_dir": None if run.data_dir is None else str(run.data_dir)}
    train_set, test_set = load_data(config, run.data_dir)
    if dataset == "mnist":
        test_set = ImageData(test_set.images[:2000], test_set.labels[:2000])
    torch.manual_seed(0)
    method, augment = build_from_config(config, train_set.images)
    random_init = frozen_eval(method.backbone, train_set, test_set, run.device)
    run.config = config
    run.save_config()
    start = time.perf_counter()
    pretrain(method, train_set, augment=augment, test=test_set, run=run, epochs=config["epochs"],
             batch_size=config["batch_size"], lr=config["lr"], weight_decay=config["weight_decay"],
             warmup_epochs=config["warmup_epochs"], desc="simclr", kind="ssl-simclr",
             progress=run.progress)
    seconds = time.perf_counter() - start
    trained = frozen_eval(method.backbone, train_set, test_set, run.device)
    run.save_figure(pca_plot(extract_features(method.backbone, test_set.images, device=run.device),
                             test_set.labels, title=f"SimCLR on {dataset}: test features (PCA)"),
                    "embedding_pca.png")
    rows = "\n".join(f"| {name} | {r['linear_acc']:.1f} | {r['knn_k20']:.1f} | {r['knn_k200']:.1f} |"
                     for name, r in (("random init", random_init), ("SimCLR", trained)))
    return (f"## Self-supervised learning (SimCLR, {dataset})\n\n"
            f"{config['epochs']} epochs on {train_set.images.shape[0]} training images in {seconds:.0f} s; "
            f"frozen features scored on {test_set.images.shape[0]} test images.\n\n"
            "| backbone | linear probe % | kNN k=20 % | kNN k=200 % |\n|---|---:|---:|---:|\n"
            f"{rows}\n\n![embedding](embedding_pca.png)\n")
