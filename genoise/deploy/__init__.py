"""Hardware-minded inference (LeCun, ISSCC 2019, "Deep learning hardware: past, present,
and future"): batch-1 latency, low-precision and exotic number formats, sparse activations,
and a static graph exported to ONNX.

- :mod:`~genoise.deploy.latency` — batch-1 median / p90 and batch-N time in a fresh process
  with an explicit thread count, for eager, ``torch.compile``, ONNX Runtime, pt2e int8 and
  the event-driven path;
- :mod:`~genoise.deploy.onnx_runtime` — ``torch.onnx`` export (dynamic batch, atomic),
  ONNX Runtime sessions, static int8 quantisation (``quantize_static``);
- :mod:`~genoise.deploy.onnx_graph` — graph rewrites ONNX Runtime does not make (spatial
  means as global pooling, consecutive affine layers folded), applied on export;
- :mod:`~genoise.deploy.pt2e` — int8 through torchao's pt2e flow, compiled by Inductor;
- number formats, emulated exactly: :mod:`~genoise.deploy.logformat` (Johnson 2018's
  (N, l, α, β, γ) log format and ELMA with a Kulisch accumulator), :mod:`~genoise.deploy.
  posit` (posits, round to nearest even), :mod:`~genoise.deploy.fixed` (fixed point as in
  ANNA, ternary weights as in Net32k);
- :mod:`~genoise.deploy.emulate` — run any network with its multiply-adds in one of those
  formats (``NumberFormatMode``), BatchNorm folding;
- :mod:`~genoise.deploy.sparsity` — the event-driven linear layer, per-layer sparsity and
  exact multiply-add counts, the L1 activity penalty.

onnx, onnxscript, onnxruntime and torchao are the optional ``[deploy]`` extra.
"""

from genoise.deploy.emulate import FORMATS, NumberFormatMode, fold_batchnorm
from genoise.deploy.fixed import (
    ANNA_ACTIVATIONS_UNSIGNED,
    ANNA_WEIGHTS,
    ActivationObserver,
    FixedPoint,
    ternarize,
)
from genoise.deploy.latency import Latency, measure, measure_in_subprocess
from genoise.deploy.logformat import LOG8, LogFormat, elma_conv2d, elma_dot, elma_linear
from genoise.deploy.onnx_graph import simplify_for_inference
from genoise.deploy.onnx_runtime import export_onnx, has_extra, ort_run, ort_session, quantize_onnx_int8
from genoise.deploy.posit import POSIT8, PositFormat
from genoise.deploy.sparsity import (
    EventLinear,
    EventMode,
    LayerSparsity,
    activity_penalty,
    event_linear,
    record_layer_inputs,
    sparsity_report,
)

__all__ = [
    "ANNA_ACTIVATIONS_UNSIGNED",
    "ANNA_WEIGHTS",
    "FORMATS",
    "LOG8",
    "POSIT8",
    "ActivationObserver",
    "EventLinear",
    "EventMode",
    "FixedPoint",
    "Latency",
    "LayerSparsity",
    "LogFormat",
    "NumberFormatMode",
    "PositFormat",
    "activity_penalty",
    "elma_conv2d",
    "elma_dot",
    "elma_linear",
    "event_linear",
    "export_onnx",
    "fold_batchnorm",
    "has_extra",
    "measure",
    "measure_in_subprocess",
    "ort_run",
    "ort_session",
    "quantize_onnx_int8",
    "record_layer_inputs",
    "simplify_for_inference",
    "sparsity_report",
    "ternarize",
]
