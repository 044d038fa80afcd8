"""The command lines of :mod:`genoise.deploy`:

- ``genoise export RUN_DIR --format onnx [--int8]``: the run's classifier as
  ``RUN_DIR/export/model.onnx`` (and ``model_int8.onnx``), checked against eager;
- ``genoise bench-inference RUN_DIR [--sparse-run RUN2] [--threads N]``: the inference
  table (paths and number formats) as ``RUN_DIR/inference.md`` and ``inference.json``.

:func:`add_subcommands` registers both; the handlers import torch only when they run.
"""

from __future__ import annotations

import argparse
import json

from genoise.cli.world import number_arg


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register ``export`` and ``bench-inference`` on the ``genoise`` sub-parsers ``sub``."""
    export = sub.add_parser(
        "export", help="export a run's classifier: genoise export RUN_DIR --format onnx [--int8]",
        description="Export the classifier of a run folder (lenet5-* runs; SSL runs: backbone + linear "
        "probe) to RUN_DIR/export/. The ONNX file is checked against eager PyTorch on test images.")
    export.add_argument("run_dir", help="the run folder written by `genoise train`")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="the exchange format (onnx)")
    export.add_argument("--int8", action="store_true",
                        help="also write model_int8.onnx: ONNX Runtime static quantisation, calibrated on "
                             "training images")
    export.add_argument("--calibration-samples", type=number_arg(int, 1), default=1024,
                        help="training images of the int8 calibration (default 1024)")
    export.add_argument("--data-dir", help="folder holding data sets (default: the run's, then GENOISE_DATA)")
    export.set_defaults(handler=export_command)

    bench = sub.add_parser(
        "bench-inference", help="latency / accuracy / bits table of a run's classifier",
        description="Measure the classifier of a run folder as fp32 eager, torch.compile, ONNX Runtime "
        "fp32 and int8, pt2e int8, emulated log8 ELMA / posit8 / ANNA 6w3a / ternary, and event-driven "
        "sparse: test accuracy, batch-1 median and p90 latency (fresh process), batch-N time, weight "
        "bytes, multiply-adds. Writes RUN_DIR/inference.md and inference.json.")
    bench.add_argument("run_dir", help="the run folder written by `genoise train`")
    bench.add_argument("--sparse-run", help="the same network trained with the activity penalty "
                                            "(row sparse_event_l1)")
    bench.add_argument("--threads", type=number_arg(int, 1), default=1,
                       help="threads of every path (default 1)")
    bench.add_argument("--repeats", type=number_arg(int, 10), default=200,
                       help="timed batch-1 calls per path (default 200)")
    bench.add_argument("--batch", type=number_arg(int, 1), default=256, help="the batch-N size (default 256)")
    bench.add_argument("--rounds", type=number_arg(int, 1), default=3,
                       help="interleaved timing rounds, the median kept (default 3)")
    bench.add_argument("--emulation-limit", type=number_arg(int, 0), default=0,
                       help="score the emulated formats on this many test images (0 = all)")
    bench.add_argument("--rows", help="comma-separated subset of the rows (default: all)")
    bench.add_argument("--data-dir", help="folder holding data sets (default: the run's, then $GENOISE_DATA)")
    bench.set_defaults(handler=bench_command)


def export_command(args: argparse.Namespace) -> int:
    from genoise.recipes.deploy import export_run

    written = export_run(args.run_dir, fmt=args.format, int8=args.int8, data_dir=args.data_dir,
                         calibration_samples=args.calibration_samples)
    print(json.dumps(written, indent=2))
    return 0


def bench_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genoise.recipes.deploy import ROWS, bench_run, check_rows

    rows = check_rows(ROWS if not args.rows else tuple(r.strip() for r in args.rows.split(",") if r.strip()))
    bench_run(args.run_dir, sparse_run=args.sparse_run, data_dir=args.data_dir, threads=args.threads,
              repeats=args.repeats, batch=args.batch, emulation_limit=args.emulation_limit, rows=rows,
              rounds=args.rounds)
    print(f"table: {(Path(args.run_dir) / 'inference.md').resolve()}")
    return 0
