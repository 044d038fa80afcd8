"""Recipe entry points for the command-line tests (YAML recipes in tmp_path name them)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genoise.train import Run, Trainer


def linear(run: Run) -> dict[str, Any]:
    """Least squares on fresh Gaussian batches, SGD at ``lr`` (diverges when lr > 2/L)."""
    torch.manual_seed(int(run.config["seed"]))
    model = nn.Linear(4, 1)
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0]])

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = torch.randn(16, 4, generator=generator)
        return x, x @ w.T

    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=float(run.config["lr"])),
                      lambda m, b, g: ((m(b[0]) - b[1]) ** 2).mean(), sample, run=run,
                      max_steps=int(run.config["steps"]), batch_size=16, checkpoint_every=2,
                      log_every=1, desc="linear", kind="test-linear")
    return trainer.fit()
