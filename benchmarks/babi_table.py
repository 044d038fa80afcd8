"""Table 1 of Sukhbaatar et al. (2015) on bAbI: per-task test error of MemN2N variants.

    python benchmarks/babi_table.py --rows pe-ls-rn-joint --sets en --seeds 0 --max-minutes 9
    python benchmarks/babi_table.py --report-only          # rebuild the table from finished runs
    python benchmarks/babi_table.py --quick                # task 1 only, few epochs (smoke test)

Each (set, row, seed[, task]) trains in its own folder under ``--out`` (the recipe's
layout: ``linear_start/last.pt``, ``main/last.pt``, a checkpoint every epoch); an
invocation stops when ``--max-minutes`` is spent and the next one resumes, so long rows
can be chained in short commands. Defaults not set by a row come from
``genoise/recipes/memn2n-babi.yaml``. A run counts in the table once
it has finished; its ``result.json`` (config, per-task test/validation/training error, the
git commit of the code that trained it)
is written under ``--records`` — by default ``benchmarks/records/babi_table``, kept in
the repository so the table grows across sessions and machines (checkpoints stay in
``--out``). Shortened runs (``--epochs``/``--ls-epochs``/``--quick``) keep their
results in ``--out`` instead, so they never mix with full-schedule seeds.
Best-of-seeds picks, per row (per task for per-task rows), the seed with the lowest
validation error; mean-of-seeds averages the finished seeds.

Per-task rows use the authors' per-task setting (d = 20, 100 epochs, lr halved every 25,
20 LS epochs); joint rows the joint setting (d = 50, 60 epochs, halved every 15, 30 LS
epochs). ``--epochs`` / ``--ls-epochs`` shorten both (the table says which were used).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _data import HELP, data_dir  # noqa: E402

from genoise.data.babi import load_babi  # noqa: E402
from genoise.io import atomic_write_text  # noqa: E402
from genoise.memory.training import MemN2NConfig, task_errors, train_memn2n  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402
from genoise.train import DivergedError, Run  # noqa: E402
from genoise.train.run_folder import git_commit  # noqa: E402

DIVERGED = "diverged.txt"
PER_TASK = dict(embedding_dim=20, epochs=100, lr_decay_every=25, ls_epochs=20)
JOINT = dict(embedding_dim=50, epochs=60, lr_decay_every=15, ls_epochs=30)
NO_LS_RN = dict(linear_start=False, random_noise=False, lr=0.01)  # released code: 0.01 without LS
# name -> (label, joint?, config overrides); Table 1 rows of the paper.
ROWS: dict[str, tuple[str, bool, dict]] = {
    "bow": ("BoW", False, dict(encoding="bow", **NO_LS_RN)),
    "pe": ("PE", False, dict(encoding="pe", **NO_LS_RN)),
    "pe-ls": ("PE LS", False, dict(encoding="pe", linear_start=True, random_noise=False)),
    "pe-ls-rn": ("PE LS RN", False, dict(encoding="pe", linear_start=True, random_noise=True)),
    "1hop-joint": ("1 hop PE LS joint", True, dict(hops=1, linear_start=True, random_noise=False)),
    "2hop-joint": ("2 hops PE LS joint", True, dict(hops=2, linear_start=True, random_noise=False)),
    "3hop-joint": ("3 hops PE LS joint", True, dict(hops=3, linear_start=True, random_noise=False)),
    "pe-ls-rn-joint": ("PE LS RN joint", True, dict(linear_start=True, random_noise=True)),
    "pe-ls-lw-joint": ("PE LS LW joint", True, dict(linear_start=True, random_noise=False,
                                                    tying="layerwise")),
}
# Mean test error (%) of Table 1 (Sukhbaatar et al. 2015); None = not quoted here.
PAPER_MEAN = {
    "en": {"bow": 25.1, "pe": 20.3, "pe-ls": 16.3, "pe-ls-rn": 13.9, "1hop-joint": 25.8,
           "2hop-joint": 15.6, "3hop-joint": 13.3, "pe-ls-rn-joint": 12.4, "pe-ls-lw-joint": 15.2},
    "en-10k": {"bow": 15.4, "pe": 9.4, "pe-ls": 7.2, "pe-ls-rn": 6.6, "1hop-joint": 24.5, "2hop-joint": 10.9,
               "3hop-joint": 7.9, "pe-ls-rn-joint": 7.5, "pe-ls-lw-joint": 11.0},
}


def run_dirs(out: Path, babi_set: str, row: str, seed: int, tasks: list[int]) -> list[tuple[Path, object]]:
    base = out / babi_set / row / f"seed{seed}"
    if ROWS[row][1]:
        return [(base, "all")]
    return [(base / f"task{t}", t) for t in tasks]


_DATA: dict[tuple, object] = {}


def get_data(data_dir: Path, task: object, babi_set: str, seed: int):
    key = (task, babi_set, seed)
    if key not in _DATA:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _DATA.clear()  # keep one data set in memory at a time
            _DATA[key] = load_babi(data_dir, task, babi_set, 50, 0.1, seed=seed)
    return _DATA[key]


def train_one(folder: Path, record: Path, cfg: MemN2NConfig, data_dir: Path, deadline: float) -> bool:
    """Train/resume one run (checkpoints in ``folder``) until done or the deadline, then
    write ``record/result.json``; True when finished."""
    if (record / "result.json").is_file():
        return True
    if (folder / DIVERGED).is_file():
        print(f"[babi_table] {folder} diverged earlier (see {DIVERGED}); skipped", flush=True)
        return False
    remaining = deadline - time.time()
    if remaining < 20:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    data = get_data(data_dir, cfg.task, cfg.babi_set, cfg.seed)
    remaining = deadline - time.time()  # after loading the data
    print(f"[babi_table] {folder} ({remaining / 60:.1f} min left)", flush=True)
    run = Run(folder, config=asdict(cfg), resume=True, progress=False)
    try:
        out = train_memn2n(data, cfg, run, max_seconds=remaining - 20)
    except DivergedError as err:  # kept out of the table (never reported as trained)
        atomic_write_text(folder / DIVERGED, f"{err}\n")
        print(f"[babi_table]   diverged: {err}", flush=True)
        return False
    if not out.finished:
        print(f"[babi_table]   paused after {out.ls_epochs} LS + {out.epochs} epochs", flush=True)
        return False
    model = out.model
    test, _ = task_errors(model, data.test)
    valid, _ = task_errors(model, data.valid)
    train, _ = task_errors(model, data.train)
    result = {"config": asdict(cfg), "test_error": test, "valid_error": valid, "train_error": train,
              "fallbacks": data.fallbacks, "epochs_run": out.ls_epochs + out.epochs,
              "commit": git_commit()}  # the code that trained it (records/_records.py's rule)
    record.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record / "result.json", json.dumps(result, indent=1))
    print(f"[babi_table]   done: mean test error {100 * sum(test.values()) / len(test):.1f} %", flush=True)
    return True


def make_config(row: str, babi_set: str, seed: int, task: object, args: argparse.Namespace) -> MemN2NConfig:
    _, joint, overrides = ROWS[row]
    values = {**load_recipe("memn2n-babi").config, **(JOINT if joint else PER_TASK), **overrides}
    if args.epochs is not None:
        values["epochs"] = args.epochs
        values["lr_decay_every"] = max(1, args.epochs // 4)
    if args.ls_epochs is not None:
        values["ls_epochs"] = args.ls_epochs
    return MemN2NConfig.from_dict({**values, "task": task, "babi_set": babi_set, "seed": seed})


def collect(out: Path, babi_set: str, row: str) -> list[dict]:
    """Finished seeds of a row: {seed, test, valid, train, epochs} with per-task dicts."""
    results = []
    for seed_dir in sorted((out / babi_set / row).glob("seed*")):
        files = [seed_dir / "result.json"] if ROWS[row][1] else sorted(seed_dir.glob("task*/result.json"))
        if not files or not all(f.is_file() for f in files):
            continue
        merged: dict = {"seed": seed_dir.name, "test": {}, "valid": {}, "train": {}, "fallbacks": {}}
        for f in files:
            r = json.loads(f.read_text())
            for key, src in (("test", "test_error"), ("valid", "valid_error"), ("train", "train_error")):
                merged[key].update({int(k): v for k, v in r[src].items()})
            merged["fallbacks"].update(r.get("fallbacks", {}))
            merged["epochs"] = f"{r['config']['ls_epochs'] if r['config']['linear_start'] else 0}+" \
                               f"{r['config']['epochs']}"
        results.append(merged)
    return results


def best_of(results: list[dict], joint: bool, by: str = "valid") -> dict:
    """Per-task test error of the seed with the lowest ``by`` error ("valid" or "train"):
    one run for a joint row, one run per task for a per-task row."""
    if joint:
        return dict(min(results, key=lambda r: sum(r[by].values()))["test"])
    tasks = sorted({t for r in results for t in r["test"]})
    return {t: min((r for r in results if t in r[by]), key=lambda r: r[by][t])["test"][t] for t in tasks}


def summarise(results: list[dict], joint: bool) -> tuple[dict, dict, list[dict]]:
    """(best-of-seeds by validation error, mean over the complete seeds, complete seeds).
    A per-task seed that has not finished every task yet (partial) still competes for
    best-of on the tasks it has finished; means and the worst seed use complete seeds."""
    complete = [r for r in results if len(r["test"]) == 20]
    tasks = sorted(complete[0]["test"])
    mean = {t: sum(r["test"][t] for r in complete) / len(complete) for t in tasks}
    return best_of(results, joint), mean, complete


def seeds_cell(results: list[dict], complete: list[dict]) -> str:
    partial = len(results) - len(complete)
    return f"{len(complete)}" + (f" (+{partial} partial)" if partial else "")


def report(out: Path, sets: list[str]) -> str:
    parts = ["# bAbI: MemN2N test error (%) — ours vs Sukhbaatar et al. (2015), Table 1\n"]
    for babi_set in sets:
        columns = []
        for row in ROWS:
            results = collect(out, babi_set, row)
            if any(len(r["test"]) == 20 for r in results):
                columns.append((row, results, *summarise(results, ROWS[row][1])))
        title = "1k" if babi_set == "en" else "10k"
        parts.append(f"\n## {title} training set (`{babi_set}`)\n")
        if not columns:
            parts.append("No finished runs.\n")
            continue
        header = "| task | " + " | ".join(ROWS[c[0]][0] for c in columns) + " |"
        lines = [header, "|---|" + "---:|" * len(columns)]
        fallbacks = {t for c in columns for r in c[1] for t in map(int, r["fallbacks"])}
        for t in range(1, 21):
            mark = " †" if t in fallbacks else ""
            lines.append(f"| {t}{mark} | " + " | ".join(f"{100 * c[2][t]:.1f}" for c in columns) + " |")
        paper = PAPER_MEAN.get(babi_set, {})
        summary = [
            ("**mean, best of seeds**", [f"**{100 * sum(c[2].values()) / 20:.1f}**" for c in columns]),
            ("mean, best of seeds by training error", [
                f"{100 * sum(best_of(c[1], ROWS[c[0]][1], 'train').values()) / 20:.1f}" for c in columns]),
            ("mean, mean of seeds", [f"{100 * sum(c[3].values()) / 20:.1f}" for c in columns]),
            ("mean, worst seed", [f"{100 * max(sum(r['test'].values()) for r in c[4]) / 20:.1f}"
                                  for c in columns]),
            ("failed tasks (> 5 %), best", [str(sum(v > 0.05 for v in c[2].values())) for c in columns]),
            ("paper mean (best of 10)", [str(paper.get(c[0], "—")) for c in columns]),
            ("seeds finished", [seeds_cell(c[1], c[4]) for c in columns]),
            ("epochs (LS+main)", [c[1][0]["epochs"] for c in columns]),
        ]
        lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in summary]
        parts.append("\n".join(lines) + "\n")
        if fallbacks:
            parts.append("\n† en-10k/qa3_three-supporting-facts_train.txt is missing: task 3 trains on the "
                         "1k file (en/qa3…_train.txt, the first 1000 of its 10000 questions).\n")
    parts.append("\nBest of seeds: lowest validation error (10 % of train held out), per run for joint "
                 "rows and per task for per-task rows; test error of that run is shown. The paper "
                 "(§4.2) keeps the lowest *training* error of 10 runs: that rule has its own row. "
                 "Worst seed: the highest mean test error of the finished seeds. A partial seed "
                 "(per-task rows) has finished some tasks only: it competes for best-of on those.\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="pe-ls-rn-joint,3hop-joint",
                        help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--sets", default="en", help="comma list of en, en-10k")
    parser.add_argument("--seeds", default="0", help="comma list of seeds")
    parser.add_argument("--tasks", default="all", help="tasks of per-task rows (comma list or all)")
    parser.add_argument("--epochs", type=int, help="main-phase epochs (default: the paper's)")
    parser.add_argument("--ls-epochs", type=int, help="linear-start epochs (default: the paper's)")
    parser.add_argument("--max-minutes", type=float, default=9.0, help="time budget of this invocation")
    parser.add_argument("--out", default=str(ROOT / "runs" / "babi_table"), help="checkpoints")
    parser.add_argument("--records", default=str(ROOT / "benchmarks" / "records" / "babi_table"),
                        help="finished runs' result.json (the table is built from these)")
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="task 1, per-task PE LS RN, 10+10 epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    if args.quick:
        out = out.parent / (out.name + "_quick")
        args.rows, args.tasks, args.epochs, args.ls_epochs = "pe-ls-rn", "1", 10, 10
    shortened = args.epochs is not None or args.ls_epochs is not None
    records = out if shortened else Path(args.records)
    deadline = time.time() + 60 * args.max_minutes
    tasks = list(range(1, 21)) if args.tasks == "all" else [int(t) for t in args.tasks.split(",")]
    sets = args.sets.split(",")
    if not args.report_only:
        folder_of_data = data_dir(args.data_dir)
        if folder_of_data is None:
            parser.error("no bAbI data: pass --data-dir or set GENOISE_DATA (a folder holding babi/)")
        for babi_set in sets:
            for row in args.rows.split(","):
                if row not in ROWS:
                    parser.error(f"unknown row {row!r}; choose from {', '.join(ROWS)}")
                for seed in (int(s) for s in args.seeds.split(",")):
                    for folder, task in run_dirs(out, babi_set, row, seed, tasks):
                        cfg = make_config(row, babi_set, seed, task, args)
                        record = records / folder.relative_to(out)
                        train_one(folder, record, cfg, folder_of_data, deadline)
    text = report(records, sets if not args.report_only else ["en", "en-10k"])
    if args.quick:
        rows = collect(records, "en", "pe-ls-rn")
        text += "\n".join(f"quick: {r['seed']} task 1 test error {100 * r['test'][1]:.1f} %" for r in rows)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / ("babi_table_quick.md" if args.quick else "babi_table.md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
