"""Johnson's posit-tapered logarithmic numbers and ELMA, emulated bit for bit.

J. Johnson, "Rethinking floating point for deep learning", arXiv:1811.01721 (2018), proposes
an ``(N, l, α, β, γ) log`` number format and *exact log-linear multiply-add* (ELMA): multiply
in the log domain, add in a linear Kulisch accumulator. Its reference hardware is the
``rtl/log`` tree of github.com/facebookresearch/deepfloat; this module follows that RTL (the
file names below are from it) except where "Deviations" says otherwise.

**Code layout.** A code is an ``N``-bit integer (int64 tensor, values in ``[0, 2**N)``) in
*sign-magnitude*, as the RTL's ``LogNumberCompact`` / ``PositDecode`` ("I've changed the
posit layout to not be symmetric"): bit ``N-1`` is the sign and the low ``N-1`` bits ``m``
are a posit magnitude field with ``es = l`` (Gustafson & Yonemoto 2017, "Beating floating
point at its own game: posit arithmetic"): a regime run of ``r`` equal bits ended by the
opposite bit or by the word's end (ones: ``k = r - 1``; zeros: ``k = -r``), then up to ``l``
exponent bits ``e`` (bits cut off by the word's end read as 0), then the ``n_f`` bits left,
``f``. Unlike a posit, ``f`` is the fractional part of the base-2 logarithm, not a linear
mantissa::

    value = ±2**(k·2**l + e + f / 2**n_f)

Code 0 is zero. Code ``2**(N-1)`` (a "negative zero") is the RTL's ±inf, the posit NaR:
:meth:`LogFormat.decode` gives nan for it and :meth:`LogFormat.encode` never produces it.
Within a sign, larger ``m`` means larger magnitude. ``max_exponent = 2**l·(N-2)``:
``maxpos = 2**max_exponent`` (``m = 2**(N-1) - 1``) and ``minpos = 2**-max_exponent``
(``m = 1``). ``frac_bits = F = max(N - 3 - l, 0)`` is the most fraction bits any code has;
``log2_fixed`` returns logs in units of ``2**-F``. The paper's 8-bit format ``LOG8`` is
(8, 1, 5, 5, 7): ``F = 4``, so ``±2**(j/16)`` with ``j`` a multiple of 1 in [-4, 4), of 2 in
[-6, -4) and [4, 6), of 4 in [-8, -6) and [6, 8), and so on out to ``2**±12``.

**Rounding** (:meth:`LogFormat.encode`, :meth:`LogFormat.quantize`): to nearest *in the log
domain*, ties to the even code: posit bit-string rounding, where the boundary between
magnitudes ``c`` and ``c + 1`` is the log value of the ``(N+1)``-bit code ``2c + 1`` (same
``l``). Where the fraction exists that is the midpoint of the two logs; for LOG8 the
boundary between ``2**10`` (``0x7E``) and ``2**12`` (``0x7F``) is ``2**11``. Nonzero reals
never round to 0 or to inf: ``|x| > maxpos`` gives ``±maxpos`` and ``0 < |x| < minpos``
gives ``±minpos``. ``2**b`` is irrational for a non-integer dyadic ``b``, so a float lies
exactly on a boundary only at integer ``b``, a power of two. Encoding compares ``|x|``
(exact in float64 for every float16/bfloat16/float32/float64 input) with the smallest float64
``>= 2**b`` of each boundary, so it is exact; those thresholds and the float64 values of the
codes come from :mod:`decimal` at a precision raised until the rounding decision is certain.

**α, β, γ as the RTL reads them** (``LogInstanceParams.sv``: ``CONFIG_LOG_TO_LINEAR_BITS =
5``, ``CONFIG_LINEAR_TO_LOG_BITS = 5`` for (8, 1)):

* α (``LOG_TO_LINEAR_BITS``): log → linear. ``Pow2LUT_{F}x{α}`` maps the ``F``-bit log
  fraction ``r`` to the α-bit fraction of ``2**(r / 2**F)``, rounded to nearest
  (``gen_tables.py``, ``get_pow2_expansion``: guard, round and sticky bits; ties cannot occur);
  the leading one is implicit. LOG8 uses ``Pow2LUT_4x5``.
* β (``LINEAR_TO_LOG_BITS``): linear → log. ``LinearFixedToFloatSigned`` finds the
  accumulator's leading one and keeps β bits after it; ``FloatSignedRoundToNearestEven``
  rounds them to nearest even from two trailing bits and a sticky bit, a carry moving into
  the exponent.
* γ: the output width of ``Log2LUT_{β}x{γ}``, ``log2(1 + i / 2**β)`` rounded to nearest at
  γ bits, plus a carry bit for entries that round up to 1.0 (``get_log2_expansion``). The
  RTL fixes ``γ = F + 3`` (``LinearFixedToLogCompact``: ``LOG_TRAILING_BITS = 3``): the
  three extra bits are the two trailing bits and the sticky bit of the final rounding. LOG8
  uses ``Log2LUT_5x7``.
* Final step: ``LinearFixedToLog`` does not truncate. ``LogNumberUnpackedToLogCompact``
  rounds the γ-bit log value to the code with ``PositRoundToNearestEven``: to nearest, ties
  to even, on the posit bit string. That is the rule of ``encode`` applied to the exact
  γ-bit log value. Linear → log thus rounds three times: linear fraction to β bits, LUT to γ
  bits, log value to the code.

Our LUTs are the exactly rounded values. They equal every ``Pow2LUT_*`` and ``Log2LUT_*``
table in the RTL (checked while writing this module), and :meth:`LogFormat.pow2_lut` /
:meth:`LogFormat.log2_lut` expose them.

**ELMA** (:func:`elma_dot`, :func:`elma_linear`, :func:`elma_conv2d`). Operands are encoded
(rounded) to the format. A product's log is the exact sum of the two logs, ``Lp`` in units
of ``2**-F``; its linear value is ``±2**(Lp >> F) · P[Lp mod 2**F] / 2**α`` with ``P`` the
Pow2 LUT including its leading one (``LogMultiply`` splits the fixed-point sum the same way,
floor and remainder). A bias is one log number taken to linear through the same LUT and added
in the accumulator, as one more term. All terms are summed exactly; the sum goes through the
β / γ / code rounding above; exact zero gives code 0. The outputs are decoded values.

**Deviations from the RTL.**

* Accumulator width: the RTL's Kulisch accumulator has ``2·max_exponent`` fraction bits
  (``LogDef::getAccFracTapered``; LOG8: 13 + 24 bits plus sign, the paper's 8/38-bit
  multiply-add), so a product below ``2**-(2·max_exponent - α)`` loses low bits (the FIXME
  there), and it has no overflow detection. Ours has ``2·max_exponent + α`` fraction bits and
  is exact for every product and every fan-in up to ``2**24``.
* Underflow: ``LogNumberUnpackedToLogCompact`` flushes a result whose log is below
  ``-max_exponent`` to zero. We saturate to ``±minpos`` like ``encode`` (posits never round a
  nonzero real to 0).
* The minpos tie: when the regime consumes all exponent and fraction bits,
  ``PositRoundHelper`` rounds against a padding zero instead of the code's last bit, so a log
  value exactly halfway between minpos (``m = 1``) and ``m = 2`` goes to minpos there. We
  pick the even code ``m = 2``, as ``encode`` does. (At the top, ``m = 2**(N-1) - 2`` versus
  maxpos, the two rules agree.)
* Parameters: the RTL needs ``γ = F + 3``, ``β >= F`` and has LUT files for a few sizes only;
  here α in 1..24, β in 1..16 and γ in F..30 are free. When ``α <= F - 2`` the top Pow2 entry
  rounds to 2.0; we keep it (``gen_tables.py`` would drop the carry). The RTL uses
  ``F = max(N - 3 - l, 1)``; ours differs only when no code has fraction bits.
* Non-finite inputs raise ``ValueError`` (the RTL would propagate inf), so ELMA never meets
  the inf code.

**Fast exact path** (:func:`elma_linear`, :func:`elma_conv2d`). A product's linear value
depends on the sum of the logs. Split each log into integer part and fraction class
``r = L mod 2**F``. For each class ``r_a`` present among the activations,
``out += (s·2**int(a) where class == r_a) @ (s·P[(r_a + r_w) mod 2**F]·2**(int(w) + carry - α))``:
one float64 matmul or convolution per class (at most 16 for LOG8). Every term is
``±P·2**(e - α)``, exact in float64: a multiple of ``2**(e_min - α)`` of size at most
``2**(e_max + 1)``. So every partial sum, in any order, is exact when
``(e_max + 1) - (e_min - α) + ceil(log2(terms)) <= 53``, with ``e_min`` and ``e_max`` bounded from
the integer parts of the operands' actual codes (plus one for the fraction carry).
Each call checks that bound and, if it fails, falls back to the exact int64-limb accumulator
of :func:`elma_dot`, so no result is ever silently inexact. The exact float64 sums then go
through the same linear → log conversion. The tests check both paths agree bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LOG8", "LogFormat", "elma_conv2d", "elma_dot", "elma_linear"]

_LIMB_BITS = 30  # accumulator limb width: a limb sum of 2**24 terms stays below 2**55
_LIMB_MASK = (1 << _LIMB_BITS) - 1
_MAX_TERMS = 2**24  # supported fan-in (products, plus one for a bias)
_F64_BITS = 53
_CHUNK = 1 << 20  # products per chunk of the exact (limb) path


def _scaled_floor(kind: str, num: int, den_bits: int, scale: int) -> tuple[int, bool]:
    """For the irrational ``v = 2**(num / 2**den_bits)`` (``kind="pow2"``) or
    ``v = log2(num / 2**den_bits)`` (``kind="log2"``): ``n = floor(v · 2**scale)`` and whether
    ``v · 2**scale - n > 1/2`` (it is never equal: ``v`` is irrational).

    :mod:`decimal`'s ``exp`` and ``ln`` are correctly rounded, so at ``prec`` digits the
    relative error is a few units of ``10**-prec``; the answer is returned only when the
    computed value is farther than ``10**(10 - prec)`` (relative) from every integer and
    half-integer, else the precision is raised."""
    prec = 60
    while prec <= 4000:
        with localcontext() as ctx:
            ctx.prec = prec
            x = Decimal(num) / Decimal(2**den_bits)  # exact: at most 40 significant digits
            ln2 = Decimal(2).ln()
            v = (x * ln2).exp() if kind == "pow2" else x.ln() / ln2
            t = v * Decimal(2**scale)
            n = int(t.to_integral_value(rounding=ROUND_FLOOR))
            d = t - n
            tol = Decimal(10) ** (10 - prec) * max(abs(t), Decimal(1))
            if min(d, abs(d - Decimal("0.5")), 1 - d) > tol:
                return n, d > Decimal("0.5")
        prec *= 2
    raise RuntimeError(f"could not round {kind}({num}/2**{den_bits}); is it rational?")


def _posit_logs(bits: int, es: int) -> list[int]:
    """log2 of every magnitude ``m = 1 .. 2**(bits-1) - 1`` of the ``bits``-bit format, in
    units of ``2**-max(bits - 3 - es, 0)`` (regime, exponent and fraction read as in the
    module docstring). Entry ``m - 1`` belongs to ``m``."""
    width = bits - 1
    fb = max(bits - 3 - es, 0)
    logs = []
    for m in range(1, 1 << width):
        s = format(m, f"0{width}b")
        run = len(s) - len(s.lstrip(s[0]))
        k = run - 1 if s[0] == "1" else -run
        rest = s[run + 1 :]  # after the regime's terminating bit (empty if the run fills the word)
        e = int(rest[:es].ljust(es, "0"), 2) if es else 0
        f_str = rest[es:]
        f = int(f_str, 2) if f_str else 0
        logs.append(((k * 2**es + e) << fb) + (f << (fb - len(f_str))))
    return logs


class _Tables:
    """Everything a format needs, built once (loops over at most ``2**16`` codes, LUT entries
    and fraction classes; cached per format in :func:`_tables`)."""

    def __init__(self, fmt: LogFormat) -> None:
        n, es, fb = fmt.bits, fmt.es, fmt.frac_bits
        self.frac_bits = fb
        # log2 of each magnitude, units 2**-F (index 0, zero, holds 0).
        mag_log = [0, *_posit_logs(n, es)]
        self.mag_log = torch.tensor(mag_log, dtype=torch.int64)

        # float64 value of 2**(j / 2**F) for j = 0 .. 2**F - 1, rounded to nearest.
        frac_value = [1.0]
        for j in range(1, 2**fb):
            q, up = _scaled_floor("pow2", j, fb, 52)
            frac_value.append((q + up) * 2.0**-52)
        values = [math.ldexp(frac_value[v & (2**fb - 1)], v >> fb) for v in mag_log]
        values[0] = 0.0
        half = 2 ** (n - 1)
        self.values = torch.tensor(values + [float("nan")] + [-v for v in values[1:]], dtype=torch.float64)

        # Boundaries between magnitudes c and c + 1 (c = 1 .. 2**(N-1) - 2): the log of the
        # (N+1)-bit code 2c + 1, in units of 2**-(F+1).
        fb_next = max(n + 1 - 3 - es, 0)
        logs_next = _posit_logs(n + 1, es)
        bounds = [logs_next[2 * c] << (fb + 1 - fb_next) for c in range(1, half - 1)]
        # Encode thresholds: the smallest float64 >= 2**bound, and whether bound is an integer
        # (only then can a float equal 2**bound: a tie).
        ceil_frac: dict[int, float] = {0: 1.0}
        thresholds = []
        for b in bounds:
            j = b & (2 ** (fb + 1) - 1)
            if j not in ceil_frac:
                q, _ = _scaled_floor("pow2", j, fb + 1, 52)
                ceil_frac[j] = (q + 1) * 2.0**-52
            thresholds.append(math.ldexp(ceil_frac[j], b >> (fb + 1)))
        self.thresholds = torch.tensor(thresholds, dtype=torch.float64)
        self.exact_tie = torch.tensor([b % 2 ** (fb + 1) == 0 for b in bounds], dtype=torch.bool)
        # The same boundaries in units of 2**-V, V = max(γ, F + 1), for rounding ELMA's γ-bit logs.
        self.v_bits = max(fmt.gamma, fb + 1)
        self.bounds_v = torch.tensor(bounds, dtype=torch.int64) << (self.v_bits - fb - 1)

        # Pow2 LUT (leading one included): P[r] = round(2**(r / 2**F) · 2**α), in [2**α, 2**(α+1)].
        pow2 = [2**fmt.alpha]
        for r in range(1, 2**fb):
            q, up = _scaled_floor("pow2", r, fb, fmt.alpha)
            pow2.append(q + up)
        self.pow2 = torch.tensor(pow2, dtype=torch.int64)
        # Log2 LUT: G[i] = round(log2(1 + i / 2**β) · 2**γ), in [0, 2**γ] (2**γ is the carry).
        log2 = [0]
        for i in range(1, 2**fmt.beta):
            q, up = _scaled_floor("log2", 2**fmt.beta + i, fmt.beta, fmt.gamma)
            log2.append(q + up)
        self.log2 = torch.tensor(log2, dtype=torch.int64)

        # Exact powers of two for the fast path's exponents (products and bias terms).
        self.pow_lo = -fmt.max_exponent - fmt.alpha - 1
        hi = fmt.max_exponent + 2
        powers = [math.ldexp(1.0, e) for e in range(self.pow_lo, hi + 1)]
        self.powers = torch.tensor(powers, dtype=torch.float64)


@lru_cache(maxsize=32)
def _tables(fmt: LogFormat) -> _Tables:
    return _Tables(fmt)


def _check_int_codes(codes: Tensor, bits: int) -> Tensor:
    if not isinstance(codes, Tensor) or codes.is_floating_point() or codes.is_complex():
        raise ValueError(f"codes must be an integer tensor, got {getattr(codes, 'dtype', type(codes))}")
    codes = codes.to(torch.int64)
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 2**bits):
        lo, hi = int(codes.min()), int(codes.max())
        raise ValueError(f"log{bits} codes must lie in [0, {2**bits}), got [{lo}, {hi}]")
    return codes


@dataclass(frozen=True)
class LogFormat:
    """Johnson's ``(N, l, α, β, γ) log`` format: ``bits = N`` in 3..16, ``es = l`` in 0..4,
    ``alpha`` in 1..24, ``beta`` in 1..16, ``gamma`` in ``frac_bits``..30. Codes are int64
    tensors of sign-magnitude bit patterns in ``[0, 2**bits)``. See the module docstring for
    the layout, the rounding and the meaning of α, β, γ."""

    bits: int = 8
    es: int = 1
    alpha: int = 5
    beta: int = 5
    gamma: int = 7

    def __post_init__(self) -> None:
        for name, value, lo, hi in (
            ("bits", self.bits, 3, 16),
            ("es", self.es, 0, 4),
            ("alpha", self.alpha, 1, 24),
            ("beta", self.beta, 1, 16),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"LogFormat {name} must be an integer in {lo}..{hi}, got {value!r}")
        lo = self.frac_bits
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, int) or not lo <= self.gamma <= 30:
            raise ValueError(
                f"LogFormat gamma must be an integer in {lo}..30 (frac_bits..30), got {self.gamma}"
            )

    @property
    def max_exponent(self) -> int:
        """``2**es · (bits - 2)``: maxpos is ``2**max_exponent``, minpos ``2**-max_exponent``."""
        return 2**self.es * (self.bits - 2)

    @property
    def frac_bits(self) -> int:
        """``max(bits - 3 - es, 0)``: the most log-fraction bits any code has (a 2-bit regime)."""
        return max(self.bits - 3 - self.es, 0)

    @property
    def maxpos(self) -> float:
        """The largest value, ``2**max_exponent`` (code ``2**(bits-1) - 1``)."""
        return 2.0**self.max_exponent

    @property
    def minpos(self) -> float:
        """The smallest positive value, ``2**-max_exponent`` (code 1)."""
        return 2.0**-self.max_exponent

    def encode(self, x: Tensor) -> Tensor:
        """Round a real tensor to codes (int64, same shape): nearest in the log domain, ties to
        the even code, saturating at ``±maxpos`` / ``±minpos``; 0 (and -0) give code 0. NaN or
        ±Inf raise ``ValueError``."""
        return _encode(self, x, "x")

    def _encode_checked(self, x64: Tensor) -> Tensor:
        """:meth:`encode` of a finite float64 tensor."""
        tab = _tables(self)
        mag = x64.abs()
        thr, exact = tab.thresholds.to(x64.device), tab.exact_tie.to(x64.device)
        n = torch.searchsorted(thr, mag.reshape(-1), right=True).reshape(mag.shape)  # thresholds <= |x|
        code = n + 1
        if thr.numel() > 0:
            prev = (n - 1).clamp(min=0)
            tie = (n > 0) & exact[prev] & (thr[prev] == mag) & (code % 2 == 1)
            code = code - tie.to(torch.int64)
        code = torch.where(x64 < 0, code + 2 ** (self.bits - 1), code)
        return torch.where(mag == 0, torch.zeros_like(code), code)

    def decode(self, codes: Tensor) -> Tensor:
        """The float64 values of integer codes in ``[0, 2**bits)``, each the float64 nearest to
        ``±2**(log2 value)``; code ``2**(bits-1)`` (the RTL's inf) gives nan."""
        codes = _check_int_codes(codes, self.bits)
        return _tables(self).values.to(codes.device)[codes]

    def log2_fixed(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """``(sign, log)`` of integer codes: sign in {-1, 0, 1} (0 for zero) and ``log2|value|``
        as int64 in units of ``2**-frac_bits`` (0 for zero), exactly. The inf code raises
        ``ValueError``."""
        codes = _check_int_codes(codes, self.bits)
        half = 2 ** (self.bits - 1)
        if bool((codes == half).any()):
            raise ValueError(f"codes contain {half}, the inf/NaR code, which has no logarithm")
        return _split(self, codes)

    def quantize(self, x: Tensor) -> Tensor:
        """``decode(encode(x))`` in ``x``'s dtype (the default dtype for integer ``x``). Not
        differentiable. The cast from float64 is exact for float64; float32 and narrower hold
        the nearest value of their own grid (and overflow if maxpos is beyond their range)."""
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return self.decode(self.encode(x)).to(dtype)

    def pow2_lut(self) -> Tensor:
        """The log → linear table: ``P[r] = round(2**(r / 2**frac_bits) · 2**alpha)`` for
        ``r = 0 .. 2**frac_bits - 1``, leading one included (the RTL's ``Pow2LUT_{F}x{α}`` entry
        is ``P[r] - 2**alpha``)."""
        return _tables(self).pow2.clone()

    def log2_lut(self) -> Tensor:
        """The linear → log table: ``G[i] = round(log2(1 + i / 2**beta) · 2**gamma)`` for
        ``i = 0 .. 2**beta - 1``, in ``[0, 2**gamma]`` (the RTL's ``Log2LUT_{β}x{γ}`` entry, its
        top bit being the carry)."""
        return _tables(self).log2.clone()


LOG8 = LogFormat(8, 1, 5, 5, 7)
"""The paper's 8-bit (8, 1, 5, 5, 7) log format: values ``2**(j/16)`` near 1, range
``2**-12 .. 2**12``."""


def _split(fmt: LogFormat, codes: Tensor) -> tuple[Tensor, Tensor]:
    """(sign in {-1, 0, 1}, log2 magnitude in units of ``2**-F``) of valid, non-inf codes."""
    half = 2 ** (fmt.bits - 1)
    mag = codes & (half - 1)
    sign = torch.where(codes >= half, -1, 1) * (mag != 0)
    return sign.to(torch.int64), _tables(fmt).mag_log.to(codes.device)[mag]


def _round_log(fmt: LogFormat, log_g: Tensor) -> Tensor:
    """Magnitude codes of γ-bit log values (units ``2**-γ``): nearest, ties to even, saturating."""
    tab = _tables(fmt)
    bounds = tab.bounds_v.to(log_g.device)
    log_v = log_g << (tab.v_bits - fmt.gamma)
    n = torch.searchsorted(bounds, log_v.reshape(-1), right=True).reshape(log_v.shape)
    mag = n + 1
    if bounds.numel() > 0:
        prev = (n - 1).clamp(min=0)
        tie = (n > 0) & (bounds[prev] == log_v) & (mag % 2 == 1)
        mag = mag - tie.to(torch.int64)
    return mag


def _linear_to_codes(fmt: LogFormat, negative: Tensor, exp: Tensor, mant: Tensor, zero: Tensor) -> Tensor:
    """Codes of ``±mant · 2**(exp - β)`` with ``mant`` in ``[2**β, 2**(β+1)]`` already rounded to
    β fraction bits: carry, Log2 LUT (γ bits), then :func:`_round_log`. ``zero`` marks exact 0."""
    tab = _tables(fmt)
    mant = torch.where(zero, 2**fmt.beta, mant)  # any valid index for the rows that are exact 0
    carry = mant >> (fmt.beta + 1)  # 1 iff the β-bit rounding carried out (mant == 2**(β+1))
    exp = exp + carry
    index = torch.where(carry.bool(), torch.zeros_like(mant), mant - 2**fmt.beta)
    log_g = exp * 2**fmt.gamma + tab.log2.to(mant.device)[index]
    mag = _round_log(fmt, log_g)
    code = torch.where(negative, mag + 2 ** (fmt.bits - 1), mag)
    return torch.where(zero, torch.zeros_like(code), code)


def _float_sum_to_codes(fmt: LogFormat, total: Tensor) -> Tensor:
    """Codes of exact float64 sums: leading one by ``frexp``, β fraction bits rounded to nearest
    even (``torch.round`` is half-to-even, and the float holds every bit of the sum)."""
    mag = total.abs()
    frac, exponent = torch.frexp(mag)  # mag = frac · 2**exponent, frac in [0.5, 1)
    mant = torch.round(frac * 2.0 ** (fmt.beta + 1)).to(torch.int64)
    return _linear_to_codes(fmt, total < 0, exponent.to(torch.int64) - 1, mant, mag == 0)


def _normalize_limbs(acc: Tensor) -> None:
    """Carry-propagate signed limb sums in place: limbs 0 .. L-2 end in ``[0, 2**30)``, the top
    limb keeps the sign."""
    for j in range(acc.shape[1] - 1):
        carry = acc[:, j] >> _LIMB_BITS  # arithmetic shift: floor division
        acc[:, j] -= carry << _LIMB_BITS
        acc[:, j + 1] += carry


def _limbs_to_codes(fmt: LogFormat, acc: Tensor) -> Tensor:
    """Codes of exact accumulator values, one per row of ``acc`` (limbs of 30 bits, units of
    ``2**-(2·max_exponent + α)``): leading one, β bits after it, guard and sticky, round to
    nearest even, then :func:`_linear_to_codes`."""
    rows, n_limbs = acc.shape
    _normalize_limbs(acc)
    negative = acc[:, -1] < 0
    acc = torch.where(negative[:, None], -acc, acc)
    _normalize_limbs(acc)  # now every limb is in [0, 2**30): the sizing keeps the top limb small
    nonzero = acc != 0
    zero = ~nonzero.any(dim=1)
    top_index = torch.where(nonzero, torch.arange(n_limbs), -1).amax(dim=1)  # -1 for zero rows
    # Two zero limbs below limb 0, so "the limb below the top" always exists.
    padded = torch.cat([torch.zeros(rows, 2, dtype=torch.int64), acc], dim=1)
    j = (top_index + 2).clamp(min=2)[:, None]
    top = padded.gather(1, j)[:, 0]
    below = padded.gather(1, j - 1)[:, 0]
    any_lower = torch.cat([torch.zeros(rows, 2, dtype=torch.int64), nonzero.to(torch.int64)], dim=1)
    any_lower = any_lower.cumsum(dim=1).gather(1, j - 2)[:, 0] > 0  # a nonzero limb under `below`
    # frexp writes top = m · 2**exponent, m in [0.5, 1): exact, as top < 2**30.
    top_bit = torch.frexp(top.clamp(min=1).to(torch.float64)).exponent.to(torch.int64) - 1
    window = (top << _LIMB_BITS) | below  # < 2**60; its leading one is at top_bit + 30
    lead = top_bit + _LIMB_BITS
    mant = window >> (lead - fmt.beta)
    guard_at = lead - fmt.beta - 1
    guard = (window >> guard_at) & 1
    sticky = ((window & ((1 << guard_at) - 1)) != 0) | any_lower
    mant = mant + (guard & (sticky | (mant & 1)).to(torch.int64))
    exp = top_index.clamp(min=0) * _LIMB_BITS + top_bit - (2 * fmt.max_exponent + fmt.alpha)
    return _linear_to_codes(fmt, negative, exp, mant, zero)


def _exact_codes(
    fmt: LogFormat,
    sx: Tensor,
    lx: Tensor,
    sw: Tensor,
    lw: Tensor,
    sb: Tensor | None = None,
    lb: Tensor | None = None,
) -> Tensor:
    """The reference ELMA: codes ``(R, M)`` of ``Σ_k x[r,k]·w[m,k] (+ b[m])`` from signs and
    logs ``sx, lx`` ``(R, K)``, ``sw, lw`` ``(M, K)``, ``sb, lb`` ``(M,)``. Every product (and
    the bias) becomes ``±P · 2**shift`` in units of ``2**-(2·max_exponent + α)``, ``shift`` in
    ``[0, 4·max_exponent]``, split over two 30-bit limbs and summed with ``scatter_add``
    (limb sums stay below ``2**55`` for ``2**24`` terms), then carry-normalised: exact."""
    fb, mask = fmt.frac_bits, 2**fmt.frac_bits - 1
    tab = _tables(fmt)
    pow2 = tab.pow2.to(sx.device)
    rows, k = sx.shape
    m = sw.shape[0]
    terms = k + (sb is not None)
    n_limbs = (4 * fmt.max_exponent + fmt.alpha + 2 + 25) // _LIMB_BITS + 3
    out = torch.empty(rows, m, dtype=torch.int64, device=sx.device)
    chunk = max(1, _CHUNK // max(1, m * terms))
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        sign = sx[start:stop, None, :] * sw[None]
        log = lx[start:stop, None, :] + lw[None]
        if sb is not None and lb is not None:
            sign = torch.cat([sign, sb.expand(stop - start, m)[..., None]], dim=2)
            log = torch.cat([log, lb.expand(stop - start, m)[..., None]], dim=2)
        sign, log = sign.reshape(-1, terms), log.reshape(-1, terms)
        shift = ((log >> fb) + 2 * fmt.max_exponent).clamp(min=0)
        value = pow2[log & mask] << (shift % _LIMB_BITS)  # < 2**55
        limb = shift // _LIMB_BITS
        acc = torch.zeros(sign.shape[0], n_limbs, dtype=torch.int64, device=sx.device)
        acc.scatter_add_(1, limb, (value & _LIMB_MASK) * sign)
        acc.scatter_add_(1, limb + 1, (value >> _LIMB_BITS) * sign)
        out[start:stop] = _limbs_to_codes(fmt, acc).reshape(stop - start, m)
    return out


def _fast_sum(
    fmt: LogFormat,
    sx: Tensor,
    lx: Tensor,
    sw: Tensor,
    lw: Tensor,
    sb: Tensor | None,
    lb: Tensor | None,
    terms: int,
    op: Callable[[Tensor, Tensor], Tensor],
    bias_view: Callable[[Tensor], Tensor],
) -> Tensor | None:
    """The exact sums as float64 via one ``op`` (matmul or conv) per activation fraction class,
    or ``None`` when float64 could round them (see the module docstring)."""
    tab = _tables(fmt)
    fb, mask, alpha = fmt.frac_bits, 2**fmt.frac_bits - 1, fmt.alpha
    ix, rx, iw, rw = lx >> fb, lx & mask, lw >> fb, lw & mask
    nzx, nzw = sx != 0, sw != 0
    hi, lo = [], []  # bounds on each term: |t| <= 2**hi, t a multiple of 2**lo
    if bool(nzx.any()) and bool(nzw.any()):
        hi.append(int(ix[nzx].max()) + int(iw[nzw].max()) + 2)
        lo.append(int(ix[nzx].min()) + int(iw[nzw].min()) - alpha)
    nzb = None
    if sb is not None and lb is not None:
        nzb = sb != 0
        if bool(nzb.any()):
            ib = lb[nzb] >> fb
            hi.append(int(ib.max()) + 1)
            lo.append(int(ib.min()) - alpha)
    if hi and max(hi) - min(lo) + (terms - 1).bit_length() > _F64_BITS:
        return None
    powers = tab.powers.to(sx.device)
    pow2 = tab.pow2.to(sx.device).to(torch.float64)
    x_base = torch.where(nzx, sx.to(torch.float64) * powers[ix - tab.pow_lo], 0.0)
    zero_w = torch.zeros(sw.shape, dtype=torch.float64, device=sw.device)
    total = None
    for r in torch.unique(rx[nzx]).tolist() if bool(nzw.any()) else []:
        x_r = torch.where(nzx & (rx == r), x_base, 0.0)
        t = rw + r
        scale = powers[iw + (t >> fb) - alpha - tab.pow_lo]
        w_r = torch.where(nzw, sw.to(torch.float64) * pow2[t & mask] * scale, 0.0)
        y = op(x_r, w_r)
        total = y if total is None else total + y
    if total is None:
        total = op(torch.zeros_like(x_base), zero_w)
    if sb is not None and lb is not None and nzb is not None:
        scale = powers[(lb >> fb) - alpha - tab.pow_lo]
        b = torch.where(nzb, sb.to(torch.float64) * pow2[lb & mask] * scale, 0.0)
        total = total + bias_view(b)
    return total


def _encode(fmt: LogFormat, x: Tensor, name: str) -> Tensor:
    """:meth:`LogFormat.encode`, naming the tensor ``name`` in its errors."""
    if not isinstance(x, Tensor) or x.is_complex():
        raise ValueError(f"{name} must be a real tensor, got {type(x).__name__}")
    x64 = x.detach().to(torch.float64)
    finite = torch.isfinite(x64)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s); the log format encodes only finite reals")
    return fmt._encode_checked(x64)


def _encode_split(fmt: LogFormat, name: str, t: Tensor) -> tuple[Tensor, Tensor]:
    """Encode, then (sign, log) as :func:`_split`."""
    return _split(fmt, _encode(fmt, t, name))


def _check_terms(terms: int) -> None:
    if terms > _MAX_TERMS:
        raise ValueError(f"fan-in {terms} (products plus bias) exceeds the supported 2**24")


def elma_dot(x: Tensor, w: Tensor, fmt: LogFormat, *, bias: Tensor | float | None = None) -> Tensor:
    """ELMA dot products, the exact reference path: ``x`` ``(..., K)`` with ``w`` ``(K,)`` gives
    ``(...)``; with ``w`` ``(M, K)`` it gives ``(..., M)``. ``x``, ``w`` and ``bias`` (a scalar
    for 1-D ``w``, shape ``(M,)`` otherwise) are encoded to ``fmt``; every product goes through
    the Pow2 LUT into an exact int64-limb accumulator, the sum through the β / γ / code rounding.
    Returns the decoded float64 values. Vectorised over products; slow but exact."""
    if not isinstance(w, Tensor) or w.ndim not in (1, 2):
        raise ValueError(f"w must be a (K,) or (M, K) tensor, got shape {tuple(getattr(w, 'shape', ()))}")
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"x must be (..., {w.shape[-1]}) to match w, got {tuple(getattr(x, 'shape', ()))}")
    vector = w.ndim == 1
    w2 = w[None] if vector else w
    m, k = w2.shape
    sx, lx = _encode_split(fmt, "x", x.reshape(-1, k))
    sw, lw = _encode_split(fmt, "w", w2)
    sb = lb = None
    if bias is not None:
        b = torch.as_tensor(bias, dtype=torch.float64, device=x.device).reshape(-1)
        if b.numel() != m:
            raise ValueError(f"bias must have {m} element(s), got {b.numel()}")
        sb, lb = _encode_split(fmt, "bias", b)
    _check_terms(k + (bias is not None))
    codes = _exact_codes(fmt, sx, lx, sw, lw, sb, lb)
    out = fmt.decode(codes).reshape(*x.shape[:-1], m)
    return out[..., 0] if vector else out


def elma_linear(x: Tensor, weight: Tensor, bias: Tensor | None, fmt: LogFormat) -> Tensor:
    """``F.linear(x, weight, bias)`` in ELMA: ``x`` ``(..., K)``, ``weight`` ``(M, K)``, ``bias``
    ``(M,)`` or ``None``. Same result, bit for bit, as :func:`elma_dot`, computed by the fast
    exact path (one float64 matmul per activation fraction class) when its exactness bound holds,
    else by the limb accumulator. Returns the decoded values in ``x``'s dtype (the default dtype
    for integer ``x``): exact for float64, and for float32 the float nearest each value, which
    encodes back to the same code for LOG8-sized formats."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"weight must be an (M, K) tensor, got shape {tuple(getattr(weight, 'shape', ()))}")
    m, k = weight.shape
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != k:
        raise ValueError(f"x must be (..., {k}) to match weight, got {tuple(getattr(x, 'shape', ()))}")
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (m,)):
        raise ValueError(f"bias must be a ({m},) tensor or None, got {tuple(getattr(bias, 'shape', ()))}")
    _check_terms(k + (bias is not None))
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    sx, lx = _encode_split(fmt, "x", x.reshape(-1, k))
    sw, lw = _encode_split(fmt, "weight", weight)
    sb, lb = _encode_split(fmt, "bias", bias) if bias is not None else (None, None)
    total = _fast_sum(fmt, sx, lx, sw, lw, sb, lb, k + (bias is not None), lambda a, b: a @ b.T, lambda b: b)
    codes = _exact_codes(fmt, sx, lx, sw, lw, sb, lb) if total is None else _float_sum_to_codes(fmt, total)
    return fmt.decode(codes).reshape(*x.shape[:-1], m).to(dtype)


def _pair(name: str, value: int | tuple[int, int], lo: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= lo for v in pair)
    ):
        raise ValueError(f"{name} must be an int >= {lo} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def elma_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    fmt: LogFormat,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """``F.conv2d`` in ELMA (numeric ``padding`` only; zero padding is exact zeros). ``x``
    ``(B, C, H, W)`` or ``(C, H, W)``, ``weight`` ``(M, C / groups, kh, kw)``, ``bias`` ``(M,)``
    or ``None``. Each output is the ELMA of its window, as :func:`elma_dot` on the unfolded
    input would give, bit for bit: the fast exact path runs one float64 convolution per
    activation fraction class, and falls back to the limb accumulator on unfolded windows when
    its exactness bound fails. Returns decoded values in ``x``'s dtype, as :func:`elma_linear`."""
    if not isinstance(x, Tensor) or x.ndim not in (3, 4):
        raise ValueError(f"x must be (B, C, H, W) or (C, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        shape = tuple(getattr(weight, "shape", ()))
        raise ValueError(f"weight must be (M, C/groups, kh, kw), got shape {shape}")
    stride_ = _pair("stride", stride, 1)
    padding_ = _pair("padding", padding, 0)
    dilation_ = _pair("dilation", dilation, 1)
    unbatched = x.ndim == 3
    xb = x[None] if unbatched else x
    batch, channels, height, width = xb.shape
    m, cg, kh, kw = weight.shape
    if (
        isinstance(groups, bool)
        or not isinstance(groups, int)
        or groups < 1
        or channels % groups
        or m % groups
    ):
        raise ValueError(
            f"groups must be a positive int dividing {channels} channels and {m} outputs, got {groups}"
        )
    if cg * groups != channels:
        raise ValueError(f"weight has {cg} input channels per group, x has {channels} for {groups} group(s)")
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (m,)):
        raise ValueError(f"bias must be a ({m},) tensor or None, got {tuple(getattr(bias, 'shape', ()))}")
    k = cg * kh * kw
    _check_terms(k + (bias is not None))
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    sx, lx = _encode_split(fmt, "x", xb)
    sw, lw = _encode_split(fmt, "weight", weight)
    sb, lb = _encode_split(fmt, "bias", bias) if bias is not None else (None, None)

    def conv(a: Tensor, b: Tensor) -> Tensor:
        return F.conv2d(a, b, None, stride_, padding_, dilation_, groups)

    terms = k + (bias is not None)
    total = _fast_sum(fmt, sx, lx, sw, lw, sb, lb, terms, conv, lambda b: b.view(1, -1, 1, 1))
    if total is not None:
        codes = _float_sum_to_codes(fmt, total)
    else:
        out_h = (height + 2 * padding_[0] - dilation_[0] * (kh - 1) - 1) // stride_[0] + 1
        out_w = (width + 2 * padding_[1] - dilation_[1] * (kw - 1) - 1) // stride_[1] + 1

        def unfold(t: Tensor) -> Tensor:  # (B, C·kh·kw, P) -> (B, P, C·kh·kw), int64
            cols = F.unfold(t.to(torch.float64), (kh, kw), dilation_, padding_, stride_)
            return cols.transpose(1, 2).to(torch.int64)

        ux, ul = unfold(sx), unfold(lx)
        mg = m // groups
        codes = torch.empty(batch, m, out_h * out_w, dtype=torch.int64, device=x.device)
        for g in range(groups):
            cols = slice(g * k, (g + 1) * k)
            outs = slice(g * mg, (g + 1) * mg)
            part = _exact_codes(
                fmt,
                ux[..., cols].reshape(-1, k),
                ul[..., cols].reshape(-1, k),
                sw[outs].reshape(mg, k),
                lw[outs].reshape(mg, k),
                None if sb is None else sb[outs],
                None if lb is None else lb[outs],
            )
            codes[:, outs] = part.reshape(batch, -1, mg).transpose(1, 2)
        codes = codes.reshape(batch, m, out_h, out_w)
    out = fmt.decode(codes).to(dtype)
    return out[0] if unbatched else out
