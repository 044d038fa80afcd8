"""Code prediction error vs computation: ISTA, FISTA, CoD, LISTA, LCoD (Gregor & LeCun 2010).

Settings: 10×10 patches of the CIFAR-10 subset in grey levels (mean of the three channels,
mean removed per patch; the paper used the Berkeley image set, which we do not have)
with dictionaries of 100 and 400 atoms — the paper's setting — and MNIST digits with 256
atoms. Dictionaries are learned by genoise; the targets Z* are FISTA to convergence; the
error is the test mean of ½‖Z* − Z‖².

Multiply-adds per sample (D features, K atoms, T iterations; G, S, W_e precomputed):

    ISTA / FISTA (Gram form):  D·K + T·K²       LISTA (T soft-thresholds):  D·K + (T−1)·K²
    CoD (T coordinate steps):  D·K + T·K        LCoD (T coordinate steps):  D·K + T·K

(the soft-thresholds, comparisons and argmax are not counted; they are O(K) per step for
CoD and LCoD alike). The CoD curve is recorded at every step up to 3,000 steps. For each
learned-encoder point we report the CoD steps needed to reach the same error and two
ratios: **total** multiply-adds (counting the D·K encoder product W_e y that every method
pays once) and **iterations only** (steps beyond that shared product: CoD steps / LCoD
steps; for LISTA, CoD's T·K vs LISTA's (T−1)·K²). The paper's abstract: LCoD reaches the
same approximation error as CoD with about 10× less computation.

    python benchmarks/lista_vs_fista.py [--quick] [--settings patches100 patches400 mnist256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _data import HELP, data_dir
from torch import Tensor

from genoise.data import load_cifar10, load_dataset
from genoise.latent.dictionary import DictionaryLearner
from genoise.latent.figures import curves_figure
from genoise.latent.ista import coordinate_descent, fista, ista
from genoise.latent.lista import LISTA, LCoD, code_prediction_error, train_encoder

RESULTS = Path(__file__).parent / "results"
STEPS = [1, 2, 5, 10, 20, 50, 100]


def mult_adds(method: str, t: int, d: int, k: int) -> int:
    if method in ("ISTA", "FISTA"):
        return d * k + t * k * k
    if method == "LISTA":
        return d * k + (t - 1) * k * k
    return d * k + t * k


def patches(data_dir: str, n: int, size: int = 10, seed: int = 0) -> tuple[Tensor, str]:
    """``n`` random size×size grey patches, mean removed, from the CIFAR-10 subset (MNIST if
    absent, the 8×8 digits without a data folder)."""
    try:
        images, source = load_cifar10(data_dir, "train").images.mean(dim=1), "CIFAR-10 subset, grey"
    except (ValueError, FileNotFoundError):
        name = "mnist" if data_dir is not None else "digits"
        images, source = load_dataset(name, "train", data_dir=data_dir).images[:, 0], name.upper()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(images.shape[0], (n,), generator=gen)
    r = torch.randint(images.shape[1] - size + 1, (n,), generator=gen)
    c = torch.randint(images.shape[2] - size + 1, (n,), generator=gen)
    offsets = torch.arange(size)
    rows = (r[:, None] + offsets)[:, :, None]
    cols = (c[:, None] + offsets)[:, None, :]
    out = images[idx[:, None, None], rows, cols].reshape(n, -1)
    return out - out.mean(dim=1, keepdim=True), source


def cod_curve(y: Tensor, w: Tensor, lam: float, z_star: Tensor, n_steps: int) -> dict[int, float]:
    """Error of CoD's output (Alg. 2 with its final h(B) line) after every step 0..n_steps,
    recorded in one run through :func:`genoise.latent.ista.coordinate_descent`'s callback."""
    curve = {0: code_prediction_error(coordinate_descent(y, w, lam, steps=0), z_star)}

    def record(step: int, z: Tensor) -> None:
        curve[step] = code_prediction_error(z, z_star)

    coordinate_descent(y, w, lam, steps=n_steps, callback=record)
    return curve


