"""Training the Two Rooms JEPA and the goal-conditioned behaviour-cloning (GCBC) baseline
with :class:`genoise.train.Trainer` (resumable bit-for-bit), and reloading them.

Batches are drawn from in-memory trajectories (:mod:`genoise.world.two_rooms_data`): a
window of ``window + 1`` frames of each sampled trajectory, rendered on the fly.

GCBC (the honest difficulty check of PLDM's benchmark): π(o_t, o_g) → a_t trained by
regression on hindsight goals o_g = o_{t+k}, k uniform in 1 … T − t, of the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_int
from genoise.train import Run, Trainer, load_checkpoint
from genoise.train.checkpoint import ModelCard
from genoise.train.schedules import lr_scheduler
from genoise.train.seed import derive_seed
from genoise.world.jepa import ActionConditionedJEPA, JEPAConfig, JEPALossWeights, conv_encoder, jepa_losses
from genoise.world.two_rooms import GEOMETRY, render

JEPA_KIND = "world-two-rooms-jepa"
GCBC_KIND = "world-two-rooms-gcbc"
LR_SCHEDULES = ("constant", "cosine")  # of genoise.train.schedules, the ones this recipe offers
_CENTRE, _SCALE = 32.0, 16.0  # probe targets: (position − 32) / 16


def normalise_positions(pos: Tensor) -> Tensor:
    return (pos - _CENTRE) / _SCALE


def denormalise_positions(pos: Tensor) -> Tensor:
    return pos * _SCALE + _CENTRE


class TrajectoryWindows:
    """Batch source ``sample(step, generator) -> (observations, actions, positions)``:
    (B, W + 1, 2, S, S), (B, W, 2), (B, W + 1, 2) normalised, from random windows."""

    def __init__(self, data: Mapping[str, Tensor], batch_size: int, window: int, image_size: int) -> None:
        self.data, self.batch_size, self.image_size = data, int(batch_size), int(image_size)
        self.length = data["actions"].shape[1]
        self.window = check_int("window", window, min=1, max=self.length)

    def __call__(self, step: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        n = self.data["actions"].shape[0]
        rows = torch.randint(0, n, (self.batch_size,), generator=generator)
        first = torch.randint(0, self.length - self.window + 1, (self.batch_size,), generator=generator)
        steps = first[:, None] + torch.arange(self.window + 1)
        pos = self.data["positions"][rows[:, None], steps]
        actions = self.data["actions"][rows[:, None], steps[:, :-1]]
        obs = render(pos, self.data["wall_x"][rows], self.data["door_y"][rows], self.image_size)
        return obs, actions, normalise_positions(pos)


def input_sample(data: Mapping[str, Tensor], image_size: int, n: int = 512) -> Tensor:
    """First frames of the first ``n`` trajectories (for the input statistics)."""
    return render(data["positions"][:n, 0], data["wall_x"][:n], data["door_y"][:n], image_size)


def train_jepa(
    model: ActionConditionedJEPA,
    data: Mapping[str, Tensor],
    steps: int,
    *,
    batch_size: int = 64,
    window: int = 8,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    weights: JEPALossWeights | None = None,
    seed: int = 0,
    run: Run | None = None,
    progress: bool | None = None,
    log_every: int = 50,
) -> dict[str, Any]:
    """AdamW (weight decay 1e-5, the reference's) on :func:`jepa_losses`, gradient norm
    clipped at 2; ``run.dir/last.pt`` holds the state and the model card. ``lr_schedule``:
    ``"constant"``, or ``"cosine"``, the reference's linear warm-up over the first 10 % of the
    updates and a cosine to 1e-5 (:func:`genoise.train.schedules.warmup_cosine`)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    scheduler = lr_scheduler(optimizer, lr_schedule, int(steps), LR_SCHEDULES)  # a bad name: before any work
    weights = weights or JEPALossWeights()
    model.set_input_stats(input_sample(data, model.config.image_size))
    card = ModelCard(kwargs=asdict(model.config), weights=asdict(weights))

    def step_fn(net: ActionConditionedJEPA, batch: tuple[Tensor, ...], generator: torch.Generator) -> dict:
        obs, actions, pos = batch
        return jepa_losses(net, obs, actions, weights, positions=pos, seed=int(seed))

    source = TrajectoryWindows(data, batch_size, window, model.config.image_size)
    return _fit(
        model,
        optimizer,
        step_fn,
        source,
        steps,
        batch_size,
        int(seed),
        run,
        progress,
        log_every,
        card,
        "JEPA",
        JEPA_KIND,
        scheduler,
    )


def _fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn,
    source,
    steps: int,
    batch_size: int,
    seed: int,
    run: Run | None,
    progress: bool | None,
    log_every: int,
    card: ModelCard,
    desc: str,
    kind: str,
    scheduler: Any = None,
) -> dict:
    """The one Trainer set-up of this module (gradient norm clipped at 2, the card checkpointed)."""
    trainer = Trainer(
        model,
        optimizer,
        step_fn,
        source,
        scheduler=scheduler,
        run=run,
        max_steps=int(steps),
        batch_size=int(batch_size),
        seed=seed,
        grad_clip=2.0,
        log_every=log_every,
        progress=progress,
        extra_state={"card": card},
        desc=desc,
        kind=kind,
        config=run.config if run is not None else None,
    )
    return trainer.fit()


