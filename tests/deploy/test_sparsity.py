"""Event-driven inference: the event layer equals the dense one and performs exactly the
multiply-adds of the non-zero inputs; the report's counts equal brute-force counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genoise.deploy.sparsity import (
    EventLinear,
    EventMode,
    activity_penalty,
    event_linear,
    record_layer_inputs,
    sparsity_report,
)
from genoise.nn import LeNet5


def sparse_input(n: int, sparsity: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, n, generator=g)
    return x * (torch.rand(1, n, generator=g) >= sparsity)


def test_event_linear_equals_dense_at_batch_one() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(400, 120)
    event = EventLinear(400, 120)
    event.load_state_dict(layer.state_dict())
    for sparsity in (0.0, 0.5, 0.9, 1.0):
        x = sparse_input(400, sparsity)
        assert torch.allclose(event(x), layer(x), atol=1e-5)
        assert torch.allclose(event_linear(x[0], layer.weight, layer.bias), layer(x)[0], atol=1e-5)
    batch = torch.rand(5, 400)
    assert torch.equal(event(batch), layer(batch))  # several samples: the dense path


def test_event_mode_runs_lenet_event_driven_and_equal() -> None:
    torch.manual_seed(0)
    model = LeNet5(activation="relu").eval()
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        dense = model(x)
        with EventMode():
            event = model(x)
    assert torch.allclose(dense, event, atol=1e-5)


def test_report_counts_equal_brute_force() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    linear = nn.Linear(4 * 6 * 6, 10)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), linear).eval()
    x = torch.rand(2, 3, 6, 6) * (torch.rand(2, 3, 6, 6) > 0.6)
    report = {r.name: r for r in sparsity_report(model, x)}
    # brute force: every (output position, tap) whose input pixel is real and non-zero
    cols = F.unfold(x, 3, padding=1)  # (B, 3*9, 36): padding taps are zeros
    real = F.unfold(torch.ones_like(x), 3, padding=1)
    assert report["0"].event_macs == pytest.approx(4 * float((cols != 0).sum()) / 2)
    assert report["0"].dense_macs == pytest.approx(4 * float(real.sum()) / 2)
    assert report["0"].zero_fraction == pytest.approx(float((x == 0).float().mean()))
    h = model[:3](x)
    assert report["3"].event_macs == pytest.approx(float((h != 0).sum()) * 10 / 2)
    assert report["3"].dense_macs == 144 * 10


def test_event_layer_five_times_fewer_macs_at_sparsity_08() -> None:
    model = nn.Sequential(nn.Linear(500, 50)).eval()
    x = sparse_input(500, 0.8, seed=3)
    (row,) = sparsity_report(model, x)
    nonzero = int((x != 0).sum())
    assert row.event_macs == nonzero * 50 and row.dense_macs == 500 * 50
    assert row.mac_ratio == pytest.approx(500 / nonzero)
    assert (row.zero_fraction >= 0.8) == (row.mac_ratio >= 5)


def test_structural_zeros_of_lenet_c3_cost_nothing() -> None:
    model = LeNet5(activation="relu").eval()
    rows = {r.name: r for r in sparsity_report(model, torch.rand(1, 1, 28, 28))}
    assert rows["c3"].dense_macs == 60 * 25 * 10 * 10  # Table I: 60 connected kernels, 10x10 outputs
    assert rows["c5"].dense_macs == 120 * 400


def test_activity_penalty_is_the_mean_l1_of_hidden_inputs() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    with record_layer_inputs(model) as calls:
        model(x)
    assert [kind for _, kind, _ in calls] == ["linear", "linear"]
    with torch.no_grad():
        hidden = model[1](model[0](x))
    penalty = activity_penalty(calls, 0.5)
    assert penalty.detach().item() == pytest.approx(0.5 * float(hidden.abs().sum(1).mean()) / 4)
    penalty.backward()
    assert model[0].weight.grad is not None
    with pytest.raises(ValueError, match="at least two"):
        activity_penalty(calls[:1], 0.5)