def run_setting(name: str, y_train: Tensor, y_test: Tensor, n_atoms: int, lam: float, *, quick: bool,
                source: str) -> str:
    t0 = time.perf_counter()
    learner = DictionaryLearner(n_atoms, lam, max_iter=1 if quick else 2, seed=0).fit(y_train)
    w = learner.dictionary_
    # Targets: FISTA with restart until the relative duality gap is 1e-5 (certified); the
    # errors compared below are ≥ 1e-3.
    z_train = fista(y_train, w, lam, steps=1000, gap_tol=1e-5)
    z_test = fista(y_test, w, lam, steps=1000, gap_tol=1e-5)
    nnz = float((z_test != 0).sum(1).float().mean())
    d, k = y_train.shape[1], n_atoms
    n_cod = 1000 if quick else 3000
    cod = cod_curve(y_test, w, lam, z_test, n_cod)
    curves: dict[str, dict[int, float]] = {"ISTA": {}, "FISTA": {}, "CoD": {t: cod[t] for t in STEPS},
                                           "LISTA": {}, "LCoD": {}}
    for t in STEPS:
        curves["ISTA"][t] = code_prediction_error(ista(y_test, w, lam, steps=t), z_test)
        curves["FISTA"][t] = code_prediction_error(fista(y_test, w, lam, steps=t, restart=False), z_test)
    lista_steps = [1, 2, 3] if quick else [1, 2, 3, 5]
    lcod_steps = [1, 5, 20] if quick else [1, 2, 5, 10, 20, 50][:6 if k <= 100 else 5]
    epochs = 5 if quick else 10
    for label, cls, depths in (("LISTA", LISTA, lista_steps), ("LCoD", LCoD, lcod_steps)):
        for t in depths:
            model = cls(w, lam, t)
            train_encoder(model, y_train, z_train, epochs=epochs, lr=3e-3, seed=0)
            with torch.no_grad():
                curves[label][t] = code_prediction_error(model(y_test), z_test)
            print(f"  {label} T={t}: {curves[label][t]:.4g}", flush=True)
    fig = curves_figure({**curves, "CoD": {t: e for t, e in cod.items() if t > 0}}, f"{name}: K={k}, λ={lam}")
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / f"lista_vs_fista_{name}.png", dpi=110, bbox_inches="tight")
    lines = [f"### {name}: {source}, D={d}, K={k}, λ={lam}, {nnz:.1f} non-zeros per optimal code, "
             f"train {len(y_train)}, test {len(y_test)}, encoders trained {epochs} epochs "
             f"({time.perf_counter() - t0:.0f}s)", "",
             "| method | " + " | ".join(f"T={t}" for t in STEPS) + " |", "|---|" + "---:|" * len(STEPS)]
    for method, curve in curves.items():
        cells = " | ".join(f"{curve[t]:.3g}" if t in curve else "" for t in STEPS)
        lines.append(f"| {method} | {cells} |")
    lines += ["", "| learned encoder | T | error | mult-adds | CoD steps to reach it | CoD mult-adds "
              "| ratio (total) | ratio (iterations only) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method in ("LISTA", "LCoD"):
        for t, err in sorted(curves[method].items()):
            ops = mult_adds(method, t, d, k)
            own_iter = (t - 1) * k * k if method == "LISTA" else t * k
            reach = [s for s in sorted(cod) if cod[s] <= err]
            if reach:
                steps = reach[0]
                cod_ops = mult_adds("CoD", steps, d, k)
                iter_ratio = f"{steps * k / own_iter:.1f}×" if own_iter else "∞ (no iteration)"
                lines.append(f"| {method} | {t} | {err:.3g} | {ops:,} | {steps} | {cod_ops:,} | "
                             f"{cod_ops / ops:.1f}× | {iter_ratio} |")
            else:
                cod_ops = mult_adds("CoD", n_cod, d, k)
                iter_ratio = f"> {n_cod * k / own_iter:.1f}×" if own_iter else "∞"
                lines.append(f"| {method} | {t} | {err:.3g} | {ops:,} | > {n_cod} | > {cod_ops:,} | "
                             f"> {cod_ops / ops:.1f}× | {iter_ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--settings", nargs="+", default=["patches100", "patches400", "mnist256"],
                        choices=["patches100", "patches400", "mnist256"])
    args = parser.parse_args()
    args.data_dir = data_dir(args.data_dir)
    torch.set_num_threads(1)
    n_train, n_test = (3000, 500) if args.quick else (5000, 1000)
    suffix = "_quick" if args.quick else ""
    for setting in args.settings:
        if setting == "mnist256":
            name = "mnist" if args.data_dir is not None else "digits"  # digits: no data folder
            train = load_dataset(name, "train", data_dir=args.data_dir).images
            test = load_dataset(name, "test", data_dir=args.data_dir).images
            data = (train[:n_train].flatten(1), test[:n_test].flatten(1), 64 if args.quick else 256, 0.3,
                    "MNIST" if name == "mnist" else "8x8 digits (no data folder)")
        else:
            all_patches, source = patches(args.data_dir, n_train + n_test)
            k = int(setting[len("patches"):])
            n = n_train if k <= 100 or args.quick else 3000          # K=400: time budget on this machine
            data = (all_patches[:n], all_patches[n_train:], k, 0.1, source)
        y_train, y_test, k, lam, source = data
        text = run_setting(setting, y_train, y_test, k, lam, quick=args.quick, source=source)
        print(text + "\n", flush=True)
        (RESULTS / f"lista_vs_fista_{setting}{suffix}.md").write_text(text + "\n")
    parts = ["Code prediction error ½‖Z* − Z‖² (test mean) vs iterations T; mult-adds per sample by "
             "the formulas in the script's docstring.", ""]
    for setting in ("patches100", "patches400", "mnist256"):
        path = RESULTS / f"lista_vs_fista_{setting}{suffix}.md"
        if path.exists():
            parts += [path.read_text(), ""]
    (RESULTS / f"lista_vs_fista{suffix}.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
