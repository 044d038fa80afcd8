"""K-means, diagonal GMM and PCA: genoise vs scikit-learn from the same initialisation, in one run.

    python benchmarks/kmeans_gmm.py [--quick] [--datasets mnist cifar10] [--threads 1 2]
        [--models kmeans gmm pca] [--ks 10 64 256] [--max-iter 50] [--device cuda] [--data-dir DIR]

Data sets: ``mnist`` (the 60,000 training images, 784-d; ``--quick``: 5,000) and ``cifar10``
(the CIFAR-10 subset's 4,000 training images, 3,072-d pixels in [0, 1]); scikit-learn's 8×8
digits stand in when there is no data folder. K-means runs on the raw pixels (float32, both
libraries); the diagonal GMM on a PCA-50 projection (float64, both: on raw pixels the
constant border pixels collapse the diagonal variances to reg_covar); PCA-50 is a full thin
SVD on both sides (scikit-learn ``svd_solver="full"``). Both sides get the same explicit
initial centres / weights / means / precisions, the same max_iter and tol, and the same
number of threads (torch.set_num_threads + threadpoolctl).

Reported per row: wall and CPU seconds (CPU = this process; with one thread, the work
itself), ``speedup_vs_sklearn`` = scikit-learn's wall seconds / genoise's, the objective of
each (K-means inertia, lower is better; GMM mean log-likelihood, higher is better; PCA
explained variance of the 50 components) and their relative difference, and the
arithmetic against the machine's limit:

* K-means: 2·n·k·d flops per Lloyd iteration (the distance GEMM), times the iterations.
  For genoise this is the *dense-equivalent* work: Elkan's bounds skip most distances, so
  its GFLOP/s can exceed what it computed — that excess is the point of the bounds.
* GMM (diagonal): ≈ 8·n·k·d per EM iteration (E-step log-densities as two n×d×k products,
  M-step means and second moments as two more).
* PCA: ≈ 4·n·d² (the leading term of a thin SVD of the n×d centred data).

GFLOP/s are divided by this machine's float32 (K-means) or float64 (GMM, PCA) matmul peak at
the same thread count, measured in the same run (``benchmarks/_peak.py``). Writes
``benchmarks/records/kmeans_gmm.{md,json}`` (``--quick``: ``kmeans_gmm_quick``).
``--device cuda`` runs genoise's side on that device (data copied there once, untimed);
scikit-learn stays on the CPU; the CPU table is the one the goals are judged on.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._data import HELP, data_dir  # noqa: E402
from benchmarks._peak import matmul_peak  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.data import load_dataset  # noqa: E402
from genoise.latent.gmm import GaussianMixture  # noqa: E402
from genoise.latent.kmeans import KMeans  # noqa: E402
from genoise.latent.pca import PCA  # noqa: E402

RECORDS = ROOT / "benchmarks" / "records"


def timed(fn):
    """(result, wall seconds, CPU seconds of this process); synchronises a CUDA device."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start, time.process_time() - cpu


def load(name: str, folder, quick: bool) -> np.ndarray:
    y = load_dataset(name, "train", data_dir=folder).images.flatten(1).numpy().astype(np.float32)
    if quick and len(y) > 5000:
        y = y[np.random.default_rng(0).permutation(len(y))[:5000]]
    return y


def _row(
    method: str,
    k: int,
    shape: tuple[int, int],
    timings,
    objectives,
    iterations,
    flop_per_iteration: float,
    precision: str,
) -> dict:
    """One measured row: ((genoise wall, CPU), (sklearn wall, CPU)), (objectives), (iterations)."""
    (sec, cpu), (ref_sec, ref_cpu) = timings
    return {
        "method": method,
        "k": k,
        "n": shape[0],
        "d": shape[1],
        "seconds": sec,
        "cpu": cpu,
        "sklearn_seconds": ref_sec,
        "sklearn_cpu": ref_cpu,
        "objective": float(objectives[0]),
        "sklearn_objective": float(objectives[1]),
        "iterations": int(iterations[0]),
        "sklearn_iterations": int(iterations[1]),
        "flop": flop_per_iteration * int(iterations[0]),
        "sklearn_flop": flop_per_iteration * int(iterations[1]),
        "precision": precision,
    }


