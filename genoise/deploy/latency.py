"""The latency harness: batch-1 median and p90, batch-N time, in a fresh process.

Inference hardware must be efficient at **batch size 1** (LeCun, ISSCC 2019): a request
arrives alone and cannot wait for a batch. So the harness times single-sample calls —
``repeats`` of them after ``warmup`` calls, the median and the 90th percentile in µs —
and, for throughput, the time of one call on a batch of N. Each measurement runs in a
**fresh Python process** (``python -m genoise.deploy.latency JOB.json``) with an explicit
thread count (``OMP_NUM_THREADS``, ``torch.set_num_threads``, ONNX Runtime's intra-op
threads), so allocator state, compiled kernels and thread pools of one path never help or
hurt another; the child reports the thread count it really used.

Paths (``runner``): ``eager`` (the module), ``compile`` (``torch.compile``), ``onnx``
(ONNX Runtime on an exported file: fp32 or int8), ``pt2e`` (torchao int8, compiled),
``event`` (the module under :class:`~genoise.deploy.sparsity.EventMode`). The model travels
as a ``torch.save`` of the whole module (a file this process wrote) and the inputs as a
``.pt`` file holding ``(batch_1_inputs, batch_n_inputs)``, tuples of tensors, so any genoise
network times the same way: images (LeNet-5, the SSL ConvNet), token stories (MemN2N), world
model states.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genoise._checks import check_int

RUNNERS = ("eager", "compile", "onnx", "pt2e", "event")


@dataclass(frozen=True)
class Latency:
    """One path's timings: batch-1 median / p90 (µs per sample), one batch-N call (ms)."""

    runner: str
    threads: int
    batch1_median_us: float
    batch1_p90_us: float
    batch_n: int
    batch_n_ms: float
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_calls(fn: Callable[..., Any], inputs: Sequence[Tensor], *, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls ``fn(*inputs)`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn(*inputs)
        times.append((time.perf_counter_ns() - start) * 1e-9)
    return times


def measure(
    fn: Callable[..., Any],
    one: Sequence[Tensor],
    many: Sequence[Tensor] | None = None,
    *,
    runner: str = "eager",
    warmup: int = 20,
    repeats: int = 200,
    repeats_n: int = 5,
    fn_n: Callable[..., Any] | None = None,
) -> Latency:
    """Time ``fn`` on the batch-1 inputs ``one`` and (``fn_n`` or ``fn``) on ``many``, in
    this process with its current thread count. :func:`measure_in_subprocess` is the clean
    measurement; this is its core."""
    check_int("repeats", repeats)
    with torch.inference_mode():
        ones = time_calls(fn, one, warmup=warmup, repeats=repeats)
        batch_n, batch_ms = 0, float("nan")
        if many is not None:
            batch_n = int(many[0].shape[0])
            fn_batch = fn if fn_n is None else fn_n
            runs = time_calls(fn_batch, many, warmup=max(1, warmup // 10), repeats=repeats_n)
            batch_ms = 1e3 * statistics.median(runs)
    q = statistics.quantiles(ones, n=10, method="inclusive")
    return Latency(
        runner, torch.get_num_threads(), 1e6 * statistics.median(ones), 1e6 * q[8], batch_n, batch_ms, repeats
    )


def _runner(job: dict[str, Any], inputs: tuple[Tensor, ...]) -> Callable[..., Any]:
    """The callable of ``job["runner"]`` for inputs shaped like ``inputs``."""
    kind = job["runner"]
    if kind == "onnx":
        from genoise.deploy.onnx_runtime import ort_run, ort_session

        session = ort_session(job["onnx"], threads=int(job["threads"]))
        return lambda *xs: ort_run(session, *xs)
    model: nn.Module = torch.load(job["model"], weights_only=False).eval()
    if kind == "eager":
        return model
    if kind == "compile":
        compiled = torch.compile(model)
        compiled(*inputs)  # compile outside the timed calls
        return compiled
    if kind == "pt2e":
        from genoise.deploy.pt2e import quantize_pt2e

        calibration = torch.load(job["calibration"])
        return quantize_pt2e(model, calibration, batch_size=int(inputs[0].shape[0]))
    if kind == "event":
        from genoise.deploy.sparsity import EventMode

        def run(*xs: Tensor) -> Tensor:
            with EventMode():
                return model(*xs)

        return run
    raise ValueError(f"unknown runner {kind!r}; choose from {', '.join(RUNNERS)}")


def run_job(job: dict[str, Any]) -> Latency:
    """Measure ``job`` in this process (the body of the child process)."""
    torch.set_num_threads(int(job["threads"]))
    one, many = torch.load(job["inputs"])
    fn_one = _runner(job, tuple(one))
    fn_many = _runner(job, tuple(many)) if job["runner"] == "pt2e" and many is not None else None
    return measure(
        fn_one,
        tuple(one),
        None if many is None else tuple(many),
        runner=job["runner"],
        warmup=int(job["warmup"]),
        repeats=int(job["repeats"]),
        fn_n=fn_many,
    )


def measure_in_subprocess(
    runner: str,
    *,
    model: nn.Module | None = None,
    onnx: str | Path | None = None,
    one: Sequence[Tensor],
    many: Sequence[Tensor] | None = None,
    threads: int = 1,
    warmup: int = 20,
    repeats: int = 200,
    calibration: Tensor | None = None,
    timeout: float = 600.0,
    isolated: bool = True,
) -> Latency:
    """Time ``runner`` on ``model`` (or the ONNX file ``onnx``) in a fresh process using
    ``threads`` threads: batch-1 inputs ``one`` (a sequence of tensors), batch-N ``many``.
    ``isolated=False`` runs the same job in this process (no start-up cost: for short demos;
    the thread count is restored afterwards)."""
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose from {', '.join(RUNNERS)}")
    check_int("threads", threads)
    if runner == "onnx" and onnx is None:
        raise ValueError("runner 'onnx' needs the ONNX file (onnx=...)")
    if runner != "onnx" and model is None:
        raise ValueError(f"runner {runner!r} needs the model (model=...)")
    if runner == "pt2e" and calibration is None:
        raise ValueError("runner 'pt2e' needs calibration inputs (calibration=...)")
    with tempfile.TemporaryDirectory(prefix="genoise-latency-") as tmp:
        folder = Path(tmp)
        job: dict[str, Any] = {
            "runner": runner,
            "threads": threads,
            "warmup": warmup,
            "repeats": repeats,
            "inputs": str(folder / "inputs.pt"),
            "onnx": None if onnx is None else str(onnx),
        }
        torch.save(
            (
                tuple(t.detach().cpu() for t in one),
                None if many is None else tuple(t.detach().cpu() for t in many),
            ),
            job["inputs"],
        )
        if model is not None:
            job["model"] = str(folder / "model.pt")
            torch.save(model.cpu().eval(), job["model"])
        if calibration is not None:
            job["calibration"] = str(folder / "calibration.pt")
            torch.save(calibration.detach().cpu(), job["calibration"])
        (folder / "job.json").write_text(json.dumps(job))
        if not isolated:
            before = torch.get_num_threads()
            try:
                return run_job(job)
            finally:
                torch.set_num_threads(before)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        done = subprocess.run(
            [sys.executable, "-m", "genoise.deploy.latency", str(folder / "job.json")],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(f"latency of {runner!r} failed in its process: {last}")
    return Latency(**json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m genoise.deploy.latency JOB.json``: print the :class:`Latency` as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m genoise.deploy.latency JOB.json", file=sys.stderr)
        return 2
    from genoise.deploy.onnx_runtime import quiet_torch_logs

    job = json.loads(Path(args[0]).read_text())
    with quiet_torch_logs():
        result = run_job(job)
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
