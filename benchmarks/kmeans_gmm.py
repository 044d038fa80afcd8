"""K-means and diagonal GMM on MNIST: genoise vs scikit-learn from the same initialisation.

    python benchmarks/kmeans_gmm.py [--quick] [--data-dir DIR] [--threads N]
                                    [--models kmeans gmm] [--ks 10 64 256]

K-means runs on the raw 784-d pixels (float32, both libraries); the diagonal GMM on a
PCA-50 projection (float64, both libraries: on raw pixels the constant border pixels make
the diagonal variances collapse to reg_covar and the likelihood meaningless). Both sides
get the same explicit initial centres / weights / means / precisions, the same max_iter
and tol, and the same number of threads. Objective: K-means inertia (lower is better),
GMM mean log-likelihood per sample (higher is better). ``--quick`` uses 5,000 training
images and k ∈ {10, 64}. Wall time and the CPU time of the process (both libraries run
in this process, so with one thread CPU time is the work itself) are reported. Writes
``benchmarks/results/kmeans_gmm.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _data import HELP, data_dir
from sklearn import cluster, mixture
from threadpoolctl import threadpool_limits

from genoise.data import load_dataset
from genoise.latent.gmm import GaussianMixture
from genoise.latent.kmeans import KMeans
from genoise.latent.pca import PCA


def timed(fn):
    """(result, (wall seconds, CPU seconds of this process))."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - start, time.process_time() - cpu)


def bench_kmeans(y: np.ndarray, k: int, max_iter: int, rng: np.random.Generator) -> dict:
    init = y[rng.choice(len(y), k, replace=False)]
    ours, t_ours = timed(lambda: KMeans(k, init=init, max_iter=max_iter, tol=1e-4).fit(y))
    ref, t_ref = timed(lambda: cluster.KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=1e-4).fit(y))
    return {"model": "K-means (784-d, f32)", "k": k, "n": len(y), "t_ours": t_ours, "t_ref": t_ref,
            "obj_ours": ours.inertia_, "obj_ref": float(ref.inertia_),
            "iters": f"{ours.n_iter_}/{ref.n_iter_}"}


def bench_gmm(y: np.ndarray, k: int, max_iter: int, rng: np.random.Generator) -> dict:
    init = {"weights_init": np.full(k, 1.0 / k), "means_init": y[rng.choice(len(y), k, replace=False)],
            "precisions_init": np.tile(1.0 / y.var(0), (k, 1))}
    kwargs = {"covariance_type": "diag", "max_iter": max_iter, "tol": 1e-3, **init}
    ours, t_ours = timed(lambda: GaussianMixture(k, **kwargs).fit(y))
    ref, t_ref = timed(lambda: mixture.GaussianMixture(k, **kwargs).fit(y))
    return {"model": "GMM diag (PCA-50, f64)", "k": k, "n": len(y), "t_ours": t_ours, "t_ref": t_ref,
            "obj_ours": ours.score(y), "obj_ref": float(ref.score(y)),
            "iters": f"{ours.n_iter_}/{ref.n_iter_}"}


def table(rows: list[dict]) -> str:
    lines = ["| model | k | n | genoise wall s | sklearn wall s | wall ratio (ours/sk) | genoise CPU s | "
             "sklearn CPU s | CPU ratio | genoise objective | sklearn objective | rel. diff | "
             "iterations (ours/sk) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        rel = abs(r["obj_ours"] - r["obj_ref"]) / abs(r["obj_ref"])
        (wall, cpu), (wall_ref, cpu_ref) = r["t_ours"], r["t_ref"]
        lines.append(f"| {r['model']} | {r['k']} | {r['n']} | {wall:.2f} | {wall_ref:.2f} | "
                     f"{wall / wall_ref:.2f} | {cpu:.2f} | {cpu_ref:.2f} | {cpu / cpu_ref:.2f} | "
                     f"{r['obj_ours']:.6g} | {r['obj_ref']:.6g} | {rel:.1e} | {r['iters']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 images, k in {10, 64}")
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and BLAS/OpenMP")
    parser.add_argument("--max-iter", type=int, default=50, help="Lloyd / EM iteration cap (both)")
    parser.add_argument("--models", nargs="+", default=["kmeans", "gmm"], choices=["kmeans", "gmm"])
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="numbers of clusters/components")
    args = parser.parse_args()

    folder = data_dir(args.data_dir)
    if folder is None:
        print("no data folder (--data-dir / GENOISE_DATA): measuring on scikit-learn's 8x8 digits, not MNIST")
    data = load_dataset("mnist" if folder is not None else "digits", "train", data_dir=folder)
    y = data.images.flatten(1).numpy().astype(np.float32)
    ks = args.ks or ((10, 64) if args.quick else (10, 64, 256))
    if args.quick:
        y = y[np.random.default_rng(0).permutation(len(y))[:5000]]
    torch.set_num_threads(args.threads)
    rows = []
    with threadpool_limits(args.threads):
        y50 = PCA(50).fit_transform(y.astype(np.float64)).numpy()
        KMeans(2, init=y[:2]).fit(y[:100])  # warm-up (first-call allocations)
        for k in ks if "kmeans" in args.models else ():
            rows.append(bench_kmeans(y, k, args.max_iter, np.random.default_rng(k)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        for k in ks if "gmm" in args.models else ():
            rows.append(bench_gmm(y50, k, args.max_iter, np.random.default_rng(k)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    cpu = platform.processor() or platform.machine()
    header = (f"K-means / GMM (diag) on MNIST, genoise vs scikit-learn from the same init; "
              f"{args.threads} thread(s), max_iter={args.max_iter}, {cpu}, "
              f"torch {torch.__version__}{' (--quick)' if args.quick else ''}\n\n")
    text = header + table(rows) + "\n"
    print("\n" + text)
    out = Path(__file__).resolve().parent / "results" / "kmeans_gmm.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