class GoalConditionedPolicy(nn.Module):
    """π(o, o_g): the two images stacked (4 channels) → ConvNet → MLP → a ∈ ℝ²."""

    def __init__(self, image_size: int = 33, width: int = 16, hidden: int = 128) -> None:
        super().__init__()
        self.image_size = image_size
        self.kwargs = {"image_size": image_size, "width": width, "hidden": hidden}
        self.net = nn.Sequential(conv_encoder(image_size, 4, width, hidden), nn.GELU(), nn.Linear(hidden, 2))
        self.register_buffer("obs_mean", torch.zeros(4))
        self.register_buffer("obs_std", torch.ones(4))

    def set_input_stats(self, observations: Tensor) -> None:
        self.obs_mean.copy_(observations.mean((0, 2, 3)).repeat(2))
        self.obs_std.copy_(observations.std((0, 2, 3)).clamp(min=1e-6).repeat(2))

    def forward(self, obs: Tensor, goal: Tensor) -> Tensor:
        if obs.shape[-1] != self.image_size or goal.shape != obs.shape:
            raise ValueError(
                f"GCBC policy expects two (B, 2, {self.image_size}, {self.image_size}) images, "
                f"got {tuple(obs.shape)} and {tuple(goal.shape)}"
            )
        x = torch.cat([obs, goal], -3)
        return self.net((x - self.obs_mean[:, None, None]) / self.obs_std[:, None, None])


class HindsightGoals:
    """Batch source for GCBC: (o_t, o_{t+k}, a_t), t uniform, k uniform in 1 … T − t."""

    def __init__(self, data: Mapping[str, Tensor], batch_size: int, image_size: int) -> None:
        self.data, self.batch_size, self.image_size = data, int(batch_size), int(image_size)

    def __call__(self, step: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        n, length = self.data["actions"].shape[:2]
        b = self.batch_size
        rows = torch.randint(0, n, (b,), generator=generator)
        t = torch.randint(0, length, (b,), generator=generator)
        k = 1 + (torch.rand(b, generator=generator) * (length - t)).long()
        pos = self.data["positions"][rows]
        pair = torch.stack([pos[torch.arange(b), t], pos[torch.arange(b), t + k]], 1)
        obs = render(pair, self.data["wall_x"][rows], self.data["door_y"][rows], self.image_size)
        return obs[:, 0], obs[:, 1], self.data["actions"][rows, t]


def train_gcbc(
    policy: GoalConditionedPolicy,
    data: Mapping[str, Tensor],
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    run: Run | None = None,
    progress: bool | None = None,
    log_every: int = 50,
) -> dict[str, Any]:
    """Adam on the mean squared action error of hindsight-relabelled goals."""
    policy.set_input_stats(input_sample(data, policy.image_size))
    card = ModelCard(kwargs=dict(policy.kwargs))

    def step_fn(net: GoalConditionedPolicy, batch: tuple[Tensor, ...], generator: torch.Generator) -> Tensor:
        obs, goal, action = batch
        return F.mse_loss(net(obs, goal), action)

    source = HindsightGoals(data, batch_size, policy.image_size)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    return _fit(
        policy,
        optimizer,
        step_fn,
        source,
        steps,
        batch_size,
        int(derive_seed(int(seed), 7)),
        run,
        progress,
        log_every,
        card,
        "GCBC",
        GCBC_KIND,
    )


def _card(path: Path, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = load_checkpoint(path)
    if state.get("kind") != kind:
        raise ValueError(f"{path} holds a {state.get('kind')!r} checkpoint, not {kind!r}")
    return state, state["extra_state"]["card"]


def load_jepa(path: str | Path, image_size: int | None = None) -> ActionConditionedJEPA:
    """Rebuild a JEPA from its checkpoint; ``image_size`` (the observations it will see)
    must match the one it was trained on — else a one-line ``ValueError``."""
    state, card = _card(Path(path), JEPA_KIND)
    config = JEPAConfig(**card["kwargs"])
    if image_size is not None and int(image_size) != config.image_size:
        raise ValueError(f"{path} was trained on {config.image_size} px images, not {image_size} px")
    model = ActionConditionedJEPA(config)
    model.load_state_dict(state["model"])
    return model.eval()


def load_gcbc(path: str | Path, image_size: int | None = None) -> GoalConditionedPolicy:
    state, card = _card(Path(path), GCBC_KIND)
    policy = GoalConditionedPolicy(**card["kwargs"])
    if image_size is not None and int(image_size) != policy.image_size:
        raise ValueError(f"{path} was trained on {policy.image_size} px images, not {image_size} px")
    policy.load_state_dict(state["model"])
    return policy.eval()


DEFAULT_GEOMETRY = GEOMETRY
