"""Posit numbers, emulated exactly on float64 tensors.

A posit (Gustafson & Yonemoto 2017, "Beating floating point at its own game: posit
arithmetic") with ``N`` bits and ``es`` exponent bits is an ``N``-bit two's-complement
integer code. Code 0 is zero and code ``2**(N-1)`` is NaR ("not a real"). Any other code
``c`` has the sign of its top bit, and its magnitude is read from ``p = c`` or, when
negative, ``p = 2**N - c`` (two's-complement negation). The ``N - 1`` bits of ``p`` below
the sign are

* the regime: a run of ``m`` identical bits, ended by the opposite bit or by the end of the
  word. A run of ones gives ``k = m - 1`` and a run of zeros gives ``k = -m``;
* up to ``es`` exponent bits ``e``, unsigned; bits cut off by the end of the word count
  as zeros;
* whatever is left, ``F`` bits, is the fraction ``f``;

and the value is ``useed**k · 2**e · (1 + f / 2**F)`` with ``useed = 2**2**es``. Hence
``maxpos = useed**(N-2)`` (code ``2**(N-1) - 1``) and ``minpos = useed**-(N-2)`` (code 1).
The ordering of codes read as signed integers is the ordering of their values.

Rounding follows the 2022 Posit Standard: round to nearest, ties to even. The standard
states it on bit strings. Between adjacent codes ``c`` and ``c + 1`` the boundary is the
``(N+1)``-bit posit (same ``es``) whose code is ``2c + 1``: the bits of ``c`` followed by a
1. A value exactly on the boundary goes to whichever of ``c``, ``c + 1`` is even. Where the
fraction is present that boundary is the arithmetic midpoint. Where the word ends inside
the regime or exponent it is not: for (8, 1) posits the boundary between 1024 (``0x7E``)
and 4096 (``0x7F``) is the geometric midpoint 2048. Posits never round a nonzero real to 0
or to NaR: ``|x| > maxpos`` gives ``±maxpos`` and ``0 < |x| < minpos`` gives ``±minpos``.
(The 2022 standard fixes ``es = 2``. ``es`` stays a parameter here, as in the 2017 paper.)

Emulation: for each format the values of all ``2**N`` codes, and the ``2**(N-1) - 2``
boundaries between positive codes, are computed once from the bit fields (vectorised
integer arithmetic, cached). Encoding is then one ``torch.searchsorted`` on float64. Both
tables are dyadic rationals with at most 15 significant bits and exponents within ±256, so
they are exact in float64. Every float16/bfloat16/float32/float64 input is exact in
float64 as well, so each comparison, and hence the rounding, is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["POSIT8", "PositFormat"]


def _bit_length(x: Tensor) -> Tensor:
    """Bit length of each non-negative int64 (< 2**53): ``0`` for 0, else ``floor(log2 x) + 1``.
    ``frexp`` writes ``x = m · 2**exp`` with ``m`` in [0.5, 1), so ``exp`` is the bit length."""
    return torch.frexp(x.to(torch.float64)).exponent.to(torch.int64)


def _decode_all(bits: int, es: int) -> Tensor:
    """float64 values of every ``bits``-bit posit code ``0 .. 2**bits - 1`` (NaR -> nan),
    read field by field as in the module docstring (vectorised over codes)."""
    width = bits - 1  # bits below the sign
    codes = torch.arange(2**bits, dtype=torch.int64)
    negative = codes >= 2 ** (bits - 1)
    magnitude = torch.where(negative, 2**bits - codes, codes)
    body = magnitude & (2**width - 1)
    first = (body >> (width - 1)) & 1
    # Flip a run of ones into a run of zeros: the run is then the leading zeros of `other`.
    other = torch.where(first == 1, body ^ (2**width - 1), body)
    run = width - _bit_length(other)  # 1 .. width
    k = torch.where(first == 1, run - 1, -run)
    rest_bits = (width - run - 1).clamp(min=0)  # bits after the regime's terminating bit
    rest = body & ((1 << rest_bits) - 1)
    exp_bits = rest_bits.clamp(max=es)
    frac_bits = rest_bits - exp_bits
    exponent = (rest >> frac_bits) << (es - exp_bits)  # cut-off exponent bits are zeros
    fraction = rest & ((1 << frac_bits) - 1)
    power = k * 2**es + exponent - frac_bits
    value = torch.ldexp((fraction + (1 << frac_bits)).to(torch.float64), power)
    value = torch.where(negative, -value, value)
    value[0] = 0.0
    value[2 ** (bits - 1)] = float("nan")
    return value


@lru_cache(maxsize=64)
def _tables(bits: int, es: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(values of all codes, boundaries between positive codes ``c`` and ``c + 1``)."""
    values = _decode_all(bits, es)
    positive = torch.arange(1, 2 ** (bits - 1) - 1, dtype=torch.int64)  # c = 1 .. maxcode - 1
    boundaries = _decode_all(bits + 1, es)[2 * positive + 1]
    return values.to(device), boundaries.to(device)


