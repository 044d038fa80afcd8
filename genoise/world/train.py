"""Training of the driving forward model and of the driving policies, both on
:class:`genoise.train.Trainer` (one loop, one checkpoint format: bit-for-bit resume, NaN /
divergence stop, ``device``, metrics rows, a progress bar named after what it trains).

Batches come from a :class:`TrafficBatches` source: random samples of the traffic data set
drawn with the Trainer's checkpointed data generator, so a resumed run sees the same batches
as an uninterrupted one.

Checkpoints (``last.pt`` in the run folder given) carry a
:class:`~genoise.train.checkpoint.ModelCard` in their ``extra_state["card"]``: the network's
constructor arguments and the observation format it was trained on, so that
:mod:`genoise.world.checkpoints` rebuilds the network from the checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genoise.train.checkpoint import ModelCard
from genoise.train.run import Run
from genoise.train.seed import derive_seed
from genoise.train.trainer import Trainer
from genoise.world.checkpoints import FORWARD_MODEL_KIND, POLICY_KIND
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, forward_model_loss, prediction_error
from genoise.world.policy import DrivingPolicy, bc_loss, mper_loss, mpur_loss
from genoise.world.uncertainty import UncertaintyStats, uncertainty_stats

POLICY_METHODS = ("mpur", "mpur_no_u", "mper", "bc")
_KEYS = ("images", "states", "actions", "target_images", "target_states")
_GRAD_CLIP = 5.0


class TrafficBatches:
    """A Trainer batch source over a :class:`TrafficDataset`: ``source(step, generator)``
    returns the tuple ``(images, states, actions, target_images, target_states)`` of
    ``batch_size`` random samples drawn with ``generator`` (the Trainer's CPU data generator,
    seeded and checkpointed by it; the batch is a pure function of its state)."""

    def __init__(self, data: TrafficDataset, batch_size: int) -> None:
        self.data, self.batch_size = data, int(batch_size)

    def __call__(self, step: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        batch = self.data.sample_batch(self.batch_size, generator)
        return tuple(batch[k] for k in _KEYS)


def as_batch(batch: tuple[Tensor, ...], device: torch.device) -> dict[str, Tensor]:
    """The tuple of a :class:`TrafficBatches` source as the loss functions' dict, on ``device``."""
    return {k: t.to(device, non_blocking=True) for k, t in zip(_KEYS, batch, strict=True)}


def normalise_from_data(
    model: ForwardModel, data: TrafficDataset, n: int = 2048, generator: torch.Generator | None = None
) -> None:
    """Set the model's state / action normalisation from ``n`` random training samples."""
    batch = data.sample_batch(n, generator)
    model.set_normalisation(
        batch["states"].reshape(-1, batch["states"].shape[-1]).to(model.state_mean.device),
        batch["actions"].reshape(-1, batch["actions"].shape[-1]).to(model.state_mean.device),
    )


