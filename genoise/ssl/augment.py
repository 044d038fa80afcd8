"""Batched, seeded view augmentations on image tensors (B, C, H, W) in [0, 1], with kornia.

The SimCLR / BYOL pipeline (Chen et al. 2020, App. A; Grill et al. 2020, App. B): random
resized crop, horizontal flip, colour jitter (brightness, contrast, saturation, hue)
applied with p = 0.8, random grayscale (p = 0.2), Gaussian blur and solarisation; plus
multi-crop (Caron et al. 2020): ``n_global`` crops at the full size and ``n_local``
small crops of a smaller area. Presets:

| preset | images | crop scale | flip | colour (p 0.8) | blur | solarise | local crops |
|---|---|---|---|---|---|---|---|
| ``digits`` | 8×8 grey | (0.5, 1) | no | bright./contr. 0.4 | no | no | 6 px, (0.3, 0.6) |
| ``mnist`` | 28×28 grey | (0.4, 1) | no | bright./contr. 0.4 | p 0.2 | p 0.1 | 16 px, (0.2, 0.5) |
| ``cifar`` | 32×32 RGB | (0.08, 1) | yes | 0.4/0.4/0.2/0.1, grey 0.2 | no | p 0.1 | 16 px, (0.05, 0.3) |
| ``imagenet`` | 224 RGB | (0.08, 1) | yes | 0.4/0.4/0.2/0.1, grey 0.2 | 23 px p 0.5 | p 0.1 | 96 px |

Randomness: kornia draws its parameters from torch's global generator; every call here
runs inside ``torch.random.fork_rng`` seeded from the caller's ``torch.Generator``, so
views are reproducible and the global state is left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_ndim


@dataclass(frozen=True)
class AugmentConfig:
    size: int
    channels: int
    scale: tuple[float, float] = (0.08, 1.0)
    flip: bool = True
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_kernel: int = 0
    blur_p: float = 0.0
    solarize_p: float = 0.0
    local_size: int = 16
    local_scale: tuple[float, float] = (0.05, 0.3)


PRESETS: dict[str, AugmentConfig] = {
    "digits": AugmentConfig(8, 1, scale=(0.5, 1.0), flip=False, jitter=(0.4, 0.4, 0.0, 0.0),
                            local_size=6, local_scale=(0.3, 0.6)),
    "mnist": AugmentConfig(28, 1, scale=(0.4, 1.0), flip=False, jitter=(0.4, 0.4, 0.0, 0.0),
                           blur_kernel=3, blur_p=0.2, solarize_p=0.1, local_size=16, local_scale=(0.2, 0.5)),
    "cifar": AugmentConfig(32, 3, solarize_p=0.1, local_size=16, local_scale=(0.05, 0.3)),
    "imagenet": AugmentConfig(224, 3, blur_kernel=23, blur_p=0.5, solarize_p=0.1, local_size=96,
                              local_scale=(0.05, 0.14)),
}
DATASET_PRESET = {"digits": "digits", "mnist": "mnist", "cifar10": "cifar"}


def _pipeline(cfg: AugmentConfig, size: int, scale: tuple[float, float]) -> nn.Module:
    ops: list[nn.Module] = [K.RandomResizedCrop((size, size), scale=scale)]
    if cfg.flip:
        ops.append(K.RandomHorizontalFlip())
    b, c, s, h = cfg.jitter
    if cfg.channels == 3:
        ops.append(K.ColorJitter(b, c, s, h, p=cfg.jitter_p))
        ops.append(K.RandomGrayscale(p=cfg.grayscale_p))
    elif b or c:
        ops.append(K.ColorJitter(b, c, 0.0, 0.0, p=cfg.jitter_p))
    if cfg.blur_p > 0 and cfg.blur_kernel > 0:
        ops.append(K.RandomGaussianBlur((cfg.blur_kernel, cfg.blur_kernel), (0.1, 2.0), p=cfg.blur_p))
    if cfg.solarize_p > 0:
        ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=cfg.solarize_p))
    return nn.Sequential(*ops)


class ViewAugment:
    """Make the views of a batch: ``augment(images, generator) -> [view_1, …, view_V]``.

    Parameters
    ----------
    preset : str or AugmentConfig
        ``"digits"``, ``"mnist"``, ``"cifar"``, ``"imagenet"`` (see the module table) or a config.
    n_global : int
        Full-size views (2 for every method).
    n_local : int
        Extra small multi-crop views (SwAV, LeJEPA). ``local_size`` overrides the preset's
        (e.g. the global size for a backbone tied to one input size).

    Examples
    --------
    >>> augment = ViewAugment("mnist")
    >>> view_a, view_b = augment(images, torch.Generator().manual_seed(0))
    """

    def __init__(self, preset: str | AugmentConfig, *, n_global: int = 2, n_local: int = 0,
                 local_size: int | None = None) -> None:
        if isinstance(preset, str):
            check_choice("preset", preset, tuple(PRESETS))
            preset = PRESETS[preset]
        if local_size is not None:
            preset = replace(preset, local_size=local_size)
        if n_global < 1 or n_local < 0:
            raise ValueError(f"need n_global >= 1 and n_local >= 0, got {n_global}, {n_local}")
        self.config, self.n_global, self.n_local = preset, n_global, n_local
        self.global_ops = _pipeline(preset, preset.size, preset.scale)
        self.local_ops = _pipeline(preset, preset.local_size, preset.local_scale)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        check_ndim("images", images, 4)
        if images.shape[1] != self.config.channels:
            raise ValueError(f"augmentation preset expects {self.config.channels} channel(s), "
                             f"got images of shape {tuple(images.shape)}")
        seed = (int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
                if generator is not None else None)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            views = [self.global_ops(images) for _ in range(self.n_global)]
            views += [self.local_ops(images) for _ in range(self.n_local)]
        return [v.clamp_(0.0, 1.0) for v in views]