@dataclass(frozen=True)
class PositFormat:
    """An ``N = bits``-bit posit format with ``es`` exponent bits (``bits`` in 2..16, ``es``
    in 0..4). Codes are int64 tensors holding the standard two's-complement bit patterns,
    in ``[0, 2**bits)``. See the module docstring for the format and its rounding."""

    bits: int = 8
    es: int = 1

    def __post_init__(self) -> None:
        for name, value, lo, hi in (("bits", self.bits, 2, 16), ("es", self.es, 0, 4)):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"PositFormat {name} must be an integer in {lo}..{hi}, got {value!r}")

    @property
    def useed(self) -> int:
        """``2**2**es``: the factor one more regime bit multiplies the value by."""
        return 2**2**self.es

    @property
    def maxpos(self) -> float:
        """The largest posit, ``useed**(bits-2)``: code ``2**(bits-1) - 1``."""
        return 2.0 ** (2**self.es * (self.bits - 2))

    @property
    def minpos(self) -> float:
        """The smallest positive posit, ``useed**-(bits-2)``: code 1."""
        return 2.0 ** -(2**self.es * (self.bits - 2))

    @property
    def nar(self) -> int:
        """The NaR ("not a real") code, ``2**(bits-1)``."""
        return 2 ** (self.bits - 1)

    def encode(self, x: Tensor) -> Tensor:
        """Round a real tensor to posit codes (int64, same shape): nearest, ties to even code,
        saturating at ``±maxpos`` and ``±minpos`` (0 stays 0, code 0). NaN or ±Inf raise
        ``ValueError``. The standard maps them to NaR, which a quantiser should not produce
        silently."""
        if not isinstance(x, Tensor) or x.is_complex():
            raise ValueError(f"x must be a real tensor, got {type(x).__name__}")
        x64 = x.detach().to(torch.float64)
        finite = torch.isfinite(x64)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"x contains {bad} NaN/Inf value(s); posits encode only finite reals")
        _, boundaries = _tables(self.bits, self.es, x64.device)
        magnitude = x64.abs()
        below = torch.searchsorted(boundaries, magnitude, side="left")  # boundaries < |x|
        code = below + 1
        if boundaries.numel() > 0:  # exactly on a boundary: take the even one of c, c + 1
            tie = boundaries[below.clamp(max=boundaries.numel() - 1)] == magnitude
            code = torch.where(tie & (code % 2 == 1), code + 1, code)
        code = torch.where(magnitude == 0, torch.zeros_like(code), code)
        return torch.where(x64 < 0, 2**self.bits - code, code)

    def decode(self, codes: Tensor) -> Tensor:
        """The float64 values of integer posit codes in ``[0, 2**bits)`` (NaR gives nan)."""
        if not isinstance(codes, Tensor) or codes.is_floating_point() or codes.is_complex():
            raise ValueError(f"codes must be an integer tensor, got {getattr(codes, 'dtype', type(codes))}")
        codes = codes.to(torch.int64)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 2**self.bits):
            raise ValueError(
                f"posit{self.bits} codes must lie in [0, {2**self.bits}), "
                f"got [{int(codes.min())}, {int(codes.max())}]"
            )
        values, _ = _tables(self.bits, self.es, codes.device)
        return values[codes]

    def quantize(self, x: Tensor) -> Tensor:
        """``decode(encode(x))`` in ``x``'s dtype (the default dtype for integer ``x``).

        Not differentiable: no gradient flows through the integer codes. The cast from float64
        is exact for float64, and for float32 unless ``es = 4`` and ``bits >= 10``, where posits
        outrun float32's range. float16 and bfloat16 may round."""
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return self.decode(self.encode(x)).to(dtype)


POSIT8 = PositFormat(8, 1)
"""8-bit posits with one exponent bit, the format Johnson (2018, "Rethinking floating point
for deep learning") compares with 8-bit floats and integers."""
