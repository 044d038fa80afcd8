"""Recipes and demo sections for sparse coding and learned sparse encoders.

* ``genoise train sparse-coding-mnist`` — learn a dictionary of K atoms on MNIST digits,
  save the atom grid (``atoms.png``) and the objective curve (``objective.png``).
* ``genoise train lista-mnist`` — learn a dictionary, compute the optimal codes with
  FISTA, train LISTA and LCoD at several depths, save code error vs iterations
  (``lista_vs_fista.png``) beside ISTA, FISTA and CoD.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genoise.data import load_dataset
from genoise.latent.dictionary import DictionaryLearner
from genoise.latent.ista import coordinate_descent, fista, ista
from genoise.latent.lista import LISTA, LCoD, code_prediction_error, train_encoder
from genoise.train.run import Run


def load_vectors(run: Run, split: str, limit: int) -> Tensor:
    """Images of ``run.config['dataset']`` flattened to (N, D), the first ``limit`` ones."""
    data = load_dataset(run.config.get("dataset", "mnist"), split, data_dir=run.data_dir, fallback=True)
    return data.images[:limit].reshape(min(limit, data.images.shape[0]), -1).to(run.device)


def atom_grid_figure(components: Tensor, title: str = ""):
    """A square grid of the atoms (K, D) as images, each scaled to its own range (white = high)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, d = components.shape
    side = math.isqrt(d)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.5, rows * 0.5))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(components[i].reshape(side, side).cpu(), cmap="gray")
    if title:
        fig.suptitle(title)
    return fig


def learn_dictionary(run: Run, y: Tensor) -> DictionaryLearner:
    cfg = run.config
    progress = None
    if run.progress:
        from tqdm import tqdm

        progress = tqdm(total=cfg["n_epochs"], desc="dictionary", leave=False)

    def callback(epoch: int, objective: float) -> None:
        run.log({"epoch": epoch + 1, "objective": objective}, step=epoch + 1)
        if progress is not None:
            progress.update(1)

    learner = DictionaryLearner(cfg["n_atoms"], cfg["lam"], n_epochs=cfg["n_epochs"],
                                batch_size=cfg["batch_size"], positive=cfg["positive"],
                                positive_dictionary=cfg.get("positive_dictionary", False),
                                update=cfg.get("update", "bcd"), seed=cfg["seed"], device=run.device,
                                callback=callback).fit(y)
    if progress is not None:
        progress.close()
    return learner


def sparse_coding(run: Run) -> dict[str, Any]:
    """Recipe entry: dictionary learning on MNIST, atoms grid + objective curve."""
    import matplotlib.pyplot as plt

    cfg = run.config
    y = load_vectors(run, "train", cfg["n_train"])
    learner = learn_dictionary(run, y)
    run.save_figure(atom_grid_figure(learner.components_, f"{cfg['n_atoms']} atoms, λ={cfg['lam']}"),
                    "atoms.png")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(len(learner.objective_)), learner.objective_, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ½‖y − W z‖² + λ‖z‖₁")
    run.save_figure(fig, "objective.png")
    torch.save(learner.dictionary_.cpu(), run.path("dictionary.pt"))
    y_test = load_vectors(run, "test", cfg["n_test"])
    z = learner.transform(y_test)
    return {"objective_train": learner.objective_[-1], "objective_test": -learner.score(y_test),
            "mean_nonzeros": float((z != 0).float().sum(1).mean()),
            "atoms_used": int(((z != 0).sum(0) > 0).sum()), "n_atoms": cfg["n_atoms"]}


def error_curves(w: Tensor, lam: float, y_train: Tensor, z_train: Tensor, y_test: Tensor,
                 z_test: Tensor, steps: list[int], *, lista_steps: list[int], lcod_steps: list[int],
                 n_epochs: int, seed: int) -> dict[str, dict[int, float]]:
    """Code prediction error ½‖Z* − Z‖² (test mean) vs number of iterations, for each method."""
    curves: dict[str, dict[int, float]] = {"ISTA": {}, "FISTA": {}, "CoD": {}, "LISTA": {}, "LCoD": {}}
    for t in steps:
        curves["ISTA"][t] = code_prediction_error(ista(y_test, w, lam, n_iter=t), z_test)
        curves["FISTA"][t] = code_prediction_error(fista(y_test, w, lam, n_iter=t, restart=False), z_test)
    for t in sorted(set(steps) | set(lcod_steps)):
        curves["CoD"][t] = code_prediction_error(coordinate_descent(y_test, w, lam, n_iter=t), z_test)
    for name, cls, depths in (("LISTA", LISTA, lista_steps), ("LCoD", LCoD, lcod_steps)):
        for t in depths:
            model = cls(w, lam, t).to(y_train.device)
            train_encoder(model, y_train, z_train, n_epochs=n_epochs, lr=3e-3, seed=seed)
            with torch.no_grad():
                curves[name][t] = code_prediction_error(model(y_test), z_test)
    return curves


