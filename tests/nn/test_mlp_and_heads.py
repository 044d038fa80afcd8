"""MLP and SSL projector heads: the forward map against a hand computation, shapes, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.nn import ACTIVATIONS, MLP, projector


def test_mlp_equals_hand_computed_forward():
    torch.manual_seed(0)
    net = MLP(3, [5, 4], 2, activation="tanh")
    x = torch.randn(6, 3)
    l1, l2, l3 = (m for m in net.modules() if isinstance(m, nn.Linear))
    expected = l3(torch.tanh(l2(torch.tanh(l1(x)))))
    assert torch.allclose(net(x), expected)
    assert torch.allclose(l1(x), x @ l1.weight.T + l1.bias)


def test_mlp_without_hidden_is_linear():
    net = MLP(4, [], 3)
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 1
    assert sum(p.numel() for p in net.parameters()) == 4 * 3 + 3


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_mlp_shapes_and_gradients(activation, norm):
    net = MLP(2, [16, 16], 1, activation=activation, norm=norm, dropout=0.1)
    x = torch.randn(8, 2, requires_grad=True)
    out = net(x)
    assert out.shape == (8, 1)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in net.parameters())


def test_mlp_layer_norm_normalises_hidden_units():
    net = MLP(3, [8], 2, norm="layer", activation="relu")
    hidden = net.net[1](net.net[0](torch.randn(5, 3)))
    assert torch.allclose(hidden.mean(1), torch.zeros(5), atol=1e-5)


def test_mlp_flattens_images():
    net = MLP(64, [32], 10)
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_mlp_bad_input_and_arguments():
    with pytest.raises(ValueError, match=r"MLP expects input of shape \(B, 2\), got \(4, 3\)"):
        MLP(2, [4], 1)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(2, [4], 1, activation="gelu")
    with pytest.raises(ValueError, match="norm must be one of"):
        MLP(2, [4], 1, norm="group")
    with pytest.raises(ValueError, match="dropout must be < 1"):
        MLP(2, [4], 1, dropout=1.0)
    with pytest.raises(ValueError, match="hidden width must be an integer >= 1"):
        MLP(2, [0], 1)


def test_mlp_same_seed_same_output():
    x = torch.randn(3, 2)
    torch.manual_seed(3)
    a = MLP(2, [8], 1)(x)
    torch.manual_seed(3)
    assert torch.equal(a, MLP(2, [8], 1)(x))


def test_projector_layout_is_linear_bn_relu_then_linear():
    head = projector(16, 32, 8, layers=3, bn=True)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.randn(4, 16)).shape == (4, 8)
    # the bias of a linear layer followed by BatchNorm is redundant, so it is dropped
    assert head[0].bias is None and head[-1].bias is not None


def test_projector_without_bn_and_single_layer():
    assert [type(m).__name__ for m in projector(4, 8, 2, layers=2, bn=False)] == ["Linear", "ReLU", "Linear"]
    single = projector(4, 8, 2, layers=1)
    assert len(single) == 1 and single(torch.randn(3, 4)).shape == (3, 2)


def test_projector_bad_input():
    with pytest.raises(ValueError, match=r"projector expects input of shape \(B, 16\), got \(4, 15\)"):
        projector(16, 32, 8)(torch.randn(4, 15))
    with pytest.raises(ValueError, match="layers must be an integer >= 1"):
        projector(16, 32, 8, layers=0)
