"""How good are generated images? Scores in the feature space of a fixed classifier.

* Fréchet distance (Heusel et al., "GANs trained by a two time-scale update rule
  converge to a local Nash equilibrium", NeurIPS 2017, the FID — here with the 84-D F6
  features of a LeNet-5 trained on MNIST instead of Inception features):
  d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}).
* ``confident``: the share of samples the classifier labels with probability ≥ 0.9.
* Mode coverage: the class histogram of the samples (classifier's argmax), its largest
  deviation from 10 % in percentage points and its total-variation distance from uniform.
* Memorisation check: the mean Euclidean distance from each sample to its nearest
  training image, beside the same for held-out test images (a generator that copies its
  training set scores far below the test images).

The classifier is :class:`~genoise.nn.LeNet5` trained for ``epochs`` epochs (Adam,
seed 0) on the training split; :func:`feature_classifier` caches it (keyed by the data's
SHA-256) in ``$GENOISE_CACHE`` (default ``~/.cache/genoise``) so that every row of a
table uses the same one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genoise._checks import check_finite, check_int
from genoise.io import atomic_torch_save
from genoise.nn import LeNet5


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (float64; the matrix square root by scipy)."""
    from scipy import linalg

    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    cov1, cov2 = (np.asarray(c, dtype=np.float64) for c in (cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"need means (d,) and covariances (d, d) of one d, got {mu1.shape}, {cov1.shape}, "
                         f"{mu2.shape}, {cov2.shape}")
    root = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(root).all():  # singular product: regularise (as the FID reference code)
        offset = np.eye(cov1.shape[0]) * 1e-6
        root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    root = root.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (d,) and unbiased covariance (d, d) of features (N, d), in float64."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


def _digest(images: Tensor) -> str:
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("GENOISE_CACHE") or Path.home() / ".cache" / "genoise")


def train_classifier(images: Tensor, labels: Tensor, *, epochs: int = 2, batch_size: int = 128,
                     seed: int = 0) -> LeNet5:
    """LeNet-5 (tanh, C3 table) on images (N, 1, s, s) in [0, 1], Adam 1e-3, cross-entropy."""
    check_int("epochs", epochs)
    torch.manual_seed(seed)
    model = LeNet5(in_channels=images.shape[1], num_classes=10, image_size=images.shape[-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=rng)
        for start in range(0, images.shape[0] - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            loss = F.cross_entropy(model(images[index]), labels[index].long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def feature_classifier(images: Tensor, labels: Tensor, *, epochs: int = 2, cache: bool = True) -> LeNet5:
    """The LeNet-5 of every table: trained once on (images, labels), cached on disk."""
    path = cache_dir() / f"lenet5-features-{_digest(images)}-{epochs}ep.pt"
    model = LeNet5(in_channels=images.shape[1], num_classes=10, image_size=images.shape[-1])
    if cache and path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass  # a corrupt or stale cache entry: train again and replace it
    model = train_classifier(images, labels, epochs=epochs)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(model.state_dict(), path)
    return model


@torch.no_grad()
def classify(model: LeNet5, images: Tensor, batch_size: int = 2000) -> tuple[Tensor, Tensor]:
    """F6 features (N, 84) and class probabilities (N, 10)."""
    features, probs = [], []
    for chunk in images.split(batch_size):
        f = model.features(chunk)
        features.append(f)
        probs.append(model.output(f).softmax(1))
    return torch.cat(features), torch.cat(probs)


@torch.no_grad()
def nearest_distance(samples: Tensor, reference: Tensor, chunk: int = 10000) -> Tensor:
    """Euclidean distance from each sample (N, ...) to its nearest reference (M, ...): (N,)."""
    a = samples.flatten(1).double()
    best = torch.full((a.shape[0],), float("inf"), dtype=torch.float64)
    a2 = a.pow(2).sum(1, keepdim=True)
    for block in reference.flatten(1).split(chunk):  # float64 one chunk at a time, not all M at once
        block = block.double()
        d2 = a2 - 2 * a @ block.T + block.pow(2).sum(1)
        best = torch.minimum(best, d2.min(1).values)
    return best.clamp_min(0).sqrt()


def sample_quality(samples: Tensor, classifier: LeNet5, test_stats: tuple[Tensor, Tensor],
                   train_images: Tensor, *, confidence: float = 0.9, nearest: bool = True) -> dict[str, Any]:
    """Every column of the generation table for ``samples`` (N, C, H, W) in [0, 1]
    (``nearest=False``: all but the costly ``nearest_train``, e.g. for repeated draws)."""
    check_finite("samples", samples)
    if samples.ndim != 4 or samples.shape[1:] != train_images.shape[1:]:
        raise ValueError(f"samples must be (N, {', '.join(map(str, train_images.shape[1:]))}), "
                         f"got {tuple(samples.shape)}")
    features, probs = classify(classifier, samples.float().cpu())
    top, label = probs.max(1)
    histogram = torch.bincount(label, minlength=10).double() / label.numel()
    scores = {
        "frechet": frechet_distance(*gaussian_stats(features), *test_stats),
        "confident": float((top >= confidence).double().mean()),
        "class_histogram": histogram.tolist(),
        "max_class_deviation": float((histogram - 0.1).abs().max() * 100),
        "class_tv": float(0.5 * (histogram - 0.1).abs().sum()),
        "classes_covered": int((histogram > 0.02).sum()),
    }
    if nearest:
        scores["nearest_train"] = float(nearest_distance(samples.float().cpu(), train_images).mean())
    return scores