def train_forward_model(
    model: ForwardModel,
    data: TrafficDataset,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    beta: float = 1e-6,
    z_dropout: float = 0.5,
    *,
    unroll_frame: str = "ego",
    step_weights: str = "uniform",
    seed: int = 0,
    run: Run | None = None,
    obs_config: Mapping[str, Any] | None = None,
    log_every: int = 50,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Adam on :func:`~genoise.world.forward.forward_model_loss` (gradient norm clipped at 5)
    for ``steps`` updates (``unroll_frame``, ``step_weights``: see there); the normalisation is set from the
    data first. With ``run``, ``run.dir/last.pt`` holds the training state and a
    :class:`ModelCard` (``obs_config``), and ``run.resume`` continues from it. Returns the
    Trainer's last metrics row."""
    normalise_from_data(model, data, generator=torch.Generator().manual_seed(derive_seed(int(seed), 1)))
    card = ModelCard(kwargs=model.kwargs, obs_config=dict(obs_config or {}))

    def step_fn(net: ForwardModel, batch: tuple[Tensor, ...], generator: torch.Generator) -> dict:
        inputs = as_batch(batch, net.state_mean.device)
        return forward_model_loss(net, inputs, beta=beta, z_dropout=z_dropout, generator=generator,
                                  unroll_frame=unroll_frame, step_weights=step_weights)

    trainer = Trainer(
        model, torch.optim.Adam(model.parameters(), lr=lr), step_fn, TrafficBatches(data, batch_size),
        run=run, max_steps=int(steps), batch_size=int(batch_size), seed=int(seed), grad_clip=_GRAD_CLIP,
        log_every=log_every, progress=progress, extra_state={"card": card}, desc="forward model",
        kind=FORWARD_MODEL_KIND, config=run.config if run is not None else None,
    )
    return trainer.fit()


# optional MPUR keys and their defaults (today's behaviour; the paper's: posterior, true)
MPUR_DEFAULTS = {"latents": "prior", "u_normalise": False, "u_hinge": 0.5, "u_warmup": 0,
                 "u_stats_batches": 8, "u_scale": "std"}


def u_weight_at(step: int, u_weight: float, warmup: int) -> float:
    """The ``u_reg`` schedule: ``u_weight`` ramped linearly over the first ``warmup`` updates
    (``min(1, (step + 1) / warmup)``; constant when ``warmup = 0``), so that the policy first
    learns to drive through the model and is then held where the model is certain."""
    return float(u_weight) if warmup <= 0 else float(u_weight) * min(1.0, (step + 1) / warmup)


def mpur_uncertainty_stats(
    model: ForwardModel,
    expert_data: TrafficDataset,
    config: Mapping[str, Any],
    costs: CostConfig,
    seed: int,
    dropout_seed: int | None = None,
) -> UncertaintyStats:
    """The normal range of the dropout variances (:func:`uncertainty_stats`, centred and
    scaled as ``config["u_scale"]`` says: ``std`` or ``robust``) on ``u_stats_batches``
    batches of recorded ``horizon``-step sequences of ``expert_data``, drawn and sampled with
    generators derived from ``seed``.

    The dropout masks come from torch's global generator (``nn.Dropout`` takes no other):
    :func:`train_policy` seeds it just before, so a resumed run recomputes the same
    statistics. A caller that has not seeded it (a diagnostic computed after other work in
    the same process) passes ``dropout_seed``: the masks are then drawn from a fork of the
    global generator seeded with it, the same in every process, and the caller's generator
    is left as it was."""
    if dropout_seed is not None:
        devices = [model.state_mean.device] if model.state_mean.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(dropout_seed))
            return mpur_uncertainty_stats(model, expert_data, config, costs, seed)
    horizon, n = int(config["horizon"]), int(config.get("u_stats_batches", MPUR_DEFAULTS["u_stats_batches"]))
    if expert_data.n_future < horizon:
        raise ValueError(f"the uncertainty statistics need {horizon}-step sequences, the data has "
                         f"{expert_data.n_future}")
    data_gen = torch.Generator().manual_seed(derive_seed(int(seed), 11))
    device = model.state_mean.device
    source = TrafficBatches(expert_data, int(config["policy_batch"]))
    batches = [as_batch(source(0, data_gen), device) for _ in range(n)]
    batches = [{**b, "actions": b["actions"][:, :horizon]} for b in batches]
    z_gen = torch.Generator(device).manual_seed(derive_seed(int(seed), 12))
    return uncertainty_stats(model, batches, int(config["n_dropout"]), costs, z_gen,
                             scale=str(config.get("u_scale", MPUR_DEFAULTS["u_scale"])))


def _policy_loss(method: str, config: Mapping[str, Any], options: Mapping[str, Any], costs: CostConfig,
                 u_stats: UncertaintyStats | None = None, step: Callable[[], int] = lambda: 0):
    """``loss(policy, model, batch, generator) -> dict`` of one policy method (``options``:
    the keys of :data:`MPUR_DEFAULTS`; ``step()``: the current update, for the ``u_warmup``
    schedule)."""
    if method in ("mpur", "mpur_no_u"):
        u_weight = float(config["u_weight"]) if method == "mpur" else 0.0

        def loss(policy, model, batch, generator):
            weight = u_weight_at(step(), u_weight, int(options["u_warmup"]))
            out = mpur_loss(policy, model, batch, int(config["horizon"]), weight, int(config["n_dropout"]),
                            config=costs, generator=generator,
                            action_weight=float(config["action_weight"]), latents=str(options["latents"]),
                            u_stats=u_stats, u_hinge=float(options["u_hinge"]))
            out["u_weight"] = torch.tensor(weight)
            return out

        return loss
    if method == "mper":
        return lambda policy, model, batch, generator: mper_loss(policy, model, batch)
    return lambda policy, model, batch, generator: bc_loss(policy, batch)


