"""Hardware-minded inference: LeNet-5 on MNIST and the SSL ConvNet (+ linear probe) on the
CIFAR-10 subset, every path and number format measured in one run.

    python benchmarks/inference.py [--quick] [--threads 1] [--repeats 1000] [--rounds 5] [--data-dir D]

Trains (or reuses, under ``--out-dir``) the cells — ``genoise train lenet5-mnist`` plain,
with the L1 activity penalty, and with quantisation-aware training through ANNA's
6-bit / 3-bit format; ``genoise train vicreg-cifar10 backbone=conv`` — then measures each
classifier with :func:`genoise.recipes.deploy.inference_rows`: fp32 eager (the reference),
``torch.compile``, ONNX Runtime fp32 and int8, pt2e int8, the emulated log8 ELMA / posit8 /
ANNA / ternary formats, and the event-driven sparse path (without and with the activity
penalty). Columns: test accuracy, batch-1 latency (median, p90; a fresh process per path,
one thread), batch-256 time, weight bytes, multiply-adds per sample performed.

Writes ``benchmarks/records/inference.{md,json,png}`` (rows, goals, command, date).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python benchmarks/inference.py` from anywhere

from benchmarks._cells import run_cell  # noqa: E402
from benchmarks._data import HELP, data_dir  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.data import ImageData  # noqa: E402
from genoise.deploy.emulate import NumberFormatMode, fold_batchnorm  # noqa: E402
from genoise.recipes.deploy import (  # noqa: E402
    accuracy,
    batch1_speedups,
    finetune,
    inference_rows,
    load_deployable,
    markdown_table,
)

RECORDS = ROOT / "benchmarks" / "records"
BITS = {
    "fp32_eager": 32,
    "onnx_int8": 8,
    "pt2e_int8": 8,
    "log8_elma": 8,
    "posit8": 8,
    "anna_6w3a": 6,
    "anna_6w3a_qat": 6,
    "ternary": 1.6,
}
MET = {True: "yes", False: "no", None: "n/a (no hidden layer is that sparse)"}
GOALS = {"mnist": {"int8_drop": 0.1}, "cifar10": {"int8_drop": 1.0}}


def cells(out: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Train (or reuse) every run folder; returns {cell name: folder}."""
    common = {"seed": args.seed, "data_dir": str(args.data_dir) if args.data_dir else None}
    lenet = {**common, "epochs": 2 if args.quick else args.lenet_epochs}
    if args.quick:
        lenet["train_subset"] = 12000
    specs = {
        "lenet5": ("lenet5-mnist", lenet),
        "lenet5_l1": ("lenet5-mnist", {**lenet, "activity_l1": args.activity_l1}),
        "lenet5_qat": ("lenet5-mnist", {**lenet, "qat": "anna_6w3a", "qat_epochs": 1}),
        "vicreg_conv": (
            "vicreg-cifar10",
            {
                **common,
                "backbone": "conv",
                "width": 32,
                "out_dim": 128,
                "proj_hidden": 512,
                "proj_dim": 512,
                "lr": 0.002,
                "weight_decay": 1.0e-5,
                "warmup_epochs": 1.0,
                "batch_size": 256,
                "epochs": 4 if args.quick else args.ssl_epochs,
            },
        ),
    }
    folders = {}
    for name, (recipe, overrides) in specs.items():
        if name.startswith("vicreg") and "cifar10" not in args.models:
            continue
        if name.startswith("lenet") and "mnist" not in args.models:
            continue
        start = time.perf_counter()
        run_cell(out, recipe, name, overrides, "summary.json")
        print(f"cell {name}: ready ({time.perf_counter() - start:.0f} s)", flush=True)
        folders[name] = out / name
    return folders


