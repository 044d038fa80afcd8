"""Worker for tests/train/test_distributed.py: ``_ddp_worker.py OUT_DIR [MODE ...]`` run on
2 ranks, either by ``python -m torch.distributed.run --nproc_per_node 2`` or by the test
itself, which forks two processes (``run_rank``, through ``tests/_ddp.py``) that set the
environment torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT):
forking the test process saves two ``import torch`` (seconds each on a loaded machine).
Rank 0 writes OUT_DIR/MODE.json with every rank's result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

torch.set_num_threads(1)

from genoise.train import Trainer, all_gather_with_grad, init_distributed, is_main_process  # noqa: E402
from genoise.train import distributed as D  # noqa: E402


def make_trainer(run_dir: Path, max_steps: int = 6) -> Trainer:
    torch.manual_seed(1 + D.rank())  # deliberately different init: DDP must broadcast rank 0's
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    y = x @ torch.arange(1.0, 6.0) + 0.1
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step_fn(model, batch, generator):
        xb, yb = batch
        noise = 0.01 * torch.randn(xb.shape, generator=generator, device=generator.device)
        return ((model(xb + noise).squeeze(1) - yb) ** 2).mean()

    return Trainer(model, optimizer, step_fn, (x, y), run_dir=run_dir, max_steps=max_steps, batch_size=8,
                   seed=3, checkpoint_every=3, log_every=2, progress=False)


def train(out: Path) -> dict:
    trainer = make_trainer(out / "run")
    initial = [p.detach().clone() for p in trainer.model.parameters()]
    if trainer.world_size != 2:
        raise SystemExit(f"expected world size 2, got {trainer.world_size}")
    final = trainer.fit()
    flat = torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)
    # the indices of one epoch on each rank: disjoint slices of one permutation
    epoch = torch.cat([trainer.batch_indices(s) for s in range(trainer.steps_per_epoch)])
    indices = [torch.empty_like(epoch) for _ in range(2)]
    dist.all_gather(indices, epoch)
    changed = not all(torch.equal(a, b) for a, b in zip(initial, trainer.model.parameters(), strict=True))
    return {"ranks_equal": torch.equal(gathered[0], gathered[1]), "changed": changed,
            "indices": [i.tolist() for i in indices], "final": final}


def resume(out: Path) -> dict:
    """Under DDP too, a max_steps split + resume equals an uninterrupted run (per-rank RNG
    states are gathered into the checkpoint and restored)."""
    split = make_trainer(out / "split", max_steps=4)
    split.fit()
    resumed = make_trainer(out / "split")
    resumed.fit(resume=True)
    reference = make_trainer(out / "reference")
    reference.fit()
    same = all(torch.equal(p, q) for p, q in zip(reference.model.parameters(),
                                                 resumed.model.parameters(), strict=True))
    return {"bit_exact": same, "generator_equal": torch.equal(reference.generator.get_state(),
                                                              resumed.generator.get_state())}


def gather(out: Path) -> dict:
    rank, world = D.rank(), D.world_size()
    shards = [torch.randn(3, 4, generator=torch.Generator().manual_seed(10 + r)) for r in range(world)]
    weights = [torch.randn(3 * world, 4, generator=torch.Generator().manual_seed(20 + r))
               for r in range(world)]

    def loss_of(z: torch.Tensor, r: int) -> torch.Tensor:  # a different loss on every rank
        return (z * weights[r]).sum() + (r + 1) * (z.tanh() ** 2).sum() + z.logsumexp(0).sum()

    local = shards[rank].clone().requires_grad_(True)
    gathered = all_gather_with_grad(local)
    loss_of(gathered, rank).backward()
    # reference: one process, the concatenated batch, the global objective sum_r loss_r
    full = torch.cat(shards).requires_grad_(True)
    sum(loss_of(full, r) for r in range(world)).backward()
    expected = full.grad[3 * rank:3 * (rank + 1)]
    return {"rank": rank, "forward_equal": torch.equal(gathered.detach(), full.detach()),
            "max_grad_error": float((local.grad - expected).abs().max()),
            "grad_scale": float(expected.abs().max())}


def main(out: Path, modes: list[str]) -> None:
    if not init_distributed():
        raise SystemExit("not launched by torchrun")
    for mode in modes:
        result = {"train": train, "resume": resume, "gather": gather}[mode](out)
        results = [None] * D.world_size()
        dist.all_gather_object(results, result)
        if is_main_process():
            (out / f"{mode}.json").write_text(json.dumps(results))
    D.destroy_distributed()


def warm_up() -> None:
    """Import in the parent what the ranks would otherwise each import after the fork
    (the first optimizer imports torch._dynamo: seconds on a loaded machine)."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    nn.parallel.DistributedDataParallel  # noqa: B018  (imports the DDP module)


def run_rank(rank: int, world: int, out: Path, modes: list[str]) -> None:
    """Entry point of a forked test process: set torchrun's variables (rank 0 hosts the
    store on a port it keeps, see ``tests/_ddp.py``), then ``main``."""
    from tests._ddp import host_env_rendezvous

    store = host_env_rendezvous(rank, world, out)
    main(out, modes)
    del store  # rank 0's store outlives the process group


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or ["train", "resume", "gather"])
