"""K-means, diagonal GMM and PCA: genoise vs scikit-learn from the same initialisation, in one run.

    python benchmarks/kmeans_gmm.py [--quick] [--n N] [--datasets mnist cifar10] [--threads 1 2]
        [--models kmeans gmm pca] [--ks 10 64 256] [--max-iter 50] [--device cuda] [--data-dir DIR]

Data sets: ``mnist`` (the 60,000 training images, 784-d) and ``cifar10`` (the CIFAR-10
subset's training images, 4,000 in the shared folder, flattened to 3,072-d pixels in [0, 1]);
scikit-learn's 8×8 digits stand in when there is no data folder. ``--quick``: at most 5,000
images per data set (a fixed random subset) and k ∈ {10, 64}; ``--n N``: at most N images.
Every (data set, model, k) is measured at each ``--threads`` count in the same run, both
libraries limited to that many threads (torch.set_num_threads + threadpoolctl).

K-means runs on the raw pixels, in float32 and again in float64 (both libraries in the same
precision; ``--kmeans-precision``): float32 is genoise's default and scikit-learn's on
float32 input, and float64 is the precision in which the two trajectories can be compared
exactly (in float32 they part at distance ties and rounding, and scikit-learn's inertia
differs by 2–4e-6 between its own 1- and 2-thread runs). The diagonal GMM on a PCA-50
projection (float64, both: on raw pixels the constant border pixels collapse the diagonal
variances to reg_covar; the projection is the exact ``full`` one). PCA-50 (float64) is
measured once per ``--pca-solvers`` value, the same ``svd_solver`` on both sides: row
``pca`` is ``full`` (the exact thin SVD; genoise: the R-SVD, QR then the SVD of R),
``pca_covariance_eigh`` the eigen-decomposition of the Gram matrix (exact to ε·σ₁²),
``pca_randomized`` Halko et al.'s approximate range finder (each library its own random
test matrix, so their objectives differ by the approximation). Both sides get the
same explicit initial centres / weights / means / precisions, the same max_iter and tol.
scikit-learn's GMM is given ``init_params="random_from_data"``: its default ("kmeans") runs a
whole K-means inside ``fit`` whose result the explicit initialisation then overwrites.

Reported per row: wall and CPU seconds (CPU = this process; with one thread, the work
itself; a fit under one second is timed as the best of three, both libraries alike),
``speedup_vs_sklearn`` = scikit-learn's wall seconds / genoise's, the objective of each
(K-means inertia, lower is better; GMM mean log-likelihood, higher is better; PCA explained
variance of the components) and their relative difference, the iterations, and
the arithmetic against the machine's limit. Floating-point operations counted:

* K-means: 2·n·k·d per Lloyd iteration (the n×d by d×k distance GEMM), GFLOP =
  2·n·k·d·iterations / 1e9. For genoise this is the *dense-equivalent* work: Elkan's bounds
  skip the distances they prove unnecessary, so its GFLOP/s (and fraction of peak) can
  exceed what it computed, even exceed 100 % — that excess is what the bounds save.
* GMM (diagonal): 8·n·k·d per EM iteration, the four n×d×k products both libraries perform:
  E-step log-densities y²·(−P/2) and y·(Pμ), M-step Σ r·y and Σ r·y² (elementwise work,
  exp and logsumexp not counted).
* PCA, exact solvers: n·d·min(n, d), one triangle of the Gram matrix XᵀX (or XXᵀ when
  n < d) of the centred data (a symmetric rank-k update): the least arithmetic of an exact
  PCA (a thin SVD performs several times that), so the fraction is against the cheapest
  exact method. Randomized: (2q + 2)·2·n·d·(k + 10), its products with the data (q = 7
  power iterations when k < 0.1·min(n, d), else 4).

GFLOP/s are divided by this machine's matmul peak in the row's precision (K-means float32 or
float64, GMM and PCA float64) at
the same thread count, measured once per thread count at the start of the run
(``benchmarks/_peak.py``). Writes ``benchmarks/records/kmeans_gmm.{md,json}`` (one JSON row
per data set, method, precision, k and thread count, with the command and the date); ``--quick`` or
``--n``: ``kmeans_gmm_quick``, so that a short run never overwrites the full record.

``--device cuda`` runs genoise's side there (the estimators keep their input's device; the
data are copied there once, untimed, and the device is synchronised before the clock stops)
and reports its absolute times; its fraction of peak is left empty (the peak measured is
the CPU's). scikit-learn stays on the CPU. The CPU table is the one the goals are judged on.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
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
QUICK_IMAGES = 5000
PCA_COMPONENTS = 50
PCA_SOLVERS = ("full", "covariance_eigh", "randomized")
FLOP_COUNTS = {
    "kmeans": "2·n·k·d per Lloyd iteration (distance GEMM; dense-equivalent for genoise's Elkan bounds)",
    "gmm_diag": "8·n·k·d per EM iteration (E-step y²·P and y·Pμ, M-step Σr·y and Σr·y²)",
    "pca": "n·d·min(n, d) for the exact solvers (one triangle of the Gram matrix XᵀX or XXᵀ, the least "
    "work of an exact PCA); randomized: (2q + 2)·2·n·d·(k + 10), its products with the data",
}


def timed(fn, device: str, short: float = 1.0, repeats: int = 3):
    """(result, wall seconds, CPU seconds of this process); synchronises a CUDA device. When the
    first run takes under ``short`` seconds, the best of ``repeats`` runs by wall time (both
    libraries alike, as in ``sparse_inference.py``: a sub-second fit on a shared machine is
    noisy, and the first one in a process pays for mapping fresh memory)."""
    best, out = (float("inf"), float("inf")), None
    for attempt in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
        if attempt == 0 and best[0] >= short:
            break
    return out, best[0], best[1]


def load(name: str, folder: Path | None, n_max: int | None) -> np.ndarray:
    """The training images of ``name`` flattened to float32 rows, at most ``n_max`` of them
    (a fixed random subset)."""
    y = load_dataset(name, "train", data_dir=folder).images.flatten(1).numpy().astype(np.float32)
    if n_max is not None and len(y) > n_max:
        y = y[np.random.default_rng(0).permutation(len(y))[:n_max]]
    return y


def gmm_init(y50: np.ndarray, k: int) -> dict:
    """The explicit initialisation both GMMs start from: equal weights, k distinct samples as
    means, the inverse variances of the data as every component's precisions."""
    rng = np.random.default_rng(k)
    return {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": y50[rng.choice(len(y50), k, replace=False)],
        "precisions_init": np.tile(1.0 / y50.var(0), (k, 1)),
    }


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
    """One measured row from ((genoise wall, CPU), (sklearn wall, CPU)), (objectives),
    (iterations) and the floating-point operations of one iteration."""
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
    """Both libraries in ``y``'s precision (scikit-learn computes in its input's dtype, genoise's
    KMeans keeps its input's dtype), from the same ``k`` initial centres."""
    from sklearn import cluster

    init = y[np.random.default_rng(k).choice(len(y), k, replace=False)]
    data, ours_init = torch.from_numpy(y).to(device), torch.from_numpy(init).to(device)
    ours, sec, cpu = timed(lambda: KMeans(k, init=ours_init, max_iter=max_iter, tol=1e-4).fit(data), device)
    ref, ref_sec, ref_cpu = timed(
        lambda: cluster.KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=1e-4).fit(y), "cpu"
    )
    n, d = y.shape
    return _row(
        "kmeans",
        k,
        (n, d),
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.inertia_, ref.inertia_),
        (ours.n_iter_, ref.n_iter_),
        2.0 * n * k * d,
        y.dtype.name,
    )


