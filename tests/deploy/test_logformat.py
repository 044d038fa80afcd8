"""Tests of genoise.deploy.logformat: Johnson (2018)'s (N, l, α, β, γ) log format and ELMA.

Expected values come from the format's definition, written out here independently of the
module (the regime decoder ``_ref_log`` below, hand-derived codes) and from the LUT files of
the reference RTL (github.com/facebookresearch/deepfloat, ``rtl/log/luts``), copied by hand."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from functools import cache
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from genoise.deploy import logformat as lf
from genoise.deploy.logformat import LOG8, LogFormat, elma_conv2d, elma_dot, elma_linear

# rtl/log/luts/Pow2LUT_4x5.sv: the 5-bit fraction of 2**(r/16), r = 0..15.
POW2_4X5 = [
    0b00000, 0b00001, 0b00011, 0b00100, 0b00110, 0b01000, 0b01001, 0b01011,
    0b01101, 0b01111, 0b10001, 0b10100, 0b10110, 0b11000, 0b11011, 0b11101,
]  # fmt: skip
# rtl/log/luts/Log2LUT_5x7.sv: log2(1 + i/32) at 7 bits (the 8th, top bit is the carry), i = 0..31.
LOG2_5X7 = [
    0b00000000, 0b00000110, 0b00001011, 0b00010001, 0b00010110, 0b00011011, 0b00100000, 0b00100101,
    0b00101001, 0b00101110, 0b00110010, 0b00110111, 0b00111011, 0b00111111, 0b01000011, 0b01000111,
    0b01001011, 0b01001111, 0b01010010, 0b01010110, 0b01011010, 0b01011101, 0b01100001, 0b01100100,
    0b01100111, 0b01101011, 0b01101110, 0b01110001, 0b01110100, 0b01110111, 0b01111010, 0b01111101,
]  # fmt: skip

FMT6 = LogFormat(6, 0, 4, 4, 6)  # F = 3, γ = F + 3 as in the RTL


@cache
def _ref_log(magnitude: int, bits: int, es: int) -> Fraction:
    """log2 of a positive magnitude field (``bits - 1`` bits) from the definition: regime run
    (ones: k = run - 1, zeros: k = -run), terminator, ``es`` exponent bits (missing ones are 0),
    the rest the fraction of the logarithm."""
    s = format(magnitude, f"0{bits - 1}b")
    run = 1
    while run < len(s) and s[run] == s[0]:
        run += 1
    k = run - 1 if s[0] == "1" else -run
    rest = s[run + 1 :]
    e = int((rest[:es] + "0" * es)[:es], 2) if es else 0
    frac = rest[es:]
    f = Fraction(int(frac, 2), 2 ** len(frac)) if frac else Fraction(0)
    return k * 2**es + e + f


def _ref_round(log: Fraction, bits: int, es: int) -> int:
    """Magnitude code of a log value: the boundary between c and c + 1 is the log of the
    (bits+1)-bit code 2c + 1; on a boundary take the even code; saturate at both ends."""
    mag = 1
    for c in range(1, 2 ** (bits - 1) - 1):
        b = _ref_log(2 * c + 1, bits + 1, es)
        if log > b or (log == b and (c + 1) % 2 == 0):
            mag = c + 1
    return mag


def _codes(values: list[float], fmt: LogFormat = LOG8) -> list[int]:
    return fmt.encode(torch.tensor(values, dtype=torch.float64)).tolist()


# --- encoding -------------------------------------------------------------------------------


def test_hand_computed_log8_codes() -> None:
    # LOG8 = (8, 1): sign bit, then 7 bits: regime, 1 exponent bit, fraction of log2.
    # 1.0: log 0 = k·2 + e + f with k = 0 (regime "10"), e = 0, f = 0.0000 -> 0 10 0 0000
    # 2.0: log 1: k = 0, e = 1 -> 0 10 1 0000
    # 0.5: log -1 = -1·2 + 1: k = -1 (regime "01"), e = 1 -> 0 01 1 0000
    # 2**0.5: log 0.5: k = 0, e = 0, f = .1000 -> 0 10 0 1000
    # 2**2.5: log 2.5 = 1·2 + 0 + .5: regime "110", e = 0, 3 fraction bits .100 -> 0 110 0 100
    # maxpos 2**12: regime of seven ones, k = 6, 6·2 = 12 -> 0 1111111
    # minpos 2**-12: six zeros then the terminating one, k = -6 -> 0 0000001
    # -4.0: log 2 = 1·2: regime "110", e = 0, f = .000, sign bit set -> 1 110 0 000
    values = [1.0, 2.0, 0.5, 2**0.5, 2**2.5, 4096.0, 2.0**-12, -4.0]
    expected = [0b0_10_0_0000, 0b0_10_1_0000, 0b0_01_1_0000, 0b0_10_0_1000, 0b0_110_0_100,
                0b0_1111111, 0b0_0000001, 0b1_110_0_000]  # fmt: skip
    assert _codes(values) == expected
    decoded = LOG8.decode(torch.tensor(expected)).tolist()
    assert decoded[:3] == [1.0, 2.0, 0.5] and decoded[5:] == [4096.0, 2.0**-12, -4.0]
    sign, log = LOG8.log2_fixed(torch.tensor(expected))
    assert sign.tolist() == [1] * 7 + [-1]
    assert log.tolist() == [0, 16, -16, 8, 40, 192, -192, 32]  # units of 2**-4
    assert (LOG8.max_exponent, LOG8.frac_bits, FMT6.max_exponent, FMT6.frac_bits) == (12, 4, 4, 3)


def test_zero_and_saturation() -> None:
    # Nonzero reals never round to 0 or to the inf code 0b1000_0000, as posits.
    assert _codes([0.0, -0.0, 1e30, -1e30, 1e-30, -1e-30, 5e-324]) == [0, 0, 127, 255, 1, 129, 1]
    assert LOG8.quantize(torch.tensor([1e30, -1e-30])).tolist() == [4096.0, -(2.0**-12)]


def test_ties_to_even_in_the_log_domain() -> None:
    # 0x7E = 0 1111110: regime of six ones ended by 0, k = 5, no bits left: 2**10. 0x7F is 2**12.
    # The boundary is the 9-bit code 2·0x7E + 1 = 0 11111101: k = 5, exponent bit 1: 2**11.
    # 2048 is exactly on it: the even code 0x7E wins.
    eps = 2.0**-40
    assert _codes([2048.0, 2048.0 * (1 + eps), 2048.0 * (1 - eps)]) == [0x7E, 0x7F, 0x7E]
    assert _codes([-2048.0]) == [0x80 | 0x7E]
    # Code 1 (2**-12) and code 2 = 0 0000010 (k = -5, exponent bit 0: 2**-10) meet at the 9-bit
    # code 3 = 0 00000011 (k = -6, exponent bit 1: 2**-11). The even code 2 wins the tie.
    assert _codes([2.0**-11, 2.0**-11 * (1 - eps), 2.0**-11 * (1 + eps)]) == [2, 1, 2]
    # (6, 0): 0 11110 (k = 3, log 3) and maxpos 0 11111 (k = 4) meet at the 7-bit 0 111101,
    # log 3.5: not a power of two, so 2**3.5's neighbours fall on either side.
    assert _codes([2**3.5 * (1 - 1e-12), 2**3.5 * (1 + 1e-12)], FMT6) == [0b11110, 0b11111]


def test_every_boundary_is_exact() -> None:
    # For each boundary b of LOG8 (units 1/32), floats at and next to 2**b: x encodes above the
    # boundary iff x >= 2**b, decided with integers (x**32 versus 2**(32·b)), ties to even.
    for c in range(1, 127):
        b = _ref_log(2 * c + 1, 9, 1)
        num = int(b * 32)
        x0 = math.pow(2.0, float(b))
        for x in (math.nextafter(x0, 0.0), x0, math.nextafter(x0, math.inf)):
            diff = Fraction(x) ** 32 - Fraction(2) ** num
            if diff > 0 or (diff == 0 and (c + 1) % 2 == 0):
                expected = c + 1
            else:
                expected = c
            assert _codes([x]) == [expected], (c, x)


@pytest.mark.parametrize("fmt", [LOG8, FMT6])
def test_every_code_round_trips_and_matches_the_definition(fmt: LogFormat) -> None:
    n = fmt.bits
    inf_code = 2 ** (n - 1)
    codes = torch.tensor([c for c in range(2**n) if c != inf_code])
    assert torch.equal(fmt.encode(fmt.decode(codes)), codes)
    assert math.isnan(float(fmt.decode(torch.tensor([inf_code]))[0]))
    sign, log = fmt.log2_fixed(codes)
    for c, s, lg in zip(codes.tolist(), sign.tolist(), log.tolist(), strict=True):
        mag = c & (inf_code - 1)
        assert s == (0 if c == 0 else (-1 if c > inf_code else 1))
        assert lg == (0 if mag == 0 else _ref_log(mag, n, fmt.es) * 2**fmt.frac_bits)


def test_quantize_is_monotone_and_keeps_dtype() -> None:
    x = torch.linspace(-5000.0, 5000.0, 200_001, dtype=torch.float64)
    assert bool((torch.diff(LOG8.quantize(x)) >= 0).all())
    t = torch.linspace(-14.0, 14.0, 100_001, dtype=torch.float64)
    sweep = torch.cat([-torch.exp2(t).flip(0), torch.zeros(1, dtype=torch.float64), torch.exp2(t)])
    assert bool((torch.diff(LOG8.quantize(sweep)) >= 0).all())
    assert bool((torch.diff(FMT6.quantize(sweep)) >= 0).all())
    x32 = torch.tensor([0.3, -7.0], dtype=torch.float32)
    assert LOG8.quantize(x32).dtype == torch.float32


def test_luts_equal_the_rtl_tables() -> None:
    assert LOG8.pow2_lut().tolist() == [32 + p for p in POW2_4X5]
    assert LOG8.log2_lut().tolist() == LOG2_5X7


# --- ELMA against exact rational arithmetic -------------------------------------------------


def _ref_elma(x_codes: list[int], w_codes: list[int], b_code: int | None) -> int:
    """LOG8 ELMA from the definition, in Fractions: products by adding logs, linear through
    Pow2LUT_4x5, exact sum, β = 5 fraction bits rounded to nearest even, Log2LUT_5x7, then
    the log-domain rounding to a code (saturating)."""

    def linear(sign: int, log: Fraction) -> Fraction:
        units = int(log * 16)  # the log in units of 1/16
        return sign * Fraction(32 + POW2_4X5[units % 16], 32) * Fraction(2) ** (units // 16)

    def sign_log(code: int) -> tuple[int, Fraction]:
        mag = code & 0x7F
        return (0 if mag == 0 else (-1 if code & 0x80 else 1)), (_ref_log(mag, 8, 1) if mag else Fraction(0))

    total = Fraction(0)
    for xc, wc in zip(x_codes, w_codes, strict=True):
        (sx, lx), (sw, lw) = sign_log(xc), sign_log(wc)
        total += linear(sx * sw, lx + lw)
    if b_code is not None:
        total += linear(*sign_log(b_code))
    if total == 0:
        return 0
    a = abs(total)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    q = round(a / Fraction(2) ** e * 32)  # Fraction rounds half to even
    if q == 64:
        e, q = e + 1, 32
    log = Fraction(e * 128 + LOG2_5X7[q - 32], 128)
    return _ref_round(log, 8, 1) | (0x80 if total < 0 else 0)


def _elma_code(x_codes: list[int], w_codes: list[int], b_code: int | None) -> int:
    x = LOG8.decode(torch.tensor(x_codes))
    w = LOG8.decode(torch.tensor(w_codes))
    b = None if b_code is None else LOG8.decode(torch.tensor(b_code))
    return int(LOG8.encode(elma_dot(x, w, LOG8, bias=b)))


def test_elma_equals_exact_rational_arithmetic() -> None:
    rng = random.Random(0)
    codes = [c for c in range(256) if c != 128]
    for _ in range(150):
        k = rng.choice([1, 2, 3, 5, 8])
        near_one = [c for c in codes if 0x30 <= (c & 0x7F) <= 0x50] + [0]
        pool = codes if rng.random() < 0.5 else near_one
        xc = [rng.choice(pool) for _ in range(k)]
        wc = [rng.choice(pool) for _ in range(k)]
        bc = rng.choice(pool) if rng.random() < 0.5 else None
        assert _elma_code(xc, wc, bc) == _ref_elma(xc, wc, bc), (xc, wc, bc)


def test_elma_special_cases() -> None:
    one, two, half = 0b0_10_0_0000, 0b0_10_1_0000, 0b0_01_1_0000
    maxpos, minpos, neg = 0x7F, 0x01, 0x80
    p1024 = 0x7E  # 2**10
    p32 = 0b0_1110_1_00  # 2**5: k = 2, exponent bit 1
    cases = [
        ([one, one], [two, two | neg], None),  # cancels exactly: code 0
        ([maxpos], [maxpos], None),  # 2**24 saturates to maxpos
        ([minpos], [minpos], None),  # 2**-24 saturates to minpos (the RTL flushes it to 0)
        ([minpos], [two], None),  # 2**-11, on the minpos / 2**-10 boundary: even code 2
        ([half], [half], one),  # 1/4 + 1
        # 2**24 - 2**24 + 2**11 + 2**5: the β = 5 linear fraction 1.00000|1 is a tie (even: down),
        # then log 11 is the tie between 2**10 and 2**12 (even: 2**10). Adding 2**-24 makes the
        # linear rounding go up, log2(1 + 1/32) -> 6/128 > 0, and the result is maxpos.
        ([maxpos, maxpos, p1024, p32], [maxpos, maxpos | neg, two, one], None),
        ([maxpos, maxpos, p1024, p32, minpos], [maxpos, maxpos | neg, two, one, minpos], None),
    ]
    got = [_elma_code(*case) for case in cases]
    assert got == [_ref_elma(*case) for case in cases]
    assert got == [0, maxpos, minpos, 2, 0b0_10_0_0101, p1024, maxpos]


# --- fast path versus reference path --------------------------------------------------------


class _Spy:
    """Counts the calls of the exact limb path (the fast path's fallback)."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = lf._exact_codes

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        return self.inner(*args, **kwargs)


def _random(shape: tuple[int, ...], spread: float, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    return x * torch.exp2(spread * torch.randn(shape, generator=gen, dtype=torch.float64))


@pytest.mark.parametrize("fmt", [LOG8, FMT6, LogFormat(10, 2, 8, 8, 11)])
def test_linear_fast_path_equals_reference(fmt: LogFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(1)
    spy = _Spy()
    monkeypatch.setattr(lf, "_exact_codes", spy)
    for spread in (0.5, 1.5, 2.5):
        x = _random((3, 9, 40), spread, gen)
        x[x.abs() < 0.05] = 0.0
        w = _random((11, 40), spread, gen)
        b = _random((11,), spread, gen)
        for bias in (b, None):
            calls = spy.calls
            fast = elma_linear(x, w, bias, fmt)
            assert spy.calls == calls  # these spreads stay within float64's exact range
            assert torch.equal(fast, elma_dot(x, w, fmt, bias=bias))
    assert elma_linear(x.float(), w, None, fmt).dtype == torch.float32
    if 4 * fmt.max_exponent + fmt.alpha + 2 + 6 <= 53:
        return  # every product range fits float64: no fallback can happen (FMT6)
    # Forced fallback: operands at both ends of the range exceed float64's 53 bits.
    x = _random((5, 40), 1.0, gen)
    x[:, 0], x[:, 1] = fmt.maxpos, fmt.minpos
    w = _random((7, 40), 1.0, gen)
    w[:, 0], w[:, 1] = -fmt.maxpos, fmt.minpos
    calls = spy.calls
    out = elma_linear(x, w, b[:7], fmt)
    assert spy.calls == calls + 1
    assert torch.equal(out, elma_dot(x, w, fmt, bias=b[:7]))


Pair = tuple[int, int]


def _conv_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    fmt: LogFormat,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> torch.Tensor:
    """ELMA convolution as explicit windows: unfold the quantized input, :func:`elma_dot`."""
    b, m = x.shape[0], weight.shape[0]
    kh, kw = weight.shape[2:]
    cols = F.unfold(fmt.quantize(x), (kh, kw), dilation, padding, stride).transpose(1, 2)
    k, mg = cols.shape[-1] // groups, m // groups
    parts = [
        elma_dot(cols[..., g * k : (g + 1) * k], weight[g * mg : (g + 1) * mg].reshape(mg, k), fmt,
                 bias=None if bias is None else bias[g * mg : (g + 1) * mg])
        for g in range(groups)
    ]  # fmt: skip
    out = torch.cat(parts, dim=-1).transpose(1, 2)
    out_h = (x.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    return out.reshape(b, m, out_h, -1)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [((1, 1), (0, 0), (1, 1), 1), ((2, 1), (1, 2), (1, 1), 2), ((1, 1), (2, 2), (2, 1), 3)],
)
def test_conv_fast_path_equals_unfold_reference(
    stride: Pair, padding: Pair, dilation: Pair, groups: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(2)
    spy = _Spy()
    monkeypatch.setattr(lf, "_exact_codes", spy)
    x = torch.relu(_random((2, 6, 9, 8), 1.0, gen))
    weight = _random((6, 6 // groups, 3, 3), 1.0, gen)
    bias = _random((6,), 1.0, gen)
    out = elma_conv2d(x, weight, bias, LOG8, stride, padding, dilation, groups)
    assert spy.calls == 0
    ref = _conv_reference(x, weight, bias, LOG8, stride, padding, dilation, groups)
    assert torch.equal(out, ref)
    # Forced fallback (the limb path on unfolded windows).
    x[0, 0, 0, :2] = torch.tensor([LOG8.maxpos, LOG8.minpos])
    weight[0, 0, 0, :2] = torch.tensor([LOG8.maxpos, -LOG8.minpos])
    calls = spy.calls
    out = elma_conv2d(x, weight, None, LOG8, stride, padding, dilation, groups)
    assert spy.calls == calls + groups
    assert torch.equal(out, _conv_reference(x, weight, None, LOG8, stride, padding, dilation, groups))
    unbatched = elma_conv2d(x[1], weight, None, LOG8, stride, padding, dilation, groups)
    assert torch.equal(unbatched, out[1])


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"bits must be an integer in 3\.\.16"):
        LogFormat(bits=2)
    with pytest.raises(ValueError, match=r"bits must be an integer in 3\.\.16"):
        LogFormat(bits=17)
    with pytest.raises(ValueError, match=r"es must be an integer in 0\.\.4"):
        LogFormat(es=5)
    with pytest.raises(ValueError, match=r"gamma must be an integer in 4\.\.30"):
        LogFormat(8, 1, 5, 5, 3)
    with pytest.raises(ValueError, match="NaN"):
        LOG8.encode(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN/Inf"):
        LOG8.quantize(torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 256\)"):
        LOG8.decode(torch.tensor([256]))
    with pytest.raises(ValueError, match="inf/NaR code"):
        LOG8.log2_fixed(torch.tensor([128]))
    with pytest.raises(ValueError, match="x must be"):
        elma_linear(torch.ones(2, 3), torch.ones(4, 5), None, LOG8)
    bad = torch.ones(4, 3)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="weight contains 1 NaN"):
        elma_linear(torch.ones(2, 3), bad, None, LOG8)
    with pytest.raises(ValueError, match="groups must be"):
        elma_conv2d(torch.ones(1, 3, 5, 5), torch.ones(2, 1, 3, 3), None, LOG8, groups=3)
