"""Quality of every SSL method with the same small ConvNet and the same epoch budget:
linear-probe and weighted-kNN accuracy of frozen features, beside (a) the same backbone
at random initialisation and (b) the same backbone trained supervised on the labels
(same augmentations, same epochs), all measured in this run.

    python benchmarks/ssl_quality.py [--quick] [--datasets mnist cifar10] [--methods simclr vicreg]
                                     [--epochs N] [--pool-grid 2] [--out-dim 512] [--probe-iterations 500]

Every row (random init, supervised, each method) uses the same backbone: the small ConvNet
(ConvEncoder width 32) whose last 4 × 4 feature map is average-pooled to a ``pool_grid`` ×
``pool_grid`` grid (1 = global pooling) and mapped linearly to ``out_dim`` features.

Goals (issue 4): MNIST best method ≥ 98.5 % linear probe; CIFAR-10 subset best method ≥ 15
points above random init. Needs the data folder (``GENOISE_DATA`` or ../shared/data).
Writes benchmarks/results/ssl_quality.md after every row (an interrupted run keeps its rows).
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from _data import HELP, data_dir
from ssl_speed import recipe_config

from genoise.data import ImageData, load_dataset
from genoise.ssl.augment import DATASET_PRESET, ViewAugment
from genoise.ssl.backbones import make_backbone
from genoise.ssl.evaluate import extract_features, knn_accuracy, linear_probe
from genoise.ssl.methods import METHODS, build_from_config
from genoise.ssl.pretrain import pretrain

RESULTS = Path(__file__).parent / "results"


def frozen_eval(backbone: torch.nn.Module, train: ImageData, test: ImageData,
                probe_iterations: int) -> dict[str, float]:
    """Linear probe (fitted on train only, L2 chosen on a split of train) and kNN, on test."""
    f_tr, f_te = extract_features(backbone, train.images), extract_features(backbone, test.images)
    return {**linear_probe(f_tr, train.labels, f_te, test.labels, iterations=probe_iterations),
            **knn_accuracy(f_tr, train.labels, f_te, test.labels)}


def backbone_for(spec: dict, images: torch.Tensor) -> torch.nn.Module:
    """The shared backbone (``spec``: out_dim, width, pool_grid) for images (N, C, S, S)."""
    return make_backbone("conv", in_channels=images.shape[1], image_size=images.shape[2], **spec)


def config_for(method: str, dataset: str, n_train: int, spec: dict) -> dict:
    """The MNIST recipe's settings (512-wide projectors) for every data set, with the shared
    backbone ``spec``, so that every method and data set uses the same backbone and a
    comparable head."""
    cfg = recipe_config(method, "mnist")
    cfg = {**cfg, **spec, "dataset": dataset, "backbone": "conv",
           "method_options": dict(cfg["method_options"])}
    if "queue_size" in cfg["method_options"]:
        cfg["method_options"]["queue_size"] = min(cfg["method_options"]["queue_size"], n_train // 2)
    return cfg


def supervised(train: ImageData, dataset: str, epochs: int, batch: int, lr: float,
               seed: int, spec: dict) -> torch.nn.Module:
    """Same backbone + linear head, cross-entropy on one augmented view, AdamW, cosine lr."""
    torch.manual_seed(seed)
    backbone = backbone_for(spec, train.images)
    head = torch.nn.Linear(spec["out_dim"], 10)
    augment = ViewAugment(DATASET_PRESET[dataset], n_global=1)
    params = [*backbone.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-5)
    steps = epochs * (train.images.shape[0] // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(train.images.shape[0], generator=g)
        for i in range(train.images.shape[0] // batch):
            idx = perm[i * batch:(i + 1) * batch]
            x = augment(train.images[idx], g)[0]
            loss = F.cross_entropy(head(backbone(x)), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return backbone


def load(dataset: str, data_dir: Path, n_train: int, n_test: int, seed: int) -> tuple[ImageData, ImageData]:
    train = load_dataset(dataset, "train", data_dir=data_dir)
    test = load_dataset(dataset, "test", data_dir=data_dir)
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(train.images.shape[0], generator=g)[:n_train]
    test = ImageData(test.images[:n_test], test.labels[:n_test])
    return ImageData(train.images[keep], train.labels[keep]), test


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now; CPU is this process's user + system time."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds elapsed since ``start = clock()``."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def write(lines_by_dataset: dict[str, list[str]], header: str, out: str = "ssl_quality.md") -> str:
    parts = [header]
    for dataset, lines in lines_by_dataset.items():
        parts += [f"\n### {dataset}\n",
                  "| backbone | linear probe % | kNN k=20 % | kNN k=200 % | pre-train wall s | CPU s |",
                  "|---|---:|---:|---:|---:|---:|", *lines]
    text = "\n".join(parts) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / out).write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="MNIST 10k / CIFAR 4k, 4 / 8 epochs")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--epochs", type=int, help="override the epoch budget of every data set")
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-grid", type=int, default=2, help="backbone pooling grid (1 = global)")
    parser.add_argument("--out-dim", type=int, default=512, help="backbone feature dimension")
    parser.add_argument("--probe-iterations", type=int, default=500, help="L-BFGS iterations")
    parser.add_argument("--out", default="ssl_quality.md", help="file name in benchmarks/results/")
    parser.add_argument("--no-supervised", action="store_true",
                        help="skip the supervised row (when another run of the same budget has it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = {"out_dim": args.out_dim, "width": 32, "pool_grid": args.pool_grid}
    budget = {"mnist": (10_000, 10_000, 4) if args.quick else (60_000, 10_000, 20),
              "cifar10": (4_000, 1_000, 8) if args.quick else (4_000, 1_000, 50)}
    header = (f"## SSL quality ({'quick' if args.quick else 'full'}; ConvEncoder width 32, "
              f"{args.pool_grid}×{args.pool_grid} pooling → {args.out_dim}-d features, AdamW, batch 256; "
              f"linear probe = L-BFGS ({args.probe_iterations} it.) logistic regression on frozen "
              f"features, kNN = cosine, T = 0.07)")
    lines: dict[str, list[str]] = {}
    for dataset in args.datasets:
        n_train, n_test, epochs = budget[dataset]
        epochs = args.epochs or epochs
        train, test = load(dataset, data_dir(args.data_dir), n_train, n_test, args.seed)
        key = f"{dataset}: {train.images.shape[0]} train / {test.images.shape[0]} test, {epochs} epochs"
        lines[key] = []

        def row(name: str, result: dict, elapsed: tuple[float, float], key: str = key) -> None:
            wall, cpu = elapsed
            lines[key].append(f"| {name} | {result['linear_acc']:.2f} | {result['knn_k20']:.2f} | "
                              f"{result['knn_k200']:.2f} | {wall:.0f} | {cpu:.0f} |")
            print(write(lines, header, args.out).splitlines()[-1], flush=True)

        evaluate = partial(frozen_eval, train=train, test=test, probe_iterations=args.probe_iterations)
        torch.manual_seed(args.seed)
        row("random init", evaluate(backbone_for(spec, train.images)), (0.0, 0.0))
        if not args.no_supervised:
            start = clock()
            sup = supervised(train, dataset, epochs, 256, 2e-3, args.seed, spec)
            row("supervised (same labels)", evaluate(sup), since(start))
        for name in args.methods:
            cfg = config_for(name, dataset, train.images.shape[0], spec)
            torch.manual_seed(args.seed)
            method, augment = build_from_config(cfg, train.images)
            start = clock()
            pretrain(method, train, augment=augment, test=None, epochs=epochs, batch_size=256,
                     lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]), seed=args.seed,
                     progress=False)
            elapsed = since(start)
            row(name, evaluate(method.backbone), elapsed)
    print(write(lines, header, args.out))


if __name__ == "__main__":
    main()
