"""Run any network with its multiply-adds in another number format (emulated).

Inside ``with NumberFormatMode(fmt):`` every ``F.linear`` and ``F.conv2d`` call — the
multiply-adds of a network, wherever its modules call them — has its weights and inputs
converted to the format, and (for formats that define it) its accumulation and output too;
the other operators (pooling, activations, padding) stay in float32 and their results are
converted when they enter the next multiply-add, as a hardware engine with a float
post-processing unit would do. No module is rewritten, so the emulation works for LeNet-5's
sparse C3 table, the SSL ConvNet or anything else built on the two functions.

Formats (:data:`FORMATS`):

- ``log8_elma`` — Johnson 2018's (8, 1, 5, 5, 7) posit-tapered log format with ELMA: log-
  domain products, exact linear-domain (Kulisch) sums, the result rounded to the format
  (:mod:`genoise.deploy.logformat`). Bias in the accumulator.
- ``posit8`` — (8, 1) posits (Gustafson & Yonemoto 2017): weights and inputs rounded to
  posit8, products summed in float64 (a quire for every sum whose terms span ≤ 53 bits),
  the result rounded to posit8 (:mod:`genoise.deploy.posit`).
- ``anna_6w3a`` — the ANNA chip (Boser et al. 1991; Säckinger et al. 1992): 6-bit weights
  (symmetric, per output channel), 3-bit activations (unsigned when the layer's calibrated
  inputs are non-negative, signed otherwise), ranges calibrated on training batches
  (:mod:`genoise.deploy.fixed`); float accumulation (ANNA's was analog).
- ``int8`` — the same with 8-bit weights (per channel) and 8-bit activations: int8 inference
  in fake-quantised float, the format of quantisation-aware training for the int8 paths.
- ``ternary`` — Net32k-style ternary weights {−a, 0, a} (Li et al. 2016's threshold),
  float inputs.

Fixed-point formats need activation ranges: :meth:`NumberFormatMode.calibrate` runs training
batches in float and keeps, per multiply-add call (in call order — the graph is static),
the running min and max of its input. The quantisers pass gradients straight through, so
the same mode trains a network *through* the format: quantisation-aware training.

:func:`fold_batchnorm` folds eval-mode BatchNorm into the convolution before it (what an
inference engine does before quantising; ``torch.nn.utils.fusion.fuse_conv_bn_eval``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.overrides import TorchFunctionMode

from genoise._checks import check_choice, check_int
from genoise.deploy.fixed import ANNA_WEIGHTS, FixedPoint, ternarize
from genoise.deploy.logformat import LOG8, elma_conv2d, elma_linear
from genoise.deploy.posit import POSIT8
from genoise.deploy.sparsity import CONV_OPS, LINEAR_OPS, conv_arguments

# name -> (bits per weight, what it emulates)
FORMATS: dict[str, tuple[float, str]] = {
    "log8_elma": (8, "(8, 1, 5, 5, 7) log, ELMA with a Kulisch accumulator (Johnson 2018)"),
    "posit8": (8, "(8, 1) posit weights, inputs and outputs, float64 sums"),
    "anna_6w3a": (6, "6-bit weights, 3-bit activations (ANNA, Boser et al. 1991)"),
    "int8": (8, "8-bit weights (per channel) and activations, symmetric fixed point: int8 inference"),
    "ternary": (1.585, "ternary weights {-a, 0, a} (Net32k; Li et al. 2016), float inputs"),
}
# fixed-point formats: name -> (weight format, activation bits)
FIXED: dict[str, tuple[FixedPoint, int]] = {
    "anna_6w3a": (ANNA_WEIGHTS, 3),
    "int8": (FixedPoint(8, signed=True, per_channel=True), 8),
}
CALIBRATIONS = ("mse", "max")
SAMPLE_PER_BATCH = 16384  # input values kept per call and batch for the MSE clipping search


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) where every ``Conv2d`` directly followed by a
    ``BatchNorm2d`` inside an ``nn.Sequential`` carries the normalisation in its weights and
    bias, the BatchNorm replaced by ``nn.Identity``: w' = w·γ/σ, b' = (b − μ)·γ/σ + β."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, bn)
                module._modules[second] = nn.Identity()
    return model


class NumberFormatMode(TorchFunctionMode):
    """``with NumberFormatMode("log8_elma"): model(x)`` — see the module docstring.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    activation_bits : int, optional
        Bits of the activations of the fixed-point formats (default: 3 for ``anna_6w3a``, the
        chip's; 8 for ``int8``).
    calibration : {"mse", "max"}
        How :meth:`calibrate` sets the activation ranges.
    """

    def __init__(self, fmt: str, *, activation_bits: int | None = None, calibration: str = "mse") -> None:
        super().__init__()
        self.fmt = check_choice("fmt", fmt, tuple(FORMATS))
        self.calibration = check_choice("calibration", calibration, CALIBRATIONS)
        default_bits = FIXED[fmt][1] if fmt in FIXED else 8
        self.activation_bits = check_int("activation_bits", default_bits if activation_bits is None
                                         else activation_bits, min=2, max=16)
        self.ranges: list[tuple[float, float]] = []  # per call: the calibrated (low, high) of its input
        self._samples: list[list[Tensor]] = []
        self._call = 0
        self._observe = False

    @property
    def needs_calibration(self) -> bool:
        return self.fmt in FIXED

    def __enter__(self) -> NumberFormatMode:
        self._call = 0
        return super().__enter__()

    @torch.no_grad()
    def calibrate(self, model: nn.Module, batches: Iterable[Tensor]) -> NumberFormatMode:
        """Each multiply-add's input range over ``batches`` (model in eval mode, float):
        ``calibration="max"`` keeps the extremes; ``"mse"`` (default) clips at the value c
        that minimises the mean squared quantisation error E(q_c(x) − x)² over a sample of
        the inputs (c among 40 fractions of the extreme), the usual choice at few bits."""
        self.ranges, self._samples, self._observe = [], [], True
        was_training = model.training
        model.eval()
        try:
            for batch in batches:
                with self:
                    model(batch)
        finally:
            self._observe = False
            model.train(was_training)
        if not self.ranges:
            raise ValueError("calibration saw no linear or convolution call: is the model empty?")
        if self.calibration == "mse":
            self.ranges = [self._mse_range(torch.cat(values), low)
                           for values, (low, _) in zip(self._samples, self.ranges, strict=True)]
        self._samples = []
        return self

    def _mse_range(self, values: Tensor, low: float) -> tuple[float, float]:
        signed = low < 0
        top = float(values.abs().max() if signed else values.max().clamp(min=0))
        fmt = FixedPoint(self.activation_bits, signed=signed)
        clips = top * torch.linspace(0.05, 1.0, 40, dtype=values.dtype)
        scales = (clips / fmt.qmax).clamp(min=1e-12)[:, None]
        quantized = (values[None] / scales).round().clamp(fmt.qmin, fmt.qmax) * scales
        best = float(clips[(quantized - values[None]).square().mean(1).argmin()])
        return (-best if signed else max(low, 0.0), best)

    def _activation_format(self, index: int) -> tuple[FixedPoint, Tensor]:
        if index >= len(self.ranges):
            raise ValueError(
                f"{self.fmt}: multiply-add call {index} has no calibrated range "
                f"({len(self.ranges)} calibrated); run calibrate() on this model first"
            )
        low, high = self.ranges[index]
        signed = low < 0
        fmt = FixedPoint(self.activation_bits, signed=signed)
        top = max(abs(low), abs(high)) if signed else high
        return fmt, torch.tensor(max(top, 1e-12) / fmt.qmax)

    def _inputs(self, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
        """(input, weight) converted to the format (float tensors of the represented values)."""
        index = self._call
        self._call += 1
        if self._observe:
            low, high = float(x.min()), float(x.max())
            flat = x.detach().flatten().double()
            sample = flat[:: max(1, flat.numel() // SAMPLE_PER_BATCH)]
            if index < len(self.ranges):
                old = self.ranges[index]
                self.ranges[index] = (min(low, old[0]), max(high, old[1]))
                self._samples[index].append(sample)
            else:
                self.ranges.append((low, high))
                self._samples.append([sample])
            return x, weight
        if self.fmt in FIXED:
            weights = FIXED[self.fmt][0]
            act, scale = self._activation_format(index)
            return act.quantize(x, scale.to(x)), weights.quantize(weight, weights.scale_for(weight))
        if self.fmt == "ternary":
            return x, ternarize(weight)
        if self.fmt == "posit8":
            return POSIT8.quantize(x), POSIT8.quantize(weight)
        return x, weight  # log8_elma converts inside ELMA

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in LINEAR_OPS:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            x, weight = self._inputs(x, weight)
            if self._observe:
                return func(x, weight, bias)
            if self.fmt == "log8_elma":
                return elma_linear(x, weight, bias, LOG8).to(args[0].dtype)
            if self.fmt == "posit8":
                y = F.linear(
                    x.double(), weight.double(), None if bias is None else POSIT8.quantize(bias).double()
                )
                return POSIT8.quantize(y).to(args[0].dtype)
            return func(x, weight, bias)
        if func in CONV_OPS:
            a = conv_arguments(args, kwargs)
            x, weight = self._inputs(a["input"], a["weight"])
            rest = (a["stride"], a["padding"], a["dilation"], a["groups"])
            if self._observe:
                return func(x, weight, a["bias"], *rest)
            if self.fmt == "log8_elma":
                return elma_conv2d(x, weight, a["bias"], LOG8, *rest).to(a["input"].dtype)
            if self.fmt == "posit8":
                bias = None if a["bias"] is None else POSIT8.quantize(a["bias"]).double()
                y = F.conv2d(x.double(), weight.double(), bias, *rest)
                return POSIT8.quantize(y).to(a["input"].dtype)
            return func(x, weight, a["bias"], *rest)
        return func(*args, **kwargs)
