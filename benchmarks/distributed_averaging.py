"""Training beyond one machine: test error, bytes and communication rounds of SGD, DDP,
DOWNPOUR, EASGD, EAMSGD, local SGD and DiLoCo at equal worker-gradient steps (issue 18).

    python benchmarks/distributed_averaging.py               # the tables (a), (b), (c)
    python benchmarks/distributed_averaging.py --quick       # a few CPU-minutes
    python benchmarks/distributed_averaging.py --shard 0/2   # half of the cells (run two)
    python benchmarks/distributed_averaging.py --goal2 --worker-steps 16384   # goal 2 at a longer budget
    python benchmarks/distributed_averaging.py --goal2 --worker-steps 16384 --goal-seeds 1 2  # + seeds
    python benchmarks/distributed_averaging.py --goal2 --worker-steps 16384 --buffers read  # rounds
        # carry the parameters only (BatchNorm statistics averaged when the center is read)
    python benchmarks/distributed_averaging.py --goal2 --worker-steps 16384 --lr-schedule cosine

Every cell is one ``genoise train averaging-DATASET`` run folder under
``benchmarks/results/distributed_averaging`` (reused when finished, resumed when
interrupted): LeNet-5 on MNIST and the small ConvNet on the CIFAR-10 subset, a budget of
``--worker-steps`` gradient steps summed over the workers (batch 32 each), the p workers
simulated in one process for p ∈ {4, 8, 16} and τ ∈ {1, 4, 16, 64}. EASGD and EAMSGD run
synchronously (``easgd``, ``eamsgd``) and with a master (``easgd_async``,
``eamsgd_async``, as in Zhang et al. 2015's experiments); DOWNPOUR always has a master.
Learning rates: the recipe's defaults (docs/distributed.md).

(c) Real processes: the same recipe under ``torchrun --nproc_per_node 2`` (3 for the
methods with a master) at p = 2, τ = 4 on MNIST, beside the simulator's p = 2 cells; the
synchronous methods must agree exactly (equal test error at every evaluation), and the
wall-clock of both is reported (this machine has two cores: two workers and a master
share them).

Goals: EAMSGD at or below DOWNPOUR's error at equal worker-steps for τ ∈ {4, 16, 64}, and
within 1.1× of DDP's error while sending ≥ 16× fewer bytes. Writes
``benchmarks/records/distributed_averaging.{md,json}`` (one row per (data set, method, p,
τ) with ``error``, ``bytes_per_worker``, ``rounds``) and ``distributed_averaging.png`` (the
curves of (b)).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._cells import recipe_value, run_cell  # noqa: E402
from benchmarks._data import HELP, data_dir  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.train.cluster import EAMSGD_MOMENTUM  # noqa: E402

PERIODIC = ("downpour", "easgd", "eamsgd", "easgd_async", "eamsgd_async", "localsgd", "diloco")
ROWS = ("sgd", "ddp", *PERIODIC)
WORKERS, TAUS = (4, 8, 16), (1, 4, 16, 64)
REAL = ("ddp", "localsgd", "easgd", "eamsgd", "diloco", "easgd_async", "eamsgd_async", "downpour")
DDP_LRS = (0.1, 0.2, 0.4, 0.8)  # DDP, the baseline of the goals, gets its best learning rate
EAMSGD_LRS = (0.01, 0.04, 0.08)  # and EAMSGD (default 0.02) gets the same care at τ = 16
GOAL2_TAUS = (16, 64)  # goal 2's periods: ≥ 16× fewer bytes than DDP needs τ ≥ 16
GOAL2_EAMSGD_LRS = (0.02, 0.04, 0.08, 0.12)  # --goal2: as many rates as DDP's grid, at both τ
# --goal2: DDP's best rate on CIFAR-10 at 16,384 steps was 0.8, the top of its grid, at every p;
# one more rate above it (MNIST's best is inside the grid, and 0.8 already diverges there at p ≥ 8)
GOAL2_DDP_EXTRA_LRS = {"cifar10": (1.6,)}


def overrides(row: str, workers: int, tau: int, args: argparse.Namespace, lr: float | None = None) -> dict:
    """The ``key=value`` settings of one cell."""
    method, _, mode = row.partition("_")
    cell = {"lr": lr} if lr is not None else {}
    cell |= {
        "distributed": method,
        "workers": workers,
        "tau": tau,
        "asynchronous": mode == "async",
        "worker_steps": args.worker_steps,
        "eval_points": args.eval_points,
        "seed": args.seed,
    }
    if args.quick:
        cell.update(n_train=4000, n_test=1000)
    if args.data_dir:
        cell["data_dir"] = str(args.data_dir)
    if reads_buffers(method, args):
        cell["buffers"] = "read"
    if args.lr_schedule != "constant":
        cell["lr_schedule"] = args.lr_schedule
    momentum = goal2_momentum(method, args)
    if momentum is not None:
        cell["momentum"] = momentum
    return cell


def goal2_momentum(method: str, args: argparse.Namespace) -> float | None:
    """The momentum ``--goal2`` gives ``method``'s cells: ``--eamsgd-momentum`` (EAMSGD's
    Nesterov δ) or ``--ddp-momentum`` (DDP's heavy-ball μ); None = the recipe's default
    (``EAMSGD_MOMENTUM`` and 0)."""
    return {"eamsgd": args.eamsgd_momentum, "ddp": args.ddp_momentum}.get(method)


def goal2_lrs(method: str, dataset: str, args: argparse.Namespace) -> tuple[float, ...]:
    """``--goal2``'s learning-rate grid of ``method``. A momentum m other than the default scales
    the grid so that the effective step lr / (1 − m) covers the same range: EAMSGD's grid is set for
    δ = 0.9, DDP's for no momentum."""
    m = goal2_momentum(method, args)
    if method == "ddp":
        grid, scale = DDP_LRS + GOAL2_DDP_EXTRA_LRS.get(dataset, ()), 1 - (m or 0.0)
    else:
        grid, scale = GOAL2_EAMSGD_LRS, (1 - (EAMSGD_MOMENTUM if m is None else m)) / (1 - EAMSGD_MOMENTUM)
    return tuple(float(f"{lr * scale:.6g}") for lr in grid)


def reads_buffers(method: str, args: argparse.Namespace) -> bool:
    """Whether a cell of ``method`` runs with ``buffers=read`` under ``--buffers read``: DDP and
    SGD never average buffers while training, so their cells are the same under both."""
    return args.buffers == "read" and method not in ("ddp", "sgd")


@dataclass(frozen=True)
class Goal2Variant:
    """One variant flag of ``--goal2``, and how it marks the three things it changes."""

    flag: str  # its text on the record's command line
    record: str  # the record's suffix
    cell: Callable[[str], str]  # the suffix of a method's cells ("" where its cells are shared)


def goal2_variants(args: argparse.Namespace) -> list[Goal2Variant]:
    """The variant flags set in ``args``, in the command's order: ``--buffers read`` (cells of a
    method whose rounds leave the buffers out end in ``-bread``; DDP's are the same under both),
    ``--lr-schedule cosine`` (``-cos``), ``--eamsgd-momentum`` / ``--ddp-momentum`` (that method's
    cells end in ``-m{m}``; the other method's are shared)."""
    out = []
    if args.buffers == "read":
        out.append(Goal2Variant(" --buffers read", "_bread",
                                lambda method: "-bread" if reads_buffers(method, args) else ""))
    if args.lr_schedule == "cosine":
        out.append(Goal2Variant(" --lr-schedule cosine", "_cos", lambda method: "-cos"))
    for owner, flag, tag in (("eamsgd", "--eamsgd-momentum", "_d"), ("ddp", "--ddp-momentum", "_ddpm")):
        m = goal2_momentum(owner, args)
        if m is not None:
            out.append(Goal2Variant(f" {flag} {m:g}", f"{tag}{m:g}",
                                    lambda method, owner=owner, m=m: f"-m{m:g}" if method == owner else ""))
    return out


def goal2_name(dataset: str, row: str, p: int, tau: int, args: argparse.Namespace) -> str:
    """A cell of ``--goal2``: ``…-ws{N}``, then the suffix of every variant flag that changes
    this row's method (:func:`goal2_variants`)."""
    method = row.partition("@")[0]
    name = cell_name(dataset, row, p, tau) + f"-ws{args.worker_steps}"
    return name + "".join(v.cell(method) for v in goal2_variants(args))


def cells(args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """(data set, row, p, τ) of tables (a) and (b), in a fixed order."""
    out = []
    for dataset in args.datasets:
        out.append((dataset, "sgd", 1, 1))
        for p in args.workers:
            out += [(dataset, f"ddp@{lr:g}", p, 1) for lr in DDP_LRS]
            out += [(dataset, row, p, tau) for tau in args.taus for row in PERIODIC]
    if 16 in args.taus:  # appended last, so that adding them kept the order of the others
        out += [
            (d, f"eamsgd@{lr:g}", p, 16) for d in args.datasets for p in args.workers for lr in EAMSGD_LRS
        ]
    return out


def cell_name(dataset: str, row: str, p: int, tau: int, processes: int = 1) -> str:
    return f"{dataset}-{row.replace('@', '-lr')}-p{p}-tau{tau}" + (
        f"-real{processes}" if processes > 1 else ""
    )


def cell_row(dataset: str, row: str, p: int, tau: int, record: dict) -> dict:
    """A table row from one cell's ``summary.json``."""
    return {
        "dataset": dataset,
        "method": row,
        "workers": p,
        "tau": tau,
        "error": record["error"],
        "bytes_per_worker": record["bytes_per_worker"],
        "rounds": record["rounds"],
        "cpu_seconds": record.get("cpu_seconds"),
    }


def pick_best(
    rows: list[dict], method: str, name: str, default: tuple[int, float] | None = None
) -> list[dict]:
    """For every (data set, p), the ``method@LR`` cell of the lowest error (and the default
    ``method`` cell at τ = ``default[0]``, whose learning rate is ``default[1]``) as row
    ``name``, with the whole grid in ``lr_grid``."""
    grid: dict[tuple[str, int], list[tuple[float, dict]]] = {}
    for r in rows:
        head, _, lr = r["method"].partition("@")
        if head == method and lr:
            grid.setdefault((r["dataset"], r["workers"]), []).append((float(lr), r))
        elif default is not None and r["method"] == method and r["tau"] == default[0]:
            grid.setdefault((r["dataset"], r["workers"]), []).append((default[1], r))
    out = []
    for group in grid.values():
        lr, best = min(group, key=lambda c: c[1]["error"])
        out.append(
            best | {"method": name, "lr": lr, "lr_grid": {f"{k:g}": c["error"] for k, c in sorted(group)}}
        )
    return out


def tuned_rows(rows: list[dict]) -> list[dict]:
    """The table's rows: DDP at its best learning rate (row ``ddp``), EAMSGD at its best at
    τ = 16 (row ``eamsgd_tuned``); every grid cell stays as ``ddp_grid`` / ``eamsgd_grid``."""
    plain = [r for r in rows if "@" not in r["method"]]
    grids = [
        r | {"method": r["method"].partition("@")[0] + "_grid", "lr": float(r["method"].partition("@")[2])}
        for r in rows
        if "@" in r["method"]
    ]
    return (
        plain + pick_best(rows, "ddp", "ddp") + pick_best(rows, "eamsgd", "eamsgd_tuned", (16, 0.02)) + grids
    )


def run_real(out: Path, dataset: str, row: str, tau: int, args: argparse.Namespace) -> dict:
    """One torchrun cell (p = 2; 3 processes with a master); its wall-clock is measured."""
    processes = 3 if row.endswith("_async") or row == "downpour" else 2
    name = cell_name(dataset, row, 2, tau, processes)
    folder = out / name
    if (folder / "summary.json").is_file():
        return json.loads((folder / "summary.json").read_text())
    cell = overrides(row, 2, tau, args)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(29500 + os.getpid() % 1000),
        "-m",
        "genoise",
        "train",
        f"averaging-{dataset}",
        *(f"{k}={recipe_value(v)}" for k, v in cell.items()),
        "--runs-dir",
        str(out),
        "--name",
        name,
        "--no-progress",
        "--overwrite",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    tic = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    record = json.loads((folder / "summary.json").read_text())
    record["wall_seconds"] = time.perf_counter() - tic
    (folder / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def history(out: Path, name: str) -> list[dict]:
    path = out / name / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def fmt_cell(r: dict | None) -> str:
    if r is None:
        return "–"
    return f"{100 * r['error']:.2f} % · {r['bytes_per_worker'] / 1e6:.3g} MB · {r['rounds']}"


def table_a(rows: list[dict], dataset: str, workers: tuple[int, ...], taus: tuple[int, ...]) -> list[str]:
    index = {
        (r["method"], r["workers"], r["tau"]): r
        for r in rows
        if r["dataset"] == dataset and r["processes"] == 1
    }
    lines = [
        f"### {dataset}: test error · bytes sent per worker · communication rounds",
        "",
        "| method | p | " + " | ".join(f"τ = {t}" for t in taus) + " |",
        "|---|---|" + "---|" * len(taus),
    ]
    sgd = index.get(("sgd", 1, 1))
    lines.append(f"| sgd | 1 | {fmt_cell(sgd)} |" + " |" * (len(taus) - 1))
    for p in workers:
        lines.append(
            f"| ddp | {p} | {fmt_cell(index.get(('ddp', p, 1)))} (every step) |" + " |" * (len(taus) - 1)
        )
        for method in PERIODIC:
            lines.append(
                f"| {method} | {p} | " + " | ".join(fmt_cell(index.get((method, p, t))) for t in taus) + " |"
            )
    return lines


def goals(rows: list[dict], datasets: list[str], workers: tuple[int, ...]) -> tuple[list[str], dict]:
    """EAMSGD vs DOWNPOUR (τ ∈ {4, 16, 64}) and vs DDP (error ≤ 1.1×, bytes ≥ 16× fewer)."""
    index = {(r["dataset"], r["method"], r["workers"], r["tau"]): r for r in rows if r["processes"] == 1}
    lines = [
        "| data set | p | τ | EAMSGD async | EAMSGD sync | EAMSGD sync, lr tuned | DOWNPOUR | DDP (lr tuned) "
        "| ≤ DOWNPOUR (async / sync) | ≤ 1.1 × DDP, ≥ 16× fewer bytes (async / sync / tuned) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdict = {"vs_downpour": [], "vs_ddp": []}
    for dataset in datasets:
        for p in workers:
            ddp = index.get((dataset, "ddp", p, 1))
            for tau in (4, 16, 64):
                ea, es = index.get((dataset, "eamsgd_async", p, tau)), index.get((dataset, "eamsgd", p, tau))
                et = index.get((dataset, "eamsgd_tuned", p, tau))
                dp = index.get((dataset, "downpour", p, tau))
                if None in (ea, es, dp, ddp):
                    continue
                below = [e["error"] <= dp["error"] for e in (ea, es)]
                near = [
                    e is not None
                    and e["error"] <= 1.1 * ddp["error"]
                    and 16 * e["bytes_per_worker"] <= ddp["bytes_per_worker"]
                    for e in (ea, es, et)
                ]
                verdict["vs_downpour"].append(below[0])
                if tau >= 16:  # 16x fewer bytes than DDP needs at least 16 steps per round
                    verdict["vs_ddp"].append(any(near))
                    versus_ddp = " / ".join(
                        "yes" if b else ("–" if e is None else "no")
                        for b, e in zip(near, (ea, es, et), strict=True)
                    )
                else:
                    versus_ddp = "n/a (τ < 16)"
                tuned = f"{100 * et['error']:.2f} (lr {et['lr']:g})" if et else "–"
                lines.append(
                    f"| {dataset} | {p} | {tau} | {100 * ea['error']:.2f} | {100 * es['error']:.2f} "
                    f"| {tuned} | "
                    f"{100 * dp['error']:.2f} | {100 * ddp['error']:.2f} (lr {ddp['lr']:g}) | "
                    + " / ".join("yes" if b else "no" for b in below)
                    + f" | {versus_ddp}"
                    + " |"
                )
    return lines, verdict


def curves_figure(
    rows_by_name: dict[str, list[dict]], rows: list[dict], datasets: list[str], p: int, tau: int
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.6 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        for row in ("sgd", "ddp", *PERIODIC):
            if row == "ddp":
                best = [
                    r for r in rows if r["method"] == "ddp" and r["dataset"] == dataset and r["workers"] == p
                ]
                row = f"ddp@{best[0]['lr']:g}" if best else row
            name = cell_name(dataset, row, 1 if row == "sgd" else p, 1 if row.startswith("ddp") else tau)
            points = [h for h in rows_by_name.get(name, []) if "error" in h]
            if not points:
                continue
            for ax, key in ((axes[i][0], "worker_steps"), (axes[i][1], "rounds")):
                if key == "rounds" and row == "sgd":
                    continue
                ax.plot([h[key] for h in points], [100 * h["error"] for h in points], marker=".", label=row)
        for ax, label in ((axes[i][0], "worker gradient steps"), (axes[i][1], "communication rounds")):
            ax.set_xlabel(label)
            ax.set_ylabel("test error (%)")
            ax.set_title(f"{dataset}, p = {p}, τ = {tau}")
            ax.set_yscale("log" if dataset == "mnist" else "linear")
            ax.grid(alpha=0.3)
        axes[i][1].set_xscale("log")
        axes[i][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def goal_seeds(out: Path, rows: list[dict], args: argparse.Namespace) -> int:
    """Goal 2 over several seeds: at τ = 16, DDP and EAMSGD at the learning rates tuned on seed
    ``--seed`` and asynchronous EAMSGD at its default, rerun with every seed of
    ``--goal-seeds``; mean ± standard deviation and the EAMSGD / DDP ratio."""
    import statistics

    index = {
        (r["dataset"], r["method"], r["workers"]): r
        for r in rows
        if r["processes"] == 1 and r["tau"] in (1, 16)
    }
    seeds = [args.seed, *args.goal_seeds]
    table, record = [], []
    for dataset in args.datasets:
        for p in args.workers:
            ddp, tuned = index.get((dataset, "ddp", p)), index.get((dataset, "eamsgd_tuned", p))
            if ddp is None or tuned is None:
                continue
            cells = {
                "ddp": ("ddp", 1, ddp["lr"]),
                "eamsgd_tuned": ("eamsgd", 16, tuned["lr"]),
                "eamsgd_async": ("eamsgd_async", 16, None),
            }
            errors: dict[str, list[float]] = {}
            for label, (row, tau, lr) in cells.items():
                errors[label] = [index[(dataset, label, p)]["error"]] if (dataset, label, p) in index else []
                for seed in args.goal_seeds:
                    name = cell_name(dataset, row if lr is None else f"{row}@{lr:g}", p, tau) + f"-seed{seed}"
                    cell = overrides(row, p, tau, args, lr) | {"seed": seed}
                    print(f"[seeds] {name}", flush=True)
                    result, _ = run_cell(out, f"averaging-{dataset}", name, cell, "summary.json")
                    errors[label].append(result["error"])
            stats = {
                k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for k, v in errors.items()
            }
            ratios = [
                min(a, t) / d
                for a, t, d in zip(errors["eamsgd_async"], errors["eamsgd_tuned"], errors["ddp"], strict=True)
            ]
            record.append(
                {
                    "dataset": dataset,
                    "workers": p,
                    "tau": 16,
                    "seeds": seeds,
                    "errors": errors,
                    "ddp_lr": ddp["lr"],
                    "eamsgd_lr": tuned["lr"],
                    "best_eamsgd_over_ddp": ratios,
                }
            )
            table.append(
                f"| {dataset} | {p} | "
                + " | ".join(f"{100 * m:.2f} ± {100 * sd:.2f}" for m, sd in stats.values())
                + f" | {' / '.join(f'{r:.2f}' for r in ratios)} "
                + f"| {sum(r <= 1.1 for r in ratios)} of {len(ratios)} |"
            )
    text = "\n".join(
        [
            "# Goal 2 over seeds: EAMSGD vs DDP at τ = 16",
            "",
            "Command: `python benchmarks/distributed_averaging.py --goal-seeds "
            f"{' '.join(map(str, args.goal_seeds))}` · "
            f"date {date.today().isoformat()} · seeds {seeds} (seed {args.seed} from the main table) · "
            f"{args.worker_steps} worker steps · learning rates tuned on seed {args.seed}.",
            "",
            "| data set | p | DDP (lr tuned) | EAMSGD sync, lr tuned | EAMSGD async "
            "| best EAMSGD / DDP per seed | seeds within 1.1× |",
            "|---|---|---|---|---|---|---|",
            *table,
            "",
        ]
    )
    print(text)
    records = ROOT / "benchmarks" / "records"
    write_records(
        records,
        "distributed_averaging_seeds",
        text + "\n",
        {
            "command": "python benchmarks/distributed_averaging.py --goal-seeds "
            + " ".join(map(str, args.goal_seeds)),
            "date": date.today().isoformat(),
            "rows": record,
        },
    )
    return 0


def goal2_cells(args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """(data set, ``method@lr``, p, τ) of ``--goal2``: DDP's learning-rate grid (τ = 1) and
    synchronous EAMSGD's at τ ∈ ``GOAL2_TAUS``, for every data set and p."""
    out = []
    for dataset in args.datasets:
        for p in args.workers:
            out += [(dataset, f"ddp@{lr:g}", p, 1) for lr in goal2_lrs("ddp", dataset, args)]
            eamsgd_lrs = goal2_lrs("eamsgd", dataset, args)
            out += [(dataset, f"eamsgd@{lr:g}", p, tau) for tau in GOAL2_TAUS for lr in eamsgd_lrs]
    return out


def goal2_table(rows: list[dict], worker_steps: int) -> tuple[list[str], list[dict]]:
    """Goal 2 per (data set, p, τ): DDP and EAMSGD each at the best of their learning-rate
    grids, the error ratio, the bytes ratio and the verdict (≤ 1.1× DDP's error with ≥ 16×
    fewer bytes)."""
    best: dict[tuple, dict] = {}
    grids: dict[tuple, dict] = {}
    for r in rows:
        method, _, lr = r["method"].partition("@")
        key = (r["dataset"], method, r["workers"], r["tau"])
        grids.setdefault(key, {})[lr] = r["error"]
        if key not in best or r["error"] < best[key]["error"]:
            best[key] = r | {"lr": float(lr)}
    lines = [
        "| data set | p | τ | DDP % (best lr) | EAMSGD sync % (best lr) | EAMSGD / DDP | EAMSGD sends "
        "fewer bytes by | goal 2 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for (dataset, method, p, tau), e in best.items():
        if method != "eamsgd":
            continue
        d = best.get((dataset, "ddp", p, 1))
        if d is None:
            continue
        ratio = e["error"] / d["error"]
        fewer = d["bytes_per_worker"] / max(e["bytes_per_worker"], 1)
        met = ratio <= 1.1 and fewer >= 16
        verdicts.append(
            {
                "dataset": dataset,
                "workers": p,
                "tau": tau,
                "worker_steps": worker_steps,
                "ddp_error": d["error"],
                "ddp_lr": d["lr"],
                "ddp_lr_grid": grids[(dataset, "ddp", p, 1)],
                "eamsgd_error": e["error"],
                "eamsgd_lr": e["lr"],
                "eamsgd_lr_grid": grids[(dataset, "eamsgd", p, tau)],
                "ratio": ratio,
                "bytes_fewer": fewer,
                "bytes_per_worker": e["bytes_per_worker"],
                "ddp_bytes_per_worker": d["bytes_per_worker"],
                "met": met,
            }
        )
        lines.append(
            f"| {dataset} | {p} | {tau} | {100 * d['error']:.2f} ({d['lr']:g}) | {100 * e['error']:.2f} "
            f"({e['lr']:g}) | {ratio:.2f}× | {fewer:.2f}× | {'met' if met else 'not met'} |"
        )
    return lines, verdicts


def goal2_seeds(out: Path, verdicts: list[dict], args: argparse.Namespace, shard: int, shards: int) -> float:
    """Rerun each verdict's two cells (DDP and EAMSGD at the learning rates chosen on seed
    ``--seed``) with every seed of ``--goal-seeds``; adds ``seeds``, ``ddp_errors``,
    ``eamsgd_errors`` and ``ratios`` to each verdict (in place). Returns the CPU seconds."""
    cpu, k = 0.0, 0
    for v in verdicts:
        v |= {"seeds": [args.seed], "ddp_errors": [v["ddp_error"]], "eamsgd_errors": [v["eamsgd_error"]]}
        for seed in args.goal_seeds:
            for method, tau, lr, key in (
                ("ddp", 1, v["ddp_lr"], "ddp_errors"),
                ("eamsgd", v["tau"], v["eamsgd_lr"], "eamsgd_errors"),
            ):
                name = goal2_name(v["dataset"], f"{method}@{lr:g}", v["workers"], tau, args)
                name += f"-seed{seed}"
                k += 1
                if (k - 1) % shards != shard and not (out / name / "summary.json").is_file():
                    v[key].append(float("nan"))  # another shard's: run 0/1 at the end for the table
                    continue
                print(f"[goal 2, seed {seed}] {name}", flush=True)
                cell = overrides(method, v["workers"], tau, args, lr) | {"seed": seed}
                record, seconds = run_cell(out, f"averaging-{v['dataset']}", name, cell, "summary.json")
                cpu += seconds
                v[key].append(record["error"])
            v["seeds"].append(seed)
        v["ratios"] = [e / d for e, d in zip(v["eamsgd_errors"], v["ddp_errors"], strict=True)]
    return cpu


def goal2_seed_lines(lines: list[str], verdicts: list[dict]) -> list[str]:
    """``goal2_table``'s lines with two more columns: the ratio per seed, and on how many
    seeds goal 2 holds (the bytes do not depend on the seed)."""
    import statistics

    out = [
        lines[0] + " DDP % over seeds | EAMSGD % over seeds | EAMSGD / DDP per seed | seeds met |",
        lines[1] + "---:|---:|---|---:|",
    ]
    for line, v in zip(lines[2:], verdicts, strict=True):
        cells = []
        for errors in (v["ddp_errors"], v["eamsgd_errors"]):
            sd = statistics.stdev(errors) if len(errors) > 1 else 0.0
            cells.append(f"{100 * statistics.mean(errors):.2f} ± {100 * sd:.2f}")
        ratios = v["ratios"]
        met = sum(r <= 1.1 for r in ratios) if v["bytes_fewer"] >= 16 else 0
        v["seeds_met"] = met
        out.append(
            line + f" {cells[0]} | {cells[1]} | {' / '.join(f'{r:.2f}' for r in ratios)} | "
            f"{met} of {len(ratios)} |"
        )
    return out


def goal2(out: Path, args: argparse.Namespace) -> int:
    """``--goal2``: goal 2's cells at ``--worker-steps`` (names end in ``-ws{N}``, so they never
    mix with the main table's 4,096-step cells), then its table."""
    todo = goal2_cells(args)
    shard, shards = (int(v) for v in args.shard.split("/"))
    rows, cpu = [], 0.0
    for k, (dataset, row, p, tau) in enumerate(todo):
        name = goal2_name(dataset, row, p, tau, args)
        if k % shards != shard and not (out / name / "summary.json").is_file():
            continue
        print(f"[goal 2: {k + 1}/{len(todo)}] {name}", flush=True)
        method, _, lr = row.partition("@")
        record, seconds = run_cell(
            out, f"averaging-{dataset}", name, overrides(method, p, tau, args, float(lr)), "summary.json"
        )
        cpu += seconds
        rows.append(cell_row(dataset, row, p, tau, record))
    lines, verdicts = goal2_table(rows, args.worker_steps)
    if args.goal_seeds and len(rows) < len(todo):
        # the seeds rerun each method at its best rate of the whole grid: not known yet
        print(
            f"goal 2's seeds wait for the other shards' grids ({len(todo) - len(rows)} cells missing): "
            f"rerun --shard {args.shard} once they are done",
            flush=True,
        )
        return 0
    if args.goal_seeds:
        cpu += goal2_seeds(out, verdicts, args, shard, shards)
    if shards > 1:  # a shard may lack the others' cells: the table is 0/1's, run at the end
        return 0
    if args.goal_seeds:
        lines = goal2_seed_lines(lines, verdicts)
    command = "python benchmarks/distributed_averaging.py --goal2" + (
        " --quick"
        if args.quick
        else f" --worker-steps {args.worker_steps}"
        + (f" --datasets {' '.join(args.datasets)}" if args.datasets != ["mnist", "cifar10"] else "")
        + (f" --goal-workers {' '.join(map(str, args.workers))}" if args.workers != WORKERS else "")
    )
    if args.goal_seeds:
        command += f" --goal-seeds {' '.join(map(str, args.goal_seeds))}"
    variants = goal2_variants(args)
    command += "".join(v.flag for v in variants)
    met = sum(v["met"] for v in verdicts)
    ddp_grid = goal2_lrs("ddp", args.datasets[0], args)
    delta = EAMSGD_MOMENTUM if args.eamsgd_momentum is None else args.eamsgd_momentum
    text = "\n".join(
        [
            f"# Goal 2 at a budget of {args.worker_steps:,} worker-gradient steps",
            "",
            f"Command: `{command}` · date {date.today().isoformat()} · seed {args.seed} · batch 32 per "
            "worker · simulated workers · error of the center (EAMSGD) or of the one model (DDP) on the "
            "whole test set. Learning rates: DDP"
            + (f" (heavy-ball momentum {args.ddp_momentum:g})" if args.ddp_momentum is not None else "")
            + " the best of "
            + ", ".join(map(str, ddp_grid[: len(DDP_LRS)]))
            + "".join(
                f" ({d}: also {', '.join(map(str, goal2_lrs('ddp', d, args)[len(DDP_LRS) :]))})"
                for d in GOAL2_DDP_EXTRA_LRS
                if d in args.datasets
            )
            + f"; synchronous EAMSGD (Nesterov momentum {delta:g}, β = 0.9) the best of "
            + ", ".join(map(str, goal2_lrs("eamsgd", args.datasets[0], args)))
            + " at each (p, τ). Goal 2: EAMSGD within 1.1× of DDP's error while sending ≥ 16× fewer "
            "bytes. "
            + (
                "Rounds carry the parameters only (`buffers=read`): the center's BatchNorm statistics "
                "are the workers' mean, taken at each evaluation and not counted, as DDP's are not."
                if args.buffers == "read"
                else "Rounds carry the parameters and the BatchNorm running statistics (`buffers=round`)."
            )
            + (
                " Both methods' local learning rates follow a cosine schedule to 0 over the run."
                if args.lr_schedule == "cosine"
                else ""
            ),
            "",
            *lines,
            "",
            f"Goal 2 met in {met} of {len(verdicts)} settings. CPU time of these cells: {cpu / 60:.1f} min.",
            "",
        ]
    )
    print(text)
    stem = (
        f"distributed_averaging_goal2_ws{args.worker_steps}"
        + "".join(v.record for v in variants)
        + ("_quick" if args.quick else "")
    )
    write_records(
        ROOT / "benchmarks" / "records",
        stem,
        text,
        {
            "command": command,
            "date": date.today().isoformat(),
            "worker_steps": args.worker_steps,
            "seed": args.seed,
            "buffers": args.buffers,
            "lr_schedule": args.lr_schedule,
            "eamsgd_momentum": delta,
            "ddp_momentum": args.ddp_momentum or 0.0,
            "rows": verdicts,
            "cells": rows,
        },
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="4,000 training images, p = 4, τ ∈ {4, 16}, MNIST"
    )
    parser.add_argument(
        "--worker-steps", type=int, default=4096, help="budget: gradient steps over all workers"
    )
    parser.add_argument("--eval-points", type=int, default=8)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shard", default="0/1", help="I/N: run every N-th cell from I (then run 0/1 for tables)"
    )
    parser.add_argument("--no-real", action="store_true", help="skip the torchrun cells of (c)")
    parser.add_argument(
        "--goal-seeds",
        type=int,
        nargs="+",
        default=None,
        help="rerun goal 2's cells (τ = 16: DDP and EAMSGD at their tuned lr, asynchronous EAMSGD) "
        "with these extra seeds and write distributed_averaging_seeds.{md,json}; with --goal2, rerun "
        "each (p, τ)'s DDP and EAMSGD at their best learning rates and add the seeds to its table",
    )
    parser.add_argument(
        "--goal2",
        action="store_true",
        help="only goal 2's cells (DDP's and synchronous EAMSGD's learning-rate grids, τ ∈ {16, 64}) at "
        "--worker-steps; writes distributed_averaging_goal2_ws{N}.{md,json}",
    )
    parser.add_argument(
        "--buffers",
        choices=("round", "read"),
        default="round",
        help="with --goal2: round = EAMSGD's rounds carry the BatchNorm running statistics too; read = "
        "the parameters only (the statistics are averaged at each evaluation, as DDP's); cells end in "
        "-bread, the record in _bread",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="with --goal2: the local learning rate of DDP and EAMSGD, constant or cosine to 0 over the run; "
        "cells end in -cos, the record in _cos",
    )
    for flag, what, default in (
        ("--eamsgd-momentum", "EAMSGD's Nesterov momentum δ", f"{EAMSGD_MOMENTUM:g}"),
        ("--ddp-momentum", "DDP's heavy-ball momentum μ", "none"),
    ):
        parser.add_argument(
            flag,
            type=float,
            default=None,
            help=f"with --goal2: {what} (default {default}); the learning-rate grid is scaled by "
            "(1 − m) / (1 − default) so that the effective step lr / (1 − m) spans the same range; cells "
            "end in -m{m}, the record in _d{δ} / _ddpm{μ}",
        )
    parser.add_argument(
        "--goal-workers", type=int, nargs="+", default=None, help="with --goal2: only these p (default: all)"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help=HELP)
    args = parser.parse_args(argv)
    goal2_only = (args.buffers != "round", args.lr_schedule != "constant")
    goal2_only += (args.eamsgd_momentum is not None, args.ddp_momentum is not None)
    if any(goal2_only) and not args.goal2:
        parser.error(
            "--buffers, --lr-schedule, --eamsgd-momentum and --ddp-momentum are for --goal2 "
            "(the main tables keep their records')"
        )
    for flag, m in (("--eamsgd-momentum", args.eamsgd_momentum), ("--ddp-momentum", args.ddp_momentum)):
        if m is not None and not 0 <= m < 1:
            parser.error(f"{flag} must be in [0, 1), got {m}")
    # the recipe's defaults name no cells apart: their cells are the default record's
    args.eamsgd_momentum = None if args.eamsgd_momentum == EAMSGD_MOMENTUM else args.eamsgd_momentum
    args.ddp_momentum = None if args.ddp_momentum == 0.0 else args.ddp_momentum
    args.data_dir = data_dir(args.data_dir)
    args.workers, args.taus = WORKERS, TAUS
    if args.goal_workers:
        if not args.goal2 or not set(args.goal_workers) <= set(WORKERS):
            parser.error(f"--goal-workers is for --goal2, each p one of {WORKERS}")
        args.workers = tuple(args.goal_workers)
    if args.quick:
        args.worker_steps, args.datasets, args.workers, args.taus = 1024, ["mnist"], (4,), (4, 16)
    shard, shards = (int(v) for v in args.shard.split("/"))
    out = (
        ROOT
        / "benchmarks"
        / "results"
        / ("distributed_averaging_quick" if args.quick else "distributed_averaging")
    )
    out.mkdir(parents=True, exist_ok=True)
    if args.goal2:
        return goal2(out, args)

    todo = cells(args)
    rows, histories, cpu = [], {}, 0.0
    for k, (dataset, row, p, tau) in enumerate(todo):
        name = cell_name(dataset, row, p, tau)
        if k % shards != shard and not (out / name / "summary.json").is_file():
            continue
        print(f"[{k + 1}/{len(todo)}] {name}", flush=True)
        method, _, lr = row.partition("@")
        record, seconds = run_cell(
            out,
            f"averaging-{dataset}",
            name,
            overrides(method, p, tau, args, float(lr) if lr else None),
            "summary.json",
        )
        cpu += seconds
        rows.append(
            cell_row(dataset, row, p, tau, record)
            | {
                "processes": 1,
                "worker_steps": record["worker_steps"],
                "staleness_mean": record.get("staleness_mean", 0.0),
            }
        )
        histories[name] = history(out, name)
    real = []
    if not args.no_real and shard == 0:
        for row in REAL:
            dataset = args.datasets[0]
            sim_name = cell_name(dataset, row, 2, 4)
            print(f"(c) {row}: simulated and torchrun, p = 2", flush=True)
            sim, _ = run_cell(
                out, f"averaging-{dataset}", sim_name, overrides(row, 2, 4, args), "summary.json"
            )
            got = run_real(out, dataset, row, 4, args)
            processes = got["processes"]
            same = [h.get("error") for h in history(out, sim_name)] == [
                h.get("error") for h in history(out, cell_name(dataset, row, 2, 4, processes))
            ]
            real.append(
                {
                    "dataset": dataset,
                    "method": row,
                    "workers": 2,
                    "tau": 4,
                    "processes": processes,
                    "error": got["error"],
                    "bytes_per_worker": got["bytes_per_worker"],
                    "rounds": got["rounds"],
                    "simulated_error": sim["error"],
                    "same_curve": same,
                    "wall_seconds": got["wall_seconds"],
                    "simulated_wall_seconds": sim.get("wall_seconds"),
                    "staleness_mean": got.get("staleness_mean", 0.0),
                }
            )
    if shards > 1 and shard != 0:
        return 0
    rows = tuned_rows(rows)
    if args.goal_seeds:
        return goal_seeds(out, rows, args)

    lines = [
        "# Training beyond one machine: the averaging family at equal worker steps",
        "",
        f"Command: `python benchmarks/distributed_averaging.py{' --quick' if args.quick else ''}`"
        f" · date {date.today().isoformat()} · budget {args.worker_steps} worker-gradient steps "
        f"(batch 32 per worker) · one seed · error of the center (EASGD, EAMSGD, DiLoCo, the "
        "master's) or of the workers' mean (local SGD, DDP) on the whole test set. The CIFAR "
        "subset's test set has 1,000 images: at ≈ 55 % error one run's standard error is ≈ 1.6 "
        "points, so CIFAR differences of a few points are within the noise of one seed.",
        "",
        "## (a) Test error · bytes sent per worker · communication rounds",
        "",
    ]
    for dataset in args.datasets:
        lines += [*table_a(rows, dataset, args.workers, args.taus), ""]
    goal_lines, verdict = goals(rows, args.datasets, args.workers)
    lines += [
        "## Goals",
        "",
        *goal_lines,
        "",
        f"EAMSGD (asynchronous, as in the paper) at or below DOWNPOUR: {sum(verdict['vs_downpour'])} of "
        f"{len(verdict['vs_downpour'])} settings; EAMSGD (any variant) within 1.1× DDP's error with ≥ 16× "
        f"fewer bytes: {sum(verdict['vs_ddp'])} of {len(verdict['vs_ddp'])}.",
        "",
    ]
    if real:
        lines += [
            "## (c) Real processes (torchrun, gloo) vs the simulator, p = 2, τ = 4",
            "",
            "This machine has two cores: the two workers (and the master) share them, so the real "
            "wall-clock is no speed-up over the simulator.",
            "",
            "| method | processes | error (real) | error (simulated) | same curve | bytes / worker | rounds "
            "| wall s (real) | wall s (simulated) | mean staleness |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in real:
            lines.append(
                f"| {r['method']} | {r['processes']} | {100 * r['error']:.2f} | "
                f"{100 * r['simulated_error']:.2f} | {'yes' if r['same_curve'] else 'no'} | "
                f"{r['bytes_per_worker'] / 1e6:.3g} MB | {r['rounds']} | {r['wall_seconds']:.1f} | "
                f"{r['simulated_wall_seconds'] or float('nan'):.1f} | {r['staleness_mean']:.2f} |"
            )
        lines.append("")
    lines += [
        f"(b) Curves: `distributed_averaging{'_quick' if args.quick else ''}.png` (p = "
        f"{args.workers[min(1, len(args.workers) - 1)]}, τ = 16). CPU time of the simulated cells: "
        f"{cpu / 60:.1f} min.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    records = ROOT / "benchmarks" / "records"
    stem = "distributed_averaging" + ("_quick" if args.quick else "")
    fig = curves_figure(histories, rows, args.datasets, args.workers[min(1, len(args.workers) - 1)], 16)
    fig.savefig(records / f"{stem}.png", dpi=110)
    write_records(
        records,
        stem,
        text + "\n",
        {
            "command": "python benchmarks/distributed_averaging.py" + (" --quick" if args.quick else ""),
            "date": date.today().isoformat(),
            "worker_steps": args.worker_steps,
            "rows": rows + real,
            "goals": verdict,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
