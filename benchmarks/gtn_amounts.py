"""Check amounts read through graphs: isolated-character training vs global string-level
training (LeCun, Bottou, Bengio & Haffner 1998, Section VI and X), and an SDNN with CTC.

    python benchmarks/gtn_amounts.py                  # the table of issue 17 (a)
    python benchmarks/gtn_amounts.py --quick          # small: a few CPU-minutes
    python benchmarks/gtn_amounts.py --isolated-steps 5700   # a longer isolated stage: its own record
    python benchmarks/gtn_amounts.py --rubbish-weight 0      # isolated stage on the characters only
    python benchmarks/gtn_amounts.py --pretrain-epochs 30    # the recogniser first on isolated MNIST digits

Each row is one ``genoise train gtn-amounts loss=ROW`` cell (run folders under
``benchmarks/results/gtn_amounts``, reused when finished): ``isolated`` trains the LeNet-5
recognition transformer on segments only; every graph loss starts from those weights
(``init=``) and trains globally on strings; ``sdnn_ctc`` trains a sliding-window ConvNet
with ``nn.CTCLoss``. All read the same fixed test amounts (MNIST test digits), by Viterbi
without and with the check-amount grammar (``*_grammar`` rows). Columns: string accuracy,
character error rate, accepted-and-correct at ≤ 1 % string error on the reject curve of the
discriminative forward confidence log P(ŷ | x), and CPU minutes (the isolated stage is
counted once, in its own row).

Goals (issue 17): discriminative-forward training cuts the string error by ≥ 24 %
relative to isolated training; ≥ 82 % accepted-and-correct at 1 % error; the whole table
in ≤ 30 CPU-minutes. Writes ``benchmarks/records/gtn_amounts.{md,json,png}`` (the figure: a
test amount read by the discriminative-forward reader, its segmentation graph, the path);
a setting other than the default (``--min-gap``, ``--rubbish-weight``, ``--isolated-steps``,
``--steps``, ``--isolated-schedule``, ``--pretrain-epochs``, ``--pretrain-distortion``, ``--seed``)
writes its own record, named after it (e.g.
``gtn_amounts_isolated5700``, ``gtn_amounts_isolated12000_cosine``), and its own run folders.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._cells import run_cell  # noqa: E402
from benchmarks._data import HELP, data_dir  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402
from genoise.recipes.structured import product_rows, score_table  # noqa: E402

GLOBAL = ("viterbi", "discriminative_viterbi", "forward", "discriminative_forward")
EXTRA = ("hinge", "log")
PRODUCT = "discriminative_forward_experts"  # the reader × the SDNN, beside the protocol's rows
DEFAULTS = load_recipe("gtn-amounts").config  # the default setting: the recipe's own
RUBBISH_LEFT_OUT = ": the rubbish segments left out, the recogniser trained on the characters only"


def cell_overrides(args: argparse.Namespace) -> dict:
    shared = {
        "train_strings": args.train_strings,
        "test_strings": args.test_strings,
        "isolated_steps": args.isolated_steps,
        "steps": args.steps,
        "sdnn_steps": args.sdnn_steps,
        "seed": args.seed,
        "min_gap": args.min_gap,
        "rubbish_weight": args.rubbish_weight,
        "isolated_schedule": args.isolated_schedule,
        "pretrain_epochs": args.pretrain_epochs,
        "pretrain_distortion": args.pretrain_distortion,
    }
    if args.data_dir:
        shared["data_dir"] = str(args.data_dir)
    return shared


def suffix(args: argparse.Namespace) -> str:
    """The name of a variant of the default setting (folders and records)."""
    parts = {"min_gap": f"_gap{-args.min_gap}", "rubbish_weight": f"_rubbish{args.rubbish_weight:g}"}
    if not args.quick:  # --quick sets its own short stages
        parts |= {"isolated_steps": f"_isolated{args.isolated_steps}", "steps": f"_steps{args.steps}"}
    parts["isolated_schedule"] = f"_{args.isolated_schedule}"
    parts["pretrain_epochs"] = f"_pretrain{args.pretrain_epochs}"
    parts["pretrain_distortion"] = f"_distort{args.pretrain_distortion:g}"
    parts["seed"] = f"_seed{args.seed}"
    return "".join(part for key, part in parts.items() if getattr(args, key) != DEFAULTS[key])


def pretraining(args: argparse.Namespace) -> str:
    if not args.pretrain_epochs:
        return ""
    strength = args.pretrain_distortion
    distorted = f", randomly distorted (strength {strength:g})" if strength else ""
    return (
        f"The recogniser is first trained {args.pretrain_epochs} epochs on the 60,000 isolated MNIST "
        f"training digits{distorted}, normalised like segments (batches of 128). "
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 strings, short stages")
    for key in ("train_strings", "test_strings", "isolated_steps"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=DEFAULTS[key])
    parser.add_argument(
        "--steps", type=int, default=DEFAULTS["steps"], help="global-stage updates of every graph loss"
    )
    parser.add_argument("--sdnn-steps", type=int, default=DEFAULTS["sdnn_steps"])
    parser.add_argument("--margin-losses", action="store_true", help="also the hinge and log rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-gap", type=int, default=DEFAULTS["min_gap"], help="smallest gap between characters (px)"
    )
    parser.add_argument(
        "--rubbish-weight",
        type=float,
        default=DEFAULTS["rubbish_weight"],
        help="rubbish class weight, isolated stage",
    )
    parser.add_argument(
        "--isolated-schedule",
        choices=("constant", "cosine"),
        default=DEFAULTS["isolated_schedule"],
        help="learning rate of the isolated stage (cosine: decays to 0)",
    )
    parser.add_argument(
        "--pretrain-epochs",
        type=int,
        default=DEFAULTS["pretrain_epochs"],
        help="passes over the isolated training digits before the isolated stage (0: none)",
    )
    parser.add_argument(
        "--pretrain-distortion",
        type=float,
        default=DEFAULTS["pretrain_distortion"],
        help="strength of the random affine distortions of the pre-training digits",
    )
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gtn_amounts"))
    args = parser.parse_args(argv)
    if args.quick:
        args.train_strings, args.test_strings = 1000, 300
        args.isolated_steps, args.steps, args.sdnn_steps = 300, 100, 600
    args.data_dir = data_dir(args.data_dir)
    variant = ("quick" if args.quick else "full") + suffix(args)
    out = Path(args.out) / variant
    shared = cell_overrides(args)
    rows: dict[str, dict] = {}
    cpu: dict[str, float] = {}
    record, cpu["isolated"] = run_cell(
        out, "gtn-amounts", "isolated", {**shared, "loss": "isolated"}, "evaluation.json"
    )
    rows.update(record["rows"])
    for loss in GLOBAL + (EXTRA if args.margin_losses else ()):
        record, cpu[loss] = run_cell(
            out,
            "gtn-amounts",
            loss,
            {**shared, "loss": loss, "init": str(out / "isolated")},
            "evaluation.json",
        )
        rows.update(record["rows"])
    record, cpu["sdnn_ctc"] = run_cell(
        out, "gtn-amounts", "sdnn_ctc", {**shared, "loss": "sdnn_ctc"}, "evaluation.json"
    )
    rows.update(record["rows"])
    # beside the protocol: the discriminative-forward reader × the SDNN (a product of experts)
    rows.update(product_rows(out / "discriminative_forward", [out / "sdnn_ctc"], str(args.data_dir)))
    cpu[PRODUCT] = cpu["discriminative_forward"] + cpu["sdnn_ctc"]
    for name, row in rows.items():
        row["cpu_minutes"] = cpu[name.removesuffix("_grammar")] / 60
    total = sum(v for k, v in cpu.items() if k != PRODUCT) / 60  # the product trains nothing more

    def error(name: str) -> float:
        return 1 - rows[name]["string_accuracy"]

    drops = {
        tail: 1 - error("discriminative_forward" + tail) / max(error("isolated" + tail), 1e-12)
        for tail in ("", "_grammar")
    }
    accepted = rows["discriminative_forward_grammar"]["accepted_correct"]
    goals = {
        "relative_string_error_drop": {
            "want": ">= 0.24",
            "measured": drops,
            "met": min(drops.values()) >= 0.24,
        },
        "accepted_correct_at_1pct": {"want": ">= 0.82", "measured": accepted, "met": accepted >= 0.82},
        "cpu_minutes": {"want": "<= 30", "measured": total, "met": total <= 30},
    }
    command = "python benchmarks/gtn_amounts.py " + " ".join(argv if argv is not None else sys.argv[1:])
    setting = (
        f"{args.train_strings:,} training amounts (3–8 characters, gaps {args.min_gap}…6 px: touching and "
        f"overlapping digits) from MNIST training digits; {args.test_strings:,} fixed test amounts from "
        f"test digits. {pretraining(args)}Isolated stage {args.isolated_steps} updates × 16 strings "
        "(rubbish weight "
        f"{args.rubbish_weight:g}{RUBBISH_LEFT_OUT if args.rubbish_weight == 0 else ''}, "
        f"{args.isolated_schedule} learning rate); global stage "
        f"{args.steps} updates × 16 strings from the isolated weights; SDNN {args.sdnn_steps} CTC updates. "
        "Reject curve: confidence = log P(ŷ | x) (discriminative forward score); accepted & correct = "
        "share of all strings read correctly when wrongly read accepted strings are ≤ 1 % of all."
    )
    verdict = [
        f"- string error drop, discriminative forward vs isolated: {drops[''] * 100:.0f} % without grammar, "
        f"{drops['_grammar'] * 100:.0f} % with (goal ≥ 24 %) → "
        f"{'met' if goals['relative_string_error_drop']['met'] else 'not met'}",
        f"- accepted & correct at ≤ 1 % error (discriminative forward, grammar): {accepted * 100:.1f} % "
        f"(goal ≥ 82 %) → {'met' if goals['accepted_correct_at_1pct']['met'] else 'not met'}",
        f"- whole table: {total:.1f} CPU-minutes (goal ≤ 30) → {'met' if total <= 30 else 'not met'}",
        f"- beside the protocol, the discriminative-forward reader × the SDNN as a product of experts "
        f"(genoise.structured.experts; no more training), grammar: "
        f"{rows[PRODUCT + '_grammar']['accepted_correct'] * 100:.1f} % accepted & correct at ≤ 1 % error, "
        f"string accuracy {rows[PRODUCT + '_grammar']['string_accuracy']:.3f}",
    ]
    stem = "gtn_amounts" + ("_quick" if args.quick else "") + suffix(args)
    text = (
        "\n".join(
            [
                f"# Check amounts read through graphs ({date.today().isoformat()})",
                "",
                f"Command: `{command}`",
                "",
                setting,
                "",
                score_table(rows),
                "",
                *verdict,
                "",
                f"![a test amount, its segmentation graph and the Viterbi path]({stem}.png)",
            ]
        )
        + "\n"
    )
    print(text)
    records = ROOT / "benchmarks" / "records"
    records.mkdir(parents=True, exist_ok=True)
    figure = out / "discriminative_forward" / "reading.png"
    if figure.is_file():  # (c): a test amount, its segmentation graph and the Viterbi path
        shutil.copyfile(figure, records / f"{stem}.png")
    write_records(
        records,
        stem,
        text,
        {
            "date": date.today().isoformat(),
            "command": command,
            "setting": setting,
            "rows": rows,
            "cpu_minutes": total,
            "goals": goals,
        },
        indent=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
