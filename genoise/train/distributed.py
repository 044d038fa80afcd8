"""Thin helpers over ``torch.distributed`` so that the same script runs alone or under
``torchrun --nproc_per_node N script.py``: every helper is a no-op (or the obvious
single-process answer) when no process group is running.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_distributed` reads them and starts the process group
(NCCL on CUDA, gloo on CPU).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when a process group is initialised (with any world size)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 when not launched by torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single-process run)."""
    return rank() == 0


def init_distributed(backend: str | None = None) -> bool:
    """Start the default process group from torchrun's environment variables.

    No-op when ``WORLD_SIZE`` is absent (a plain ``python script.py`` run) or when a group
    is already initialised. On CUDA machines the current device is set to
    ``cuda:LOCAL_RANK`` first.

    Parameters
    ----------
    backend : str, optional
        ``"gloo"``, ``"nccl"``…; default NCCL when CUDA is available, gloo otherwise.

    Returns
    -------
    bool : whether a process group is running after the call.
    """
    if is_distributed():
        return True
    if "WORLD_SIZE" not in os.environ or not dist.is_available():
        return False
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"WORLD_SIZE is set but {name} is not; launch with torchrun")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


def destroy_distributed() -> None:
    """Tear down the process group if one is running."""
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def all_reduce_mean(tensor: Tensor) -> Tensor:
    """Mean of ``tensor`` over processes (a copy; not differentiable)."""
    out = tensor.detach().clone()
    if is_distributed() and world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= world_size()
    return out


def all_reduce_max(tensor: Tensor) -> Tensor:
    """Element-wise maximum of ``tensor`` over processes (a copy; not differentiable)."""
    out = tensor.detach().clone()
    if is_distributed() and world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums each rank's gradient for every shard and returns the
    local one: the gradient of the global objective ``sum_r loss_r`` with respect to this
    rank's input (the ``GatherLayer`` of SimCLR/VICReg reference code)."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        shards = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(shards, tensor.contiguous())
        ctx.local_size = tensor.shape[0]
        return torch.cat(shards, dim=0)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad_output.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.local_size
        return grad[start:start + ctx.local_size]


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` (B, ...) from every rank along dim 0 → (world_size·B, ...),
    keeping the autograd graph: rank r's slice ``[r·B, (r+1)·B)`` is its own input.

    Backward: with every rank r computing a loss ``L_r`` on the gathered batch, the
    gradient reaching rank r's input is ``∂(Σ_r' L_r') / ∂x_r`` (gradients of all ranks
    are summed with an all-reduce, then the local slice is kept). DistributedDataParallel
    then averages parameter gradients over ranks, i.e. optimises ``mean_r L_r`` — equal to
    the single-process loss on the full batch when every rank computes the same loss.
    Every rank must pass the same shape. Without a process group the input is returned.

    References
    ----------
    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations"
    (SimCLR, 2020), large-batch contrastive loss over gathered embeddings.
    """
    if not is_distributed() or world_size() == 1:
        return tensor
    return _AllGatherWithGrad.apply(tensor)
