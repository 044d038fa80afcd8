"""Hardware-minded inference (``genoise train lenet5-mnist``, ``genoise export RUN_DIR``,
``genoise bench-inference RUN_DIR``) and the ``deploy`` demo section.

A *deployable* is a run folder's classifier as one ``nn.Module`` from images to class
scores: LeNet-5 from a ``lenet5-*`` run (its quantisation-aware weights when the run has
them), or an SSL run's frozen backbone followed by its linear probe (fitted on the run's
training features, standardisation folded in, cached as ``probe.pt``). On it:

- :func:`export_run` writes ``export/model.onnx`` (and ``model_int8.onnx``);
- :func:`inference_rows` builds the table of the issue — one row per path or number
  format: test accuracy, batch-1 latency (median, p90, fresh process), batch-N time, weight
  bytes, multiply-adds per sample actually performed — and :func:`bench_run` writes it as
  ``inference.md`` / ``inference.json`` in the run folder.

The library pieces are in :mod:`genoise.deploy`.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise.data import ImageData, load_dataset
from genoise.deploy.emulate import FORMATS, NumberFormatMode, fold_batchnorm
from genoise.deploy.latency import measure_in_subprocess
from genoise.deploy.onnx_runtime import export_onnx, has_extra, ort_run, ort_session, quantize_onnx_int8
from genoise.deploy.sparsity import EventMode, activity_penalty, record_layer_inputs, sparsity_report
from genoise.io import atomic_torch_save, atomic_write_text
from genoise.nn.lenet import LeNet5
from genoise.train import CHECKPOINT_NAME, Run, Trainer, load_checkpoint
from genoise.train.evaluate import count_correct
from genoise.train.run_folder import read_run_config

ROWS = (
    "fp32_eager",
    "compile",
    "onnx_fp32",
    "onnx_int8",
    "pt2e_int8",
    "log8_elma",
    "posit8",
    "anna_6w3a",
    "ternary",
    "sparse_event",
    "sparse_event_l1",
)


# ------------------------------------------------------------------------------- training
def build_lenet(config: dict[str, Any]) -> LeNet5:
    """LeNet-5 for ``config["dataset"]`` (28×28 MNIST, 8×8 digits) with its activation."""
    size = 8 if config["dataset"] == "digits" else 28
    return LeNet5(in_channels=1, num_classes=10, image_size=size, activation=str(config["activation"]))


def accuracy(model: nn.Module, data: ImageData, *, batch_size: int = 500, mode: Any = None) -> float:
    """Test accuracy (%) of ``model`` on ``data`` (eval mode, inside ``mode`` when given)."""
    correct = count_correct(model, data.images, data.labels, batch_size=batch_size, mode=mode)
    return 100.0 * correct / data.images.shape[0]


def _step_fn(l1: float, mode: NumberFormatMode | None = None) -> Any:
    """Cross-entropy (+ λ·activity L1), through the number format ``mode`` when given."""

    def step(model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator) -> dict[str, Tensor]:
        x, y = batch
        with record_layer_inputs(model) as calls:
            if mode is None:
                scores = model(x)
            else:
                with mode:
                    scores = model(x)
        ce = F.cross_entropy(scores, y)
        if l1 <= 0:
            return {"loss": ce}
        penalty = activity_penalty(calls, l1)
        return {"loss": ce + penalty, "cross_entropy": ce.detach(), "activity_l1": penalty.detach()}

    return step


def fit_classifier(
    model: nn.Module,
    data: ImageData,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    l1: float = 0.0,
    mode: NumberFormatMode | None = None,
    run: Run | None = None,
    desc: str = "classifier",
    kind: str = "deploy-classifier",
) -> None:
    """Adam on cross-entropy (+ λ·activity L1, through the number format ``mode`` when
    given) for ``epochs`` passes over ``data``, by the :class:`~genoise.train.Trainer`: in
    ``run``'s folder (a metrics row and a checkpoint per epoch, resumable) or without one."""
    per_epoch = max(1, data.images.shape[0] // batch_size)
    steps = epochs * per_epoch
    Trainer(
        model,
        torch.optim.Adam(model.parameters(), lr=lr),
        _step_fn(l1, mode),
        (data.images, data.labels),
        run=run,
        max_steps=steps,
        batch_size=batch_size,
        seed=seed,
        log_every=per_epoch,
        checkpoint_every=per_epoch if run is not None else None,
        progress=None if run is not None else False,
        desc=desc,
        kind=kind,
    ).fit(resume=bool(run is not None and run.resume))


def train(run: Run) -> dict[str, Any]:
    """``genoise train lenet5-mnist``: Adam on cross-entropy (+ the L1 activity penalty),
    then, with ``qat``, quantisation-aware epochs through that format (sub-run ``qat/``);
    reports test accuracy (float and in the format) and the per-layer input sparsity."""
    cfg = run.config
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    train_set = load_dataset(
        cfg["dataset"], "train", data_dir=run.data_dir, subset=int(cfg["train_subset"]), seed=seed
    )
    test_set = load_dataset(
        cfg["dataset"], "test", data_dir=run.data_dir, subset=int(cfg["test_subset"]), seed=seed
    )
    model = build_lenet(cfg)
    batch_size = min(int(cfg["batch_size"]), train_set.images.shape[0])
    l1 = float(cfg["activity_l1"])
    start = time.perf_counter()
    fit_classifier(
        model,
        train_set,
        lr=float(cfg["lr"]),
        epochs=int(cfg["epochs"]),
        batch_size=batch_size,
        seed=seed,
        l1=l1,
        run=run,
        desc="lenet-5",
        kind="deploy-lenet5",
    )
    summary: dict[str, Any] = {
        "test_acc": accuracy(model, test_set),
        "train_seconds": time.perf_counter() - start,
    }
    if cfg["qat"] != "none":
        mode = NumberFormatMode(str(cfg["qat"]))
        calibration = train_set.images[: int(cfg["calibration_samples"])].to(run.device).split(256)
        if mode.needs_calibration:
            mode.calibrate(model, calibration)
        summary[f"{cfg['qat']}_acc_before_qat"] = accuracy(model, test_set, mode=mode)
        fit_classifier(
            model,
            train_set,
            lr=float(cfg["qat_lr"]),
            epochs=int(cfg["qat_epochs"]),
            batch_size=batch_size,
            seed=seed + 1,
            l1=l1,
            mode=mode,
            run=run.subrun("qat"),
            desc=f"qat {cfg['qat']}",
            kind="deploy-qat",
        )
        if mode.needs_calibration:
            mode.calibrate(model, calibration)
        summary["test_acc_float_after_qat"] = accuracy(model, test_set)
        summary[f"{cfg['qat']}_acc"] = accuracy(model, test_set, mode=mode)
    layers = sparsity_report(model, test_set.images[:500].to(run.device))
    summary["input_sparsity"] = {row.name: round(row.zero_fraction, 4) for row in layers}
    return summary


# ----------------------------------------------------------------------------- deployables
@dataclass
class Deployable:
    """A run's classifier and its data: ``model`` maps (B, C, H, W) images to class scores."""

    name: str
    model: nn.Module
    train_set: ImageData
    test_set: ImageData
    config: dict[str, Any]


def _ssl_classifier(run_dir: Path, config: dict[str, Any], train_set: ImageData) -> nn.Module:
    """An SSL run's backbone (built on :mod:`genoise.recipes.ssl`'s loader) and its probe."""
    from genoise.recipes.ssl import load_backbone
    from genoise.ssl.evaluate import extract_features, fit_linear_probe

    backbone = load_backbone(run_dir, config, train_set.images).eval()
    cache = run_dir / "probe.pt"
    probe = nn.Linear(backbone.feature_dim, 10)
    if cache.is_file():
        try:
            probe.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError, EOFError) as err:  # pickle errors included
            raise ValueError(f"{cache}: unreadable probe cache ({err}); delete it to refit") from err
    else:
        features = extract_features(backbone, train_set.images)
        probe, _ = fit_linear_probe(features, train_set.labels, num_classes=10)
        atomic_torch_save(probe.state_dict(), cache)
    return nn.Sequential(backbone, probe).eval()