def bench_gmm(y50: np.ndarray, k: int, max_iter: int, device: str) -> dict:
    from sklearn import mixture

    init = gmm_init(y50, k)
    kwargs = {"covariance_type": "diag", "max_iter": max_iter, "tol": 1e-3}
    data = torch.from_numpy(y50).to(device)
    ours_init = {key: torch.from_numpy(v).to(device) for key, v in init.items()}
    ours, sec, cpu = timed(lambda: GaussianMixture(k, **kwargs, **ours_init).fit(data), device)
    # "random_from_data": the cheapest of scikit-learn's initial responsibilities, all of whose
    # parameters the explicit init overwrites (the default "kmeans" would fit a K-means first).
    ref, ref_sec, ref_cpu = timed(
        lambda: mixture.GaussianMixture(
            k, **kwargs, **init, init_params="random_from_data", random_state=0
        ).fit(y50),
        "cpu",
    )
    n, d = y50.shape
    return _row(
        "gmm_diag",
        k,
        (n, d),
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.score(data), ref.score(y50)),
        (ours.n_iter_, ref.n_iter_),
        8.0 * n * k * d,
        "float64",
    )


def bench_pca(y64: np.ndarray, k: int, solver: str, device: str) -> dict:
    """PCA-k with the same ``svd_solver`` on both sides (row ``pca`` is ``full``, the exact
    thin SVD; ``pca_covariance_eigh`` and ``pca_randomized`` the others)."""
    from sklearn import decomposition

    data = torch.from_numpy(y64).to(device)
    ours, sec, cpu = timed(lambda: PCA(k, svd_solver=solver, seed=0).fit(data), device)
    ref, ref_sec, ref_cpu = timed(
        lambda: decomposition.PCA(k, svd_solver=solver, random_state=0).fit(y64), "cpu"
    )
    n, d = y64.shape
    if solver == "randomized":  # (2q + 2) products with the n × d data, l = k + 10 columns wide
        q = 7 if k < 0.1 * min(n, d) else 4
        flop = (2 * q + 2) * 2.0 * n * d * min(k + 10, n, d)
    else:
        flop = 1.0 * n * d * min(n, d)
    return _row(
        "pca" if solver == "full" else f"pca_{solver}",
        k,
        (n, d),
        ((sec, cpu), (ref_sec, ref_cpu)),
        (ours.explained_variance_.sum(), ref.explained_variance_.sum()),
        (1, 1),
        flop,
        "float64",
    )


