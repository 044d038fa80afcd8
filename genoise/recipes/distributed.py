"""Training beyond one machine (``genoise train averaging-mnist distributed=easgd tau=4
workers=8``): a classifier (LeNet-5 on MNIST, the small ConvNet on the CIFAR-10 subset)
trained by p workers with one method of the averaging family (:mod:`genoise.train.cluster`).

Without ``torchrun`` the p workers are simulated in this process (deterministic, any p).
Under ``torchrun --nproc_per_node P -m genoise train averaging-mnist …`` every process is
one worker (P = workers; P = workers + 1 for the asynchronous methods, whose master is rank
0) and only rank 0 writes the run folder. The budget is ``worker_steps`` gradient steps in
total (``worker_steps / workers`` local steps per worker), so methods and worker counts are
compared at equal computation. Writes ``curve.png`` (test error against worker steps and
against communication rounds), ``metrics.jsonl`` and ``last.pt`` (resumable).
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise.data import load_dataset
from genoise.io import atomic_write_text
from genoise.nn.encoder import ConvEncoder
from genoise.nn.lenet import LeNet5
from genoise.train import distributed as D
from genoise.train.cluster import Cluster, Method
from genoise.train.evaluate import count_correct
from genoise.train.run import Run

# the local learning rate of each method when lr is not given (see docs/distributed.md):
# 0.2 for plain SGD steps (LeNet-5 after 1,024 steps: 4.7/4.3/4.1 % at 0.1/0.2/0.4), EAMSGD 0.02 with
# Nesterov momentum 0.9 (the same effective step), DiLoCo's inner AdamW 0.001; DOWNPOUR
# divides it by p (its master applies the p workers' gradient sums in turn)
DEFAULT_LR = {
    "sgd": 0.2,
    "ddp": 0.2,
    "localsgd": 0.2,
    "easgd": 0.2,
    "eamsgd": 0.02,
    "diloco": 0.001,
    "downpour": 0.2,
}
LR_SCALING = {"downpour": -1.0}  # lr * p ** power
KIND = "averaging"


def method_of(config: dict[str, Any]) -> Method:
    """The validated :class:`Method` of a configuration (one-line errors)."""
    name = str(config["distributed"])
    lr = config.get("lr")
    if lr is None:
        lr = DEFAULT_LR[name] * int(config["workers"]) ** LR_SCALING.get(name, 0)
    return Method(
        name,
        workers=int(config["workers"]),
        tau=int(config["tau"]),
        asynchronous=bool(config.get("asynchronous", False)),
        alpha=None if config.get("alpha") is None else float(config["alpha"]),
        lr=float(lr),
        momentum=None if config.get("momentum") is None else float(config["momentum"]),
        weight_decay=float(config.get("weight_decay", 0.0)),
        outer_lr=float(config.get("outer_lr", 0.7)),
        outer_momentum=float(config.get("outer_momentum", 0.9)),
        buffers=str(config.get("buffers", "round")),
        lr_schedule=str(config.get("lr_schedule", "constant")),
    )


def local_steps(config: dict[str, Any]) -> int:
    """Local steps per worker: ``worker_steps // workers`` (at least 1)."""
    steps = int(config["worker_steps"]) // int(config["workers"])
    if steps < 1:
        raise ValueError(
            f"worker_steps={config['worker_steps']} gives no step to each of {config['workers']} workers"
        )
    return steps


def validate(config: dict[str, Any]) -> None:
    """Cross-key checks before anything is written (τ, α and β = pα, the budget)."""
    method_of(config)
    local_steps(config)


def make_model(dataset: str) -> nn.Module:
    """LeNet-5 for MNIST / digits, the small ConvNet (3 stride-2 conv–BN–ReLU blocks, width
    16) for CIFAR-10."""
    if dataset == "cifar10":
        return ConvEncoder(3, 32, out_dim=10, width=16, depth=3)
    return LeNet5(image_size=8 if dataset == "digits" else 28)