def bench_kmeans(y: np.ndarray, k: int, max_iter: int, device: str) -> dict:
    from sklearn import cluster

    init = y[np.random.default_rng(k).choice(len(y), k, replace=False)]
    data = torch.from_numpy(y).to(device)
    ours, sec, cpu = timed(
        lambda: KMeans(k, init=torch.from_numpy(init).to(device), max_iter=max_iter, tol=1e-4).fit(data)
    )
    ref, ref_sec, ref_cpu = timed(
        lambda: cluster.KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=1e-4).fit(y)
    )
    return _row(
        "kmeans",
        k,
        y.shape,
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.inertia_, ref.inertia_),
        (ours.n_iter_, ref.n_iter_),
        2.0 * k * y.shape[0] * y.shape[1],
        "float32",
    )


def bench_gmm(y50: np.ndarray, k: int, max_iter: int, device: str) -> dict:
    from sklearn import mixture

    rng = np.random.default_rng(k)
    init = {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": y50[rng.choice(len(y50), k, replace=False)],
        "precisions_init": np.tile(1.0 / y50.var(0), (k, 1)),
    }
    kwargs = {"covariance_type": "diag", "max_iter": max_iter, "tol": 1e-3}
    data = torch.from_numpy(y50).to(device)
    ours_init = {key: torch.from_numpy(np.asarray(v)).to(device) for key, v in init.items()}
    ours, sec, cpu = timed(lambda: GaussianMixture(k, **kwargs, **ours_init).fit(data))
    ref, ref_sec, ref_cpu = timed(lambda: mixture.GaussianMixture(k, **kwargs, **init).fit(y50))
    return _row(
        "gmm_diag",
        k,
        y50.shape,
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.score(data), ref.score(y50)),
        (ours.n_iter_, ref.n_iter_),
        8.0 * k * y50.shape[0] * y50.shape[1],
        "float64",
    )


def bench_pca(y64: np.ndarray, k: int, device: str) -> dict:
    from sklearn import decomposition

    data = torch.from_numpy(y64).to(device)
    ours, sec, cpu = timed(lambda: PCA(k).fit(data))
    ref, ref_sec, ref_cpu = timed(lambda: decomposition.PCA(k, svd_solver="full").fit(y64))
    n, d = y64.shape
    return _row(
        "pca",
        k,
        y64.shape,
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.explained_variance_.sum(), ref.explained_variance_.sum()),
        (1, 1),
        4.0 * n * d * d,
        "float64",
    )


def finish(row: dict, dataset: str, threads: int, peaks: dict) -> dict:
    peak = peaks[str(threads)][row["precision"]]
    rate = row["flop"] / row["seconds"] / 1e9
    ref_rate = row["sklearn_flop"] / row["sklearn_seconds"] / 1e9
    return {
        "dataset": dataset,
        "threads": threads,
        **row,
        "speedup_vs_sklearn": row["sklearn_seconds"] / row["seconds"],
        "rel_diff": abs(row["objective"] - row["sklearn_objective"]) / abs(row["sklearn_objective"]),
        "gflop": row["flop"] / 1e9,
        "gflops": rate,
        "peak_fraction": rate / peak,
        "sklearn_gflops": ref_rate,
        "sklearn_peak_fraction": ref_rate / peak,
    }


HEADER = (
    "| data set | model | k | threads | n × d | genoise s | sklearn s | speed-up vs sklearn "
    "| genoise CPU s | sklearn CPU s | genoise objective | sklearn objective | rel. diff "
    "| iterations (ours/sk) | GFLOP (ours) | GFLOP/s ours / sk | of peak ours / sk |"
)


