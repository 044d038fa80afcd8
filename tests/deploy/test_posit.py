"""Posit emulation: hand-derived codes, the Posit Standard's rounding (ties to even, the
(N+1)-bit boundary, saturation), round trips, against an independent bit-string model."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from genoise.deploy.posit import POSIT8, PositFormat

# Small formats checked exhaustively; (2, 0) and (3, 1) are the degenerate corners.
FORMATS = [(8, 0), (8, 1), (8, 2), (6, 1), (5, 0), (3, 1), (2, 0), (10, 3)]


# --- independent reference: the Posit Standard's rounding written on bit strings --------


def reference_decode(code: int, bits: int, es: int) -> float:
    """Read one code's fields from its bit string (sign, regime run, exponent, fraction)."""
    if code == 0:
        return 0.0
    if code == 2 ** (bits - 1):
        return math.nan
    negative = code >= 2 ** (bits - 1)
    body = format((2**bits - code) if negative else code, f"0{bits}b")[1:]
    run = len(body) - len(body.lstrip(body[0]))
    k = run - 1 if body[0] == "1" else -run
    rest = body[run + 1 :]
    exponent = int(rest[:es].ljust(es, "0"), 2) if es else 0
    fraction = rest[es:]
    f = Fraction(int(fraction, 2), 2 ** len(fraction)) if fraction else Fraction(0)
    value = Fraction(2) ** (k * 2**es + exponent) * (1 + f)
    return float(-value if negative else value)


def reference_encode(x: float, bits: int, es: int) -> int:
    """Write |x| as the unbounded posit bit string (regime, es exponent bits, fraction bits),
    keep bits - 1 bits, round to nearest with ties to even on the guard and sticky bits, and
    clamp to [minpos, maxpos]. This is how the standard describes rounding, with no table."""
    if x == 0:
        return 0
    a = Fraction(abs(x))
    s = a.numerator.bit_length() - a.denominator.bit_length()  # floor(log2 a) or one more
    if Fraction(2) ** s > a:
        s -= 1
    k, e = divmod(s, 2**es)
    regime = "1" * (k + 1) + "0" if k >= 0 else "0" * (-k) + "1"
    string = regime + (format(e, f"0{es}b") if es else "")
    frac = a / Fraction(2) ** s - 1
    for _ in range(bits + 2):
        frac *= 2
        string += "1" if frac >= 1 else "0"
        frac -= int(frac >= 1)
    kept, guard = string[: bits - 1], string[bits - 1]
    sticky = "1" in string[bits:] or frac != 0
    code = int(kept, 2)
    if guard == "1" and (sticky or code % 2 == 1):
        code += 1
    code = min(max(code, 1), 2 ** (bits - 1) - 1)
    return 2**bits - code if x < 0 else code


