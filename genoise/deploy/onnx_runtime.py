"""ONNX export and ONNX Runtime: the static graph a back-end runs, in fp32 and in int8.

LeCun (ISSCC 2019, "Deep learning hardware: past, present, and future") argues that
inference runs a *static* graph exported to a standard format and executed by whatever
back-end the hardware offers. Here the format is ONNX and the back-end ONNX Runtime:

- :func:`export_onnx` traces a module with ``torch.export`` (``torch.onnx.export(...,
  dynamo=True)``), with a dynamic batch dimension, checks the file with ``onnx.checker`` and
  writes it atomically. A forward whose control flow depends on tensor *values* has no static
  graph: the error says so in one line, naming the source line.
- :func:`quantize_onnx_int8` is post-training static quantisation with ONNX Runtime's
  ``quantize_static``: weights int8 per output channel (symmetric), activations int8 with
  ranges calibrated (min/max) on training batches, QDQ format, the first layer (which reads
  the raw image) kept in fp32 — "S8S8 with QDQ", ONNX
  Runtime's recommended first choice on x86 CPUs (on LeNet-5 here its batch-1 call took
  95 µs against 148 µs with uint8 activations); the model is pre-processed first
  (``quant_pre_process``: shape inference and graph optimisation), as ONNX Runtime
  recommends. For an int8 GEMM q = round(x/s) + z and y ≈ s_x s_w Σ (q_x − z_x) q_w.

onnx, onnxscript and onnxruntime are the optional ``[deploy]`` extra (``pip install
'genoise[deploy]'``); :func:`require` names the missing one.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genoise.io import atomic_output

EXTRA = "pip install 'genoise[deploy]'"


def require(*packages: str) -> None:
    """Import ``packages`` or raise a one-line ``ImportError`` naming the missing one and
    the extra that installs it."""
    for package in packages:
        try:
            with quiet_torch_logs():  # torchao logs its missing CUDA kernels on import
                importlib.import_module(package)
        except ImportError as err:
            raise ImportError(
                f"{package} is not installed ({EXTRA} installs onnx, onnxscript, onnxruntime and torchao)"
            ) from err


def has_extra(*packages: str) -> bool:
    """Whether every package of ``packages`` imports."""
    try:
        require(*packages)
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def quiet_torch_logs() -> Iterator[None]:
    """Silence torch's exporter chatter (graph dumps, progress lines, warnings about
    torchvision) for the duration; our one-line error says what failed."""
    loggers = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith(("torch", "onnx"))
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export_failure(model: nn.Module, err: Exception) -> ValueError:
    """One line: what in ``model`` has no static graph."""
    text = str(err)
    where = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)', text)
    place = f" at {Path(where[1]).name}:{where[2]} ({where[4].strip()})" if where else ""
    if "data-dependent" in text or "GuardOnDataDependentSymNode" in text:
        return ValueError(
            f"cannot export {type(model).__name__} to ONNX: its forward has control flow that "
            f"depends on tensor values{place}; a static graph needs shape-only control flow"
        )
    summary = re.search(r"## Exception summary\s+(.+)", text)
    reason = summary[1] if summary else text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return ValueError(f"cannot export {type(model).__name__} to ONNX{place}: {reason.strip()[:300]}")


def export_onnx(
    model: nn.Module,
    example: Tensor | tuple[Tensor, ...],
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    opset: int | None = None,
    simplify: bool = True,
) -> Path:
    """Export ``model`` (in eval mode) to the ONNX file ``path``; returns the path.

    ``example`` is an input batch (or a tuple of inputs); with ``dynamic_batch`` the first
    dimension of every input is symbolic, so the file serves batch 1 and batch N. With
    ``simplify`` (default) the graph gets :func:`~genoise.deploy.onnx_graph.
    simplify_for_inference`'s rewrites (spatial means as global pooling, consecutive affine
    layers folded). The file is written to a temporary name beside ``path`` and renamed once
    ``onnx.checker`` accepts it: an interrupted export leaves no half-written model.
    """
    require("onnx", "onnxscript")
    import onnx

    inputs = example if isinstance(example, tuple) else (example,)
    path = Path(path)
    was_training = model.training
    model.eval()
    dims = None
    if dynamic_batch:
        batch = torch.export.Dim("batch")
        dims = tuple({0: batch} for _ in inputs)
    try:
        with atomic_output(path) as tmp, quiet_torch_logs():
            try:
                torch.onnx.export(
                    model,
                    inputs,
                    str(tmp),
                    dynamo=True,
                    dynamic_shapes=dims,
                    opset_version=opset,
                    verbose=False,
                    external_data=False,
                )
            except Exception as err:  # the exporter wraps every torch.export failure
                raise _export_failure(model, err) from err
            if simplify:
                from genoise.deploy.onnx_graph import simplify_for_inference

                onnx.save(simplify_for_inference(onnx.load(str(tmp)))[0], str(tmp))
            onnx.checker.check_model(str(tmp))
    finally:
        model.train(was_training)
    return path


def ort_session(path: str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session on ``path`` using ``threads`` intra-op threads (one
    inter-op thread, sequential execution, every graph optimisation on)."""
    require("onnxruntime")
    import onnxruntime as ort

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_run(session: Any, *inputs: Tensor) -> Tensor:
    """Run ``session`` on ``inputs`` (CPU tensors); the first output as a tensor."""
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(
            f"the ONNX model takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}"
        )
    feed = {name: x.detach().cpu().contiguous().numpy() for name, x in zip(names, inputs, strict=True)}
    return torch.from_numpy(session.run(None, feed)[0])


def first_multiply_add(path: str | Path) -> list[str]:
    """The name of the first Conv / Gemm / MatMul node of the ONNX graph at ``path`` (nodes are
    stored in topological order), as a one-element list (empty if there is none)."""
    import onnx

    for node in onnx.load(str(path)).graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            return [node.name]
    return []


def quantize_onnx_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Tensor,
    *,
    batch_size: int = 64,
    per_channel: bool = True,
    keep_first_float: bool = True,
) -> Path:
    """Post-training static int8 quantisation of the ONNX model ``fp32_path`` with ONNX
    Runtime (QDQ, int8 weights per channel, int8 activations, min/max calibration on the
    batches of ``calibration``); writes ``out_path`` atomically and returns it.
    With ``keep_first_float`` (default) the first multiply-add — the one that reads the raw
    image — stays fp32, the usual practice: at batch 1 its int8 version costs more than it
    saves (LeNet-5: 99 µs per image with it in fp32 against 159 µs all-int8; the CIFAR
    ConvNet: 64 against 75 µs; one in-process measurement each)."""
    require("onnx", "onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.ndim < 1 or calibration.shape[0] == 0:
        raise ValueError("calibration must hold at least one sample")
    session = ort_session(fp32_path)
    name = session.get_inputs()[0].name
    data = calibration.detach().cpu().float().numpy()

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter(range(0, data.shape[0], batch_size))

        def get_next(self) -> dict[str, Any] | None:
            start = next(self.chunks, None)
            return None if start is None else {name: data[start : start + batch_size]}

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="genoise-int8-") as scratch, atomic_output(out_path) as tmp:
        pre = Path(scratch) / "preprocessed.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        exclude = first_multiply_add(pre) if keep_first_float else []
        quantize_static(
            str(pre),
            str(tmp),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
        )
    return out_path