def table_row(r: dict) -> str:
    cpu = f"{r['cpu']:.2f} | {r['sklearn_cpu']:.2f}" if r["threads"] == 1 else "– | –"
    return (
        f"| {r['dataset']} | {r['method']} | {r['k']} | {r['threads']} | {r['n']} × {r['d']} "
        f"| {r['seconds']:.3f} | {r['sklearn_seconds']:.3f} | {r['speedup_vs_sklearn']:.2f}× | {cpu} "
        f"| {r['objective']:.7g} | "
        f"{r['sklearn_objective']:.7g} | {r['rel_diff']:.1e} | {r['iterations']}/{r['sklearn_iterations']} | "
        f"{r['gflop']:.1f} | {r['gflops']:.0f} / {r['sklearn_gflops']:.0f} | "
        f"{r['peak_fraction']:.0%} / {r['sklearn_peak_fraction']:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 MNIST images, k in {10, 64}")
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"], choices=["mnist", "cifar10"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts, each measured")
    parser.add_argument("--max-iter", type=int, default=50, help="Lloyd / EM iteration cap (both)")
    parser.add_argument(
        "--models", nargs="+", default=["kmeans", "gmm", "pca"], choices=["kmeans", "gmm", "pca"]
    )
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="numbers of clusters/components")
    parser.add_argument("--device", default="cpu", help="device of genoise's side (e.g. cuda)")
    args = parser.parse_args()
    if args.device != "cpu":
        try:
            torch.empty(0, device=args.device)
        except (RuntimeError, AssertionError) as err:
            parser.error(f"--device {args.device} is not available here: {err}")
    from threadpoolctl import threadpool_limits

    folder = data_dir(args.data_dir)
    datasets = args.datasets if folder is not None else ["digits"]
    if folder is None:
        print("no data folder (--data-dir / GENOISE_DATA): measuring on scikit-learn's 8x8 digits")
    ks = args.ks or ((10, 64) if args.quick else (10, 64, 256))
    peaks = {
        str(t): {"float32": matmul_peak(t), "float64": matmul_peak(t, torch.float64)} for t in args.threads
    }
    rows = []
    print(HEADER)
    for name in datasets:
        y = load(name, folder, args.quick)
        with threadpool_limits(1):
            torch.set_num_threads(1)
            y64 = y.astype(np.float64)
            y50 = PCA(50).fit_transform(y64).numpy()
        for threads in args.threads:
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                KMeans(2, init=y[:2]).fit(y[:100])  # warm-up (first-call allocations)
                jobs = [("kmeans", k) for k in ks if "kmeans" in args.models]
                jobs += [("gmm", k) for k in ks if "gmm" in args.models]
                jobs += [("pca", 50)] if "pca" in args.models else []
                for model, k in jobs:
                    if model == "kmeans":
                        row = bench_kmeans(y, k, args.max_iter, args.device)
                    elif model == "gmm":
                        row = bench_gmm(y50, k, args.max_iter, args.device)
                    else:
                        row = bench_pca(y64, k, args.device)
                    rows.append(finish(row, name, threads, peaks))
                    print(table_row(rows[-1]), flush=True)
    peak_text = ", ".join(
        f"{t} thread(s): f32 {p['float32']:.0f}, f64 {p['float64']:.0f}" for t, p in peaks.items()
    )
    separator = "|" + "---|" * (HEADER.count("|") - 1)
    text = (
        f"K-means / GMM (diag) / PCA, genoise vs scikit-learn from the same init, one run "
        f"({datetime.date.today()}, torch {torch.__version__}, max_iter={args.max_iter}"
        f"{', --quick' if args.quick else ''}). Measured matmul peak (GFLOP/s): {peak_text}. K-means GFLOP "
        "counts the dense Lloyd work (2nkd per iteration) for both sides; genoise's Elkan bounds skip "
        "most of it.\n\n" + HEADER + "\n" + separator + "\n" + "\n".join(table_row(r) for r in rows) + "\n"
    )
    print("\n" + text)
    payload = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.date.today().isoformat(),
        "max_iter": args.max_iter,
        "peak_gflops": peaks,
        "rows": rows,
    }
    stem = "kmeans_gmm_quick" if args.quick else "kmeans_gmm"
    out = write_records(RECORDS, stem, text, payload)
    print(f"written to {out / stem}.md and .json")


if __name__ == "__main__":
    main()
