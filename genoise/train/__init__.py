"""Training infrastructure: runs, the Trainer loop, checkpoints, distributed helpers."""

from genoise.train.allocator import tune_cpu_allocator
from genoise.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, unwrap_model
from genoise.train.distributed import (
    all_gather_with_grad,
    barrier,
    init_distributed,
    is_distributed,
    is_main_process,
    world_size,
)
from genoise.train.run import Run, resolve_device
from genoise.train.seed import derive_seed, get_rng_state, seed_everything, set_rng_state
from genoise.train.trainer import DivergedError, NonFiniteLossError, RunInterrupted, Trainer

__all__ = [
    "CHECKPOINT_NAME",
    "DivergedError",
    "NonFiniteLossError",
    "Run",
    "RunInterrupted",
    "Trainer",
    "all_gather_with_grad",
    "barrier",
    "derive_seed",
    "get_rng_state",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "tune_cpu_allocator",
    "unwrap_model",
    "world_size",
]
