"""View augmentations: shapes per preset, multi-crop, seeded reproducibility, bad input."""

from __future__ import annotations

import pytest
import torch

from genoise.ssl.augment import PRESETS, ViewAugment


@pytest.mark.parametrize("preset", ["digits", "mnist", "cifar"])
def test_presets_make_views_of_the_right_shapes_in_unit_range(preset, generator):
    cfg = PRESETS[preset]
    images = torch.rand(6, cfg.channels, cfg.size, cfg.size, generator=generator)
    views = ViewAugment(preset, n_local=2)(images, generator)
    assert [tuple(v.shape) for v in views] == [(6, cfg.channels, cfg.size, cfg.size)] * 2 + [
        (6, cfg.channels, cfg.local_size, cfg.local_size)] * 2
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in views)
    assert not torch.equal(views[0], views[1])  # two different random views


def test_imagenet_preset_handles_224_rgb(generator):
    views = ViewAugment("imagenet", n_local=1)(torch.rand(2, 3, 224, 224, generator=generator), generator)
    assert views[0].shape == (2, 3, 224, 224) and views[2].shape == (2, 3, 96, 96)


def test_views_are_reproducible_for_a_seed_and_leave_the_global_rng_alone():
    images = torch.rand(8, 1, 28, 28)
    augment = ViewAugment("mnist")
    state = torch.get_rng_state()
    a = augment(images, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)
    b = augment(images, torch.Generator().manual_seed(5))
    c = augment(images, torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_local_size_override_gives_full_size_local_crops(generator):
    views = ViewAugment("digits", n_local=2, local_size=8)(torch.rand(4, 1, 8, 8), generator)
    assert all(v.shape == (4, 1, 8, 8) for v in views)


def test_wrong_channel_count_and_unknown_preset_are_refused():
    with pytest.raises(ValueError, match="expects 3 channel"):
        ViewAugment("cifar")(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="preset must be one of"):
        ViewAugment("svhn")
    with pytest.raises(ValueError, match="4 dimension"):
        ViewAugment("mnist")(torch.rand(2, 28, 28))
