"""Under 2 processes (gloo, CPU) the batch-statistics losses, computed on embeddings
gathered with gradients, equal the single-process loss on the concatenated batch, and the
local gradient is world_size × the full-batch gradient of the local slice (the factor
DistributedDataParallel's gradient averaging divides out)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from genoise.ssl.methods import build_method
from tests._ddp import file_init_method, run_ranks

WORLD, BATCH, DIM = 2, 6, 5
METHOD_NAMES = ["simclr", "vicreg", "barlowtwins", "lejepa", "swav"]


class _Flat(nn.Module):
    """A deterministic, batch-independent backbone (no BatchNorm): flatten + linear."""

    def __init__(self) -> None:
        super().__init__()
        self.out_dim = 8
        self.linear = nn.Linear(16, 8)

    def forward(self, x):
        return self.linear(x.flatten(1))


def _method(name: str):
    torch.manual_seed(0)
    kwargs = {"proj_layers": 1, "proj_dim": DIM}  # a single linear projector: no batch statistics
    if name == "swav":
        kwargs["num_prototypes"] = 4
    if name == "lejepa":
        kwargs["num_slices"] = 8
    return build_method(name, _Flat(), **kwargs).double()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(WORLD * BATCH, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(2)]


def _losses(views, local: slice):
    """Loss of every method on ``views[local]`` and the gradient w.r.t. that slice."""
    out = {}
    for name in METHOD_NAMES:
        method = _method(name)
        x = [v.clone().requires_grad_(True) for v in views]
        loss = method([v[local] for v in x])
        loss.loss.backward()
        out[name] = (float(loss.loss.detach()), torch.cat([v.grad[local] for v in x]))
    return out


def _rank(rank: int, out_dir: Path) -> None:
    torch.set_num_threads(1)
    # a file store in the test's folder, not a TCP port: nothing else can take it meanwhile
    dist.init_process_group("gloo", init_method=file_init_method(out_dir), rank=rank, world_size=WORLD)
    result = _losses(_inputs(), slice(rank * BATCH, (rank + 1) * BATCH))
    torch.save(result, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ssl_ddp")
    run_ranks(functools.partial(_rank, out_dir=out), world=WORLD)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.xdist_group("distributed")
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_two_process_loss_equals_single_process_loss_on_the_concatenated_batch(ranks, name):
    full_loss, full_grad = _losses(_inputs(), slice(0, WORLD * BATCH))[name]
    rank_losses = [r[name][0] for r in ranks]
    # the optimised objective is the mean over ranks (DDP averages); gathered losses are
    # identical on every rank, SwAV's is a per-rank mean of a globally balanced code
    assert sum(rank_losses) / WORLD == pytest.approx(full_loss, rel=1e-9)
    if name != "swav":
        assert rank_losses[0] == pytest.approx(rank_losses[1], rel=1e-12)
    for rank, result in enumerate(ranks):
        grad = result[name][1]
        expected = torch.cat([g[rank * BATCH:(rank + 1) * BATCH] for g in full_grad.chunk(2)])
        torch.testing.assert_close(grad / WORLD, expected, rtol=1e-7, atol=1e-10)
