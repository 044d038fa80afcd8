"""Sparse activations: what event-driven inference skips, and a layer that skips it.

LeCun (ISSCC 2019) predicts that very large networks will have very sparse activations and
that hardware will exploit them event by event: a zero input costs nothing. For a linear
layer y = W x + b at batch 1 only the columns of the non-zero inputs matter,

    y = W[:, nz] · x[nz] + b,      nz = {j : x_j ≠ 0},

so it performs |nz|·out multiply-adds instead of in·out — ``1 / (1 − s)`` times fewer at
input sparsity s (5× at s = 0.8). A convolution skips, for every output, the taps whose
input is zero.

- :func:`event_linear` / :class:`EventLinear`: the event-driven layer (batch 1; a batch of
  several samples runs dense, row-wise sparsity has no shared support);
- :class:`EventMode`: run *any* network with its linear layers — and the convolutions whose
  kernel covers their whole unpadded input (LeNet-5's C5), which are linear layers — event
  driven at batch 1;
- :func:`sparsity_report`: per weight layer, the fraction of zero inputs and the multiply-adds
  a dense and an event-driven engine perform (exact counts, not estimates);
- :func:`activity_penalty`: λ·mean‖h‖₁ over the inputs of every weight layer but the first
  (the ReLU outputs), the sparse-coding regulariser (:func:`genoise.latent.regularizers.
  l1_penalty`) used as an activity penalty to raise sparsity.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from genoise.latent.regularizers import l1_penalty

LINEAR_OPS = (F.linear,)
CONV_OPS = (F.conv2d,)


def event_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` that, for one sample (x of shape (in,) or (1, in)),
    multiplies only the non-zero inputs: W[:, nz] @ x[nz] (+ b). Other batches run dense."""
    if x.ndim == 2 and x.shape[0] == 1:
        return event_linear(x[0], weight, bias).unsqueeze(0)
    if x.ndim != 1:
        return F.linear(x, weight, bias)
    nz = x.nonzero().squeeze(1)
    y = weight.index_select(1, nz) @ x.index_select(0, nz)
    return y if bias is None else y + bias


class EventLinear(nn.Linear):
    """:class:`torch.nn.Linear` whose batch-1 forward is :func:`event_linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return event_linear(x, self.weight, self.bias)


def conv_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    return {**defaults, **dict(zip(names, args, strict=False)), **kwargs}


def _is_full_kernel(a: dict[str, Any]) -> bool:
    """A convolution that is a linear layer: one output position, no padding, one group."""
    x, w = a["input"], a["weight"]
    padding = a["padding"] if isinstance(a["padding"], (tuple, list)) else (a["padding"],) * 2
    dilation = a["dilation"] if isinstance(a["dilation"], (tuple, list)) else (a["dilation"],) * 2
    return (
        x.ndim == 4
        and a["groups"] == 1
        and tuple(padding) in ((0, 0), "valid")
        and tuple(dilation) == (1, 1)
        and tuple(x.shape[-2:]) == tuple(w.shape[-2:])
    )


class EventMode(TorchFunctionMode):
    """Inside ``with EventMode():`` every batch-1 ``F.linear``, and every ``F.conv2d`` whose
    kernel covers its whole unpadded input, runs as :func:`event_linear`; the rest is
    unchanged. Results equal the dense ones up to float summation order."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in LINEAR_OPS:
            return event_linear(*args, **kwargs)
        if func in CONV_OPS:
            a = conv_arguments(args, kwargs)
            if _is_full_kernel(a) and a["input"].shape[0] == 1:
                w = a["weight"]
                y = event_linear(a["input"].flatten(1), w.flatten(1), a["bias"])
                return y.view(1, w.shape[0], 1, 1)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class LayerSparsity:
    """One weight layer: its name, kind, fraction of zero inputs, and multiply-adds per
    sample of a dense and of an event-driven engine."""

    name: str
    kind: str
    zero_fraction: float
    dense_macs: float
    event_macs: float

    @property
    def mac_ratio(self) -> float:
        """dense / event multiply-adds (inf when every input is zero)."""
        return self.dense_macs / self.event_macs if self.event_macs else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mac_ratio": self.mac_ratio}


class _LayerCalls(TorchFunctionMode):
    """Records every linear/conv call as (module name, kind, args) while active."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.handles = []
        for name, module in model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave))

    def _enter(self, name: str) -> Any:
        def hook(_module: nn.Module, _args: Any) -> None:
            self.stack.append(name)

        return hook

    def _leave(self, _module: nn.Module, _args: Any, _output: Any) -> None:
        self.stack.pop()  # returns None: a forward hook's return value would replace the output

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in LINEAR_OPS or func in CONV_OPS:
            kind = "linear" if func in LINEAR_OPS else "conv2d"
            a = (
                {"input": args[0], "weight": args[1], "bias": (args[2:] or [kwargs.get("bias")])[0]}
                if kind == "linear"
                else conv_arguments(args, kwargs)
            )
            self.calls.append((self.stack[-1] if self.stack else "", kind, a))
        return func(*args, **kwargs)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextmanager
def record_layer_inputs(model: nn.Module) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """``with record_layer_inputs(model) as calls: model(x)`` fills ``calls`` with
    (module name, "linear" | "conv2d", arguments) of every weight-layer call, in order."""
    recorder = _LayerCalls(model)
    try:
        with recorder:
            yield recorder.calls
    finally:
        recorder.remove()


def _macs(kind: str, a: dict[str, Any], active: Tensor) -> float:
    """Multiply-adds per sample with inputs ``active`` (0/1) against the weights' structure."""
    w = a["weight"].detach()
    batch = a["input"].shape[0] if a["input"].ndim > 1 else 1
    if kind == "linear":
        return float(active.sum()) * w.shape[0] / batch
    taps = (w != 0).to(active.dtype)  # structural zeros (a sparse connection table) cost nothing
    counted = F.conv2d(active, taps, None, a["stride"], a["padding"], a["dilation"], a["groups"])
    return float(counted.sum()) / batch


@torch.no_grad()
def sparsity_report(model: nn.Module, *inputs: Tensor) -> list[LayerSparsity]:
    """Run ``model(*inputs)`` and report every weight layer's input sparsity and the dense /
    event-driven multiply-adds per sample (exact: a convolution's count is the convolution
    of the non-zero indicator with the kernel's non-zero structure)."""
    was_training = model.training
    model.eval()
    try:
        with record_layer_inputs(model) as calls:
            model(*inputs)
    finally:
        model.train(was_training)
    rows = []
    for name, kind, a in calls:
        x = a["input"].detach()
        nonzero = (x != 0).to(torch.float64)
        rows.append(
            LayerSparsity(
                name,
                kind,
                1.0 - float(nonzero.mean()),
                _macs(kind, a, torch.ones_like(nonzero)),
                _macs(kind, a, nonzero),
            )
        )
    return rows


def activity_penalty(calls: list[tuple[str, str, dict[str, Any]]], weight: float) -> Tensor:
    """λ · Σ_layers mean_batch ‖h_layer‖₁ / size(h_layer) over the recorded inputs of every
    weight layer but the first (the network's input is not an activity)."""
    terms = [l1_penalty(a["input"].flatten(1)).mean() / a["input"][0].numel() for _, _, a in calls[1:]]
    if not terms:
        raise ValueError("activity_penalty needs at least two recorded weight layers")
    return weight * torch.stack(terms).sum()
