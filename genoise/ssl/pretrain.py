"""Self-supervised pre-training with :class:`genoise.train.Trainer`.

:class:`SSLModel` bundles the method, the augmentation and an online linear probe; one
forward makes the views, computes the method's loss and the probe's cross-entropy on the
detached features of the first view (solo-learn's online probe: the probe's parameters
ride in the same optimiser, without weight decay). It also runs the method's hooks at
the right moments: ``update`` (EMA teachers) before the next step sees the parameters
that the previous update produced, ``on_epoch_end`` (k-means targets) at epoch
boundaries. Every epoch a callback logs the probe's test accuracy and the collapse
monitors (:func:`genoise.ssl.evaluate.collapse_metrics`) to ``metrics.jsonl``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_positive
from genoise.data import ImageData
from genoise.ssl.augment import ViewAugment
from genoise.ssl.base import SSLMethod
from genoise.ssl.evaluate import collapse_metrics, extract_features
from genoise.train import Run, Trainer, unwrap_model
from genoise.train.distributed import world_size


class SSLModel(nn.Module):
    """Method + augmentation + online probe; ``forward(images, labels, index, generator)``
    returns the dict of scalars a :class:`~genoise.train.Trainer` step logs."""

    def __init__(self, method: SSLMethod, augment: ViewAugment, num_classes: int, *,
                 total_steps: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.method, self.augment = method, augment
        self.probe = nn.Linear(method.feature_dim, num_classes)
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, images: Tensor, labels: Tensor, index: Tensor, generator: torch.Generator) -> dict:
        step = int(self.step)
        if step > 0:
            self.method.update(step, self.total_steps)
            if step % self.steps_per_epoch == 0:
                self.method.on_epoch_end(step // self.steps_per_epoch - 1)
        views = self.augment(images, generator)
        out = self.method(views, index=index)
        logits = self.probe(out.features)
        probe_loss = F.cross_entropy(logits, labels)
        self.step += 1
        return {"loss": out.loss + probe_loss, "ssl_loss": out.loss.detach(),
                "probe_loss": probe_loss.detach(),
                "probe_train_acc": 100 * (logits.argmax(1) == labels).float().mean(), **out.logs}


def make_optimizer(model: SSLModel, *, lr: float, weight_decay: float, total_steps: int,
                   warmup_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (probe without weight decay) with linear warm-up then cosine decay to 0."""
    check_positive("lr", lr)
    method_params = [p for p in model.method.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([
        {"params": method_params, "weight_decay": weight_decay},
        {"params": model.probe.parameters(), "weight_decay": 0.0}], lr=lr)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _epoch_callback(model: SSLModel, test: ImageData | None, monitor: Tensor, seed: int):
    def callback(trainer: Trainer, step: int, row: dict) -> dict:
        inner: SSLModel = unwrap_model(trainer.model)
        method = inner.method
        out: dict[str, float] = {"epoch": step / inner.steps_per_epoch}
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            g = torch.Generator(device=trainer.device).manual_seed(seed)
            views = inner.augment(monitor.to(trainer.device), g)[:2]
            z_a = method.project(views[0])[1].float().cpu()
            z_b = method.project(views[1])[1].float().cpu()
            out.update(collapse_metrics(z_a, z_b))
            if test is not None:
                features = extract_features(method.backbone, test.images, device=trainer.device)
                logits = inner.probe(features.to(trainer.device)).cpu()
                out["probe_test_acc"] = 100 * float((logits.argmax(1) == test.labels).float().mean())
        inner.train(was_training)
        return out

    return callback


def pretrain(method: SSLMethod, train: ImageData, *, augment: ViewAugment, test: ImageData | None = None,
             run: Run | None = None, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3,
             weight_decay: float = 1e-5, warmup_epochs: float = 1.0, seed: int = 0,
             device: str | torch.device | None = None, monitor_size: int = 1024,
             checkpoint_every: int | None = None, progress: bool | None = None,
             desc: str | None = None, kind: str | None = None) -> tuple[SSLModel, dict]:
    """Pre-train ``method`` on ``train.images`` for ``epochs`` epochs; returns (model, last row).

    Logs one row per epoch (losses, online-probe train/test accuracy, collapse monitors)
    through ``run`` (``metrics.jsonl``, ``last.pt`` checkpoints, resume with ``run.resume``,
    stop after ``run.stop_after``). ``desc`` labels the progress bar and ``kind`` the
    checkpoint (default: the method's name, ``"ssl-<name>"``).
    """
    check_positive("epochs", epochs)
    check_positive("warmup_epochs", warmup_epochs, allow_zero=True)
    name = type(method).__name__.lower()
    n = train.images.shape[0]
    steps_per_epoch = n // world_size() // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} training images")
    total = max(1, int(epochs * steps_per_epoch))
    num_classes = int(train.labels.max()) + 1
    model = SSLModel(method, augment, num_classes, total_steps=total, steps_per_epoch=steps_per_epoch)
    optimizer, scheduler = make_optimizer(model, lr=lr, weight_decay=weight_decay, total_steps=total,
                                          warmup_steps=int(warmup_epochs * steps_per_epoch))
    dev = device if device is not None else (run.device if run is not None else "cpu")
    model.to(dev)
    if not (run is not None and run.resume and (run.dir / "last.pt").exists()):
        method.prepare(train.images)
    g = torch.Generator().manual_seed(seed)
    monitor = train.images[torch.randperm(n, generator=g)[:monitor_size]]
    trainer = Trainer(model, optimizer, lambda m, batch, gen: m(*batch, gen),
                      (train.images, train.labels, torch.arange(n)), run=run, max_steps=total,
                      batch_size=batch_size, scheduler=scheduler, seed=seed,
                      checkpoint_every=checkpoint_every or steps_per_epoch, log_every=steps_per_epoch,
                      progress=progress, device=dev, callbacks=[_epoch_callback(model, test, monitor, seed)],
                      desc=desc or name, kind=kind or f"ssl-{name}")
    row = trainer.fit()
    return model, row