def goals(dataset: str, rows: list[dict]) -> dict[str, dict]:
    """Each goal of the issue: measured value, target, met."""
    by = {r["row"]: r for r in rows}
    fp32 = by["fp32_eager"]["accuracy"]
    out: dict[str, dict] = {}
    for name in ("onnx_int8", "pt2e_int8"):
        if by.get(name, {}).get("accuracy") is not None:
            drop = fp32 - by[name]["accuracy"]
            out[f"{name}_drop"] = {
                "value": drop,
                "target": f"<= {GOALS[dataset]['int8_drop']}",
                "met": drop <= GOALS[dataset]["int8_drop"],
            }
    speedups = batch1_speedups(rows)
    for name in ("compile", "onnx_fp32", "onnx_int8", "pt2e_int8", "sparse_event"):
        if name in speedups:
            speedup = speedups[name]
            out[f"{name}_batch1_speedup"] = {
                "value": speedup["median"],
                "target": ">= 4",
                "met": speedup["median"] >= 4,
                "rounds": speedup["rounds"],
                "met_every_round": speedup["worst_round"] >= 4,
            }
    if by.get("log8_elma", {}).get("accuracy") is not None:
        drop = by["log8_elma"]["fp32_same_images"] - by["log8_elma"]["accuracy"]
        out["log8_elma_drop"] = {"value": drop, "target": "<= 0.9", "met": drop <= 0.9}
    if dataset == "mnist":
        for name in ("anna_6w3a", "anna_6w3a_qat"):
            if by.get(name, {}).get("accuracy") is not None:
                drop = by[name]["fp32_same_images"] - by[name]["accuracy"]
                out[f"{name}_drop"] = {"value": drop, "target": "<= 0.5", "met": drop <= 0.5}
    for name in ("sparse_event", "sparse_event_l1"):
        # the first layer's inputs are the image (its zeros are background, not ReLU outputs)
        layers = [layer for layer in by.get(name, {}).get("layers", [])[1:] if layer["zero_fraction"] >= 0.8]
        if by.get(name, {}).get("layers") is not None:
            ratios = [layer["mac_ratio"] for layer in layers]
            out[f"{name}_mac_ratio_at_sparsity_0.8"] = {
                "value": {layer["name"]: layer["mac_ratio"] for layer in layers},
                "target": ">= 5 on every hidden layer whose inputs are >= 80 % zeros",
                "met": min(ratios) >= 5 if ratios else None,  # None: no layer is that sparse
                "layers_at_0.8": len(layers),
            }
    return out


def event_layers(model: torch.nn.Module, images: torch.Tensor, repeats: int = 20) -> list[dict]:
    """Each linear-like layer (linear, or a convolution whose kernel covers its input) timed
    alone at batch 1 on real inputs: dense ``F.linear`` against ``event_linear``
    (W[:, nz] @ x[nz]), median µs over ``images`` × ``repeats`` calls, and the multiply-adds."""
    import statistics

    import torch.nn.functional as F

    from genoise.deploy.latency import time_calls
    from genoise.deploy.sparsity import event_linear, record_layer_inputs

    per_layer: dict[str, list] = {}
    with torch.no_grad():
        for i in range(images.shape[0]):
            with record_layer_inputs(model) as calls:
                model(images[i : i + 1])
            for name, kind, a in calls[1:]:
                x, w = a["input"], a["weight"]
                if kind == "conv2d" and tuple(x.shape[-2:]) != tuple(w.shape[-2:]):
                    continue
                per_layer.setdefault(name, []).append(
                    (x.reshape(1, -1), w.reshape(w.shape[0], -1), a["bias"])
                )
    rows = []
    for name, samples in per_layer.items():
        times = {"dense": [], "event": []}
        for x, w, b in samples:
            for label, fn in (("dense", F.linear), ("event", event_linear)):
                seconds = time_calls(fn, (x, w, b), warmup=1, repeats=repeats)
                times[label].append(1e6 * statistics.fmean(seconds))
        w = samples[0][1]
        nonzero = statistics.mean(float((x != 0).sum()) for x, _, _ in samples)
        rows.append(
            {
                "layer": name,
                "in": w.shape[1],
                "out": w.shape[0],
                "zero_fraction": 1 - nonzero / w.shape[1],
                "dense_macs": w.numel(),
                "event_macs": nonzero * w.shape[0],
                "dense_us": statistics.median(times["dense"]),
                "event_us": statistics.median(times["event"]),
            }
        )
    return rows