def curves_figure(curves: dict[str, dict[int, float]], title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        if curve:
            xs = sorted(curve)
            ax.plot(xs, [curve[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("iterations (LCoD/CoD: coordinate updates)")
    ax.set_ylabel("½‖Z* − Z‖² (test mean)")
    ax.set_title(title)
    ax.legend()
    return fig


def lista(run: Run) -> dict[str, Any]:
    """Recipe entry: LISTA / LCoD vs ISTA / FISTA / CoD code prediction on a learned dictionary."""
    curves = _lista_curves(run)
    return {f"{name}_{t}": err for name, curve in curves.items() for t, err in curve.items()}


def _lista_curves(run: Run) -> dict[str, dict[int, float]]:
    cfg = run.config
    y_train = load_vectors(run, "train", cfg["n_train"])
    y_test = load_vectors(run, "test", cfg["n_test"])
    learner = learn_dictionary(run, y_train)
    w, lam = learner.dictionary_, cfg["lam"]
    z_train = fista(y_train, w, lam, n_iter=1000, tol=1e-6)
    z_test = fista(y_test, w, lam, n_iter=1000, tol=1e-6)
    curves = error_curves(w, lam, y_train, z_train, y_test, z_test, list(cfg["steps"]),
                          lista_steps=list(cfg["lista_steps"]), lcod_steps=list(cfg["lcod_steps"]),
                          n_epochs=cfg["encoder_epochs"], seed=cfg["seed"])
    run.save_figure(curves_figure(curves, f"{cfg['n_atoms']} atoms, λ={lam}"), "lista_vs_fista.png")
    for name, curve in curves.items():
        for t, err in curve.items():
            run.log({"method": name, "iterations": t, "code_error": err})
    return curves


def _markdown_table(curves: dict[str, dict[int, float]]) -> str:
    steps = sorted({t for c in curves.values() for t in c})
    head = "| method | " + " | ".join(f"T={t}" for t in steps) + " |\n|---|" + "---:|" * len(steps)
    rows = ["| " + name + " | " + " | ".join(f"{c[t]:.3g}" if t in c else "" for t in steps) + " |"
            for name, c in curves.items()]
    return head + "\n" + "\n".join(rows)


def _demo_config(full: bool, **overrides: Any) -> dict[str, Any]:
    cfg = {"dataset": "mnist", "seed": 0, "n_atoms": 256 if full else 64, "lam": 0.3,
           "positive": True, "n_epochs": 5 if full else 2, "batch_size": 256,
           "n_train": 20000 if full else 3000, "n_test": 2000 if full else 500}
    cfg.update(overrides)
    return cfg


def demo_sparse_coding(run: Run, full: bool) -> str:
    """Demo section: a learned dictionary (atoms grid) and its objective curve."""
    # Non-negative atoms and codes (sparse NMF): the atoms become pen strokes. The short
    # version uses fewer atoms and small minibatches (many dictionary updates) to get there
    # in seconds.
    run.config = _demo_config(full, lam=0.1, positive_dictionary=True, n_atoms=256 if full else 64,
                              n_epochs=2, batch_size=128 if full else 64,
                              n_train=20000 if full else 5000)
    metrics = sparse_coding(run)
    return ("## Sparse coding (dictionary learning)\n\n"
            f"{run.config['n_atoms']} atoms learned on {run.config['n_train']} digits, "
            f"λ={run.config['lam']}, non-negative atoms and codes; test objective "
            f"{metrics['objective_test']:.3f}, {metrics['mean_nonzeros']:.1f} non-zeros per code, "
            f"{metrics['atoms_used']} atoms used.\n\n"
            f"![atoms]({run.name}/atoms.png) ![objective]({run.name}/objective.png)\n")


def demo_lista(run: Run, full: bool) -> str:
    """Demo section: code prediction error vs iterations, learned vs iterative encoders."""
    run.config = _demo_config(full, positive=False, n_atoms=128 if full else 64,
                              n_train=10000 if full else 2000, steps=[1, 2, 5, 10, 20, 50],
                              lista_steps=[1, 2, 5, 10] if full else [1, 3],
                              lcod_steps=[5, 20, 50] if full else [10],
                              encoder_epochs=20 if full else 8)
    curves = _lista_curves(run)
    return ("## LISTA / LCoD vs ISTA / FISTA / CoD (Gregor & LeCun 2010)\n\n"
            "Test code prediction error ½‖Z* − Z‖² against the FISTA optimum:\n\n"
            f"{_markdown_table(curves)}\n\n![curves]({run.name}/lista_vs_fista.png)\n")