def train_policy(
    method: str,
    model: ForwardModel,
    data: TrafficDataset,
    expert_data: TrafficDataset,
    low: np.ndarray,
    high: np.ndarray,
    config: Mapping[str, Any],
    *,
    seed: int = 0,
    run: Run | None = None,
    obs_config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> DrivingPolicy:
    """Train one driving policy through the frozen forward ``model``: ``mpur``, ``mpur_no_u``
    (MPUR without the uncertainty cost), ``mper`` (on ``expert_data``, whose ``n_future``
    is the unroll) or ``bc`` (behaviour cloning).

    ``config`` holds the recipe keys ``policy_steps``, ``policy_batch``, ``policy_lr``,
    ``horizon``, ``u_weight``, ``n_dropout``, ``action_weight`` and the cost keys of
    :meth:`CostConfig.from_config`. Adam, gradient norm clipped at 5, on
    :class:`genoise.train.Trainer`; with ``run``, ``run.dir/last.pt`` holds the training
    state and a :class:`ModelCard` (``method``, ``obs_config``) that
    :func:`genoise.world.checkpoints.load_policy` reads. Returns the policy in eval mode."""
    if method not in POLICY_METHODS:
        raise ValueError(f"unknown policy method {method!r}; use {', '.join(POLICY_METHODS)}")
    missing = [k for k in ("policy_steps", "policy_batch", "policy_lr") if k not in config]
    if method in ("mpur", "mpur_no_u"):
        missing += [k for k in ("horizon", "u_weight", "n_dropout", "action_weight") if k not in config]
    if missing:
        raise ValueError(f"train_policy({method!r}) needs config keys {', '.join(missing)}")
    options = {k: config.get(k, v) for k, v in MPUR_DEFAULTS.items()}
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    torch.manual_seed(derive_seed(int(seed), POLICY_METHODS.index(method)))
    policy = DrivingPolicy.from_model(model, low, high)
    costs = CostConfig.from_config(config, data.road.lane_width)
    u_stats = None
    if method == "mpur" and options["u_normalise"] and float(config["u_weight"]) > 0:
        u_stats = mpur_uncertainty_stats(model, expert_data, config, costs, seed)
    trainer: Trainer | None = None
    loss = _policy_loss(method, config, options, costs, u_stats,
                        lambda: 0 if trainer is None else trainer.step)
    sequences = method == "mper" or (method in ("mpur", "mpur_no_u") and options["latents"] == "posterior")
    source = TrafficBatches(expert_data if sequences else data, int(config["policy_batch"]))
    card = ModelCard(kwargs=policy.kwargs, obs_config=dict(obs_config or {}), method=method,
                     **({} if u_stats is None else {"u_stats": u_stats.as_dict()}))

    def step_fn(net: DrivingPolicy, batch: tuple[Tensor, ...], generator: torch.Generator) -> dict:
        return loss(net, model, as_batch(batch, net.low.device), generator)

    trainer = Trainer(
        policy, torch.optim.Adam(policy.parameters(), lr=float(config["policy_lr"])), step_fn, source,
        run=run, max_steps=int(config["policy_steps"]), batch_size=int(config["policy_batch"]),
        seed=int(seed), grad_clip=_GRAD_CLIP, progress=progress, extra_state={"card": card},
        desc=f"policy {method}", kind=POLICY_KIND, config=dict(config, method=method),
    )
    trainer.fit()
    return policy.eval()


def _test_batches(
    model: ForwardModel, data: TrafficDataset, n_batches: int, batch_size: int,
    generator: torch.Generator | None,
) -> Iterator[tuple[dict[str, Tensor], torch.Generator | None]]:
    """The error protocol's ``n_batches`` batches of ``data`` on the model's device, each with
    the generator of its prior draws (both from ``generator``)."""
    device = model.state_mean.device
    for _ in range(n_batches):
        batch = {k: v.to(device) for k, v in data.sample_batch(batch_size, generator).items()}
        z_generator = None if generator is None else torch.Generator(device).manual_seed(
            int(torch.randint(2**62, (1,), generator=generator)))
        yield batch, z_generator


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
    for batch, z_generator in _test_batches(model, data, n_batches, batch_size, generator):
        for key, value in prediction_error(model, batch, z_generator).items():
            sums[key] = sums.get(key, 0) + value.cpu() / n_batches
    return {k: v.tolist() for k, v in sums.items()}


def errors_per_sample(
    model: ForwardModel,
    data: TrafficDataset,
    n_batches: int = 4,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Each test sample's per-step errors (N, T), N = ``n_batches · batch_size``, on the
    batches and prior draws of :func:`error_vs_horizon` with the same ``generator``: two
    models evaluated from equal generators are compared sample by sample (a paired test)."""
    parts: dict[str, list[Tensor]] = {}
    for batch, z_generator in _test_batches(model, data, n_batches, batch_size, generator):
        for key, value in prediction_error(model, batch, z_generator, per_sample=True).items():
            parts.setdefault(key, []).append(value.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}