def load_deployable(run_dir: str | Path, data_dir: Any = None) -> Deployable:
    """The classifier of the run folder ``run_dir`` (see the module docstring); a run of
    another kind gets a one-line ``ValueError`` naming what is supported."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    config, _ = read_run_config(run_dir)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{run_dir / CHECKPOINT_NAME}: no checkpoint to deploy")
    dataset = config.get("dataset")
    if dataset not in ("digits", "mnist", "cifar10"):
        raise ValueError(
            f"{run_dir}: cannot deploy this run (dataset {dataset!r}); supported: lenet5-* runs and "
            "SSL runs (<method>-<dataset>)"
        )
    from genoise.recipes.ssl import load_data  # the split rule (train_subset, seed) of the image recipes

    train_set, test_set = load_data(config, data_dir)
    if "activity_l1" in config and "activation" in config:
        model = build_lenet(config)
        final = run_dir / "qat" / CHECKPOINT_NAME
        model.load_state_dict(
            load_checkpoint(final if final.is_file() else run_dir / CHECKPOINT_NAME)["model"]
        )
        model.eval()
    elif "method" in config and "backbone" in config:
        model = _ssl_classifier(run_dir, config, train_set)
    else:
        raise ValueError(
            f"{run_dir}: unknown architecture for deployment (keys {sorted(config)[:6]}...); "
            "supported: lenet5-* runs and SSL runs (<method>-<dataset>)"
        )
    return Deployable(run_dir.name, model, train_set, test_set, config)


def export_run(
    run_dir: str | Path,
    *,
    fmt: str = "onnx",
    int8: bool = False,
    data_dir: Any = None,
    calibration_samples: int = 1024,
) -> dict[str, str]:
    """``genoise export RUN_DIR --format onnx [--int8]``: ``RUN_DIR/export/model.onnx`` (and
    ``model_int8.onnx``, calibrated on ``calibration_samples`` training images); checks the
    fp32 file against eager on test images. Returns the written paths."""
    if fmt != "onnx":
        raise ValueError(f"export format {fmt!r} is not supported; supported: onnx")
    deployable = load_deployable(run_dir, data_dir)
    out = Path(run_dir) / "export"
    images = deployable.test_set.images[:64]
    fp32 = export_onnx(deployable.model, images[:2], out / "model.onnx")
    with torch.no_grad():
        gap = float((ort_run(ort_session(fp32), images) - deployable.model(images)).abs().max())
    if gap > 1e-3:
        raise ValueError(f"the exported model disagrees with eager by {gap:.2e} on test images")
    written = {"onnx": str(fp32), "max_abs_difference": f"{gap:.2e}"}
    if int8:
        calibration = deployable.train_set.images[:calibration_samples]
        written["onnx_int8"] = str(quantize_onnx_int8(fp32, out / "model_int8.onnx", calibration))
    return written


# ---------------------------------------------------------------------------------- table
def weight_count(model: nn.Module) -> tuple[int, int]:
    """(multiply weights — parameters of rank ≥ 2, other parameters — biases, scales)."""
    weights = sum(p.numel() for p in model.parameters() if p.ndim >= 2)
    return weights, sum(p.numel() for p in model.parameters()) - weights


def weight_bytes(model: nn.Module, bits: float, other_bits: int = 32) -> int:
    """Bytes of the weights at ``bits`` per weight (biases and scales at ``other_bits``)."""
    weights, other = weight_count(model)
    return math.ceil(weights * bits / 8) + other * other_bits // 8


def finetune(
    model: nn.Module,
    data: ImageData,
    *,
    l1: float,
    epochs: int = 1,
    lr: float = 1e-4,
    batch_size: int = 128,
    seed: int = 0,
) -> nn.Module:
    """A copy of ``model`` fine-tuned on ``data`` with cross-entropy + λ·activity L1
    (:func:`~genoise.deploy.sparsity.activity_penalty`), Adam, no run folder."""
    import copy

    model = copy.deepcopy(model).train()
    fit_classifier(
        model,
        data,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        l1=l1,
        desc="activity fine-tune",
        kind="deploy-finetune",
    )
    return model.eval()


def _event_accuracy(model: nn.Module, data: ImageData) -> float:
    """Accuracy with every sample run alone through :class:`EventMode` (the batch-1 path)."""
    correct = 0
    with torch.no_grad(), EventMode():
        for i in range(data.images.shape[0]):
            correct += int(model(data.images[i : i + 1]).argmax(1).item() == int(data.labels[i]))
    return 100.0 * correct / data.images.shape[0]


def check_rows(rows: tuple[str, ...]) -> tuple[str, ...]:
    """``rows`` if every one is a row of :data:`ROWS`; else a one-line ``ValueError``."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    return rows