def figure(results: dict[str, list[dict]], path: Path) -> None:
    """Left: accuracy drop from fp32 (on the same test images) against bits per weight, per
    format; right: batch-1 median latency per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for (title, rows), marker in zip(results.items(), "os", strict=False):
        short = title.split(",")[-1].strip().split()[0]  # "MNIST", "CIFAR-10"
        fp32 = next(r["accuracy"] for r in rows if r["row"] == "fp32_eager")
        pts = [
            (BITS[r["row"]], r.get("fp32_same_images", fp32) - r["accuracy"], r["row"])
            for r in rows
            if r["row"] in BITS and r["accuracy"] is not None
        ]
        ax1.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=short)
        for bits, drop, name in pts:
            ax1.annotate(name, (bits, drop), fontsize=7, xytext=(3, 3), textcoords="offset points")
        timed = [r for r in rows if r["batch1_median_us"]]
        ax2.barh([f"{short}: {r['row']}" for r in timed], [r["batch1_median_us"] for r in timed])
    ax1.axhline(0, color="grey", lw=0.5)
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("symlog", linthresh=1)
    ax1.set_xlabel("bits per weight")
    ax1.set_ylabel("accuracy drop from fp32, points (symlog)")
    ax1.set_title("accuracy cost against bits per weight")
    ax1.legend()
    ax2.set_xlabel("batch-1 median latency, µs (one thread)")
    ax2.set_title("batch-1 latency per path")
    ax2.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short training, 2,000 emulated test images")
    parser.add_argument("--models", nargs="+", default=["mnist", "cifar10"], choices=["mnist", "cifar10"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1000, help="timed batch-1 calls per path and round")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved timing rounds (the median, and each round's ratio)"
    )
    parser.add_argument("--lenet-epochs", type=int, default=8)
    parser.add_argument("--ssl-epochs", type=int, default=30)
    parser.add_argument("--activity-l1", type=float, default=0.5, help="lambda of the activity penalty")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="CIFAR: epochs of the L1 fine-tune")
    parser.add_argument("--finetune-l1", type=float, default=8.0, help="CIFAR: lambda of the L1 fine-tune")
    parser.add_argument("--finetune-lr", type=float, default=3e-4, help="CIFAR: Adam step of the fine-tune")
    parser.add_argument(
        "--emulation-limit", type=int, default=0, help="emulated formats: test images (0 = all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help=HELP)
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "inference"))
    parser.add_argument("--records", default=str(RECORDS))
    args = parser.parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.data_dir is None:
        raise SystemExit("this benchmark needs MNIST and the CIFAR-10 subset: set GENOISE_DATA or --data-dir")
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    folders = cells(out, args)
    limit = args.emulation_limit or (2000 if args.quick else 0)
    results: dict[str, list[dict]] = {}
    notes: dict[str, dict] = {}
    for dataset, base, sparse_cell in (("mnist", "lenet5", "lenet5_l1"), ("cifar10", "vicreg_conv", None)):
        if dataset not in args.models:
            continue
        deployable = load_deployable(folders[base], args.data_dir)
        title = (
            "LeNet-5, MNIST" if dataset == "mnist" else "SSL ConvNet (VICReg) + linear probe, CIFAR-10 subset"
        )
        print(f"== {title}", flush=True)
        extra: dict = {}
        if sparse_cell is not None:
            sparse = load_deployable(folders[sparse_cell], args.data_dir).model
        else:
            # CIFAR: the classifier fine-tuned end to end with and without the penalty, BatchNorm
            # folded first (with BatchNorm after every conv the activations' scale is free, and
            # the L1 penalty shrinks it instead of creating zeros: see docs/deploy.md)
            folded = fold_batchnorm(deployable.model)
            tuned = {
                lam: finetune(
                    folded,
                    deployable.train_set,
                    l1=lam,
                    epochs=args.finetune_epochs,
                    lr=args.finetune_lr,
                    seed=args.seed,
                )
                for lam in (0.0, args.finetune_l1)
            }
            sparse = tuned[args.finetune_l1]
            extra["finetune_without_l1_accuracy"] = accuracy(tuned[0.0], deployable.test_set)
        rows = inference_rows(
            deployable.model,
            deployable.train_set,
            deployable.test_set,
            workdir=out / f"{base}-export",
            sparse_model=sparse,
            threads=args.threads,
            repeats=args.repeats,
            rounds=args.rounds,
            emulation_limit=limit,
        )
        if dataset == "mnist":  # ANNA after quantisation-aware training (the qat cell's weights)
            qat = load_deployable(folders["lenet5_qat"], args.data_dir).model
            mode = NumberFormatMode("anna_6w3a")
            mode.calibrate(qat, deployable.train_set.images[:1024].split(256))
            test = (
                deployable.test_set
                if not limit
                else ImageData(deployable.test_set.images[:limit], deployable.test_set.labels[:limit])
            )
            anna = next(r for r in rows if r["row"] == "anna_6w3a")
            rows.insert(
                rows.index(anna) + 1,
                {
                    **anna,
                    "row": "anna_6w3a_qat",
                    "accuracy": accuracy(qat, test, mode=mode, batch_size=100),
                    "status": "ok",
                },
            )
        results[title] = rows
        layers = {
            label: event_layers(net, deployable.test_set.images[:200])
            for label, net in (("without penalty", deployable.model), ("with penalty", sparse))
        }
        notes[title] = {"dataset": dataset, "goals": goals(dataset, rows), "event_layers": layers, **extra}
    date = datetime.date.today().isoformat()
    command = " ".join(["python benchmarks/inference.py", *(argv if argv is not None else sys.argv[1:])])
    records = Path(args.records)
    records.mkdir(parents=True, exist_ok=True)
    figure(results, records / "inference.png")
    text = [
        f"## Hardware-minded inference ({date})",
        "",
        f"`{command}` — {args.threads} thread(s); batch-1 latency in a fresh process per path (median "
        "and p90 of the timed calls), batch-256 time; emulated formats have no latency (they measure "
        "numbers, not speed).",
        "",
    ]
    for title, rows in results.items():
        text.append(markdown_table(rows, title))
        text.append(
            "| goal | measured | target | met | each round (paired with fp32_eager) | met in every round |\n"
            "|---|---|---|---|---|---|"
        )
        for name, goal in notes[title]["goals"].items():
            value = goal["value"]
            shown = (
                (", ".join(f"{k} {v:.1f}" for k, v in value.items()) or "no layer")
                if isinstance(value, dict)
                else f"{value:.3g}"
            )
            rounds, every = "", ""
            if "rounds" in goal:
                rounds = ", ".join(f"{r:.2f}" for r in goal["rounds"])
                every = MET[goal["met_every_round"]]
            text.append(f"| {name} | {shown} | {goal['target']} | {MET[goal['met']]} | {rounds} | {every} |")
        text.append(
            "\nThe event-driven layers alone, batch 1, on 200 test images (dense `F.linear` vs "
            "`event_linear`, median µs per call):\n"
        )
        text.append(
            "| model | layer | in → out | zero inputs | dense MACs | event MACs | MAC ratio | dense µs "
            "| event µs |\n|---|---|---|---:|---:|---:|---:|---:|---:|"
        )
        for label, layer_rows in notes[title]["event_layers"].items():
            for r in layer_rows:
                text.append(
                    f"| {label} | {r['layer']} | {r['in']} → {r['out']} | {100 * r['zero_fraction']:.1f} % | "
                    f"{r['dense_macs']:,} | {r['event_macs']:,.0f} | "
                    f"{r['dense_macs'] / max(r['event_macs'], 1):.1f} | {r['dense_us']:.1f} | "
                    f"{r['event_us']:.1f} |"
                )
        if "finetune_without_l1_accuracy" in notes[title]:
            text.append(
                f"\nsparse_event_l1 is the classifier (BatchNorm folded) fine-tuned {args.finetune_epochs} "
                f"epochs (Adam {args.finetune_lr:g}) with cross-entropy + λ = {args.finetune_l1:g} activity "
                "L1; the same fine-tune without the "
                f"penalty scores {notes[title]['finetune_without_l1_accuracy']:.2f} %."
            )
        text.append("")
    text.append("![accuracy against bits, batch-1 latency](inference.png)")
    payload = {
        "date": date,
        "command": command,
        "threads": args.threads,
        "models": {title: {"rows": rows, **notes[title]} for title, rows in results.items()},
    }
    write_records(records, "inference", "\n".join(text) + "\n", payload)
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
