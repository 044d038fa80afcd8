"""Fixed-point (ANNA) and ternary (TWN / NET32K) quantisation: hand-computed levels, the
op's half-to-even rounding and clipped straight-through gradient, per-channel scales,
calibration, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from genoise.deploy.fixed import (
    ANNA_ACTIVATIONS_UNSIGNED,
    ANNA_WEIGHTS,
    ActivationObserver,
    FixedPoint,
    ternarize,
)


def test_unsigned_3bit_hand_example():
    # x / 0.5 = [0.4, 0.5, 1.48, 1.5, 10, -2]: 0.4 -> 0; 0.5 ties to even 0; 1.48 -> 1;
    # 1.5 ties to even 2; 10 clamps to qmax = 7; -2 clamps to qmin = 0.
    fmt = FixedPoint(3, signed=False)
    x = torch.tensor([0.2, 0.25, 0.74, 0.75, 5.0, -1.0])
    assert fmt.codes(x, 0.5).tolist() == [0, 0, 1, 2, 7, 0]
    assert fmt.quantize(x, 0.5).tolist() == [0.0, 0.0, 0.5, 1.0, 3.5, 0.0]
    assert (fmt.qmin, fmt.qmax, fmt.levels) == (0, 7, 8)
    assert fmt == ANNA_ACTIVATIONS_UNSIGNED


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_the_op_rounds_halves_to_even(dtype):
    # nearbyint in the default rounding mode: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, and the
    # same mirrored for negatives. Scale 1 makes every product exact.
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5], dtype=dtype)
    expected = [0, 2, 2, 4, 0, -2, -2, -4]
    for fmt in (FixedPoint(4), FixedPoint(4, per_channel=True)):
        scale = torch.ones(8) if fmt.per_channel else 1.0
        assert fmt.quantize(x, scale).tolist() == expected
        assert fmt.quantize(x, scale).dtype == dtype
        assert fmt.codes(x, scale).tolist() == expected


def test_levels_come_from_x_times_the_float32_reciprocal_of_the_scale():
    # float32: 2.25 / 0.3 = 7.4999995 would round to 7, but the op computes
    # 2.25 · (1.0f / 0.3f) = 7.5 exactly, and that tie goes to the even 8. codes() agrees.
    fmt = FixedPoint(8)
    x = torch.tensor([2.25, -2.25])
    assert torch.round(x / 0.3).tolist() == [7.0, -7.0]
    assert fmt.codes(x, 0.3).tolist() == [8, -8]
    assert torch.round(fmt.quantize(x, 0.3).double() / torch.tensor(0.3).double()).tolist() == [8.0, -8.0]


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        (FixedPoint(8), torch.float32),
        (FixedPoint(8), torch.float64),
        (FixedPoint(8), torch.float16),
        (FixedPoint(4), torch.bfloat16),
        (FixedPoint(8, per_channel=True), torch.float32),
        (FixedPoint(8, per_channel=True), torch.float64),
        (FixedPoint(5, signed=False), torch.float32),
    ],
)
def test_codes_are_the_levels_quantize_uses(fmt, dtype):
    g = torch.Generator().manual_seed(0)
    # Many exact near-ties: multiples of 1/1000 against scales that are not dyadic.
    x = (torch.randint(-4000, 4000, (4, 5000), generator=g).double() / 1000).to(dtype)
    scale = torch.tensor([0.1, 0.3, 0.0123, 1 / 3]) if fmt.per_channel else torch.tensor(0.07)
    codes = fmt.codes(x, scale)
    q = fmt.quantize(x, scale)
    s = scale[:, None] if fmt.per_channel else scale
    assert torch.equal(torch.round(q.double() / s.double()).long(), codes)
    assert int(codes.min()) >= fmt.qmin and int(codes.max()) <= fmt.qmax


def test_anna_weights_6bit_per_channel_hand_example():
    # Row 0: max|w| = 31/16, scale 1/16: levels 31, -16, 0.25 · 16 = 4.
    # Row 1: max|w| = 7.75, scale 1/4: -31, 0.375 · 4 = 1.5 -> 2, 0.625 · 4 = 2.5 -> 2 (even).
    w = torch.tensor([[31 / 16, -1.0, 0.25], [-7.75, 0.375, 0.625]])
    assert (ANNA_WEIGHTS.bits, ANNA_WEIGHTS.qmin, ANNA_WEIGHTS.qmax, ANNA_WEIGHTS.levels) == (6, -31, 31, 63)
    scale = ANNA_WEIGHTS.scale_for(w)
    assert scale.dtype == torch.float32 and scale.tolist() == [1 / 16, 1 / 4]
    assert ANNA_WEIGHTS.codes(w).tolist() == [[31, -16, 4], [-31, 2, 2]]
    assert ANNA_WEIGHTS.quantize(w).tolist() == [[31 / 16, -1.0, 0.25], [-7.75, 0.5, 0.5]]
    # A conv weight: one scale per output channel, max over dims 1..
    conv = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    expected = conv.abs().amax(dim=(1, 2, 3)) / 31
    torch.testing.assert_close(ANNA_WEIGHTS.scale_for(conv), expected, rtol=1e-6, atol=0)
    q = ANNA_WEIGHTS.quantize(conv)
    torch.testing.assert_close(q.abs().amax(dim=(1, 2, 3)), conv.abs().amax(dim=(1, 2, 3)))
    for channel in range(5):
        assert q[channel].unique().numel() <= 63


def test_per_tensor_and_unsigned_calibration():
    x = torch.tensor([[-6.0, 1.0], [3.0, 0.5]])
    assert FixedPoint(4).scale_for(x).item() == pytest.approx(6 / 7)  # max|x| / 7
    assert FixedPoint(3, signed=False).scale_for(x).item() == pytest.approx(3 / 7)  # max x / 7
    zeros = torch.zeros(2, 3)
    assert FixedPoint(4).quantize(zeros).tolist() == zeros.tolist()  # floored scale, no NaN
    assert float(FixedPoint(4).scale_for(zeros)) > 0


@pytest.mark.parametrize(
    "fmt", [FixedPoint(2), FixedPoint(3, signed=False), FixedPoint(6), FixedPoint(8, signed=False)]
)
def test_at_most_2_to_the_bits_levels(fmt):
    x = torch.linspace(-1.0, 1.0, 10_001)
    q = fmt.quantize(x)
    # Signed symmetric uses 2**bits - 1 levels, unsigned all 2**bits (dense data hits them all).
    assert q.unique().numel() == fmt.levels <= 2**fmt.bits
    assert fmt.codes(x).unique().tolist() == list(range(fmt.qmin, fmt.qmax + 1))


def test_straight_through_gradient_is_one_inside_the_range_and_zero_outside():
    # 3-bit unsigned, scale 0.5: the mask is on the rounded level x/0.5 before clamping.
    # 1.0 -> 2 in; 3.7 -> 7.4 -> 7 in; 3.75 -> 7.5 -> 8 (tie to even) out; 3.8 -> 8 out;
    # -0.2 -> -0.4 -> 0 in; -0.25 -> -0.5 -> 0 (even) in; -0.3 -> -0.6 -> -1 out.
    fmt = FixedPoint(3, signed=False)
    x = torch.tensor([1.0, 3.7, 3.75, 3.8, -0.2, -0.25, -0.3], requires_grad=True)
    q = fmt.quantize(x, 0.5)
    q.sum().backward()
    assert q.tolist() == [1.0, 3.5, 3.5, 3.5, 0.0, 0.0, 0.0]
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    # Per-channel, same rule with each channel's scale; the scale gets no gradient.
    w = torch.tensor([[0.5, 2.0], [0.5, 2.0]], requires_grad=True)
    scale = torch.tensor([1.0, 0.25], requires_grad=True)
    FixedPoint(3, signed=True, per_channel=True).quantize(w, scale).sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0], [1.0, 0.0]]  # 2.0 / 0.25 = 8 > qmax = 3
    assert scale.grad is None


def test_ternarize_hand_example_per_channel():
    # Row 0: mean|w| = 3.75/4 = 0.9375, Δ = 0.65625: keep 1 and -2, a = 1.5.
    # Row 1: all zero: nothing exceeds Δ = 0, a = 0.
    # Row 2: mean|w| = 2.5/4 = 0.625, Δ = 0.4375: keep the 0.75s, a = 0.75.
    w = torch.tensor(
        [[1.0, -0.25, 0.5, -2.0], [0.0, 0.0, 0.0, 0.0], [0.75, 0.75, -0.75, 0.25]], requires_grad=True
    )
    t = ternarize(w)
    assert t.tolist() == [[1.5, 0.0, 0.0, -1.5], [0.0, 0.0, 0.0, 0.0], [0.75, 0.75, -0.75, 0.0]]
    t.sum().backward()
    assert w.grad.tolist() == torch.ones(3, 4).tolist()  # straight-through
    # One vector is one channel: same as row 0.
    assert ternarize(torch.tensor([1.0, -0.25, 0.5, -2.0])).tolist() == [1.5, 0.0, 0.0, -1.5]
    # threshold 0 keeps every nonzero weight: a = mean|w| = 0.9375.
    assert ternarize(torch.tensor([1.0, -0.25, 0.5, -2.0]), threshold=0.0).tolist() == [0.9375, -0.9375] * 2


def test_ternarize_conv_weight_has_three_values_per_channel():
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    t = ternarize(w)
    assert t.shape == w.shape
    for channel in range(6):
        flat = w[channel].abs().flatten()
        delta = 0.7 * flat.mean()
        a = flat[flat > delta].mean()
        magnitudes = t[channel][t[channel] != 0].abs().unique()
        assert magnitudes.numel() == 1  # values exactly in {-a, 0, a}
        torch.testing.assert_close(magnitudes[0], a)
        assert torch.equal(t[channel] != 0, w[channel].abs() > delta)
        assert torch.equal(torch.sign(t[channel]), torch.sign(w[channel]) * (w[channel].abs() > delta))


def test_activation_observer_tracks_running_maxima():
    obs = ActivationObserver()
    with pytest.raises(ValueError, match="no batch"):
        obs.scale(ANNA_ACTIVATIONS_UNSIGNED)
    batches = [torch.tensor([[-3.0, 1.0], [2.0, 0.5]]), torch.tensor([0.25, 4.0]), torch.tensor([-6.0])]
    for batch in batches:
        assert obs.update(batch) is batch
    assert (obs.max_abs.item(), obs.max.item(), obs.batches) == (6.0, 4.0, 3)
    everything = torch.cat([b.flatten() for b in batches])
    for fmt in (ANNA_ACTIVATIONS_UNSIGNED, FixedPoint(4)):
        assert torch.equal(obs.scale(fmt), fmt.scale_for(everything))
    assert obs.scale(ANNA_ACTIVATIONS_UNSIGNED).item() == pytest.approx(4 / 7)
    assert obs.scale(FixedPoint(4)).item() == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="per_channel must be False"):
        obs.scale(ANNA_WEIGHTS)
    obs.reset()
    assert obs.batches == 0 and obs.max_abs is None


def test_bad_formats_and_inputs_raise():
    for bits in (1, 17, 6.0, True):
        with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
            FixedPoint(bits)
    with pytest.raises(ValueError, match="signed must be a bool"):
        FixedPoint(4, signed=1)
    fmt = FixedPoint(4)
    with pytest.raises(ValueError, match="floating-point tensor"):
        fmt.quantize(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="empty"):
        fmt.scale_for(torch.zeros(0))
    with pytest.raises(ValueError, match="NaN/Inf"):
        fmt.scale_for(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="scale must be finite"):
        fmt.quantize(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="scale must be finite"):
        fmt.codes(torch.ones(3), -1.0)
    with pytest.raises(ValueError, match="per-tensor scale must have one element"):
        fmt.quantize(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"per-channel scale must have x\.shape\[0\] elements"):
        ANNA_WEIGHTS.quantize(torch.ones(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="channel dim 0"):
        ANNA_WEIGHTS.scale_for(torch.tensor(1.0))
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        ternarize(torch.ones(3), threshold=-0.1)
    with pytest.raises(ValueError, match="floating-point tensor"):
        ternarize(torch.ones(3, dtype=torch.int64))
