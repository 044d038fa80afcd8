"""int8 inference through PyTorch 2 export quantisation (pt2e, in torchao).

``torch.ao.quantization`` is deprecated in our torch; its successor is torchao's pt2e flow:
``torch.export`` the model, annotate the graph with a back-end's quantiser (here
``X86InductorQuantizer``: int8 weights per output channel, uint8 activations per tensor,
conv/linear fused with the ReLU that follows), insert observers (``prepare_pt2e``),
calibrate on training batches, replace the observers by quantise/dequantise pairs
(``convert_pt2e``), and let Inductor (``torch.compile`` with weight freezing) lower the
patterns to oneDNN int8 kernels.

The exported graph has a *static* batch size: Inductor's int8 lowering with frozen weights
does not support a symbolic batch in our torch (its channels-last stride check fails), so
:func:`quantize_pt2e` builds one program per batch size. The optional ``torchao`` package is
part of the ``[deploy]`` extra.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from genoise.deploy.onnx_runtime import quiet_torch_logs, require


def _torchao() -> tuple[Any, Any, Any, Any]:
    logging.getLogger("torchao").setLevel(logging.ERROR)  # it logs its missing CUDA kernels on import
    with quiet_torch_logs():
        require("torchao")
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    return x86, prepare_pt2e, convert_pt2e, allow_exported_model_train_eval


def quantize_pt2e(
    model: nn.Module, calibration: Tensor, *, batch_size: int = 1, compile: bool = True
) -> nn.Module:
    """The int8 version of ``model`` for inputs of exactly ``batch_size`` samples.

    ``calibration`` (N, ...) are training inputs; they are fed in chunks of ``batch_size``
    (the last chunk padded by repetition) to the observers. With ``compile`` the converted
    graph is compiled by Inductor with frozen weights (the int8 kernels); without, it runs
    the reference quantise → dequantise → fp32 operators (same numbers up to rounding).
    """
    x86, prepare_pt2e, convert_pt2e, allow_exported_model_train_eval = _torchao()
    if calibration.ndim < 1 or calibration.shape[0] == 0:
        raise ValueError("calibration must hold at least one sample")
    model = model.eval()
    example = calibration[:1].expand(batch_size, *calibration.shape[1:]).contiguous()
    with quiet_torch_logs(), torch.no_grad():
        graph = torch.export.export(model, (example,)).module()
        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        for start in range(0, calibration.shape[0], batch_size):
            chunk = calibration[start : start + batch_size]
            if chunk.shape[0] < batch_size:
                chunk = chunk[torch.arange(batch_size) % chunk.shape[0]]
            prepared(chunk)
        converted = convert_pt2e(prepared)
    # model.eval() / .train() on an exported program raise unless allowed (they are no-ops here)
    allow_exported_model_train_eval(converted)
    if not compile:
        return converted
    import torch._inductor.config as inductor_config

    compiled = torch.compile(converted)
    # compile now (not inside a timed call) with freezing: the int8 weights are constant-folded
    # into oneDNN's packed layout; the patch is undone afterwards, other compiles are unaffected
    with quiet_torch_logs(), torch.no_grad(), inductor_config.patch(freezing=True):
        compiled(example)
    return compiled