def inference_rows(
    model: nn.Module,
    train_set: ImageData,
    test_set: ImageData,
    *,
    workdir: str | Path,
    sparse_model: nn.Module | None = None,
    threads: int = 1,
    repeats: int = 200,
    batch: int = 256,
    emulation_limit: int = 0,
    calibration_samples: int = 1024,
    rows: tuple[str, ...] = ROWS,
    log: Any = print,
    isolated: bool = True,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """The table rows (see :data:`ROWS`) of the classifier ``model``.

    Accuracy on ``test_set`` (the emulated formats on its first ``emulation_limit`` images
    when > 0, said in the row); latency from :func:`~genoise.deploy.latency.
    measure_in_subprocess` with ``threads`` threads (``None`` for emulated formats: they
    measure numbers, not speed); weight bytes at the path's bits per weight; multiply-adds
    per sample the path performs (the event-driven rows: what it skips at batch 1 counted
    exactly). ``sparse_model`` is the same network trained with the activity penalty (row
    ``sparse_event_l1``). Rows whose optional package is missing say so in ``status``.
    ``isolated=False`` times in this process (the demo's short setting). The paths are timed
    in ``rounds`` interleaved rounds and each statistic is the median over the rounds; each
    round's batch-1 median is kept in ``batch1_median_us_rounds`` (see :func:`batch1_speedups`).
    """
    check_rows(rows)
    workdir = Path(workdir)
    model = fold_batchnorm(model).eval()
    one, many = test_set.images[:1], test_set.images[:batch]
    calibration = train_set.images[:calibration_samples]
    emulated = (
        test_set
        if not emulation_limit
        else ImageData(test_set.images[:emulation_limit], test_set.labels[:emulation_limit])
    )
    report = sparsity_report(model, test_set.images[:256])
    dense_macs = sum(r.dense_macs for r in report)
    fp32_acc = accuracy(model, test_set)
    fp32_emulated = accuracy(model, emulated)  # the reference of the emulated rows: same images
    out: list[dict[str, Any]] = []

    def row(
        name: str, acc: float | None, latency: Any, bits: float, macs: float, n: int, **extra: Any
    ) -> None:
        record = {
            "row": name,
            "accuracy": acc,
            "test_images": n,
            "batch1_median_us": None,
            "batch1_p90_us": None,
            "batch_n": batch,
            "batch_n_ms": None,
            "weight_bytes": weight_bytes(model, bits),
            "macs": macs,
            "threads": threads,
            "status": "ok",
            **extra,
        }
        if latency is not None:
            timings.append((record, latency))
        out.append(record)
        shown = "-" if acc is None else f"{acc:.2f} %"
        log(f"  {name}: {shown} {record['status'] if record['status'] != 'ok' else ''}")

    def time_path(runner: str, **kwargs: Any) -> Any:
        """The deferred measurement of one path (run in the interleaved rounds below)."""
        return lambda: measure_in_subprocess(
            runner, one=(one,), many=(many,), threads=threads, repeats=repeats, isolated=isolated, **kwargs
        )

    timings: list[tuple[dict[str, Any], Any]] = []

    n_test = test_set.images.shape[0]
    onnx_ready = has_extra("onnx", "onnxscript", "onnxruntime")
    for name in rows:
        if name == "fp32_eager":
            row(name, fp32_acc, time_path("eager", model=model), 32, dense_macs, n_test)
        elif name == "compile":
            compiled = torch.compile(model)
            row(name, accuracy(compiled, test_set), time_path("compile", model=model), 32, dense_macs, n_test)
        elif name in ("onnx_fp32", "onnx_int8"):
            if not onnx_ready:
                row(
                    name,
                    None,
                    None,
                    32 if name == "onnx_fp32" else 8,
                    dense_macs,
                    0,
                    status="skipped: onnx, onnxscript or onnxruntime missing (pip install 'genoise[deploy]')",
                )
                continue
            path = export_onnx(model, one.expand(2, *one.shape[1:]), workdir / "model.onnx")
            bits = 32
            if name == "onnx_int8":
                path, bits = quantize_onnx_int8(path, workdir / "model_int8.onnx", calibration), 8
            session = ort_session(path)
            preds = torch.cat(
                [ort_run(session, test_set.images[i : i + 500]).argmax(1) for i in range(0, n_test, 500)]
            )
            acc = 100.0 * float((preds == test_set.labels).float().mean())
            extra = {}
            if name == "onnx_int8":  # its first layer stays fp32 (quantize_onnx_int8's default)
                first = next(p for p in model.parameters() if p.ndim >= 2).numel()
                extra["weight_bytes"] = weight_bytes(model, 8) + first * 3
            row(name, acc, time_path("onnx", onnx=path), bits, dense_macs, n_test, **extra)
        elif name == "pt2e_int8":
            if not has_extra("torchao"):
                row(name, None, None, 8, dense_macs, 0, status="skipped: torchao not installed")
                continue
            from genoise.deploy.pt2e import quantize_pt2e

            size = math.gcd(n_test, 500)
            quantized = quantize_pt2e(model, calibration, batch_size=size)
            acc = accuracy(quantized, test_set, batch_size=size)
            row(name, acc, time_path("pt2e", model=model, calibration=calibration), 8, dense_macs, n_test)
        elif name in FORMATS:
            mode = NumberFormatMode(name)
            if mode.needs_calibration:
                mode.calibrate(model, calibration.split(256))
            start = time.perf_counter()
            acc = accuracy(model, emulated, mode=mode, batch_size=100)
            seconds = time.perf_counter() - start
            bits = 1.6 if name == "ternary" else FORMATS[name][0]  # ternary: 5 trits per byte
            row(
                name,
                acc,
                None,
                bits,
                dense_macs,
                emulated.images.shape[0],
                emulation_seconds=seconds,
                fp32_same_images=fp32_emulated,
            )
        elif name in ("sparse_event", "sparse_event_l1"):
            net = model if name == "sparse_event" else sparse_model
            if net is None:
                row(
                    name,
                    None,
                    None,
                    32,
                    dense_macs,
                    0,
                    status="skipped: no model trained with the activity penalty",
                )
                continue
            net = fold_batchnorm(net).eval()
            layers = sparsity_report(net, test_set.images[:256])
            performed = sum(
                r.event_macs if r.kind == "linear" or _covers(r, net) else r.dense_macs for r in layers
            )
            row(
                name,
                _event_accuracy(net, test_set),
                time_path("event", model=net),
                32,
                performed,
                n_test,
                event_macs_all_layers=sum(r.event_macs for r in layers),
                layers=[r.to_dict() for r in layers],
            )
    # Interleaved rounds (each path once per round, the median over rounds): a drift of this
    # shared machine's speed hits every path alike instead of the one measured at that time.
    measured: list[list[Any]] = [[] for _ in timings]
    for _ in range(rounds):
        for results, (_, measure) in zip(measured, timings, strict=True):
            results.append(measure())
    for (record, _), results in zip(timings, measured, strict=True):
        record.update(
            {
                key: statistics.median(getattr(r, key) for r in results)
                for key in ("batch1_median_us", "batch1_p90_us", "batch_n_ms")
            },
            batch1_median_us_rounds=[r.batch1_median_us for r in results],
            threads=results[0].threads,
            rounds=rounds,
        )
        log(f"  {record['row']}: batch-1 {record['batch1_median_us']:.0f} µs (median of {rounds} rounds)")
    return out


def batch1_speedups(rows: list[dict[str, Any]], reference: str = "fp32_eager") -> dict[str, dict[str, Any]]:
    """Batch-1 speed-up of every timed row of :func:`inference_rows` over ``reference``.

    ``median``: t_ref / t_row, each the median over the interleaved rounds (the table's
    statistic). ``rounds``: the paired ratio t_ref,r / t_row,r of each round r (both paths
    timed in the same round, seconds to a minute apart, so a drift of the machine's speed from
    one round to the next cancels); ``worst_round`` is their minimum. Rows without a latency (emulated
    formats, skipped rows) are left out; a ``reference`` row without one gives ``{}``.
    """
    by = {r["row"]: r for r in rows}
    ref = by.get(reference, {})
    if not ref.get("batch1_median_us"):
        return {}
    ref_rounds = ref.get("batch1_median_us_rounds") or [ref["batch1_median_us"]]
    out = {}
    for name, row in by.items():
        if name == reference or not row.get("batch1_median_us"):
            continue
        own = row.get("batch1_median_us_rounds") or [row["batch1_median_us"]]
        if len(own) != len(ref_rounds):
            raise ValueError(
                f"row {name!r} has {len(own)} timing rounds, {reference!r} has {len(ref_rounds)}"
            )
        paired = [a / b for a, b in zip(ref_rounds, own, strict=True)]
        out[name] = {
            "median": ref["batch1_median_us"] / row["batch1_median_us"],
            "rounds": paired,
            "worst_round": min(paired),
        }
    return out


def _covers(layer: Any, model: nn.Module) -> bool:
    """Whether a conv layer of the report is one :class:`EventMode` runs as a linear layer
    (its kernel covers its whole input: its dense count equals in·out)."""
    module = dict(model.named_modules()).get(layer.name)
    if not isinstance(module, nn.Conv2d):
        return False
    return layer.dense_macs == module.weight.numel()


def markdown_table(rows: list[dict[str, Any]], title: str) -> str:
    """The rows as a Markdown table."""

    def num(value: Any, fmt: str) -> str:
        return (
            "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)
        )

    lines = [
        f"### {title}",
        "",
        "| row | test acc % | batch-1 median µs | batch-1 p90 µs | batch-N ms | weight bytes | MACs/sample "
        "| note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        note = r["status"] if r["status"] != "ok" else ""
        if r.get("fp32_same_images") is not None and r["accuracy"] is not None:
            note = f"emulated on {r['test_images']} test images (fp32 on them: {r['fp32_same_images']:.2f} %)"
        lines.append(
            f"| {r['row']} | {num(r['accuracy'], '.2f')} | {num(r['batch1_median_us'], '.0f')} | "
            f"{num(r['batch1_p90_us'], '.0f')} | {num(r['batch_n_ms'], '.2f')} | {r['weight_bytes']:,} | "
            f"{r['macs']:,.0f} | {note} |"
        )
    return "\n".join(lines) + "\n"


def bench_run(
    run_dir: str | Path, *, sparse_run: str | Path | None = None, data_dir: Any = None, **options: Any
) -> list[dict[str, Any]]:
    """``genoise bench-inference RUN_DIR``: :func:`inference_rows` of the run's classifier,
    written as ``RUN_DIR/inference.md`` and ``inference.json``."""
    deployable = load_deployable(run_dir, data_dir)
    sparse = None if sparse_run is None else load_deployable(sparse_run, data_dir).model
    rows = inference_rows(
        deployable.model,
        deployable.train_set,
        deployable.test_set,
        workdir=Path(run_dir) / "export",
        sparse_model=sparse,
        **options,
    )
    atomic_write_text(Path(run_dir) / "inference.json", json.dumps(rows, indent=2, default=str) + "\n")
    atomic_write_text(Path(run_dir) / "inference.md", markdown_table(rows, deployable.name))
    return rows


# ----------------------------------------------------------------------------------- demo
def demo(run: Run, full: bool) -> str:
    """LeNet-5 on MNIST (digits without a data folder) for one short epoch, then the same
    network as fp32 eager, ONNX Runtime fp32 and int8, and in the log8 / posit8 / ANNA
    formats, with its input sparsity."""
    from genoise.recipes import load_recipe

    dataset = "mnist" if run.data_dir is not None else "digits"
    config = {
        **load_recipe("lenet5-mnist").config,
        "seed": 0,
        "dataset": dataset,
        "device": "cpu",
        "data_dir": None if run.data_dir is None else str(run.data_dir),
        "train_subset": 0 if full or dataset == "digits" else 6000,
        "epochs": 3 if full else 1,
        "test_subset": 0 if full or dataset == "digits" else 1000,
        "batch_size": 128 if full else 64,
        "lr": 0.001 if full else 0.003,  # the short setting: more, larger steps
    }
    sub = run.subrun("lenet5", config=config)
    sub.save_config()
    summary = train(sub)
    deployable = load_deployable(sub.dir)
    test = deployable.test_set
    if not full and dataset == "mnist":
        test = ImageData(test.images[:1000], test.labels[:1000])
    rows = inference_rows(
        deployable.model,
        deployable.train_set,
        test,
        workdir=sub.dir / "export",
        rows=("fp32_eager", "onnx_fp32", "onnx_int8", "log8_elma", "posit8", "anna_6w3a", "sparse_event"),
        repeats=200 if full else 50,
        emulation_limit=0 if full else 300,
        log=lambda *_: None,
        isolated=full,  # the short setting times in this process (no start-up of a fresh one)
        rounds=3 if full else 1,
    )
    sparsity = ", ".join(f"{k} {100 * v:.0f} %" for k, v in summary["input_sparsity"].items())
    return (
        f"## Hardware-minded inference (LeNet-5, {dataset})\n\n"
        f"{config['epochs']} epoch(s) on {deployable.train_set.images.shape[0]} images; one thread"
        f"{'' if full else ', timed in this process (--full: a fresh process per path)'}; "
        f"zero inputs per layer: {sparsity}.\n\n" + markdown_table(rows, "paths and number formats")
    )
