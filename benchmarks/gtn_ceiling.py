"""How far can a LeNet-5 reader get on the check amounts? The perfect-segmentation ceiling of
issue 17's "accepted & correct at 1 % error" (LeCun, Bottou, Bengio & Haffner 1998, Section X:
82 % of business checks read at 1 % error).

    python benchmarks/gtn_ceiling.py                       # recognisers of 3, 10, 30 epochs
    python benchmarks/gtn_ceiling.py --distortions 0 1     # also trained on distorted digits
    python benchmarks/gtn_ceiling.py --runs R1 R2 …        # also the recognisers of reader runs
    python benchmarks/gtn_ceiling.py --quick               # 1 and 3 epochs, 300 test amounts
    python benchmarks/gtn_ceiling.py --epochs --committee R1 R2 R3   # a committee of readers

A *perfect-segmentation reader* is given every digit of a test amount cut out of the MNIST
test image it was drawn from (``DigitStrings.source``): no neighbour ink, no wrong cut. A
LeNet-5 recognition transformer (the reader's: tanh, 12 outputs) trained for E epochs on the
60,000 isolated MNIST training digits (``pretrain_recognizer``, every image normalised like a
segment) reads each digit by its best of the 10 digit classes; the separator is taken as read
right; a string is right when all its digits are; its confidence is Σ log P(best class) (the
log-probability of the reading under the per-digit posteriors, as the reader's log P(ŷ | x)).
Columns: the recogniser's error on the 10,000 MNIST test digits (normalised), the strings'
accuracy and accepted & correct at ≤ 1 % error.

With ``--runs``, the recogniser of each reader run (``genoise train gtn-amounts …``) is scored
the same way (its digits normalised at the run's ``segment_scale``) beside its real reading
(from its ``evaluation.json``, with the grammar): how much of the gap to 82 % is the
recogniser's accuracy on clean digits, and how much the segmentation and the overlaps. The
reader's own errors are split too: how many hold a digit its recogniser misreads even alone,
among all and among the 11 most confident (at most 10 errors fit under 1 % of 1,000 amounts,
so the 11th sets the operating point).

With ``--committee``, the recognisers of those reader runs read every segment together: their
log-probabilities are averaged (``geometric``: a product of experts, renormalised) or their
probabilities (``arithmetic``), and the reader (the first run's segmenter, with the grammar)
reads the test amounts through that committee; the same columns, for both means. Writes
``benchmarks/records/gtn_ceiling.{md,json}`` (``--quick``: ``gtn_ceiling_quick``; with
``--committee``: ``gtn_ceiling_committee``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks._data import HELP, data_dir  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.data.digit_strings import SEPARATOR  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402
from genoise.recipes.structured import (  # noqa: E402
    PRETRAIN_BATCH,
    digit_images,
    grammar_of,
    load_model,
    make_strings,
    new_reader,
)
from genoise.structured.evaluate import accepted_correct_at, string_scores  # noqa: E402
from genoise.structured.reader import CheckReader  # noqa: E402
from genoise.structured.segment_images import normalise_characters  # noqa: E402
from genoise.structured.train import pretrain_recognizer, read_strings  # noqa: E402
from genoise.train.run_folder import read_run_config  # noqa: E402

PAPER = 0.82  # accepted & correct at 1 % error, the paper's check reader (Section X)


class Committee(nn.Module):
    """Recognisers reading the same segments: the mean of their log-probabilities
    (``geometric``) or the log of the mean of their probabilities (``arithmetic``); the
    reader's log-softmax renormalises either."""

    def __init__(self, members: list[nn.Module], mean: str = "geometric") -> None:
        super().__init__()
        if mean not in ("geometric", "arithmetic"):
            raise ValueError(f"mean must be 'geometric' or 'arithmetic', got {mean!r}")
        self.members, self.mean = nn.ModuleList(members), mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([F.log_softmax(m(x), dim=-1) for m in self.members])
        if self.mean == "geometric":
            return log_p.mean(0)
        return torch.logsumexp(log_p, 0) - math.log(len(self.members))


@torch.no_grad()
def digit_log_probs(recognizer: torch.nn.Module, images: torch.Tensor, chunk: int = 2000,
                    scale: str = "segment") -> torch.Tensor:
    """(n, 10) log-probabilities of the 10 digit classes (the 12 outputs' softmax restricted to
    them and renormalised) of isolated (n, 28, 28) digits, normalised like segments (at the
    reader's ``scale``)."""
    recognizer.eval()
    x = normalise_characters(images, scale=scale)
    scores = torch.cat([recognizer(x[lo : lo + chunk])[:, :10] for lo in range(0, x.shape[0], chunk)])
    return F.log_softmax(scores, dim=1)


