"""Evaluating representations: linear probes, weighted kNN, collapse monitors, PCA plot.

* Offline linear probe: multinomial logistic regression on frozen, standardised features
  (full-batch L-BFGS); the L2 strength is chosen on a held-out 10 % of the training set,
  then the probe is refitted on the whole training set and scored on the test set.
* Weighted kNN (Wu et al., CVPR 2018, as used by DINO and solo-learn): cosine similarity,
  the k nearest training features vote for their class with weight exp(s/T), T = 0.07,
  k ∈ {20, 200}.
* Online probe: a linear layer trained on detached backbone features during pre-training.
* Collapse monitors: per-dimension std of the L2-normalised embeddings (1/√D when
  spread, 0 when collapsed); RankMe (Garrido, Balestriero, Najman & LeCun, ICML 2023):
  exp(entropy of p_k = σ_k / Σσ + ε) of the singular values; alignment E‖f(x) − f(x⁺)‖²
  and uniformity log E exp(−2‖f(x) − f(y)‖²) (Wang & Isola, ICML 2020).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from genoise._checks import check_ndim, check_positive, check_same_batch


@torch.no_grad()
def extract_features(backbone: nn.Module, images: Tensor, *, batch_size: int = 512,
                     device: torch.device | str | None = None, progress: bool = False,
                     desc: str = "features") -> Tensor:
    """Backbone features (N, F) of ``images`` (N, C, H, W) in eval mode, on the CPU
    (``progress``: a bar labelled ``desc``)."""
    was_training = backbone.training
    backbone.eval()
    device = device or next(backbone.parameters()).device
    starts = tqdm(range(0, images.shape[0], batch_size), desc=desc, disable=not progress,
                  dynamic_ncols=True, leave=False)
    out = [backbone(images[i:i + batch_size].to(device)).float().cpu() for i in starts]
    backbone.train(was_training)
    return torch.cat(out)


def _fit_logistic(x: Tensor, y: Tensor, num_classes: int, weight_decay: float, iterations: int) -> nn.Linear:
    torch.manual_seed(0)
    model = nn.Linear(x.shape[1], num_classes).double()
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-7)
    xd = x.double()

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(xd), y) + 0.5 * weight_decay * model.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


def fit_linear_probe(train_x: Tensor, train_y: Tensor, *,
                     weight_decays: tuple[float, ...] = (1e-5, 1e-4, 1e-3), iterations: int = 200,
                     val_fraction: float = 0.1, seed: int = 0, progress: bool = False,
                     num_classes: int | None = None) -> tuple[nn.Linear, dict[str, float]]:
    """The linear probe of frozen features as a float32 ``nn.Linear`` on *raw* features.

    Multinomial logistic regression on standardised features x̃ = (x − μ)/σ; the penalty
    (½·wd·‖W‖² added to the mean cross-entropy) is selected on a seeded ``val_fraction``
    split of the training features, then the probe is refitted on all of them. The
    standardisation is folded into the layer — W' = W/σ, b' = b − W'μ — so the probe
    deploys after the backbone as one layer. Returns (probe, {"linear_val_acc",
    "linear_wd"}). ``progress`` shows a bar over the fits (one per penalty, then the refit).
    """
    check_ndim("train_x", train_x, 2)
    check_same_batch(train_x=train_x, train_y=train_y)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    tr = (train_x - mean) / std
    num_classes = num_classes or int(train_y.max()) + 1
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(tr.shape[0], generator=g)
    n_val = max(1, int(val_fraction * tr.shape[0]))
    val_idx, fit_idx = perm[:n_val], perm[n_val:]
    scores = {}
    bar = tqdm(total=len(weight_decays) + 1, desc="linear probe", disable=not progress,
               dynamic_ncols=True, leave=False)
    for wd in weight_decays:
        bar.set_postfix_str(f"wd={wd:g}")
        model = _fit_logistic(tr[fit_idx], train_y[fit_idx], num_classes, wd, iterations)
        with torch.no_grad():
            scores[wd] = float((model(tr[val_idx].double()).argmax(1) == train_y[val_idx]).float().mean())
        bar.update()
    best = max(weight_decays, key=lambda w: (scores[w], w))
    bar.set_postfix_str(f"refit wd={best:g}")
    model = _fit_logistic(tr, train_y, num_classes, best, iterations)
    bar.update()
    bar.close()
    probe = nn.Linear(train_x.shape[1], num_classes)
    with torch.no_grad():
        weight = model.weight / std.double()
        probe.weight.copy_(weight)
        probe.bias.copy_(model.bias - weight @ mean.double())
    return probe, {"linear_val_acc": 100 * scores[best], "linear_wd": best}


def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, *,
                 weight_decays: tuple[float, ...] = (1e-5, 1e-4, 1e-3), iterations: int = 200,
                 val_fraction: float = 0.1, seed: int = 0, progress: bool = False) -> dict[str, float]:
    """Linear-probe accuracy (%) of frozen features (:func:`fit_linear_probe`, scored on the
    test features). Returns ``{"linear_acc", "linear_val_acc", "linear_wd"}``."""
    check_ndim("test_x", test_x, 2)
    check_same_batch(test_x=test_x, test_y=test_y)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    probe, info = fit_linear_probe(train_x, train_y, weight_decays=weight_decays, iterations=iterations,
                                   val_fraction=val_fraction, seed=seed, progress=progress,
                                   num_classes=num_classes)
    with torch.no_grad():
        acc = float((probe.double()(test_x.double()).argmax(1) == test_y).float().mean())
    return {"linear_acc": 100 * acc, **info}


@torch.no_grad()
def knn_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, *, k: int = 20,
                temperature: float = 0.07, num_classes: int | None = None, chunk: int = 1024) -> Tensor:
    """Weighted kNN labels (M,): class scores Σ_{j ∈ top-k} exp(cos(x, x_j)/T)·[y_j = c]."""
    check_positive("temperature", temperature)
    num_classes = num_classes or int(train_y.max()) + 1
    k = min(k, train_x.shape[0])
    bank = F.normalize(train_x.float(), dim=1)
    preds = []
    for i in range(0, test_x.shape[0], chunk):
        sim = F.normalize(test_x[i:i + chunk].float(), dim=1) @ bank.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes)
        votes.scatter_add_(1, train_y[top_idx], torch.exp(top_sim / temperature))
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, *,
                 ks: tuple[int, ...] = (20, 200), temperature: float = 0.07) -> dict[str, float]:
    """``{"knn_k20": %, "knn_k200": %}``: weighted-kNN test accuracy for every k."""
    check_same_batch(train_x=train_x, train_y=train_y)
    check_same_batch(test_x=test_x, test_y=test_y)
    return {f"knn_k{k}": 100 * float((knn_predict(train_x, train_y, test_x, k=k, temperature=temperature)
                                      == test_y).float().mean()) for k in ks}


class OnlineProbe(nn.Module):
    """Linear classifier on detached features, trained alongside pre-training (solo-learn)."""

    def __init__(self, feature_dim: int, num_classes: int, lr: float = 1e-3) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_dim, num_classes)
        self.optimizer = torch.optim.Adam(self.linear.parameters(), lr=lr)

    def step(self, features: Tensor, labels: Tensor) -> tuple[float, float]:
        """One Adam step on (features.detach(), labels); returns (loss, accuracy %)."""
        logits = self.linear(features.detach())
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss), 100 * float((logits.argmax(1) == labels).float().mean())

    @torch.no_grad()
    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        return 100 * float((self.linear(features).argmax(1) == labels).float().mean())


# --------------------------------------------------------------------- collapse monitors
def embedding_std(z: Tensor) -> Tensor:
    """Per-dimension std (D,) of the L2-normalised embeddings (collapse → 0; spread ≈ 1/√D)."""
    check_ndim("z", z, 2)
    return F.normalize(z.float(), dim=1).std(dim=0)


def rankme(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe effective rank exp(−Σ_k p_k log p_k), p_k = σ_k/‖σ‖₁ + ε (Garrido et al. 2023)."""
    check_ndim("z", z, 2)
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def alignment(z_a: Tensor, z_b: Tensor, alpha: float = 2.0) -> float:
    """E ‖f(x) − f(x⁺)‖^α over positive pairs of normalised embeddings (Wang & Isola 2020)."""
    a, b = F.normalize(z_a.float(), dim=1), F.normalize(z_b.float(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: Tensor, t: float = 2.0) -> float:
    """log E_{x≠y} exp(−t‖f(x) − f(y)‖²) of normalised embeddings (Wang & Isola 2020)."""
    u = F.normalize(z.float(), dim=1)
    sq = torch.pdist(u).square()
    return float(torch.log(torch.exp(-t * sq).mean()))


def collapse_metrics(z_a: Tensor, z_b: Tensor) -> dict[str, float]:
    """Monitors on embeddings of two views (N, D): std (mean, min), RankMe, alignment, uniformity."""
    std = embedding_std(z_a)
    return {"emb_std_mean": float(std.mean()), "emb_std_min": float(std.min()),
            "emb_std_ideal": float(z_a.shape[1] ** -0.5), "rankme": rankme(z_a),
            "alignment": alignment(z_a, z_b), "uniformity": uniformity(z_a)}


def pca_plot(features: Tensor, labels: Tensor, title: str = "") -> object:
    """Scatter of the first two principal components of ``features`` coloured by label;
    returns the matplotlib figure (save it with ``run.save_figure``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = features.double() - features.double().mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    xy = (x @ v[:2].T).numpy()
    fig, ax = plt.subplots(figsize=(5, 5))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels.numpy(), cmap="tab10", s=4, alpha=0.7)
    # A fixed corner: loc="best" scores every point against the legend box (~2 s at N = 10k).
    ax.legend(*points.legend_elements(), loc="upper right", fontsize=7, markerscale=0.8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or "embedding (2-D PCA)")
    ax.set_xticks(np.array([]))
    ax.set_yticks(np.array([]))
    return fig