def warm_up(y: np.ndarray, y64: np.ndarray, y50: np.ndarray, device: str) -> None:
    """First-call costs (allocations, lazy imports, a CUDA context) outside the clock:
    each estimator of both libraries once on 200 rows."""
    from sklearn import cluster, decomposition, mixture

    rows = min(200, len(y))
    for part in (y[:rows], y64[:rows]):  # both K-means precisions
        data = torch.from_numpy(part).to(device)
        KMeans(2, init=data[:2], max_iter=2).fit(data)
        cluster.KMeans(2, init=part[:2], n_init=1, max_iter=2).fit(part)
    init = gmm_init(y50[:rows], 2)
    GaussianMixture(
        2,
        covariance_type="diag",
        max_iter=2,
        **{key: torch.from_numpy(v).to(device) for key, v in init.items()},
    ).fit(torch.from_numpy(y50[:rows]).to(device))
    mixture.GaussianMixture(
        2, covariance_type="diag", max_iter=2, init_params="random_from_data", random_state=0, **init
    ).fit(y50[:rows])
    for solver in PCA_SOLVERS:
        PCA(2, svd_solver=solver, seed=0).fit(torch.from_numpy(y64[:rows]).to(device))
        decomposition.PCA(2, svd_solver=solver, random_state=0).fit(y64[:rows])
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def finish(row: dict, dataset: str, threads: int, peaks: dict, device: str) -> dict:
    """The row with its data set, thread count, speed-up, relative difference and the
    arithmetic against the peak (genoise's fraction only on the CPU, whose peak was measured)."""
    peak = peaks[str(threads)][row["precision"]]
    rate = row["flop"] / row["seconds"] / 1e9
    ref_rate = row["sklearn_flop"] / row["sklearn_seconds"] / 1e9
    return {
        "dataset": dataset,
        "threads": threads,
        "device": device,
        **row,
        "speedup_vs_sklearn": row["sklearn_seconds"] / row["seconds"],
        "cpu_speedup_vs_sklearn": row["sklearn_cpu"] / row["cpu"] if row["cpu"] > 0 else None,
        "rel_diff": abs(row["objective"] - row["sklearn_objective"]) / abs(row["sklearn_objective"]),
        "gflop": row["flop"] / 1e9,
        "sklearn_gflop": row["sklearn_flop"] / 1e9,
        "gflops": rate,
        "peak_fraction": rate / peak if device == "cpu" else None,
        "sklearn_gflops": ref_rate,
        "sklearn_peak_fraction": ref_rate / peak,
    }