def ceiling(recognizer: torch.nn.Module, strings, test_images: torch.Tensor, scale: str = "segment"
            ) -> tuple[dict, torch.Tensor]:
    """The perfect-segmentation reading of ``strings`` (module docstring) by ``recognizer`` (its
    digits normalised at ``scale``): its scores, and which strings hold a digit it misreads
    alone ((n,) bool)."""
    digit = (strings.labels >= 0) & (strings.labels != SEPARATOR)
    b, k = digit.nonzero(as_tuple=True)
    log_p = digit_log_probs(recognizer, test_images[strings.source[b, k]], scale=scale)
    best, pred = log_p.max(1)
    wrong = torch.zeros(len(strings)).index_add_(0, b, (pred != strings.labels[b, k]).float()) > 0
    confidence = torch.zeros(len(strings), dtype=best.dtype).index_add_(0, b, best)
    point = accepted_correct_at(confidence, ~wrong)
    return {
        "string_digit_error": float((pred != strings.labels[b, k]).float().mean()),
        "string_accuracy": float((~wrong).float().mean()),
        "accepted_correct": point.correct,
        "accepted_error": point.error,
        "rejected": point.rejected,
    }, wrong


def error_sources(
    model: torch.nn.Module, strings, grammar, misread_alone: torch.Tensor, top: int = 11
) -> dict:
    """The reader's own errors (Viterbi through ``grammar``): how many hold a digit its recogniser
    misreads alone, among all and among the ``top`` most confident (those set the 1 % point);
    with its string accuracy and accepted & correct at ≤ 1 % error."""
    reading = read_strings(model, strings, grammar)
    scores = string_scores(
        reading.labels, reading.lengths, strings.labels, strings.lengths, reading.confidence
    )
    width = strings.labels.shape[1]
    labels = F.pad(reading.labels, (0, max(0, width - reading.labels.shape[1])), value=-1)[:, :width]
    right = (reading.lengths == strings.lengths) & (labels == strings.labels).all(1)
    order = torch.argsort(reading.confidence, descending=True, stable=True)
    confident = order[~right[order]][:top]
    return {
        "reader_string_accuracy": scores["string_accuracy"],
        "reader_accepted_correct": scores["accepted_correct"],
        "reader_errors": int((~right).sum()),
        "reader_errors_misread_alone": int((~right & misread_alone).sum()),
        "top_errors": len(confident),
        "top_errors_misread_alone": int(misread_alone[confident].sum()),
    }


