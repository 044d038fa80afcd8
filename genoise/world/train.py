"""Training loops for the driving forward model (functional, reused by the recipes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, forward_model_loss, prediction_error


def normalise_from_data(
    model: ForwardModel, data: TrafficDataset, n: int = 2048, generator: torch.Generator | None = None
) -> None:
    """Set the model's state / action normalisation from ``n`` random training samples."""
    batch = data.sample_batch(n, generator)
    model.set_normalisation(
        batch["states"].reshape(-1, batch["states"].shape[-1]),
        batch["actions"].reshape(-1, batch["actions"].shape[-1]),
    )


def train_forward_model(
    model: ForwardModel,
    data: TrafficDataset,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    beta: float = 1e-6,
    z_dropout: float = 0.5,
    generator: torch.Generator | None = None,
    log: Callable[[dict[str, Any], int], None] | None = None,
    log_every: int = 50,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Adam on :func:`~genoise.world.forward.forward_model_loss`; returns the logged rows."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history = []
    steps_iter = range(int(steps))
    if progress:
        from tqdm import tqdm

        steps_iter = tqdm(steps_iter, desc="forward model")
    for step in steps_iter:
        batch = data.sample_batch(batch_size, generator)
        losses = forward_model_loss(model, batch, beta=beta, z_dropout=z_dropout, generator=generator)
        optimiser.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        if step % log_every == 0 or step == steps - 1:
            row = {k: v.item() for k, v in losses.items()}
            history.append({"step": step, **row})
            if log is not None:
                log(row, step)
    return history


def error_vs_horizon(
    model: ForwardModel,
    data: TrafficDataset,
    n_batches: int = 4,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
) -> dict[str, list[float]]:
    """Mean per-step raster MSE of the model's rollout and of the copy-last-frame baseline
    over ``n_batches`` batches of ``data`` (whose ``n_future`` is the horizon)."""
    sums: dict[str, torch.Tensor] = {}
    for _ in range(n_batches):
        errors = prediction_error(model, data.sample_batch(batch_size, generator), generator)
        for key, value in errors.items():
            sums[key] = sums.get(key, 0) + value / n_batches
    return {k: v.tolist() for k, v in sums.items()}
