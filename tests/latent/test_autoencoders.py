"""Auto-encoders (bottleneck, denoising, masked): the energy surface, training lowers the
reconstruction energy, masking semantics, bad input."""

from __future__ import annotations

import pytest
import torch

from genoise.data import load_digits
from genoise.energy import infer_latent
from genoise.latent.autoencoders import (
    AutoEncoder,
    DenoisingAutoEncoder,
    MaskedAutoEncoder,
    fit_autoencoder,
)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits("train").images[:600]  # (600, 1, 8, 8)


@pytest.mark.parametrize("cls,kwargs", [
    (AutoEncoder, {}),
    (DenoisingAutoEncoder, {"noise": "gaussian", "noise_std": 0.2}),
    (DenoisingAutoEncoder, {"noise": "mask", "drop_prob": 0.25}),
    (MaskedAutoEncoder, {"mask_ratio": 0.25, "patch_size": 2, "image_shape": (1, 8, 8)}),
])
def test_training_lowers_reconstruction_energy(digits, cls, kwargs):
    torch.manual_seed(0)
    model = cls(64, 12, hidden=[64], **kwargs)
    with torch.no_grad():
        before = float(model.free_energy(digits).mean())
    history = fit_autoencoder(model, digits, epochs=6, batch_size=64, lr=3e-3,
                              generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = float(model.free_energy(digits).mean())
    assert history[-1] < history[0]
    assert after < 0.6 * before


def test_energy_is_reconstruction_error_and_latent_inference_refines_it(digits):
    torch.manual_seed(0)
    model = AutoEncoder(64, 4, hidden=[32])
    y = digits[:16]
    expected = ((y - model.reconstruct(y)) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(model.energy(y), expected)
    torch.testing.assert_close(model.free_energy(y), expected)
    torch.testing.assert_close(model.energy(y, z=model.encode(y)), expected)
    z = infer_latent(model, y, steps=50, lr=0.05, optimizer=torch.optim.Adam)
    assert float(model.energy(y, z=z).sum().detach()) < float(expected.sum().detach())


def test_masked_autoencoder_scores_only_masked_values(digits):
    torch.manual_seed(0)
    model = MaskedAutoEncoder(64, 8, hidden=[32], mask_ratio=0.5, patch_size=4, image_shape=(1, 8, 8))
    mask = model.random_mask(500, torch.Generator().manual_seed(0)).reshape(500, 2, 4, 2, 4)
    # whole 4x4 patches are hidden together, about half of them
    assert bool((mask == mask[:, :, :1, :, :1]).all())
    assert 0.4 < float(mask.mean()) < 0.6
    y = digits[:32].flatten(1)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    m = model.random_mask(32, gen_a)
    expected = (m * (y - model.decode(model.encoder(y * (1 - m)))) ** 2).sum(1).mean()
    torch.testing.assert_close(model.loss(y, gen_b), expected)


def test_denoising_corruption_is_seeded():
    model = DenoisingAutoEncoder(10, 2, hidden=[8], noise_std=0.5)
    y = torch.zeros(4, 10)
    a = model.corrupt(y, torch.Generator().manual_seed(1))[0]
    b = model.corrupt(y, torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, b) and float(a.std()) > 0.2


def test_autoencoder_bad_input(digits):
    model = AutoEncoder(64, 4, hidden=[16])
    with pytest.raises(ValueError, match=r"expects y of shape \(B, 64\)"):
        model.energy(torch.rand(5, 63))
    with pytest.raises(ValueError, match="beta=inf only"):
        model.free_energy(digits[:4], beta=1.0)
    with pytest.raises(ValueError, match="NaN/Inf"):
        fit_autoencoder(model, torch.full((4, 64), float("nan")), epochs=1)
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedAutoEncoder(64, 4, mask_ratio=1.5)
    with pytest.raises(ValueError, match="patch_size=3 must divide"):
        MaskedAutoEncoder(64, 4, patch_size=3, image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="noise must be one of"):
        DenoisingAutoEncoder(64, 4, noise="salt")