HEADER = (
    "| data set | model | precision | k | threads | n × d | genoise s | sklearn s | speed-up vs sklearn "
    "| genoise CPU s | sklearn CPU s | CPU speed-up | genoise objective | sklearn objective | rel. diff "
    "| iterations ours / sk | GFLOP ours / sk | GFLOP/s ours / sk | of peak ours / sk |"
)
SEPARATOR = "|---|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|"


def table_row(r: dict) -> str:
    ours_peak = "–" if r["peak_fraction"] is None else f"{r['peak_fraction']:.0%}"
    cpu_speedup = "–" if r["cpu_speedup_vs_sklearn"] is None else f"{r['cpu_speedup_vs_sklearn']:.2f}×"
    return (
        f"| {r['dataset']} | {r['method']} | {r['precision']} | {r['k']} | {r['threads']} "
        f"| {r['n']} × {r['d']} "
        f"| {r['seconds']:.3f} | {r['sklearn_seconds']:.3f} | {r['speedup_vs_sklearn']:.2f}× "
        f"| {r['cpu']:.2f} | {r['sklearn_cpu']:.2f} | {cpu_speedup} "
        f"| {r['objective']:.7g} | {r['sklearn_objective']:.7g} | {r['rel_diff']:.1e} "
        f"| {r['iterations']} / {r['sklearn_iterations']} | {r['gflop']:.3g} / {r['sklearn_gflop']:.3g} "
        f"| {r['gflops']:.3g} / {r['sklearn_gflops']:.3g} | {ours_peak} / {r['sklearn_peak_fraction']:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"at most {QUICK_IMAGES:,} images per data set, k in {{10, 64}}"
    )
    parser.add_argument(
        "--n", type=int, default=None, help="at most N images per data set (overrides --quick's 5,000)"
    )
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["mnist", "cifar10"],
        choices=["mnist", "cifar10"],
        help="data sets (scikit-learn's digits when there is no data folder)",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts, each measured")
    parser.add_argument("--max-iter", type=int, default=50, help="Lloyd / EM iteration cap (both)")
    parser.add_argument(
        "--models", nargs="+", default=["kmeans", "gmm", "pca"], choices=["kmeans", "gmm", "pca"]
    )
    parser.add_argument(
        "--kmeans-precision",
        nargs="+",
        default=["float32", "float64"],
        choices=["float32", "float64"],
        help="K-means precisions, each measured (both libraries in that precision)",
    )
    parser.add_argument(
        "--pca-solvers",
        nargs="+",
        default=list(PCA_SOLVERS),
        choices=list(PCA_SOLVERS),
        help="PCA svd_solver values, each measured (the same solver on both sides)",
    )
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="numbers of clusters/components")
    parser.add_argument("--device", default="cpu", help="device of genoise's side (e.g. cuda); sklearn: CPU")
    args = parser.parse_args()
    if args.n is not None and args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    if any(t < 1 for t in args.threads):
        parser.error(f"--threads must be positive, got {args.threads}")
    if args.device != "cpu":
        try:
            torch.empty(1, device=args.device)
        except (RuntimeError, AssertionError, ValueError) as err:
            parser.error(f"--device {args.device} is not available here: {err}")
    from sklearn import __version__ as sklearn_version
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # the iterations column says it
    folder = data_dir(args.data_dir)
    datasets = args.datasets if folder is not None else ["digits"]
    if folder is None:
        print("no data folder (--data-dir / GENOISE_DATA): measuring on scikit-learn's 8x8 digits")
    n_max = args.n if args.n is not None else (QUICK_IMAGES if args.quick else None)
    ks = args.ks or ((10, 64) if args.quick else (10, 64, 256))
    peaks = {
        str(t): {"float32": matmul_peak(t), "float64": matmul_peak(t, torch.float64)} for t in args.threads
    }
    peak_text = "; ".join(
        f"{t} thread(s): float32 {p['float32']:.0f}, float64 {p['float64']:.0f}" for t, p in peaks.items()
    )
    print(f"measured matmul peak (GFLOP/s): {peak_text}", flush=True)
    rows = []
    print(HEADER + "\n" + SEPARATOR, flush=True)
    for name in datasets:
        y = load(name, folder, n_max)
        components = min(PCA_COMPONENTS, *y.shape)
        with threadpool_limits(1):  # the GMM's input, untimed
            torch.set_num_threads(1)
            y64 = y.astype(np.float64)
            y50 = PCA(components, svd_solver="full").fit_transform(y64).numpy()
        for threads in args.threads:
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                warm_up(y, y64, y50, args.device)
                jobs = [
                    ("kmeans", k, precision)
                    for precision in args.kmeans_precision
                    for k in ks
                    if "kmeans" in args.models
                ]
                jobs += [("gmm", k, "float64") for k in ks if "gmm" in args.models]
                jobs += [("pca", components, solver) for solver in args.pca_solvers if "pca" in args.models]
                for model, k, variant in jobs:  # variant: K-means' precision, PCA's solver
                    if model == "kmeans":
                        data = y64 if variant == "float64" else y  # both made once per data set
                        row = bench_kmeans(data, k, args.max_iter, args.device)
                    elif model == "gmm":
                        row = bench_gmm(y50, k, args.max_iter, args.device)
                    else:
                        row = bench_pca(y64, k, variant, args.device)
                    rows.append(finish(row, name, threads, peaks, args.device))
                    print(table_row(rows[-1]), flush=True)
    command = "python " + " ".join(sys.argv)
    date = datetime.date.today().isoformat()
    short = args.quick or args.n is not None
    counts = "; ".join(f"{method}: {text}" for method, text in FLOP_COUNTS.items())
    device = (
        ""
        if args.device == "cpu"
        else (
            f" genoise on {args.device} (absolute times; its fraction of the CPU peak is left empty),"
            " scikit-learn on the CPU."
        )
    )
    text = (
        f"K-means / GMM (diag) / PCA, genoise vs scikit-learn from the same initialisation, one run "
        f"(`{command}`, {date}, torch {torch.__version__}, scikit-learn {sklearn_version}, "
        f"max_iter={args.max_iter}{', at most ' + str(n_max) + ' images per data set' if short else ''}; "
        f"fits under one second timed as the best of three, both libraries alike)."
        f"{device} Measured matmul peak (GFLOP/s): {peak_text}; each row against the peak of its "
        f"precision. Floating-point operations counted: {counts}.\n\n"
        + HEADER
        + "\n"
        + SEPARATOR
        + "\n"
        + "\n".join(table_row(r) for r in rows)
        + "\n"
    )
    print("\n" + text)
    payload = {
        "command": command,
        "date": date,
        "device": args.device,
        "threads": args.threads,
        "max_iter": args.max_iter,
        "max_images": n_max,
        "torch": torch.__version__,
        "sklearn": sklearn_version,
        "peak_gflops": peaks,
        "flop_counts": FLOP_COUNTS,
        "rows": rows,
    }
    stem = "kmeans_gmm_quick" if short else "kmeans_gmm"
    out = write_records(RECORDS, stem, text, payload)
    print(f"written to {out / stem}.md and .json")


if __name__ == "__main__":
    main()