def cross_entropy(model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
    """The classification loss of one worker's batch."""
    images, labels = batch
    return F.cross_entropy(model(images), labels)


def test_error(model: nn.Module, images: Tensor, labels: Tensor, chunk: int = 1000) -> float:
    """Fraction of misclassified test images (eval mode, no gradient)."""
    return 1 - count_correct(model, images, labels, batch_size=chunk) / images.shape[0]


def load(run: Run, split: str) -> tuple[Tensor, Tensor]:
    cfg = run.config
    limit = int(cfg["n_train"] if split == "train" else cfg["n_test"])
    data = load_dataset(
        str(cfg["dataset"]), split, data_dir=run.data_dir, subset=limit, seed=int(cfg["seed"])
    )
    return data.images.to(run.device), data.labels.to(run.device)


def build(run: Run) -> tuple[Cluster, int]:
    """The cluster of a run (model seeded by ``seed``) and its local steps per worker."""
    cfg = run.config
    method = method_of(cfg)
    steps = local_steps(cfg)
    x, y = load(run, "train")
    x_test, y_test = load(run, "test")
    torch.manual_seed(int(cfg["seed"]))
    model = make_model(str(cfg["dataset"]))
    points = int(cfg["eval_points"])
    eval_every = max(1, steps // points) if points else None
    cluster = Cluster(
        model,
        cross_entropy,
        (x, y),
        method=method,
        batch_size=int(cfg["batch_size"]),
        seed=int(cfg["seed"]),
        run_dir=run.dir,
        evaluate=lambda m: {"error": test_error(m, x_test, y_test)},
        eval_every=eval_every,
        checkpoint_every=eval_every,
        device=run.device,
        progress=run.progress,
        config=cfg,
        desc=f"{method.name} p={method.workers} tau={method.tau}{' async' if method.asynchronous else ''}",
    )
    return cluster, steps


def curve_figure(history: list[dict[str, float]], title: str) -> Any:
    """Test error against worker steps and against communication rounds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    rows = [h for h in history if "error" in h]
    for ax, key, label in (
        (axes[0], "worker_steps", "worker gradient steps"),
        (axes[1], "rounds", "communication rounds"),
    ):
        ax.plot([h[key] for h in rows], [100 * h["error"] for h in rows], marker="o")
        ax.set_xlabel(label)
        ax.set_ylabel("test error (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def train(run: Run) -> dict[str, Any]:
    """Train, evaluate the center (or the workers' mean), plot the curves (rank 0)."""
    cluster, steps = build(run)
    result = cluster.fit(steps, resume=run.resume, stop_after=run.stop_after)
    if "stopped" in result:
        from genoise.train import RunInterrupted

        raise RunInterrupted(int(result["stopped"]), cluster.checkpoint_path)
    summary = {
        k: result[k]
        for k in ("worker_steps", "rounds", "bytes_per_worker", "staleness_mean", "staleness_max", "seconds")
        if k in result
    }
    summary.update(
        method=cluster.method.name,
        workers=cluster.method.workers,
        tau=cluster.method.tau,
        asynchronous=cluster.method.asynchronous,
        processes=1 if cluster.simulate else D.world_size(),
    )
    if "error" in result:
        summary["error"] = result["error"]
    if cluster.is_main:
        cfg = run.config
        fig = curve_figure(result["history"], f"{cfg['dataset']}: {cluster.desc}")
        run.save_figure(fig, "curve.png")
        atomic_write_text(run.path("history.json"), json.dumps(result["history"]) + "\n")
    return summary


# the demo's comparison: the paper's (asynchronous EASGD / EAMSGD against DOWNPOUR), DiLoCo
DEMO_METHODS = (("downpour", False), ("easgd", True), ("eamsgd", True), ("diloco", False))


def demo(run: Run, full: bool) -> str:
    """Four methods at p = 4, τ = 4 on MNIST (digits without a data folder) at equal worker
    steps: test error of the center, rounds and bytes per worker."""
    from genoise.recipes import load_recipe

    base = {
        **load_recipe("averaging-mnist").config,
        "dataset": "mnist" if run.data_dir else "digits",
        "workers": 4,
        "tau": 4,
        "worker_steps": 4096 if full else 512,
        "n_test": 0 if full else 1000,
        "eval_points": 4 if full else 2,
        "seed": 0,
    }
    lines = ["| method | test error | rounds | bytes sent per worker |", "|---|---|---|---|"]
    for name, asynchronous in DEMO_METHODS:
        label = f"{name}{' (asynchronous)' if asynchronous else ''}"
        sub = run.subrun(
            f"{name}{'-async' if asynchronous else ''}",
            config={**base, "distributed": name, "asynchronous": asynchronous},
        )
        summary = train(sub)
        lines.append(
            f"| {label} | {100 * summary['error']:.2f} % | {summary['rounds']} | "
            f"{summary['bytes_per_worker'] / 1e6:.3g} MB |"
        )
    return "\n".join(
        [
            "## Training beyond one machine: elastic averaging (Zhang, Choromanska & LeCun 2015)",
            "",
            f"{base['dataset']}, 4 simulated workers, τ = 4, {base['worker_steps']} worker-gradient steps "
            "in all; error of the center variable (the master's for the asynchronous methods):",
            "",
            *lines,
            "",
            "![EAMSGD](eamsgd-async/curve.png)",
            "",
        ]
    )
