"""Table (a) of the video benchmark over training seeds: mean ± std of each row's first-frame
moving PSNR and moving sharpness beside the paper's (UCF101) numbers that every per-seed record
carries, and how often the paper's ordering holds, from the JSON
records that ``benchmarks/video_prediction.py`` wrote for each seed (one record per seed and
weighting or prior; this script trains nothing).

    python benchmarks/video_prediction.py --set seed=1 --steps 800 --b-steps 0 \\
        --out benchmarks/results/video_prediction_s1 --record video_prediction_s1      # and seed=2
    python benchmarks/video_prediction.py --set reduction=sum seed=1 --steps 800 --b-steps 0 \\
        --out benchmarks/results/video_prediction_sum_s1 --record video_prediction_sum_s1
    python benchmarks/video_prediction_seeds.py --steps 800 \\
        --group mean video_prediction video_prediction_s1 video_prediction_s2 \\
        --group sum video_prediction_sum video_prediction_sum_s1 video_prediction_sum_s2

Writes ``benchmarks/records/video_prediction_seeds.{md,json}`` (``--record`` names another stem).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._records import write_records  # noqa: E402

RECORDS = ROOT / "benchmarks" / "records"
ORDER = ("l2", "l1", "gdl_l1", "adv_gdl")  # the paper's ordering, worst to best
ROWS = ("l2", "l1", "gdl_l1", "adv", "adv_gdl", "latent", "copy_last")
METRICS = ("moving_psnr", "moving_sharpness")


def first_frame(stem: str, steps: int) -> dict[str, dict[str, float]]:
    """Row name → the first predicted frame's metrics, from one seed's record at ``steps``."""
    path = RECORDS / f"{stem}.json"
    if not path.is_file():
        raise SystemExit(f"no record {path} (run benchmarks/video_prediction.py with --record {stem})")
    table = {r["name"]: r for r in json.loads(path.read_text())["rows"]
             if r.get("table") == "a" and r.get("frame") == 1 and r.get("steps") == steps}
    missing = [row for row in ROWS if row not in table]
    if missing:
        raise SystemExit(f"{path} has no table (a) rows {missing} at {steps} updates")
    return table


def holds(values: list[float]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def summarise(groups: dict[str, list[str]], steps: int) -> tuple[list[str], list[dict]]:
    lines = ["| group | row | seeds | PSNR moving, mean ± std | per seed | sharpness moving, mean ± std "
             "| per seed | paper (UCF101) PSNR / sharpness |", "|---|---|---:|---:|---|---:|---|---:|"]
    rows, verdicts = [], []
    for group, stems in groups.items():
        tables = [first_frame(stem, steps) for stem in stems]
        for row in ROWS:
            entry = {"name": row, "group": group, "steps": steps, "records": stems}
            cells = []
            for metric in METRICS:
                values = [t[row][metric] for t in tables]
                mean = statistics.fmean(values)
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                entry.update({metric: mean, f"{metric}_std": std, f"{metric}_per_seed": values})
                cells += [f"{mean:.2f} ± {std:.2f}", " / ".join(f"{v:.2f}" for v in values)]
            paper = tables[0][row].get("paper_psnr"), tables[0][row].get("paper_sharpness")
            entry.update(paper_psnr=paper[0], paper_sharpness=paper[1])
            reference = "—" if paper[0] is None else f"{paper[0]} / {paper[1]}"
            lines.append(f"| {group} | {row} | {len(stems)} | " + " | ".join(cells) + f" | {reference} |")
            rows.append(entry)
        for metric in METRICS:
            count = sum(holds([t[row][metric] for row in ORDER]) for t in tables)
            verdicts.append(f"- {group}: ℓ2 < ℓ1 < GDL ℓ1 < Adv + GDL on {metric.replace('_', ' ')} holds in "
                            f"{count} of {len(tables)} seeds")
            rows.append({"name": f"ordering_{metric}", "group": group, "holds_in": count,
                         "seeds": len(tables)})
    return [*lines, "", *verdicts], rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800,
                        help="the table (a) budget to read (updates per row)")
    parser.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "RECORD"),
                        help="a group's name (a weighting, a prior…), then its per-seed record stems")
    parser.add_argument("--record", default="video_prediction_seeds")
    args = parser.parse_args(argv)
    if any(len(group) < 2 for group in args.group):
        parser.error("--group needs a name and at least one record stem")
    groups = {group[0]: group[1:] for group in args.group}
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/video_prediction_seeds.py", *given])
    body, rows = summarise(groups, args.steps)
    text = "\n".join([f"# Video prediction, table (a) over seeds ({date.today().isoformat()})", "",
                      f"Command: `{command}`", "",
                      f"Stochastic Moving MNIST, 4 → 1, first predicted frame, {args.steps} updates per row; "
                      "each seed is one record of `benchmarks/video_prediction.py` (its own command and "
                      "date). "
                      "Moving PSNR and the paper's sharpness difference (dB) on the moving pixels.", "",
                      *body, ""])
    print(text)
    write_records(RECORDS, args.record, text,
                  {"command": command, "date": date.today().isoformat(), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
