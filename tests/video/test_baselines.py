"""The ConvLSTM, SimVP and dynamic-filter baselines of :mod:`genoise.video`."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from genoise.video.convlstm import ConvLSTMCell, ConvLSTMPredictor
from genoise.video.dfn import DynamicFilterPredictor, apply_filters
from genoise.video.simvp import SimVP

SMALL = {
    ConvLSTMPredictor: {"image_size": 16, "hidden": (8, 8), "kernel": 3, "patch": 2},
    SimVP: {"image_size": 16, "spatial": 8, "temporal": 16, "spatial_layers": 4, "temporal_layers": 2},
    DynamicFilterPredictor: {"image_size": 16, "window": 2, "width": 4, "hidden": 8, "kernel": 3,
                             "blocks": 1},
}
DEFAULT_SMALL = {ConvLSTMPredictor: {"hidden": (8, 8)}, SimVP: {"spatial": 8, "temporal": 16},
                 DynamicFilterPredictor: {"width": 4, "hidden": 8}}
MODELS = list(SMALL)


def small(cls, **kwargs):
    return cls(**{**SMALL[cls], **kwargs})


@pytest.mark.parametrize("cls", MODELS)
def test_default_model_maps_moving_mnist_context_to_horizon_frames_in_unit_range(cls):
    model = cls(**DEFAULT_SMALL[cls])
    out = model.eval()(torch.rand(2, 10, 1, 64, 64))  # eval mode clamps to [0, 1]
    assert out.shape == (2, 10, 1, 64, 64)
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize(("context", "horizon"), [(4, 1), (2, 5)])
def test_context_and_horizon_may_differ(cls, context, horizon):
    model = cls(context=context, horizon=horizon, **SMALL[cls]).eval()
    out = model(torch.rand(3, context, 1, 16, 16))
    assert out.shape == (3, horizon, 1, 16, 16)
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("shape", [(2, 10, 1, 16), (2, 10, 3, 16, 16), (2, 9, 1, 16, 16), (2, 10, 1, 8, 8)])
def test_wrong_frame_shape_raises_value_error_naming_the_got_shape(cls, shape):
    with pytest.raises(ValueError, match=re.escape(f"got {tuple(shape)}")):
        small(cls)(torch.rand(*shape))


@pytest.mark.parametrize(("cls", "kwargs"), [
    (ConvLSTMPredictor, {"image_size": 18, "patch": 4}),
    (ConvLSTMPredictor, {"kernel": 4}),
    (ConvLSTMPredictor, {"hidden": ()}),
    (ConvLSTMPredictor, {"hidden": (8, 0)}),
    (ConvLSTMPredictor, {"context": 0}),
    (ConvLSTMPredictor, {"patch": 1.5}),
    (SimVP, {"image_size": 18}),
    (SimVP, {"spatial": 0}),
    (SimVP, {"temporal_layers": 0}),
    (SimVP, {"horizon": True}),
    (DynamicFilterPredictor, {"kernel": 4}),
    (DynamicFilterPredictor, {"window": 4, "context": 3}),
    (DynamicFilterPredictor, {"image_size": 18}),
    (DynamicFilterPredictor, {"blocks": 0}),
])
def test_bad_constructor_arguments_raise_value_error(cls, kwargs):
    with pytest.raises(ValueError):
        small(cls, **kwargs)


def test_convlstm_cell_matches_the_hand_written_gate_equations():
    cell = ConvLSTMCell(3, 5, kernel=3)
    x, h, c = torch.randn(2, 3, 6, 7), torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
    pre = F.conv2d(torch.cat([x, h], 1), cell.conv.weight, cell.conv.bias, padding=1)
    i, f, g, o = (pre[:, k * 5 : (k + 1) * 5] for k in range(4))
    c_want = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_want = torch.sigmoid(o) * torch.tanh(c_want)
    h_got, c_got = cell(x, (h, c))
    torch.testing.assert_close(c_got, c_want)
    torch.testing.assert_close(h_got, h_want)
    h0, c0 = cell(x)  # no state: zeros
    torch.testing.assert_close(h0, cell(x, (torch.zeros_like(h), torch.zeros_like(c)))[0])
    torch.testing.assert_close(c0, cell(x, (torch.zeros_like(h), torch.zeros_like(c)))[1])


@pytest.mark.parametrize("cls", MODELS)
def test_kwargs_and_state_dict_rebuild_the_same_model(cls):
    model = small(cls, context=3, horizon=2).eval()
    clone = type(model)(**model.kwargs).eval()
    clone.load_state_dict(model.state_dict())
    frames = torch.rand(2, 3, 1, 16, 16)
    assert torch.equal(model(frames), clone(frames))


@pytest.mark.parametrize("cls", MODELS)
def test_gradients_reach_every_parameter(cls):
    model = small(cls, context=3, horizon=2)
    model(torch.rand(2, 3, 1, 16, 16)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def moving_squares(length: int, size: int = 16, side: int = 3) -> torch.Tensor:
    """Every sequence of a bright ``side``² square moving 1 px/frame right on a ``size``²
    canvas, started at each row and each column that keeps it inside: (N, length, 1, size, size)."""
    rows = torch.arange(size - side + 1)
    cols = torch.arange(size - side - length + 2)
    r, c = (t.flatten() for t in torch.meshgrid(rows, cols, indexing="ij"))
    px = torch.arange(size)
    in_rows = (px >= r[:, None]) & (px < r[:, None] + side)  # (N, size)
    left = c[:, None] + torch.arange(length)  # (N, length)
    in_cols = (px >= left[..., None]) & (px < left[..., None] + side)  # (N, length, size)
    return (in_rows[:, None, :, None] & in_cols[:, :, None, :]).float().unsqueeze(2)


@pytest.mark.parametrize("cls", MODELS)
def test_short_training_on_moving_squares_lowers_held_out_error(cls):
    context, horizon = 3, 2
    data = moving_squares(context + horizon)
    gen = torch.Generator().manual_seed(0)
    data = data[torch.randperm(len(data), generator=gen)]
    test, train = data[:24], data[24:]
    torch.manual_seed(0)
    model = small(cls, context=context, horizon=horizon)

    def held_out_mse() -> float:
        with torch.no_grad():
            return F.mse_loss(model(test[:, :context]), test[:, context:]).item()

    before = held_out_mse()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.mse_loss(model(train[:, :context]), train[:, context:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_mse()
    assert after < 0.7 * before, (before, after)
    # and the motion, not only the black background: far below predicting a black frame (0.035)
    assert after < 0.5 * test[:, context:].square().mean().item(), after


def test_apply_filters_equals_a_sum_of_shifted_frames():
    """out(p) = Σ_o w(p, o) · x(p + o) with zero padding, by explicit shifts of a padded frame."""
    gen = torch.Generator().manual_seed(0)
    frame, k = torch.rand(2, 3, 7, 9, generator=gen), 5
    weights = torch.rand(2, k * k, 7, 9, generator=gen)
    padded = F.pad(frame, (k // 2,) * 4)
    want = sum(weights[:, i * k + j, None] * padded[:, :, i : i + 7, j : j + 9]
               for i in range(k) for j in range(k))
    torch.testing.assert_close(apply_filters(frame, weights), want)
    with pytest.raises(ValueError, match="weights must be"):
        apply_filters(frame, weights[:, :24])


def test_dynamic_filter_prediction_is_a_convex_combination_of_the_last_frame():
    """Filters are per-pixel distributions: a frame in [0, 1] stays in [0, 1] even while
    training (no clamp), and a constant frame is predicted exactly, at every recursive step."""
    model = small(DynamicFilterPredictor, context=3, horizon=4)
    out = model(torch.rand(2, 3, 1, 16, 16))
    assert 0 <= out.min() and out.max() <= 1
    weights = model.filters(torch.rand(2, 2, 1, 16, 16))
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 16, 16))
    # away from the zero padding of the border a constant frame stays constant
    const = model(torch.full((1, 3, 1, 16, 16), 0.25))
    torch.testing.assert_close(const[..., 4:-4, 4:-4], torch.full_like(const[..., 4:-4, 4:-4], 0.25))


def test_dynamic_filter_network_with_a_latent_reads_z_and_refuses_a_wrong_one():
    model = small(DynamicFilterPredictor, latent=3).eval()
    frames = torch.rand(2, 10, 1, 16, 16)
    a, b = model(frames, torch.zeros(2, 3)), model(frames, torch.ones(2, 3))
    assert a.shape == (2, 10, 1, 16, 16) and not torch.allclose(a, b)
    assert model.kwargs["latent"] == 3 and "latent" not in small(DynamicFilterPredictor).kwargs
    with pytest.raises(ValueError, match=re.escape("expects z (B, 3), got none")):
        model(frames)
    with pytest.raises(ValueError, match=re.escape("expects z (B, 3), got (2, 4)")):
        model(frames, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="expects z no z"):
        small(DynamicFilterPredictor)(frames, torch.zeros(2, 3))
