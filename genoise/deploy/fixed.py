"""Fixed-point and ternary quantisation of weights and activations, with straight-through
gradients, for hardware-minded inference.

Fixed point. A ``b``-bit format has integer levels ``q`` in ``[qmin, qmax]``: signed
symmetric ``-(2**(b-1) - 1) .. 2**(b-1) - 1`` (the most negative two's-complement level is
left unused, so 0 is the centre), or unsigned ``0 .. 2**b - 1``. A real ``x`` with scale
``s`` becomes ``s · clamp(round(x / s), qmin, qmax)``, with ``round`` taking halves to even.
Calibration is max-abs: ``s = max|x| / qmax``, or ``max(max x, 0) / qmax`` for an unsigned
format (its negative values clamp to 0 anyway). The maximum runs over the whole tensor,
or, with ``per_channel``, over dims 1.. for each output channel (dim 0) of a weight. The
ANNA chip (Boser, Säckinger, Bromley, LeCun & Jackel 1991, "An analog neural network
processor with programmable topology", IEEE JSSC 26(12)) computes with 6-bit weights and
3-bit neuron states: :data:`ANNA_WEIGHTS` and :data:`ANNA_ACTIVATIONS_UNSIGNED`.

The arithmetic is torch's own fake-quantisation ops, ``torch.fake_quantize_per_tensor_affine``
and ``torch.fake_quantize_per_channel_affine``, zero point 0. These are core ATen ops, not
the deprecated ``torch.ao.quantization`` workflow, and they accept every width here
(levels fit in int32) and every floating dtype. What they compute (ATen's CPU kernels,
checked in the tests; the CUDA kernels read the same):

* the scale is float32. The level is ``nearbyint(x · inv)`` with ``inv = 1.0f / scale``
  computed in float32 and the product taken in ``x``'s dtype (float32 at least).
  ``nearbyint`` under the default floating-point environment rounds halves to even:
  0.5 → 0, 1.5 → 2, 2.5 → 2. ``x · (1/s)`` can differ from ``x / s`` in the last place,
  so :meth:`FixedPoint.codes` copies this arithmetic to give the op's own levels. The
  output ``level · scale`` is a float32 product in the per-tensor op, even for float64
  ``x``; the per-channel op multiplies in ``x``'s dtype;
* the gradient is straight-through but clipped. It is 1 where the rounded level
  ``nearbyint(x · inv)`` lies in ``[qmin, qmax]`` and 0 where it falls outside and is
  clamped. No gradient reaches the scale, which is a calibrated constant.

Ternary weights: :func:`ternarize` gives values in ``{-a, 0, +a}``, as a chip with ternary
synapses stores them (NET32K: Graf, Janow, Henderson & Lee 1991, "Reconfigurable neural
net chip with 32K connections"). The threshold and scale are those of ternary weight
networks (Li, Zhang & Liu 2016, "Ternary weight networks"): ``Δ = 0.7 · mean|w|``,
``w_t = sign(w) · [|w| > Δ]`` and ``a = mean{|w_i| : |w_i| > Δ}``, which approximately
minimise ``||w - a · w_t||²``. Both are computed per output channel when ``w.ndim >= 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from genoise._checks import check_finite

__all__ = [
    "ANNA_ACTIVATIONS_UNSIGNED",
    "ANNA_WEIGHTS",
    "ActivationObserver",
    "FixedPoint",
    "ternarize",
]

# Smallest scale: float32's smallest normal number. Its float32 reciprocal (8.5e37) is
# still finite, so an all-zero tensor or channel quantises to zeros, never to NaN.
_SCALE_FLOOR = torch.finfo(torch.float32).tiny


def _check_float(name: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    return x


@dataclass(frozen=True)
class FixedPoint:
    """A ``bits``-bit fixed-point format (``bits`` in 2..16): signed symmetric or unsigned
    levels, a per-tensor scale or one per output channel (dim 0). See the module docstring
    for the rounding and the gradient."""

    bits: int
    signed: bool = True
    per_channel: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise ValueError(f"FixedPoint bits must be an integer in 2..16, got {self.bits!r}")
        for name in ("signed", "per_channel"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"FixedPoint {name} must be a bool, got {getattr(self, name)!r}")

    @property
    def qmax(self) -> int:
        """The largest level: ``2**(bits-1) - 1`` signed, ``2**bits - 1`` unsigned."""
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def qmin(self) -> int:
        """The smallest level: ``-qmax`` signed, 0 unsigned."""
        return -self.qmax if self.signed else 0

    @property
    def levels(self) -> int:
        """How many distinct levels: ``2**bits - 1`` signed, ``2**bits`` unsigned."""
        return self.qmax - self.qmin + 1

    def _scale_from_top(self, top: Tensor) -> Tensor:
        return (top.detach().to(torch.float64) / self.qmax).to(torch.float32).clamp(min=_SCALE_FLOOR)

    def scale_for(self, x: Tensor) -> Tensor:
        """Max-abs calibration: ``max|x| / qmax`` (``max(max x, 0) / qmax`` unsigned), floored
        at float32's smallest normal so it is > 0. Float32, 0-dim, or shape ``(x.shape[0],)``
        with the maximum over dims 1.. when ``per_channel``."""
        data = check_finite("x", _check_float("x", x).detach())
        top = data.abs() if self.signed else data.clamp(min=0)
        if self.per_channel:
            if data.ndim == 0:
                raise ValueError("per-channel quantisation needs x with a channel dim 0, got a 0-dim tensor")
            top = top.reshape(top.shape[0], -1).amax(dim=1)
        else:
            top = top.amax()
        return self._scale_from_top(top)

    def _scale(self, x: Tensor, scale: Tensor | float | None) -> Tensor:
        """The scale the ops take: float32 on ``x``'s device, 0-dim or ``(C,)``, checked."""
        if scale is None:
            return self.scale_for(x)
        s = torch.as_tensor(scale).detach().to(device=x.device, dtype=torch.float32)
        if self.per_channel:
            if x.ndim == 0 or s.numel() != x.shape[0]:
                raise ValueError(
                    f"per-channel scale must have x.shape[0] elements, got {s.numel()} "
                    f"for x of shape {tuple(x.shape)}"
                )
            s = s.reshape(-1)
        elif s.numel() != 1:
            raise ValueError(f"per-tensor scale must have one element, got shape {tuple(s.shape)}")
        else:
            s = s.reshape(())
        if not bool((torch.isfinite(s) & (s >= _SCALE_FLOOR)).all()):
            raise ValueError(f"scale must be finite and >= {_SCALE_FLOOR:.3g} (float32's smallest normal)")
        return s

    def quantize(self, x: Tensor, scale: Tensor | float | None = None) -> Tensor:
        """``scale · clamp(round_half_even(x · (1/scale)), qmin, qmax)`` in ``x``'s dtype, by
        torch's fake-quantisation op. The gradient is 1 where the rounded level is inside
        ``[qmin, qmax]`` and 0 outside. Without ``scale``, ``scale_for(x)`` calibrates."""
        _check_float("x", x)
        s = self._scale(x, scale)
        zero = torch.zeros(s.shape, dtype=torch.int32, device=x.device)
        if self.per_channel:
            return torch.fake_quantize_per_channel_affine(x, s, zero, 0, self.qmin, self.qmax)
        return torch.fake_quantize_per_tensor_affine(x, s, zero, self.qmin, self.qmax)

    def codes(self, x: Tensor, scale: Tensor | float | None = None) -> Tensor:
        """The integer levels (int64) :meth:`quantize` uses: ``quantize(x, s) == codes(x, s) ·
        s``. The arithmetic is the op's own, so its last-place rounding matches too."""
        _check_float("x", x)
        s = self._scale(x, scale)
        inv = torch.reciprocal(s)  # float32, as the kernels' 1.0f / scale
        if self.per_channel:
            inv = inv.reshape(-1, *([1] * (x.ndim - 1)))
        dtype = torch.promote_types(x.dtype, torch.float32)
        level = torch.round(x.detach().to(dtype) * inv.to(dtype))  # torch.round: halves to even
        return level.clamp(self.qmin, self.qmax).to(torch.int64)


