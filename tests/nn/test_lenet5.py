"""LeNet-5: the 1998 layout (parameter count by hand), C3 table, input field, shapes, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genoise.nn import C3_TABLE, LeNet5, ScaledTanh


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_matches_paper_layout():
    # LeCun et al. 1998, Section II-B: C1 6·(25+1), S2 6·2, C3 60 connected 5×5 kernels + 16
    # biases (Table I), S4 16·2, C5 120·(16·25+1), F6 84·(120+1) — 60,000 in all — plus our
    # linear output 10·(84+1) instead of the paper's 84·10 RBF centres.
    c1, s2, c3, s4, c5, f6, out = 6 * 26, 6 * 2, 60 * 25 + 16, 16 * 2, 120 * 401, 84 * 121, 10 * 85
    assert (c1, c3, c5, f6) == (156, 1516, 48120, 10164)
    assert c1 + s2 + c3 + s4 + c5 + f6 == 60000
    net = LeNet5()
    assert count(net.c1) == c1 and count(net.s2) == s2 and count(net.c3) == c3
    assert count(net.s4) == s4 and count(net.c5) == c5 and count(net.f6) == f6
    assert count(net) == 60000 + out


def test_full_c3_connection_has_2416_parameters():
    net = LeNet5(c3_table=False)
    assert count(net.c3) == 16 * (6 * 25 + 1) == 2416
    assert count(net) == 60000 - 1516 + 2416 + 850


def test_c3_table_is_table_one_of_the_paper():
    assert sum(len(t) for t in C3_TABLE) == 60
    assert [len(t) for t in C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    # Table I, row 0 (S2 map 0) has an X in C3 columns 0, 4, 5, 6, 9, 10, 11, 12, 14, 15
    assert [o for o, inputs in enumerate(C3_TABLE) if 0 in inputs] == [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]
    assert [o for o, inputs in enumerate(C3_TABLE) if 5 in inputs] == [3, 4, 5, 8, 9, 10, 11, 13, 14, 15]


def test_sparse_c3_equals_masked_dense_convolution():
    torch.manual_seed(0)
    c3 = LeNet5().c3
    h = torch.randn(3, 6, 14, 14)
    mask = torch.zeros(16, 6, 1, 1)
    for o, inputs in enumerate(C3_TABLE):
        mask[o, list(inputs)] = 1
    dense = c3.dense_weight()
    assert torch.equal(dense * mask, dense)
    reference = F.conv2d(h, dense.detach() * mask, c3.bias.detach())
    assert torch.allclose(c3(h), reference, atol=1e-6)
    # every connected kernel is distinct from zero (none lost in the scatter)
    assert int((dense.abs().sum(dim=(2, 3)) > 0).sum()) == 60


def test_width_multiplies_the_maps_and_keeps_the_table_per_group():
    k = 2
    net = LeNet5(width=k)
    # C1 6k·26, C3 k·(60·25) + 16k biases, C5 120k·(16k·25 + 1), F6 84·(120k + 1)
    assert count(net.c1) == 6 * k * 26 and count(net.c3) == k * 1500 + 16 * k
    assert count(net.c5) == 120 * k * (16 * k * 25 + 1) and count(net.f6) == 84 * (120 * k + 1)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # the grouped C3 is Table I applied to each group of 6 S2 maps, by hand: two width-1 C3s
    torch.manual_seed(1)
    c3, h = net.c3, torch.randn(2, 12, 14, 14)
    halves = [LeNet5().c3 for _ in range(k)]
    with torch.no_grad():
        for g, half in enumerate(halves):
            half.weight.copy_(c3.weight[60 * g : 60 * (g + 1)])
            half.bias.copy_(c3.bias[16 * g : 16 * (g + 1)])
    reference = torch.cat([half(h[:, 6 * g : 6 * (g + 1)]) for g, half in enumerate(halves)], dim=1)
    assert torch.allclose(c3(h), reference, atol=1e-6)


def test_mnist_input_is_zero_padded_to_32():
    net = LeNet5(image_size=28)
    x = torch.rand(2, 1, 28, 28)
    field = net.to_field(x)
    assert field.shape == (2, 1, 32, 32)
    assert torch.equal(field[:, :, 2:30, 2:30], x)
    assert float(field.abs().sum()) == pytest.approx(float(x.sum()), rel=1e-6)


def test_digits_input_is_upsampled_three_times_and_padded():
    net = LeNet5(image_size=8)
    x = torch.rand(2, 1, 8, 8)
    field = net.to_field(x)
    assert field.shape == (2, 1, 32, 32)
    big = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(field[:, :, 4:28, 4:28], big)
    assert float(field[:, :, :4].abs().sum()) == 0.0 and float(field[:, :, 28:].abs().sum()) == 0.0


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (32, 3), (16, 1)])
def test_output_and_feature_shapes(size, channels):
    net = LeNet5(in_channels=channels, image_size=size)
    x = torch.rand(5, channels, size, size)
    assert net(x).shape == (5, 10)
    features = net.features(x).detach()
    assert features.shape == (5, net.feature_dim) == (5, 84)
    assert float(features.abs().max()) <= 1.0  # tanh output


def test_scaled_tanh_is_paper_squashing_function():
    a = torch.linspace(-3, 3, 13)
    assert torch.allclose(ScaledTanh()(a), 1.7159 * torch.tanh(2 * a / 3))
    assert float(ScaledTanh()(torch.tensor(1.0))) == pytest.approx(1.0, abs=1e-4)  # f(1) ≈ 1
    net = LeNet5(activation="scaled_tanh")
    assert float(net.features(torch.rand(2, 1, 28, 28)).detach().abs().max()) <= 1.7159


def test_gradients_reach_every_parameter():
    torch.manual_seed(1)
    net = LeNet5(image_size=8)
    loss = F.cross_entropy(net(torch.rand(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_same_seed_same_network():
    torch.manual_seed(7)
    a = LeNet5()
    torch.manual_seed(7)
    b = LeNet5()
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(a(x), b(x))
    torch.manual_seed(8)
    assert not torch.equal(a(x), LeNet5()(x))


@pytest.mark.parametrize(("shape", "message"), [
    ((2, 3, 28, 28), r"LeNet5 expects input of shape \(B, 1, 28, 28\), got \(2, 3, 28, 28\)"),
    ((2, 1, 32, 32), r"expects input of shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"),
    ((1, 28, 28), r"got \(1, 28, 28\)"),
])
def test_bad_input_shape_raises_value_error(shape, message):
    with pytest.raises(ValueError, match=message):
        LeNet5()(torch.rand(shape))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="side <= 32"):
        LeNet5(image_size=64)
    with pytest.raises(ValueError, match="activation must be one of"):
        LeNet5(activation="sigmoid")
    with pytest.raises(ValueError, match="width"):
        LeNet5(width=0)


def test_lenet5_fits_a_small_digits_batch():
    from genoise.data import load_dataset

    torch.manual_seed(0)
    data = load_dataset("digits", "train")
    x, y = data.images[:40], data.labels[:40]
    net = LeNet5(image_size=8)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = F.cross_entropy(net(x), y)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    assert first > 2.0 and accuracy > 0.9
