"""Recipe of sparse coding (``genoise train sparse-coding-mnist``) and its ``genoise demo``
section: learn a dictionary of K atoms on digit images by online dictionary learning
(Mairal et al. 2009) through :func:`genoise.train.estimator.fit_estimator` (one minibatch
per step, ``last.pt`` resumable bit-for-bit), save the atom grid (``atoms.png``), the
objective curve (``objective.png``) and the dictionary (``dictionary.pt``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from genoise.data import load_dataset
from genoise.io import atomic_torch_save
from genoise.latent.dictionary import DictionaryLearner
from genoise.latent.figures import image_grid_figure
from genoise.train.estimator import fit_estimator
from genoise.train.run import Run


def load_vectors(run: Run, split: str, limit: int) -> Tensor:
    """Images of ``run.config["dataset"]`` flattened to (N, D) on ``run.device``: ``limit``
    samples of a permutation seeded by ``run.config["seed"]`` (0: all of them)."""
    data = load_dataset(run.config["dataset"], split, data_dir=run.data_dir, subset=int(limit),
                        seed=int(run.config["seed"]))
    return data.images.flatten(1).to(run.device)


def learn_dictionary(run: Run, y: Tensor) -> DictionaryLearner:
    """A :class:`~genoise.latent.DictionaryLearner` of ``run.config`` fitted on y (N, D) in
    ``run``'s folder (metrics row per minibatch, the objective at every epoch, ``last.pt``)."""
    cfg = run.config
    learner = DictionaryLearner(int(cfg["n_atoms"]), float(cfg["lam"]), max_iter=int(cfg["epochs"]),
                                batch_size=int(cfg["batch_size"]), positive=bool(cfg["positive"]),
                                positive_dictionary=bool(cfg.get("positive_dictionary", False)),
                                update=cfg.get("update", "bcd"),
                                code_algorithm=cfg.get("code_algorithm", "fista"),
                                seed=int(cfg["seed"]), device=run.device)
    fit_estimator(learner, y, run=run, max_steps=learner.max_iter * learner.steps_per_epoch(y.shape[0]),
                  desc=f"dictionary (K={learner.n_atoms})", kind="estimator-dictionary",
                  seed=int(cfg["seed"]))
    return learner


def train(run: Run) -> dict[str, Any]:
    """Dictionary learning on the training images: atoms grid, objective curve, test codes."""
    import matplotlib.pyplot as plt

    cfg = run.config
    y = load_vectors(run, "train", cfg["n_train"])
    learner = learn_dictionary(run, y)
    run.save_figure(image_grid_figure(learner.components_, f"{cfg['n_atoms']} atoms, λ={cfg['lam']}",
                                      normalise=True), "atoms.png")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(len(learner.objective_)), learner.objective_, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ½‖y − W z‖² + λ‖z‖₁")
    run.save_figure(fig, "objective.png")
    atomic_torch_save(learner.dictionary_.cpu(), run.path("dictionary.pt"))
    y_test = load_vectors(run, "test", cfg["n_test"])
    z = learner.transform(y_test)
    return {"objective_train": learner.objective_[-1], "objective_test": -learner.score(y_test),
            "mean_nonzeros": float((z != 0).float().sum(1).mean()),
            "atoms_used": int(((z != 0).sum(0) > 0).sum()), "n_atoms": int(cfg["n_atoms"]),
            "n_train": y.shape[0], "n_test": y_test.shape[0]}


def demo_config(dataset: str, full: bool) -> dict[str, Any]:
    """Non-negative atoms and codes (sparse NMF): the atoms become pen strokes. The short
    version uses fewer atoms and small minibatches (many dictionary updates)."""
    return {"dataset": dataset, "seed": 0, "n_atoms": 256 if full else 64, "lam": 0.1, "positive": True,
            "positive_dictionary": True, "update": "bcd", "epochs": 2, "batch_size": 128 if full else 64,
            "n_train": 20000 if full else 5000, "n_test": 2000 if full else 500}


def demo(run: Run, full: bool, *, config: dict[str, Any] | None = None) -> str:
    """Demo section: a learned dictionary (atoms grid) and its objective curve (MNIST with a
    data folder, else the 8×8 digits, chosen explicitly)."""
    run.config = config or demo_config("mnist" if run.data_dir is not None else "digits", full)
    metrics = train(run)
    cfg = run.config
    return ("## Sparse coding (dictionary learning)\n\n"
            f"{cfg['n_atoms']} atoms learned on {metrics['n_train']} training images ({cfg['dataset']}), "
            f"λ={cfg['lam']}, non-negative atoms and codes; test objective "
            f"{metrics['objective_test']:.3f}, {metrics['mean_nonzeros']:.1f} non-zeros per code, "
            f"{metrics['atoms_used']} atoms used.\n\n"
            "![atoms](atoms.png) ![objective](objective.png)\n")


__all__ = ["demo", "learn_dictionary", "load_vectors", "train"]