def mnist_error(recognizer: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                scale: str = "segment") -> float:
    pred = digit_log_probs(recognizer, images, scale=scale).argmax(1)
    return float((pred != labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--epochs", type=int, nargs="*", default=[3, 10, 30], help="pre-training epochs, one row each"
    )
    parser.add_argument(
        "--distortions",
        type=float,
        nargs="+",
        default=[0.0],
        help="strengths of the random affine distortions of the training digits, one row each",
    )
    parser.add_argument(
        "--runs", nargs="*", default=[], help="gtn-amounts run folders whose recognisers to score too"
    )
    parser.add_argument(
        "--committee", nargs="*", default=[], help="gtn-amounts run folders whose recognisers read together"
    )
    parser.add_argument("--test-strings", type=int, default=1000)
    parser.add_argument("--record", default=None,
                        help="stem of the record under benchmarks/records (default gtn_ceiling, "
                             "+ _committee with --committee, + _quick)")
    parser.add_argument("--quick", action="store_true", help="1 and 3 epochs, 300 test amounts")
    parser.add_argument("--data-dir", default=None, help=HELP)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.test_strings = [1, 3], 300
    folder = data_dir(args.data_dir)
    config = {**load_recipe("gtn-amounts").config, "seed": 0, "test_strings": args.test_strings}
    strings = make_strings(config, folder, "test")
    test_images, test_labels = digit_images(config, folder, "test")
    test_images = test_images[:, 0]
    train_images, train_labels = digit_images(config, folder, "train")

    rows = []
    for distortion in args.distortions:
        for epochs in args.epochs:
            torch.manual_seed(0)
            reader = new_reader(config)
            start = time.process_time()
            pretrain_recognizer(
                reader,
                train_images,
                train_labels,
                epochs,
                distortion=distortion,
                batch_size=PRETRAIN_BATCH,
                lr=float(config["pretrain_lr"]),
                seed=0,
                progress=False,
            )
            minutes = (time.process_time() - start) / 60
            name = f"LeNet-5, {epochs} epoch{'s' * (epochs != 1)} on isolated digits"
            row = {
                "row": name + (f", distortions {distortion:g}" if distortion else ""),
                "kind": "ceiling",
                "epochs": epochs,
                "distortion": distortion,
                "mnist_test_error": mnist_error(reader.recognizer, test_images, test_labels),
                "cpu_minutes": minutes,
            }
            rows.append({**row, **ceiling(reader.recognizer, strings, test_images)[0]})
            print(rows[-1], flush=True)
    for run in args.runs:
        run_config, _ = read_run_config(Path(run))
        model = load_model(Path(run), run_config)
        evaluation = json.loads((Path(run) / "evaluation.json").read_text())["rows"]
        reading = next(v for name, v in evaluation.items() if name.endswith("_grammar"))
        scores, misread_alone = ceiling(model.recognizer, strings, test_images, model.scale)
        row = {
            "row": f"recogniser of {Path(run).name}",
            "kind": "run",
            "run": str(run),
            "segment_scale": model.scale,
            "mnist_test_error": mnist_error(model.recognizer, test_images, test_labels, model.scale),
            **scores,
            **error_sources(model, strings, grammar_of(run_config), misread_alone),
            # the run's own evaluation (the same reading, as recorded when it was trained)
            "reader_string_accuracy": reading["string_accuracy"],
            "reader_accepted_correct": reading["accepted_correct"],
        }
        rows.append(row)
        print(row, flush=True)

    if args.committee:
        models = []
        for run in args.committee:
            run_config, _ = read_run_config(Path(run))
            models.append(load_model(Path(run), run_config))
        first = models[0]
        if len({m.scale for m in models}) > 1:
            scales = ", ".join(f"{run}: {m.scale}" for run, m in zip(args.committee, models, strict=True))
            parser.error(f"--committee readers must share one segment_scale, got {scales}")
        for mean in ("geometric", "arithmetic"):
            committee = Committee([m.recognizer for m in models], mean).eval()
            reader = CheckReader(
                committee,
                max_span=first.max_span,
                valley=first.valley,
                smooth=first.smooth,
                min_piece=first.min_piece,
                scale=first.scale,
            ).eval()
            scores, misread_alone = ceiling(committee, strings, test_images, first.scale)
            row = {
                "row": f"committee of {len(models)} readers, {mean} mean",
                "kind": "committee",
                "runs": [str(r) for r in args.committee],
                "mean": mean,
                "mnist_test_error": mnist_error(committee, test_images, test_labels, first.scale),
                **scores,
                **error_sources(reader, strings, grammar_of(run_config), misread_alone),
            }
            rows.append(row)
            print(row, flush=True)

    command = "python benchmarks/gtn_ceiling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# The perfect-segmentation ceiling of the check-amount reader ({date.today().isoformat()})",
        "",
        f"Command: `{command}`",
        "",
        f"{len(strings):,} fixed test amounts (the gtn-amounts recipe's), every digit read from its own "
        "MNIST test image (no neighbour ink, no wrong cut); separators taken as read right; confidence "
        "Σ log P(best digit). Reference: the paper's check reader, 82 % accepted & correct at 1 % error "
        "(Section X).",
        "",
        "| recogniser | MNIST test error (normalised digits) | perfect segmentation: string accuracy | "
        "accepted & correct at ≤ 1 % error | (paper) | "
        "the reader's own: string accuracy / accepted & correct | "
        "its errors holding a digit misread alone: all / the 11 most confident |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        own, sources = "—", "—"
        if r["kind"] in ("run", "committee"):
            own = f"{r['reader_string_accuracy']:.3f} / {r['reader_accepted_correct']:.3f}"
            sources = (
                f"{r['reader_errors_misread_alone']} of {r['reader_errors']} / "
                f"{r['top_errors_misread_alone']} of {r['top_errors']}"
            )
        lines.append(
            f"| {r['row']} | {r['mnist_test_error'] * 100:.2f} % | {r['string_accuracy']:.3f} | "
            f"**{r['accepted_correct']:.3f}** | {PAPER:.2f} | {own} | {sources} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    stem = ((args.record or "gtn_ceiling" + ("_committee" if args.committee else ""))
            + ("_quick" if args.quick else ""))
    write_records(
        ROOT / "benchmarks" / "records",
        stem,
        text,
        {
            "date": date.today().isoformat(),
            "command": command,
            "paper_accepted_correct": PAPER,
            "test_strings": len(strings),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
