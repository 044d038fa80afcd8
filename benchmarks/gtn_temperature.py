"""The check reader's reject curve at other temperatures of its confidence (issue 17, the
≥ 82 % accepted-and-correct goal): does re-ranking the readings by log P_T(ŷ | x), the arc scores
divided by T (``genoise.structured.reader.decode``), accept more amounts correctly at ≤ 1 % error
than the posterior (T = 1)?

For each trained reader (a ``genoise train gtn-amounts`` run folder) the fixed test amounts are
read through the grammar at every temperature (the readings are the same; only the confidence
changes), and:

* the sweep: accepted-and-correct at ≤ 1 % error on all test amounts at each T — a picture of
  the curve, **not** a result, since choosing T on it would choose on the test set;
* the cross-fitted result: the test amounts are split in two halves (even and odd indices); T is
  chosen on one half (the most accepted-and-correct; ties go to the T closest to 1) and scored on
  the other, both ways; the mean of the two held-out scores stands beside T = 1's on the same
  halves, and the paper's 82 %.

    python benchmarks/gtn_temperature.py RUN [RUN ...] [--temperatures 0.25 0.5 1 2 4] [--record NAME]

Writes ``benchmarks/records/gtn_temperature.{md,json}`` (``--record`` names another stem).
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._records import write_records  # noqa: E402
from genoise.recipes.structured import grammar_of, load_model, make_strings  # noqa: E402
from genoise.structured.evaluate import accepted_correct_at, correct_strings  # noqa: E402
from genoise.structured.train import read_strings  # noqa: E402
from genoise.train.run_folder import read_run_config  # noqa: E402

PAPER = 0.82  # the check reader: 82 % of 646 business checks read correctly at 1 % error
DEFAULT_TEMPERATURES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def choose(confidences: dict[float, torch.Tensor], correct: torch.Tensor, index: torch.Tensor) -> float:
    """The temperature with the most accepted-and-correct on the amounts ``index``; ties go to
    the one closest to 1 (in log)."""
    scores = {t: accepted_correct_at(c[index], correct[index]).correct for t, c in confidences.items()}
    best = max(scores.values())
    return min((t for t, s in scores.items() if s == best), key=lambda t: abs(math.log(t)))


def cross_fit(confidences: dict[float, torch.Tensor], correct: torch.Tensor) -> dict:
    """T chosen on one half of the amounts, scored on the other, both ways; T = 1 on the same halves."""
    halves = [torch.arange(0, correct.numel(), 2), torch.arange(1, correct.numel(), 2)]
    chosen, held_out, at_one = [], [], []
    for fit, score in (halves, halves[::-1]):
        t = choose(confidences, correct, fit)
        chosen.append(t)
        held_out.append(accepted_correct_at(confidences[t][score], correct[score]).correct)
        at_one.append(accepted_correct_at(confidences[1.0][score], correct[score]).correct)
    return {"chosen": chosen, "held_out": held_out, "at_one": at_one,
            "held_out_mean": sum(held_out) / 2, "at_one_mean": sum(at_one) / 2}


def sweep(run_dir: Path, temperatures: list[float]) -> dict:
    config, _ = read_run_config(run_dir)
    strings = make_strings(config, config.get("data_dir"), "test")
    model, grammar = load_model(run_dir, config), grammar_of(config)
    confidences, correct, accuracy = {}, None, None
    for t in temperatures:
        reading = read_strings(model, strings, grammar, temperature=t)
        confidences[t] = reading.confidence
        if correct is None:  # the Viterbi reading does not depend on T
            correct = correct_strings(reading.labels, reading.lengths, strings.labels, strings.lengths)
            accuracy = float(correct.float().mean())
    return {"confidences": confidences, "correct": correct, "string_accuracy": accuracy,
            "strings": len(strings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="gtn-amounts run folders (trained readers)")
    parser.add_argument("--temperatures", nargs="+", type=float, default=list(DEFAULT_TEMPERATURES))
    parser.add_argument("--record", default="gtn_temperature")
    parser.add_argument("--records-dir", type=Path, default=ROOT / "benchmarks" / "records",
                        help="where the record goes (default: benchmarks/records)")
    args = parser.parse_args(argv)
    if any(not t > 0 or math.isinf(t) for t in args.temperatures):
        parser.error("--temperatures must be finite numbers > 0")
    temperatures = sorted(set(args.temperatures) | {1.0})
    for run in args.runs:
        if not (run / "model" / "last.pt").is_file():
            parser.error(f"{run} holds no trained reader (model/last.pt)")
    given = argv if argv is not None else sys.argv[1:]
    lines = [f"# The check reader's confidence at other temperatures ({date.today().isoformat()})", "",
             f"Command: `python benchmarks/gtn_temperature.py {' '.join(given)}`", "",
             "Accepted-and-correct at ≤ 1 % error, through the grammar, on the run's fixed test amounts. "
             "The sweep is on all of them (a picture, not a result: choosing T there would choose on "
             "the test set); the cross-fitted columns choose T on one half (even or odd amounts) and "
             "score the other.", "",
             "| reader | string accuracy | " + " | ".join(f"T = {t:g}" for t in temperatures)
             + " | T chosen (even → odd, odd → even) | held out, chosen T | held out, T = 1 | paper |",
             "|---|---:|" + "---:|" * len(temperatures) + "---|---:|---:|---:|"]
    rows = []
    for run in args.runs:
        result = sweep(run, temperatures)
        conf, correct = result["confidences"], result["correct"]
        curve = {t: accepted_correct_at(c, correct).correct for t, c in conf.items()}
        fit = cross_fit(conf, correct)
        lines.append(f"| {run.name} | {result['string_accuracy']:.3f} | "
                     + " | ".join(f"{curve[t]:.3f}" for t in temperatures)
                     + f" | {fit['chosen'][0]:g}, {fit['chosen'][1]:g} | {fit['held_out_mean']:.3f} "
                     f"({fit['held_out'][0]:.3f} / {fit['held_out'][1]:.3f}) | {fit['at_one_mean']:.3f} "
                     f"({fit['at_one'][0]:.3f} / {fit['at_one'][1]:.3f}) | {PAPER:.2f} |")
        rows.append({"name": run.name, "run": str(run), "strings": result["strings"],
                     "string_accuracy": result["string_accuracy"],
                     "accepted_correct_by_temperature": {f"{t:g}": v for t, v in curve.items()},
                     "chosen_temperatures": fit["chosen"], "held_out": fit["held_out"],
                     "held_out_mean": fit["held_out_mean"], "at_one": fit["at_one"],
                     "at_one_mean": fit["at_one_mean"], "paper": PAPER})
    text = "\n".join(lines) + "\n"
    print(text)
    records = args.records_dir
    command = f"python benchmarks/gtn_temperature.py {' '.join(given)}"
    write_records(records, args.record, text,
                  {"command": command, "date": date.today().isoformat(), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
