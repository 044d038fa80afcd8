"""Recipe of the learned sparse encoders (``genoise train lista-mnist``) and its
``genoise demo`` section (Gregor & LeCun, "Learning Fast Approximations of Sparse
Coding", ICML 2010).

Learn a dictionary (sub-folder ``dictionary/``, :func:`genoise.train.estimator.fit_estimator`),
compute the optimal codes Z* with FISTA, train LISTA and LCoD at several depths T (one
:class:`~genoise.train.Trainer` each, sub-folders ``lista-T/`` and ``lcod-T/``, each with
its ``last.pt``), and compare their code prediction error ½‖Z* − Z‖² with T iterations of
ISTA, FISTA and CoD (``lista_vs_fista.png``, a metrics row per method and depth).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genoise.latent.figures import curves_figure
from genoise.latent.ista import fista
from genoise.latent.lista import LISTA, LCoD, code_prediction_error, solver_error_curves
from genoise.recipes.latent import int_list
from genoise.recipes.sparse_coding import learn_dictionary, load_vectors
from genoise.train import Trainer
from genoise.train.run import Run


def _code_loss(model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
    """½‖Z* − f_e(Y)‖², mean over the batch (the paper's training loss)."""
    y, z_star = batch
    return 0.5 * (z_star - model(y)).pow(2).sum(dim=1).mean()


def train_encoders(run: Run, w: Tensor, y: Tensor, z: Tensor, y_test: Tensor,
                   z_test: Tensor) -> dict[str, dict[int, float]]:
    """LISTA at every depth of ``lista_steps`` and LCoD at every ``lcod_steps``, each trained
    by Adam on (Y, Z*) in its own sub-run; returns their test code errors {name: {T: error}}."""
    cfg = run.config
    batch_size = min(int(cfg["encoder_batch_size"]), y.shape[0])
    steps_per_epoch = y.shape[0] // batch_size
    steps = int(cfg["encoder_epochs"]) * steps_per_epoch
    curves: dict[str, dict[int, float]] = {"LISTA": {}, "LCoD": {}}
    for name, cls, depths in (("LISTA", LISTA, int_list(cfg, "lista_steps")),
                              ("LCoD", LCoD, int_list(cfg, "lcod_steps"))):
        for t in depths:
            model = cls(w, float(cfg["lam"]), int(t)).to(y.device)
            optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["encoder_lr"]))
            sub = run.subrun(f"{name.lower()}-{t}")
            Trainer(model, optimizer, _code_loss, (y, z), run=sub, max_steps=steps, batch_size=batch_size,
                    seed=int(cfg["seed"]), log_every=max(1, steps // 10), checkpoint_every=steps_per_epoch,
                    desc=f"{name} T={t}", kind=f"latent-{name.lower()}").fit()
            with torch.no_grad():
                curves[name][int(t)] = code_prediction_error(model(y_test), z_test)
    return curves


def lista_curves(run: Run) -> dict[str, dict[int, float]]:
    """Every curve of the recipe: ISTA, FISTA, CoD (iterations) and LISTA, LCoD (depths)."""
    cfg = run.config
    y_train = load_vectors(run, "train", cfg["n_train"])
    y_test = load_vectors(run, "test", cfg["n_test"])
    w, lam = learn_dictionary(run.subrun("dictionary"), y_train).dictionary_, float(cfg["lam"])
    z_train = fista(y_train, w, lam, steps=1000, tol=1e-6)
    z_test = fista(y_test, w, lam, steps=1000, tol=1e-6)
    curves = solver_error_curves(y_test, w, lam, z_test, int_list(cfg, "steps"),
                                 cod_steps=int_list(cfg, "lcod_steps"))
    curves.update(train_encoders(run, w, y_train, z_train, y_test, z_test))
    run.save_figure(curves_figure(curves, f"{cfg['n_atoms']} atoms, λ={lam}"), "lista_vs_fista.png")
    for name, curve in curves.items():
        for t, err in sorted(curve.items()):
            run.log({"method": name, "iterations": t, "code_error": err})
    return curves


def train(run: Run) -> dict[str, Any]:
    """LISTA / LCoD vs ISTA / FISTA / CoD code prediction error on a learned dictionary."""
    curves = lista_curves(run)
    return {f"{name}_{t}": err for name, curve in curves.items() for t, err in sorted(curve.items())}


def markdown_table(curves: dict[str, dict[int, float]]) -> str:
    """One row per method, one column per number of iterations T."""
    steps = sorted({t for c in curves.values() for t in c})
    head = "| method | " + " | ".join(f"T={t}" for t in steps) + " |\n|---|" + "---:|" * len(steps)
    rows = ["| " + name + " | " + " | ".join(f"{c[t]:.3g}" if t in c else "" for t in steps) + " |"
            for name, c in curves.items()]
    return head + "\n" + "\n".join(rows)


def demo_config(dataset: str, full: bool) -> dict[str, Any]:
    """The demo's setting: a short version in about a minute of CPU, ``full`` the longer one."""
    return {"dataset": dataset, "seed": 0, "n_atoms": 128 if full else 64, "lam": 0.3, "positive": False,
            "epochs": 5 if full else 2, "batch_size": 256, "n_train": 10000 if full else 2000,
            "n_test": 2000 if full else 500, "steps": [1, 2, 5, 10, 20, 50],
            "lista_steps": [1, 2, 5, 10] if full else [1, 3], "lcod_steps": [5, 20, 50] if full else [10],
            "encoder_epochs": 20 if full else 8, "encoder_batch_size": 128, "encoder_lr": 3e-3}


def demo(run: Run, full: bool, *, config: dict[str, Any] | None = None) -> str:
    """Demo section: code prediction error vs iterations, learned vs iterative encoders."""
    run.config = config or demo_config("mnist" if run.data_dir is not None else "digits", full)
    curves = lista_curves(run)
    return ("## LISTA / LCoD vs ISTA / FISTA / CoD (Gregor & LeCun 2010)\n\n"
            f"Test code prediction error ½‖Z* − Z‖² against the FISTA optimum ({run.config['dataset']}, "
            f"{run.config['n_atoms']} atoms):\n\n"
            f"{markdown_table(curves)}\n\n![curves](lista_vs_fista.png)\n")
