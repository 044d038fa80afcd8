"""Number-format emulation of whole networks: each format's layer equals the format applied by
hand; BatchNorm folding is exact; the fixed-point formats refuse to run uncalibrated; the
quantisers let gradients through (quantisation-aware training)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genoise.deploy.emulate import FORMATS, NumberFormatMode, fold_batchnorm
from genoise.deploy.fixed import ANNA_WEIGHTS, FixedPoint, ternarize
from genoise.deploy.logformat import LOG8, elma_conv2d, elma_linear
from genoise.deploy.posit import POSIT8
from genoise.nn.encoder import ConvEncoder


def test_fold_batchnorm_is_exact_in_eval() -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder(3, 16, 8, width=4)
    encoder.train()
    for _ in range(3):  # move the running statistics away from (0, 1)
        encoder(torch.randn(16, 3, 16, 16) * 2 + 1)
    encoder.eval()
    folded = fold_batchnorm(encoder)
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(folded(x), encoder(x), atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in encoder.modules())  # the original is untouched


def test_each_format_applies_to_linear_and_conv_as_by_hand() -> None:
    torch.manual_seed(0)
    lin, conv = nn.Linear(6, 3), nn.Conv2d(2, 3, 3)
    x, img = torch.randn(4, 6), torch.randn(2, 2, 5, 5)
    with torch.no_grad():
        with NumberFormatMode("ternary"):
            got = lin(x)
        assert torch.equal(got, F.linear(x, ternarize(lin.weight), lin.bias))
        with NumberFormatMode("posit8"):
            got = lin(x)
        want = POSIT8.quantize(
            F.linear(
                POSIT8.quantize(x).double(),
                POSIT8.quantize(lin.weight).double(),
                POSIT8.quantize(lin.bias).double(),
            )
        ).float()
        assert torch.equal(got, want)
        with NumberFormatMode("log8_elma"):  # the references are computed outside the mode
            got_lin, got_conv = lin(x), conv(img)
        assert torch.equal(got_lin, elma_linear(x, lin.weight, lin.bias, LOG8).float())
        assert torch.equal(got_conv, elma_conv2d(img, conv.weight, conv.bias, LOG8).float())


def test_anna_needs_calibration_then_quantises_with_its_ranges() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    mode = NumberFormatMode("anna_6w3a", calibration="max")
    with pytest.raises(ValueError, match="no calibrated range"), torch.no_grad(), mode:
        model(torch.randn(2, 6))
    batches = [torch.randn(8, 6) for _ in range(3)]
    mode.calibrate(model, batches)
    assert len(mode.ranges) == 2 and mode.ranges[1][0] >= 0  # the second layer sees ReLU outputs
    x = torch.randn(4, 6)
    with torch.no_grad(), mode:
        got = model(x)
    low, high = mode.ranges[0]
    top = max(abs(low), abs(high))
    x_q = FixedPoint(3, signed=True).quantize(x, torch.tensor(top / 3))
    w0 = ANNA_WEIGHTS.quantize(model[0].weight, ANNA_WEIGHTS.scale_for(model[0].weight))
    h = torch.relu(F.linear(x_q, w0, model[0].bias))
    h_q = FixedPoint(3, signed=False).quantize(h, torch.tensor(mode.ranges[1][1] / 7))
    w2 = ANNA_WEIGHTS.quantize(model[2].weight, ANNA_WEIGHTS.scale_for(model[2].weight))
    assert torch.allclose(got, F.linear(h_q, w2, model[2].bias), atol=1e-6)
    assert torch.unique(h_q).numel() <= 8  # 3-bit activations


def test_gradients_pass_through_the_formats() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    mode = NumberFormatMode("anna_6w3a").calibrate(model, [torch.randn(16, 6)])
    with mode:
        loss = F.cross_entropy(model(torch.randn(8, 6)), torch.randint(0, 3, (8,)))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt"):
        NumberFormatMode("float4")
    assert set(FORMATS) == {"log8_elma", "posit8", "anna_6w3a", "int8", "ternary"}
    with pytest.raises(ValueError, match="activation_bits"):
        NumberFormatMode("int8", activation_bits=1)


def test_int8_is_close_to_float_and_closer_than_anna() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    batches = [torch.randn(64, 6) for _ in range(2)]
    x = torch.randn(256, 6)
    with torch.no_grad():
        exact = model(x)
        errors = {}
        for fmt in ("int8", "anna_6w3a"):
            with NumberFormatMode(fmt).calibrate(model, batches):
                out = model(x)
            errors[fmt] = float((out - exact).abs().max() / exact.abs().max())
    assert 0 < errors["int8"] < 0.02 and errors["int8"] < errors["anna_6w3a"] / 4


def test_mse_calibration_clips_a_heavy_tail_better_than_max() -> None:
    """A heavy-tailed input: clipping below the extreme lowers the 3-bit quantisation error."""
    torch.manual_seed(0)
    layer = nn.Linear(64, 4)
    batches = [torch.distributions.StudentT(2.0).sample((32, 64)) for _ in range(4)]
    x = torch.cat(batches)
    errors = {}
    for calibration in ("max", "mse"):
        mode = NumberFormatMode("anna_6w3a", calibration=calibration).calibrate(layer, batches)
        fmt, scale = mode._activation_format(0)
        errors[calibration] = float((fmt.quantize(x, scale) - x).square().mean())
        low, high = mode.ranges[0]
        assert low < 0 < high and (calibration == "mse" or high == pytest.approx(float(x.max())))
    assert errors["mse"] < 0.8 * errors["max"]