def probe_values(fmt: PositFormat) -> torch.Tensor:
    """Every value, every boundary (the (N+1)-bit codes 2c + 1), their float64 neighbours,
    points out of range and random log-uniform values, with both signs."""
    values = fmt.decode(torch.arange(1, fmt.nar))
    wider = PositFormat(fmt.bits + 1, fmt.es) if fmt.bits < 16 else None
    points = [values]
    if wider is not None:
        points.append(wider.decode(torch.arange(1, wider.nar)))
    points = torch.cat(points)
    near = torch.cat([points, torch.nextafter(points, points * 2), torch.nextafter(points, points / 2)])
    g = torch.Generator().manual_seed(0)
    span = math.log2(fmt.maxpos) + 4
    random = torch.exp2((torch.rand(300, generator=g, dtype=torch.float64) * 2 - 1) * span)
    extremes = torch.tensor([1e-300, 1e-30, fmt.minpos / 3, fmt.maxpos * 3, 1e30, 1e300], dtype=torch.float64)
    probe = torch.cat([near, random, extremes])
    return torch.cat([probe, -probe, torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize(("bits", "es"), FORMATS)
def test_decode_matches_the_bit_string_reading_for_every_code(bits, es):
    fmt = PositFormat(bits, es)
    codes = torch.arange(2**bits)
    expected = torch.tensor([reference_decode(int(c), bits, es) for c in codes], dtype=torch.float64)
    torch.testing.assert_close(fmt.decode(codes), expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(("bits", "es"), FORMATS)
def test_encode_matches_the_standard_bit_string_rounding(bits, es):
    fmt = PositFormat(bits, es)
    x = probe_values(fmt)
    expected = torch.tensor([reference_encode(float(v), bits, es) for v in x])
    assert torch.equal(fmt.encode(x), expected)


# --- hand-derived codes ---------------------------------------------------------------------


def test_posit8_es0_hand_derived_codes():
    # (8, 0): useed = 2, value = 2**k · (1 + f). Bits: sign | regime | fraction.
    fmt = PositFormat(8, 0)
    cases = {
        1.0: 0x40,  # 0 10 00000: one 1 then the terminator, k = 0
        2.0: 0x60,  # 0 110 0000: k = 1
        1.5: 0x50,  # 0 10 10000: f = 1/2
        0.5: 0x20,  # 0 01 00000: k = -1
        -1.0: 0xC0,  # two's complement of 0x40: 0x100 - 0x40
        64.0: 0x7F,  # maxpos: 0 1111111, k = 6, 2**6
        1 / 64: 0x01,  # minpos: 0 0000001, k = -6
        1 + 1 / 32: 0x41,  # 0 10 00001: the next code above 1.0 (five fraction bits)
        24.0: 0x7D,  # 0 11110 1: k = 4, one fraction bit 1: 16 · 1.5
        math.pi: 0x69,  # 0 110 1001: 2 · (1 + 9/16) = 3.125 is nearest (0.5708 · 16 = 9.13)
    }
    x = torch.tensor(list(cases), dtype=torch.float64)
    assert fmt.encode(x).tolist() == list(cases.values())
    assert fmt.decode(torch.tensor([0x69])).item() == 3.125
    assert (fmt.maxpos, fmt.minpos, fmt.useed, fmt.nar) == (64.0, 1 / 64, 2, 0x80)


def test_posit8_es1_hand_derived_codes():
    # (8, 1): useed = 4, value = 4**k · 2**e · (1 + f). Bits: sign | regime | e | fraction.
    cases = {
        1.0: 0x40,  # 0 10 0 0000
        1.5: 0x48,  # 0 10 0 1000
        2.0: 0x50,  # 0 10 1 0000: e = 1
        3.0: 0x58,  # 0 10 1 1000: 2 · 1.5
        4.0: 0x60,  # 0 110 0 000: k = 1
        0.75: 0x38,  # 0 01 1 1000: 4**-1 · 2 · 1.5
        4096.0: 0x7F,  # maxpos = 4**6 = 2**12
        1 / 4096: 0x01,  # minpos = 4**-6
        1024.0: 0x7E,  # 0 1111110: k = 5, the exponent bit is cut off (reads 0)
        512.0: 0x7D,  # 0 11110 1: k = 4, e = 1
        -0.75: 0x100 - 0x38,
    }
    x = torch.tensor(list(cases), dtype=torch.float64)
    assert POSIT8 == PositFormat(8, 1)
    assert POSIT8.encode(x).tolist() == list(cases.values())
    assert (POSIT8.maxpos, POSIT8.minpos, POSIT8.useed) == (4096.0, 1 / 4096, 4)
    assert POSIT8.decode(torch.tensor([0x81, 0xFF])).tolist() == [-4096.0, -1 / 4096]


def test_paper_example_and_posit16_codes():
    # Gustafson & Yonemoto 2017, Fig. 2: (16, 3) bits 0 0001 101 11011101: regime k = -3,
    # e = 5, f = 221/256, value 256**-3 · 2**5 · (1 + 221/256) = 477 / 2**27.
    fmt = PositFormat(16, 3)
    assert fmt.decode(torch.tensor([0b0000110111011101])).item() == 477 / 2**27
    assert fmt.encode(torch.tensor([477 / 2**27], dtype=torch.float64)).item() == 0x0DDD
    # (16, 1) as in SoftPosit's posit16: 1.0 = 0x4000, 3.0 = 0 10 1 1000000000000 = 0x5800,
    # maxpos = 4**14 = 2**28 = 0x7FFF, NaR = 0x8000 decodes to nan.
    p16 = PositFormat(16, 1)
    assert p16.encode(torch.tensor([1.0, 3.0, 2.0**28, -1.0])).tolist() == [0x4000, 0x5800, 0x7FFF, 0xC000]
    assert math.isnan(p16.decode(torch.tensor([0x8000])).item())
    # (8, 2), the standard's es = 2: maxpos = 16**6 = 2**24.
    assert PositFormat(8, 2).maxpos == 2.0**24


# --- rounding: ties to even, the (N+1)-bit boundary, saturation -------------------------


def test_ties_in_the_fraction_go_to_the_even_code():
    fmt = PositFormat(8, 0)
    # Codes 0x40 = 1 and 0x41 = 1 + 1/32: the boundary, 9-bit code 0x81, is 1 + 1/64.
    # 0x41 is odd, so the tie goes down to 0x40. Between 0x41 and 0x42 = 1 + 2/32 the tie
    # 1 + 3/64 goes up to the even 0x42.
    x = torch.tensor([1 + 1 / 64, 1 + 3 / 64, 1 + 1 / 64 + 2**-40, 1 + 3 / 64 - 2**-40], dtype=torch.float64)
    assert fmt.encode(x).tolist() == [0x40, 0x42, 0x41, 0x41]
    assert fmt.quantize(x[:2]).tolist() == [1.0, 1.0625]


def test_ties_in_the_regime_use_the_wider_posit_not_the_midpoint():
    # (8, 0): 0x7E = 32 (0 1111110, k = 5) and 0x7F = 64. Their boundary is the 9-bit code
    # 2 · 0x7E + 1 = 0xFD = 0 11111101: k = 5, one fraction bit 1: 32 · 1.5 = 48 (here the
    # arithmetic midpoint). The tie goes to the even 0x7E.
    fmt = PositFormat(8, 0)
    assert PositFormat(9, 0).decode(torch.tensor([0xFD])).item() == 48.0
    x = torch.tensor([47.99, 48.0, 48.01])
    assert fmt.encode(x).tolist() == [0x7E, 0x7E, 0x7F]
    # (8, 1): 0x7E = 4**5 = 1024 and 0x7F = 4**6 = 4096. The 9-bit code 0xFD = 0 111111 0 1
    # has k = 5 and exponent bit 1: 1024 · 2 = 2048, the geometric midpoint. The arithmetic
    # midpoint 2560 rounds up, and 2048 itself goes to the even 0x7E.
    assert PositFormat(9, 1).decode(torch.tensor([0xFD])).item() == 2048.0
    x = torch.tensor([2047.0, 2048.0, 2049.0, 2560.0])
    assert POSIT8.encode(x).tolist() == [0x7E, 0x7E, 0x7F, 0x7F]
    assert POSIT8.quantize(x).tolist() == [1024.0, 1024.0, 4096.0, 4096.0]
    # (8, 1) between 0x7C = 256 and 0x7D = 512: 9-bit 0xF9 = 0 11110 0 1: k = 4, e = 0,
    # fraction bit 1: 256 · 1.5 = 384, arithmetic again. The tie goes to 0x7C.
    assert POSIT8.encode(torch.tensor([383.0, 384.0, 385.0])).tolist() == [0x7C, 0x7C, 0x7D]


def test_saturation_never_rounds_to_zero_or_nar():
    fmt = PositFormat(8, 0)
    x = torch.tensor([1e30, 1e-30, -1e-30, -1e30, 0.0, -0.0, 65.0, 1 / 200])
    assert fmt.encode(x).tolist() == [0x7F, 0x01, 0xFF, 0x81, 0, 0, 0x7F, 0x01]
    assert fmt.quantize(x).tolist() == [64.0, 1 / 64, -1 / 64, -64.0, 0.0, 0.0, 64.0, 1 / 64]
    # Between minpos = 1/64 (0x01) and 1/32 (0x02) the boundary is the 9-bit 0x03 = 3/128.
    # The tie goes to the even 0x02.
    assert fmt.encode(torch.tensor([3 / 128, 3 / 128 - 1e-6])).tolist() == [0x02, 0x01]


# --- structure -----------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "es"), [(8, 0), (8, 1), (8, 2), (6, 1), (16, 1), (16, 4)])
def test_every_code_round_trips(bits, es):
    fmt = PositFormat(bits, es)
    codes = torch.arange(2**bits)
    codes = codes[codes != fmt.nar]
    assert torch.equal(fmt.encode(fmt.decode(codes)), codes)
    # Codes read as signed integers order the values: strictly increasing.
    signed = torch.arange(-(2 ** (bits - 1)) + 1, 2 ** (bits - 1))
    assert bool((torch.diff(fmt.decode(signed % 2**bits)) > 0).all())


def test_quantize_is_monotone_symmetric_and_keeps_dtype():
    x = torch.linspace(-5000, 5000, 200_001, dtype=torch.float64)
    x = torch.cat([x, torch.sign(x) * torch.exp2(torch.linspace(-14, 14, 200_001, dtype=torch.float64))])
    x = x.sort().values
    for fmt in (POSIT8, PositFormat(8, 0), PositFormat(12, 2)):
        q = fmt.quantize(x)
        assert bool((torch.diff(q) >= 0).all())
        assert torch.equal(fmt.quantize(-x), -q)
        assert torch.equal(fmt.encode(-x), (2**fmt.bits - fmt.encode(x)) % 2**fmt.bits)
    x32 = torch.tensor([[0.3, -7.0], [100.0, 0.0]])
    q32 = POSIT8.quantize(x32)
    assert q32.dtype == torch.float32 and q32.shape == (2, 2)
    assert POSIT8.encode(x32).dtype == torch.int64
    assert POSIT8.quantize(torch.tensor([3, -2])).dtype == torch.get_default_dtype()


def test_bad_formats_and_inputs_raise():
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        PositFormat(17, 1)
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        PositFormat(1, 0)
    with pytest.raises(ValueError, match=r"es must be an integer in 0\.\.4"):
        PositFormat(8, 5)
    with pytest.raises(ValueError, match="NaN/Inf"):
        POSIT8.encode(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN/Inf"):
        POSIT8.encode(torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 256\)"):
        POSIT8.decode(torch.tensor([256]))
    with pytest.raises(ValueError, match="integer tensor"):
        POSIT8.decode(torch.tensor([1.0]))
