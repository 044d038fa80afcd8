"""CTC written as a graph vs ``torch.nn.CTCLoss``: forward + backward time on one batch.

    python benchmarks/gtn_ctc_speed.py            # T = 256, batch 128, 32 labels, 40 classes
    python benchmarks/gtn_ctc_speed.py --quick    # T = 64, batch 32

Rows, measured in one run on the same log-probabilities and targets (1 thread, median of
``--repeats`` rounds after one warm-up round; the rows alternate within each round):

* ``nn.CTCLoss`` — PyTorch's hand-written CTC recursion (the reference);
* ``graph CTC`` — :func:`genoise.structured.ctc.ctc_loss`: build the alignment graph of the
  batch (with its level schedule), forward score over topological levels, backward sweep
  with arc posteriors; the split build / forward / backward is reported beside the total;
* ``autograd recursion`` — the textbook α recursion in PyTorch, one vectorised step per
  frame with autograd recording every step (what one writes without a graph library).

Both losses are also checked equal (value and gradient w.r.t. the logits) on the batch.
Goal (issue 17): graph CTC within 3× of ``nn.CTCLoss``.
Writes ``benchmarks/records/gtn_ctc_speed.{md,json}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._records import write_records  # noqa: E402
from genoise.structured.ctc import ctc_graph, ctc_loss  # noqa: E402
from genoise.structured.semiring import forward_score  # noqa: E402


def autograd_ctc(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−log p(y | x) by the α recursion over frames (all inputs full length), autograd on."""
    steps, size, _ = log_probs.shape
    width = 2 * targets.shape[1] + 1
    ext = torch.zeros(size, width, dtype=torch.long)
    ext[:, 1::2] = targets
    skip = torch.zeros(size, width, dtype=torch.bool)
    skip[:, 2:] = (ext[:, 2:] != 0) & (ext[:, 2:] != ext[:, :-2])
    neg = torch.tensor(float("-inf"))
    alpha = torch.full((size, width), float("-inf"))
    alpha = torch.cat([log_probs[0].gather(1, ext[:, :2]), alpha[:, 2:]], 1)
    for t in range(1, steps):
        one = torch.cat([alpha.new_full((size, 1), float("-inf")), alpha[:, :-1]], 1)
        two = torch.where(skip, torch.cat([alpha.new_full((size, 2), float("-inf")), alpha[:, :-2]], 1), neg)
        alpha = torch.logsumexp(torch.stack([alpha, one, two]), 0) + log_probs[t].gather(1, ext)
    return -torch.logsumexp(alpha[:, -2:], 1)


def timed(functions: dict, repeats: int) -> dict[str, list[float]]:
    """Wall times of every function, interleaved (one call of each per round, after a warm-up
    round), so that a drift of the machine's speed hits every row alike."""
    for fn in functions.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="T = 64, batch 32, 16 labels")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--labels", type=int, default=32, help="target length")
    parser.add_argument("--classes", type=int, default=40, help="classes, blank included")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "records"))
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.labels = 64, 32, 16
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(args.steps, args.batch, args.classes, generator=g, requires_grad=True)
    targets = torch.randint(1, args.classes, (args.batch, args.labels), generator=g)
    lengths = torch.full((args.batch,), args.steps)
    target_lengths = torch.full((args.batch,), args.labels)

    def reference():
        logits.grad = None
        torch.nn.functional.ctc_loss(
            logits.log_softmax(-1), targets, lengths, target_lengths, reduction="sum"
        ).backward()
        return logits.grad.clone()

    def ours():
        logits.grad = None
        ctc_loss(logits.log_softmax(-1), targets, lengths, target_lengths, reduction="sum").backward()
        return logits.grad.clone()

    def naive():
        logits.grad = None
        autograd_ctc(logits.log_softmax(-1), targets).sum().backward()
        return logits.grad.clone()

    with torch.no_grad():
        log_probs = logits.log_softmax(-1)
        reference_loss = torch.nn.functional.ctc_loss(
            log_probs, targets, lengths, target_lengths, reduction="none"
        )
        value_gap = float(
            (reference_loss - ctc_loss(log_probs, targets, lengths, target_lengths, reduction="none"))
            .abs()
            .max()
        )
    grad_gap = float((reference() - ours()).abs().max())
    times = timed({"nn_ctcloss": reference, "graph_ctc": ours, "autograd_recursion": naive}, args.repeats)
    lp = logits.detach().log_softmax(-1)
    parts = {"build": [], "forward": [], "backward": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        graph = ctc_graph(lp.clone().requires_grad_(True), targets, lengths, target_lengths)
        built = time.perf_counter()
        score = forward_score(graph)
        scored = time.perf_counter()
        score.sum().backward()
        done = time.perf_counter()
        parts["build"].append(built - start)
        parts["forward"].append(scored - built)
        parts["backward"].append(done - scored)
    median = {k: statistics.median(v) for k, v in times.items()}
    split = {k: statistics.median(v) for k, v in parts.items()}
    ratio = median["graph_ctc"] / median["nn_ctcloss"]
    rows = [
        {"row": "nn_ctcloss", "ms": 1e3 * median["nn_ctcloss"], "ratio": 1.0},
        {
            "row": "graph_ctc",
            "ms": 1e3 * median["graph_ctc"],
            "ratio": ratio,
            "build_ms": 1e3 * split["build"],
            "forward_ms": 1e3 * split["forward"],
            "backward_ms": 1e3 * split["backward"],
        },
        {
            "row": "autograd_recursion",
            "ms": 1e3 * median["autograd_recursion"],
            "ratio": median["autograd_recursion"] / median["nn_ctcloss"],
        },
    ]
    command = "python benchmarks/gtn_ctc_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    setting = (
        f"T = {args.steps}, batch {args.batch}, {args.labels} labels per target, {args.classes} classes; "
        f"{args.threads} thread(s); median of {args.repeats} interleaved forward + backward passes "
        "(loss summed, "
        "gradient w.r.t. the logits through log_softmax)."
    )
    lines = [
        f"# CTC as a graph vs nn.CTCLoss ({date.today().isoformat()})",
        "",
        f"Command: `{command}`",
        "",
        setting,
        "",
        "| row | ms (forward + backward) | × nn.CTCLoss |",
        "|---|---:|---:|",
    ]
    titles = {
        "nn_ctcloss": "`torch.nn.CTCLoss` (reference)",
        "graph_ctc": "graph CTC (genoise.structured)",
        "autograd_recursion": "α recursion with autograd",
    }
    for r in rows:
        lines.append(f"| {titles[r['row']]} | {r['ms']:.0f} | {r['ratio']:.2f} |")
    lines += [
        "",
        f"Graph CTC split: build {1e3 * split['build']:.0f} ms, forward {1e3 * split['forward']:.0f} ms, "
        f"backward {1e3 * split['backward']:.0f} ms. Largest difference from nn.CTCLoss: loss "
        f"{value_gap:.1e}, gradient {grad_gap:.1e}.",
        "",
        f"Goal: graph CTC within 3× of nn.CTCLoss → {ratio:.2f}× → {'met' if ratio <= 3 else 'not met'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    stem = "gtn_ctc_speed" + ("_quick" if args.quick else "")
    goal = {"ratio_at_most": 3.0, "measured": ratio, "met": ratio <= 3}
    payload = {"date": date.today().isoformat(), "command": command, "setting": setting, "rows": rows,
               "max_loss_difference": value_gap, "max_gradient_difference": grad_gap, "goal": goal}
    write_records(out, stem, text, payload, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
