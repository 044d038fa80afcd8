"""ConvEncoder / ConvDecoder / ResNet18Small: shapes for 8, 28, 32 inputs, gradients,
errors, determinism; ResNet-18 parameter count against torchvision's published number."""

from __future__ import annotations

import pytest
import torch

from genoise.nn import ConvDecoder, ConvEncoder, ResNet18Small


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32)])
def test_encoder_decoder_shapes(channels, size):
    enc = ConvEncoder(channels, size, out_dim=12, width=8)
    dec = ConvDecoder(12, channels, size, width=8)
    x = torch.rand(4, channels, size, size)
    z = enc(x)
    assert z.shape == (4, 12) and enc.feature_dim == 12 and enc.pooled_dim == 32
    x_hat = dec(z).detach()
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) > 0 and float(x_hat.max()) < 1


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("size", [7, 8, 28, 32])
def test_decoder_produces_exact_size_for_any_depth(depth, size):
    decoder = ConvDecoder(5, 2, size, width=4, depth=depth, sigmoid=False)
    assert decoder(torch.randn(2, 5)).shape == (2, 2, size, size)
    assert ConvEncoder(2, size, 3, width=4, depth=depth)(torch.rand(2, 2, size, size)).shape == (2, 3)


def test_encoder_widths_double_and_sides_halve():
    enc = ConvEncoder(1, 28, 10, width=8, depth=3)
    h = torch.rand(2, 1, 28, 28)
    sides, widths = [], []
    for block in enc.blocks:
        h = block(h)
        sides.append(h.shape[-1])
        widths.append(h.shape[1])
    assert sides == [14, 7, 4] and widths == [8, 16, 32]


def test_autoencoder_gradients_reach_every_parameter():
    torch.manual_seed(0)
    enc, dec = ConvEncoder(1, 8, 6, width=4), ConvDecoder(6, 1, 8, width=4)
    x = torch.rand(5, 1, 8, 8)
    ((dec(enc(x)) - x) ** 2).mean().backward()
    for module in (enc, dec):
        for name, p in module.named_parameters():
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_encoder_same_seed_same_output():
    x = torch.rand(3, 1, 8, 8)
    torch.manual_seed(4)
    a = ConvEncoder(1, 8, 5, width=4).eval()
    torch.manual_seed(4)
    b = ConvEncoder(1, 8, 5, width=4).eval()
    assert torch.equal(a(x), b(x))


def test_conv_bad_shapes():
    with pytest.raises(ValueError, match=r"ConvEncoder expects input of shape \(B, 1, 28, 28\), "
                                         r"got \(2, 3, 28, 28\)"):
        ConvEncoder(1, 28, 4)(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"got \(2, 1, 32, 32\)"):
        ConvEncoder(1, 28, 4)(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"ConvDecoder expects input of shape \(B, 4\), got \(2, 5\)"):
        ConvDecoder(4, 1, 28)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        ConvEncoder(1, 28, 4, depth=0)


def test_resnet18_small_parameter_count_matches_torchvision_minus_imagenet_parts():
    # torchvision's resnet18 has 11,689,512 parameters; remove its 1000-way fc (512·1000 + 1000)
    # and swap the 7×7 stem conv (64·3·49) for a 3×3 one (64·3·9).
    expected = 11_689_512 - (512 * 1000 + 1000) - 64 * 3 * 49 + 64 * 3 * 9
    net = ResNet18Small()
    assert sum(p.numel() for p in net.parameters()) == expected == 11_168_832
    assert net.feature_dim == 512


@pytest.mark.parametrize(("channels", "size"), [(3, 32), (1, 28), (1, 8)])
def test_resnet18_small_shapes_and_classifier(channels, size):
    net = ResNet18Small(in_channels=channels, width=8)
    x = torch.rand(2, channels, size, size)
    assert net(x).shape == (2, 64) and net.feature_dim == 64
    clf = ResNet18Small(in_channels=channels, num_classes=10, width=8)
    out = clf(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in clf.parameters())


def test_resnet18_small_keeps_resolution_in_first_stage():
    net = ResNet18Small(width=8)
    h = net.stem(torch.rand(1, 3, 32, 32))
    sides = []
    for stage in net.stages:
        h = stage(h)
        sides.append(h.shape[-1])
    assert sides == [32, 16, 8, 4]  # no max-pool, stride 2 only from stage 2


def test_resnet18_small_bad_shapes():
    with pytest.raises(ValueError, match=r"ResNet18Small expects input of shape \(B, 3, H, W\), "
                                         r"got \(2, 1, 32, 32\)"):
        ResNet18Small(width=8)(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"got \(3, 32, 32\)"):
        ResNet18Small(width=8)(torch.rand(3, 32, 32))