def ternarize(w: Tensor, threshold: float = 0.7) -> Tensor:
    """Ternary weights (Li, Zhang & Liu 2016): ``a · sign(w) · [|w| > Δ]`` with
    ``Δ = threshold · mean|w|`` and ``a = mean{|w| : |w| > Δ}``, per output channel (dim 0)
    when ``w.ndim >= 2``, else over the whole tensor. A channel with nothing above ``Δ`` (all
    zeros) gets ``a = 0``. The gradient is straight-through: 1 for every element."""
    _check_float("w", w)
    check_finite("w", w)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not (math.isfinite(threshold) and threshold >= 0)
    ):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    data = w.detach()
    flat = data.abs().reshape(data.shape[0], -1) if data.ndim >= 2 else data.abs().reshape(1, -1)
    delta = threshold * flat.mean(dim=1, keepdim=True)
    keep = flat > delta
    count = keep.sum(dim=1, keepdim=True)
    a = (flat * keep).sum(dim=1, keepdim=True) / count.clamp(min=1)
    ternary = (torch.sign(data).reshape(flat.shape) * keep * a).reshape(data.shape)
    # ternary + (w - w): exactly the ternary values forward (w - w is 0), identity backward.
    return ternary + (w - w.detach())


class ActivationObserver:
    """Calibrates an activation scale: the running ``max|x|`` and ``max x`` over the batches
    passed to :meth:`update`. :meth:`scale` turns them into a per-tensor scale for a format,
    as :meth:`FixedPoint.scale_for` would on all the batches together."""

    def __init__(self) -> None:
        self.max_abs: Tensor | None = None
        self.max: Tensor | None = None
        self.batches = 0

    def update(self, x: Tensor) -> Tensor:
        """Fold one batch into the running maxima. Returns ``x`` unchanged, so the observer
        can sit inline in a forward pass."""
        data = check_finite("x", _check_float("x", x).detach())
        max_abs, top = data.abs().amax(), data.amax()
        if self.max_abs is None or self.max is None:
            self.max_abs, self.max = max_abs, top
        else:
            self.max_abs, self.max = torch.maximum(self.max_abs, max_abs), torch.maximum(self.max, top)
        self.batches += 1
        return x

    def reset(self) -> None:
        """Forget every batch seen."""
        self.max_abs, self.max, self.batches = None, None, 0

    def scale(self, fmt: FixedPoint) -> Tensor:
        """float32 0-dim scale for ``fmt``: ``max|x| / qmax`` signed, ``max(max x, 0) / qmax``
        unsigned."""
        if self.max_abs is None or self.max is None:
            raise ValueError("ActivationObserver has seen no batch; call update(x) first")
        if fmt.per_channel:
            raise ValueError(
                "ActivationObserver calibrates a per-tensor scale; fmt.per_channel must be False"
            )
        return fmt._scale_from_top(self.max_abs if fmt.signed else self.max.clamp(min=0))


ANNA_WEIGHTS = FixedPoint(6, signed=True, per_channel=True)
"""ANNA's 6-bit weights (Boser et al. 1991): signed levels -31..31, a scale per output unit."""

ANNA_ACTIVATIONS_UNSIGNED = FixedPoint(3, signed=False)
"""ANNA's 3-bit neuron states (Boser et al. 1991), as unsigned levels 0..7 (non-negative
activations such as ReLU outputs)."""
