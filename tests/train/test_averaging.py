"""Unit tests of the averaging family (:mod:`genoise.train.averaging`) and of the simulated
:class:`~genoise.train.cluster.Cluster`: the EASGD round against its formulas, local SGD's
step counting, DOWNPOUR at zero staleness against plain SGD, bit-for-bit resume,
determinism, input validation and traffic accounting — all on tiny problems, one process."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genoise.train.averaging import (
    ElasticAverager,
    RowAverager,
    SimulatedCollective,
    elastic_round_,
    flatten,
    ring_bytes,
    state_tensors,
    unflatten_,
)
from genoise.train.cluster import Cluster, Method, cosine_factor
from genoise.train.seed import derive_seed

N_SAMPLES, BATCH, SEED = 48, 8, 5
# Linear(6, 12) + BatchNorm1d(12) + Linear(12, 2), counted by hand
N_PARAMS = 6 * 12 + 12 + 2 * 12 + 12 * 2 + 2  # 134
N_STATE = N_PARAMS + 2 * 12  # + running_mean, running_var (num_batches_tracked is an integer)


# ---------------------------------------------------------------------- a small problem
def problem(bn: bool = True) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """48 samples of a 2-class problem and a small classifier initialised from its own
    generator (torch's global RNG is not touched)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_SAMPLES, 6, generator=gen)
    y = (x[:, 0] - x[:, 1] > 0).long()
    layers = (
        [nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Linear(12, 2)]
        if bn
        else [nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 2)]
    )
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=gen))
    return model, (x, y)


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
    x, y = batch
    noise = 0.01 * torch.randn(x.shape, generator=generator)  # the worker's own randomness
    return F.cross_entropy(model(x + noise), y)


def make_cluster(method: Method, seed: int = SEED, bn: bool = True, **kwargs) -> Cluster:
    model, data = problem(bn)
    return Cluster(model, loss_fn, data, method=method, batch_size=BATCH, seed=seed, progress=False, **kwargs)


def worker_row(cluster: Cluster, i: int) -> torch.Tensor:
    return flatten(state_tensors(cluster.workers[i].model))


def plain_sgd(cluster: Cluster, steps: int, lr: float, schedule=None) -> nn.Module:
    """Plain ``torch.optim.SGD`` on worker 0's batches of ``cluster``, with worker 0's
    generator seeded as the Cluster documents (derive_seed(seed, 4, 0)); ``schedule(opt)``:
    a torch learning-rate scheduler stepped after every step."""
    model, _ = problem()
    model.train()
    x, y = cluster.data
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = None if schedule is None else schedule(opt)
    gen = torch.Generator().manual_seed(derive_seed(cluster.seed, 4, 0))
    for step in range(steps):
        index = cluster.batch_indices(0, step)
        opt.zero_grad()
        loss_fn(model, (x[index], y[index]), gen).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return model


def assert_same(a, b, where: str = "") -> None:
    """Recursive bit-for-bit equality of nested dicts / lists / tensors / scalars."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ---------------------------------------------------------------------- 1. the EASGD round
def _elastic_by_hand(rows: list[list[float]], center: list[float], alpha: float, beta: float):
    p = len(rows)
    mean = [sum(r[k] / p for r in rows) for k in range(len(center))]
    new_rows = [[x - alpha * (x - c) for x, c in zip(r, center, strict=True)] for r in rows]
    new_center = [c + beta * (m - c) for c, m in zip(center, mean, strict=True)]
    return new_rows, new_center, mean


ROWS = {2: [[1.5, -2.0], [0.25, 3.0]], 3: [[1.5, -2.0], [0.25, 3.0], [-0.7, 0.1]]}
CENTER = [0.5, 0.75]


@pytest.mark.parametrize("p", [2, 3])
def test_elastic_round_matches_the_formulas_with_the_old_values(p):
    alpha, beta = 0.25, 0.6
    want_rows, want_center, mean = _elastic_by_hand(ROWS[p], CENTER, alpha, beta)
    rows = torch.tensor(ROWS[p], dtype=torch.float64)
    center = torch.tensor(CENTER, dtype=torch.float64)
    elastic_round_(rows, center, alpha, torch.tensor(mean, dtype=torch.float64), beta)
    assert rows.tolist() == want_rows
    assert center.tolist() == want_center


@pytest.mark.parametrize("p", [2, 3])
def test_elastic_averager_runs_the_round_when_due_with_beta_p_alpha_and_is_idle_otherwise(p):
    alpha = 0.25
    averager = ElasticAverager(2, SimulatedCollective(p), torch.tensor(CENTER, dtype=torch.float64), alpha)
    assert averager.beta == p * alpha
    want_rows, want_center, _ = _elastic_by_hand(ROWS[p], CENTER, alpha, p * alpha)
    rows = torch.tensor(ROWS[p], dtype=torch.float64)
    assert averager.due() and averager.average_rows(rows)  # counter 0: due
    assert rows.tolist() == want_rows
    # the mean is (rows / p).sum(0), the hand mean Σ_j x_j / p in the same order: exact too
    assert averager.center.tolist() == want_center
    # counter 1: not due, rows and center untouched
    center_before = averager.center.clone()
    rows = torch.tensor(ROWS[p], dtype=torch.float64)
    assert not averager.due() and not averager.average_rows(rows)
    assert rows.tolist() == ROWS[p]
    assert torch.equal(averager.center, center_before)
    assert averager.step == 2


def test_elastic_averager_on_two_quadratics_follows_the_hand_computed_trajectory():
    """f_i(x) = ½(x − a_i)², SGD with η = ½, α = ¼ (β = ½), τ = 2, warmup 0: rounds after
    steps 1, 3, 5, … (all values dyadic, so every comparison is exact)."""
    a, eta, alpha, tau, steps = [1.0, -3.0], 0.5, 0.25, 2, 8
    params = [nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in a]
    opts = [torch.optim.SGD([w], lr=eta) for w in params]
    averager = ElasticAverager(tau, SimulatedCollective(2), torch.zeros(1, dtype=torch.float64), alpha)
    xs, c = [0.0, 0.0], 0.0  # the reference, plain Python floats
    trajectory, reference = [], []
    for step in range(steps):
        for w, ai, opt in zip(params, a, opts, strict=True):
            opt.zero_grad()
            (0.5 * (w - ai) ** 2).sum().backward()
            opt.step()
        rows = torch.stack([flatten([w]) for w in params])
        averager.average_rows(rows)
        for w, row in zip(params, rows, strict=True):
            unflatten_([w], row)
        trajectory.append(([w.item() for w in params], averager.center.item()))
        xs = [x - eta * (x - ai) for x, ai in zip(xs, a, strict=True)]
        if step % tau == 0:
            mean = (xs[0] + xs[1]) / 2
            xs, c = [x - alpha * (x - c) for x in xs], c + 2 * alpha * (mean - c)
        reference.append((list(xs), c))
    # by hand: after step 1 (round) and step 3 (round)
    assert trajectory[0] == ([0.375, -1.125], -0.25)
    assert trajectory[1] == ([0.6875, -2.0625], -0.25)
    assert trajectory[2] == ([0.5703125, -1.9609375], -0.546875)
    assert trajectory == reference


# ---------------------------------------------------------------------- 2. p = 1, α = 0
def test_elastic_round_with_one_worker_and_alpha_zero_is_plain_sgd_bit_for_bit():
    gen = torch.Generator().manual_seed(2)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    plain = copy.deepcopy(model)
    opt, plain_opt = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, plain))
    center = flatten(state_tensors(model))
    initial = center.clone()
    collective = SimulatedCollective(1)
    for _ in range(12):
        x, y = torch.randn(5, 4, generator=gen), torch.randn(5, 3, generator=gen)
        for m, o in ((model, opt), (plain, plain_opt)):
            o.zero_grad()
            F.mse_loss(m(x), y).backward()
            o.step()
        rows = flatten(state_tensors(model))[None]
        elastic_round_(rows, center, 0.0, collective.mean(rows), 0.0)
        unflatten_(state_tensors(model), rows[0])
        for p, q in zip(model.parameters(), plain.parameters(), strict=True):
            assert torch.equal(p, q)
    assert torch.equal(center, initial)  # β = 0: the center never moves
    assert not torch.equal(flatten(state_tensors(model)), initial)  # and training did happen


def _one_worker_reference(cluster: Cluster, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One worker of ``cluster.method`` (easgd or diloco) by hand: its local optimiser on
    worker 0's batches and, after steps τ, 2τ, …, the method's rule with p = 1 (EASGD:
    x ← x − α(x − x̃), x̃ ← x̃ + β(x − x̃), β = α; DiLoCo: Nesterov SGD on x̃ with gradient
    x̃ − x, then x ← x̃). Returns (worker row, center)."""
    method = cluster.method
    model, _ = problem()
    model.train()
    x, y = cluster.data
    opt = method.optimizer(model.parameters())
    gen = torch.Generator().manual_seed(derive_seed(cluster.seed, 4, 0))
    center = flatten(state_tensors(model))
    outer = torch.optim.SGD([center], lr=method.outer_lr, momentum=method.outer_momentum, nesterov=True)
    for step in range(steps):
        index = cluster.batch_indices(0, step)
        opt.zero_grad()
        loss_fn(model, (x[index], y[index]), gen).backward()
        opt.step()
        if (step + 1) % method.tau == 0:
            row = flatten(state_tensors(model))
            if method.name == "easgd":
                alpha = method.elastic_alpha
                pull = (row - center) * alpha
                center = center + (row - center) * alpha
                row = row - pull
            else:
                center.grad = center - row
                outer.step()
                row = center.clone()
            unflatten_(state_tensors(model), row)
    return flatten(state_tensors(model)), center


@pytest.mark.parametrize(
    "method",
    [Method("easgd", workers=1, tau=2, alpha=0.5, lr=0.1), Method("diloco", workers=1, tau=2, lr=0.01)],
    ids=["easgd", "diloco"],
)
def test_one_synchronous_worker_still_applies_the_elastic_or_outer_rule(method):
    """EASGD and DiLoCo with p = 1 are not SGD / AdamW: the elastic pull (α > 0) and the
    outer Nesterov step still act every τ steps (asynchronous EASGD with p = 1 does apply
    its rule through the master)."""
    steps = 4
    cluster = make_cluster(method)
    cluster.fit(steps)
    row, center = _one_worker_reference(cluster, steps)
    assert torch.equal(worker_row(cluster, 0), row)
    assert torch.equal(cluster.center_row(), center)


# ---------------------------------------------------------------------- 3. Method("sgd")
def test_cluster_sgd_equals_a_plain_sgd_loop_bit_for_bit():
    steps, lr = 9, 0.1  # 6 steps per epoch: crosses an epoch boundary
    cluster = make_cluster(Method("sgd", lr=lr))
    cluster.fit(steps)
    reference = plain_sgd(cluster, steps, lr)
    assert_same(cluster.workers[0].model.state_dict(), reference.state_dict(), "model")
    assert torch.equal(cluster.center_row(), flatten(state_tensors(reference)))
    assert cluster.rounds == 0 and cluster.bytes_per_worker == 0


def test_batch_indices_slice_each_epoch_permutation_between_workers():
    cluster = make_cluster(Method("localsgd", workers=2, tau=2))
    assert cluster.steps_per_epoch == N_SAMPLES // 2 // BATCH == 3
    for epoch in range(2):
        steps = range(epoch * 3, epoch * 3 + 3)
        seen = [torch.cat([cluster.batch_indices(w, s) for s in steps]) for w in (0, 1)]
        together = torch.cat(seen)
        assert sorted(together.tolist()) == list(range(N_SAMPLES))  # disjoint slices, all samples
    assert not torch.equal(cluster.batch_indices(0, 0), cluster.batch_indices(0, 3))  # a new permutation


# ---------------------------------------------------------------------- 4. step counting
def _communicating_calls(averager: RowAverager, calls: int) -> list[int]:
    out = []
    for call in range(1, calls + 1):
        rows = torch.tensor([[float(call), 0.0], [3.0 * call, 2.0]])
        original = rows.clone()
        due = averager.due()
        assert averager.average_rows(rows) is due
        if due:
            out.append(call)
            assert rows.tolist() == [[2.0 * call, 1.0]] * 2
        else:
            assert torch.equal(rows, original)
    assert averager.step == calls
    return out


def test_row_averager_counts_like_torch_periodic_model_averager():
    assert _communicating_calls(RowAverager(4, SimulatedCollective(2)), 12) == [1, 5, 9]


def test_row_averager_with_warmup_tau_minus_one_communicates_after_steps_tau_2tau():
    collective = SimulatedCollective(2)
    assert _communicating_calls(RowAverager(4, collective, warmup_steps=3), 12) == [4, 8, 12]
    assert collective.traffic.rounds == 3


def test_cluster_localsgd_averages_after_steps_tau_2tau_3tau():
    cluster = make_cluster(Method("localsgd", workers=2, tau=4, lr=0.1))
    for steps in range(1, 13):
        cluster.fit(steps)
        same = torch.equal(worker_row(cluster, 0), worker_row(cluster, 1))
        assert same == (steps % 4 == 0), steps
    fresh = make_cluster(Method("localsgd", workers=2, tau=4, lr=0.1))
    assert fresh.fit(12)["rounds"] == 3
    five = make_cluster(Method("localsgd", workers=2, tau=4, lr=0.1))
    summary = five.fit(5)
    assert not torch.equal(worker_row(five, 0), worker_row(five, 1))
    assert summary["rounds"] == 1 + 1  # the round after step 4, and the final mean (5 % 4 != 0)


# ---------------------------------------------------------------------- 5. DOWNPOUR
def test_downpour_with_one_worker_and_tau_one_equals_plain_sgd_bit_for_bit():
    steps, lr = 9, 0.1
    cluster = make_cluster(Method("downpour", workers=1, tau=1, lr=lr))
    cluster.fit(steps)
    reference = flatten(state_tensors(plain_sgd(cluster, steps, lr)))
    assert torch.equal(cluster.center_row(), reference)
    assert torch.equal(worker_row(cluster, 0), reference)  # the worker pulled the center
    assert cluster.staleness == [0] * steps and cluster.master.version == steps


def _round_robin_staleness(p: int, tau: int, steps: int) -> list[int]:
    """The module docstring's rule: workers 0 … p − 1 exchange in turn; worker j's first push
    meets the j updates of the workers before it, every later push the p − 1 of the others."""
    exchanges = steps // tau
    return [j if k == 0 else p - 1 for k in range(exchanges) for j in range(p)]


@pytest.mark.parametrize(("p", "tau"), [(2, 1), (3, 1), (2, 2)])
def test_round_robin_downpour_records_the_documented_staleness(p, tau):
    steps = 6
    cluster = make_cluster(Method("downpour", workers=p, tau=tau, lr=0.05))
    summary = cluster.fit(steps)
    expected = _round_robin_staleness(p, tau, steps)
    assert cluster.staleness == expected
    if (p, tau) == (2, 1):
        assert expected == [0] + [1] * 11
    assert summary["staleness_max"] == p - 1
    assert cluster.master.version == p * steps // tau
    assert cluster.rounds == steps // tau
    assert cluster.bytes_per_worker == steps // tau * N_STATE * 4  # Σg (params) + buffers, float32


# ---------------------------------------------------------------------- 6. resume
RESUMABLE = {
    "easgd": Method("easgd", workers=3, tau=2, lr=0.1),
    "diloco": Method("diloco", workers=3, tau=2, lr=0.01),
    "downpour": Method("downpour", workers=3, tau=2, lr=0.05),
    "easgd-async": Method("easgd", workers=3, tau=2, lr=0.1, asynchronous=True),
    "eamsgd-read": Method("eamsgd", workers=3, tau=2, lr=0.05, buffers="read"),
    "ddp-cosine": Method("ddp", workers=3, lr=0.1, lr_schedule="cosine"),
}


def assert_same_run(a: Cluster, b: Cluster) -> None:
    assert a.step == b.step
    for wa, wb in zip(a.workers, b.workers, strict=True):
        assert_same(wa.state_dict(), wb.state_dict(), f"worker {wa.index}")
    assert (a.averager is None) == (b.averager is None)
    if a.averager is not None:
        assert_same(a.averager.state_dict(), b.averager.state_dict(), "averager")
        assert a.averager.step == b.averager.step
    assert (a.master is None) == (b.master is None)
    if a.master is not None:
        assert_same(a.master.state_dict(), b.master.state_dict(), "master")
    assert torch.equal(a.center_row(), b.center_row())
    assert a.rounds == b.rounds and a.bytes_per_worker == b.bytes_per_worker
    assert a.staleness == b.staleness


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, name):
    method = RESUMABLE[name]
    first = make_cluster(method, run_dir=tmp_path / "a", checkpoint_every=3)
    assert first.fit(10, stop_after=6) == {"stopped": 6}
    assert (tmp_path / "a" / "last.pt").is_file()
    resumed = make_cluster(method, run_dir=tmp_path / "a", checkpoint_every=3)
    resumed.fit(10, resume=True)
    straight = make_cluster(method, run_dir=tmp_path / "b", checkpoint_every=3)
    straight.fit(10)
    assert_same_run(resumed, straight)
    if name in ("easgd", "diloco"):
        assert torch.equal(resumed.averager.center, straight.averager.center)
        assert resumed.averager.step == straight.averager.step == 10
        assert resumed.rounds == 5
    if name == "diloco":  # the outer Nesterov momentum was restored
        assert_same(resumed.averager.outer.state_dict(), straight.averager.outer.state_dict(), "outer")
        assert resumed.averager.outer.state_dict()["state"]
    if method.asynchronous:
        assert resumed.master.version == straight.master.version == 3 * 5


# ---------------------------------------------------------------------- 7. determinism
@pytest.mark.parametrize(
    "method",
    [Method("easgd", workers=2, tau=2, lr=0.1), Method("easgd", workers=2, tau=2, lr=0.1, asynchronous=True)],
    ids=["sync", "async"],
)
def test_simulator_is_deterministic_and_depends_on_the_seed(method):
    runs = [make_cluster(method, seed=s) for s in (SEED, SEED, SEED + 1)]
    for c in runs:
        c.fit(6)
    assert torch.equal(runs[0].center_row(), runs[1].center_row())
    assert not torch.equal(runs[0].center_row(), runs[2].center_row())


# ---------------------------------------------------------------------- 8. bad input
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Method("localsgd", workers=2, tau=0), "tau must be an integer >= 1, got 0"),
        (lambda: Method("easgd", workers=2, alpha=0.0), r"alpha must be in \(0, 1\)"),
        (lambda: Method("easgd", workers=2, alpha=1.5), r"alpha must be in \(0, 1\)"),
        (lambda: Method("easgd", workers=4, alpha=0.3), "beta"),
        (lambda: Method("sgd", workers=2), "sgd is one worker"),
        (lambda: Method("nope"), "unknown distributed method 'nope'"),
        (lambda: Method("localsgd", workers=2, asynchronous=True), "asynchronous=true is for"),
        (lambda: Method("easgd", workers=2, buffers="never"), "buffers must be one of round, read"),
        (
            lambda: Method("eamsgd", workers=2, asynchronous=True, buffers="read"),
            "buffers=read is for the synchronous methods",
        ),
        (lambda: Method("ddp", workers=2, lr_schedule="step"), "lr_schedule must be one of constant, cosine"),
        (
            lambda: Method("downpour", workers=2, lr_schedule="cosine"),
            "lr_schedule=cosine is for the synchronous methods",
        ),
    ],
    ids=[
        "tau0",
        "alpha0",
        "alpha1.5",
        "beta",
        "sgd-workers",
        "unknown",
        "async-localsgd",
        "buffers",
        "async-read",
        "schedule",
        "async-cosine",
    ],
)
def test_bad_method_settings_raise_one_line_value_errors(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_batch_larger_than_the_samples_per_worker_is_refused():
    model, data = problem()  # 48 samples, 8 workers: 6 each, batch 8
    with pytest.raises(ValueError, match="batch_size=8 is larger than the 6 samples per worker") as info:
        Cluster(model, loss_fn, data, method=Method("localsgd", workers=8), batch_size=BATCH, progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("alpha", "workers", "match"),
    [(0.0, 2, "alpha"), (1.0, 2, "alpha"), (-0.1, 1, "alpha"), (0.5, 2, "beta"), (0.3, 4, "beta")],
)
def test_elastic_averager_refuses_alpha_outside_the_stable_range(alpha, workers, match):
    with pytest.raises(ValueError, match=match) as info:
        ElasticAverager(2, SimulatedCollective(workers), torch.zeros(3), alpha)
    assert "\n" not in str(info.value)


def test_resuming_a_checkpoint_whose_rounds_carried_the_buffers_is_refused_under_read(tmp_path):
    make_cluster(Method("easgd", workers=2, tau=2), run_dir=tmp_path).fit(2)
    other = make_cluster(Method("easgd", workers=2, tau=2, buffers="read"), run_dir=tmp_path)
    with pytest.raises(ValueError, match="buffers=round, this run buffers=read") as info:
        other.fit(4, resume=True)
    assert "\n" not in str(info.value)


def test_resuming_a_checkpoint_of_another_learning_rate_schedule_is_refused(tmp_path):
    make_cluster(Method("ddp", workers=2), run_dir=tmp_path).fit(2)
    other = make_cluster(Method("ddp", workers=2, lr_schedule="cosine"), run_dir=tmp_path)
    with pytest.raises(ValueError, match="lr_schedule=constant, this run lr_schedule=cosine") as info:
        other.fit(4, resume=True)
    assert "\n" not in str(info.value)


def test_resuming_a_checkpoint_of_another_worker_count_is_refused(tmp_path):
    make_cluster(Method("localsgd", workers=2, tau=2), run_dir=tmp_path).fit(2)
    other = make_cluster(Method("localsgd", workers=3, tau=2), run_dir=tmp_path)
    with pytest.raises(ValueError, match="workers=2, this run workers=3") as info:
        other.fit(4, resume=True)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- 9. traffic
@pytest.mark.parametrize("n", [1, 7, 134, 1000])
@pytest.mark.parametrize("p", [1, 2, 3, 8])
def test_ring_bytes_formula(n, p):
    expected = 0 if p == 1 else 2 * (p - 1) * n * 4 // p
    assert ring_bytes(n, p, 4) == ring_bytes(n, p) == expected
    assert ring_bytes(n, p, 8) == (0 if p == 1 else 2 * (p - 1) * n * 8 // p)


def test_state_tensors_count_parameters_and_floating_buffers():
    model, _ = problem()
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS == 134
    assert flatten(state_tensors(model)).numel() == N_STATE == 158
    plain, _ = problem(bn=False)
    assert flatten(state_tensors(plain)).numel() == sum(p.numel() for p in plain.parameters())


@pytest.mark.parametrize("p", [2, 3])
def test_ddp_communicates_the_gradients_at_every_step(p):
    steps = 5
    cluster = make_cluster(Method("ddp", workers=p, lr=0.1))
    summary = cluster.fit(steps)
    assert summary["rounds"] == cluster.rounds == steps  # no extra final round
    assert summary["bytes_per_worker"] == steps * ring_bytes(N_PARAMS, p, 4)
    # identical gradients on identical workers: the parameters stay equal
    for i in range(1, p):
        for a, b in zip(
            cluster.workers[0].model.parameters(), cluster.workers[i].model.parameters(), strict=True
        ):
            assert torch.equal(a, b)


@pytest.mark.parametrize("p", [2, 3])
def test_easgd_communicates_parameters_and_floating_buffers_every_tau_steps(p):
    cluster = make_cluster(Method("easgd", workers=p, tau=4, lr=0.1))
    summary = cluster.fit(16)
    assert summary["rounds"] == 4
    assert summary["bytes_per_worker"] == 4 * ring_bytes(N_STATE, p, 4)
    assert math.isfinite(summary["loss"])


def test_localsgd_final_mean_counts_one_more_round_only_off_the_period():
    assert make_cluster(Method("localsgd", workers=2, tau=4)).fit(10)["rounds"] == 2 + 1
    assert make_cluster(Method("localsgd", workers=2, tau=4)).fit(8)["rounds"] == 2


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    """--resume on a finished run: no step, no round, no second final evaluation."""
    first = make_cluster(Method("localsgd", workers=2, tau=2, lr=0.1), run_dir=tmp_path)
    done = first.fit(6)
    again = make_cluster(Method("localsgd", workers=2, tau=2, lr=0.1), run_dir=tmp_path)
    result = again.fit(6, resume=True)
    assert result["history"] == done["history"] and result["rounds"] == done["rounds"]
    assert torch.equal(again.center_row(), first.center_row())


# ---------------------------------------------------------------------- 10. buffers="read"
def buffer_rows(cluster: Cluster) -> torch.Tensor:
    return torch.stack([worker_row(cluster, i)[N_PARAMS:] for i in range(len(cluster.workers))])


@pytest.mark.parametrize("name", ["easgd", "eamsgd", "localsgd", "diloco"])
def test_rounds_without_buffers_send_the_parameters_only_and_train_the_same_parameters(name):
    """BatchNorm's running statistics never enter a training-mode forward, so leaving them out
    of the rounds changes no parameter, bit for bit; it changes the bytes (parameters only)
    and the center's statistics (the workers' mean, taken when the center is read)."""
    p, steps = 3, 10
    lr = {"diloco": 0.01, "eamsgd": 0.05}.get(name, 0.1)
    both = {b: make_cluster(Method(name, workers=p, tau=4, lr=lr, buffers=b)) for b in ("round", "read")}
    summaries = {b: c.fit(steps) for b, c in both.items()}
    rounds = summaries["read"]["rounds"]
    assert rounds == summaries["round"]["rounds"] == (3 if name == "localsgd" else 2)
    assert summaries["read"]["bytes_per_worker"] == rounds * ring_bytes(N_PARAMS, p)
    assert summaries["round"]["bytes_per_worker"] == rounds * ring_bytes(N_STATE, p)
    for i in range(p):  # every worker's parameters, bit for bit
        assert torch.equal(worker_row(both["read"], i)[:N_PARAMS], worker_row(both["round"], i)[:N_PARAMS])
    center = both["read"].center_row()
    assert center.numel() == N_STATE
    assert torch.equal(center[:N_PARAMS], both["round"].center_row()[:N_PARAMS])
    # the center's statistics: the workers' own, averaged once (not pulled toward a center)
    assert torch.equal(center[N_PARAMS:], (buffer_rows(both["read"]) / p).sum(0))
    assert not torch.equal(center[N_PARAMS:], both["round"].center_row()[N_PARAMS:])


def test_rounds_without_buffers_on_a_model_without_buffers_change_nothing():
    runs = {
        b: make_cluster(Method("eamsgd", workers=2, tau=2, lr=0.05, buffers=b), bn=False)
        for b in ("round", "read")
    }
    summaries = {b: c.fit(6) for b, c in runs.items()}
    assert summaries["read"]["bytes_per_worker"] == summaries["round"]["bytes_per_worker"] > 0
    assert torch.equal(runs["read"].center_row(), runs["round"].center_row())


def test_ddp_ignores_the_buffers_setting():
    runs = {b: make_cluster(Method("ddp", workers=2, lr=0.1, buffers=b)) for b in ("round", "read")}
    summaries = {b: c.fit(4) for b, c in runs.items()}
    assert summaries["read"]["bytes_per_worker"] == summaries["round"]["bytes_per_worker"]
    assert torch.equal(runs["read"].center_row(), runs["round"].center_row())


# ---------------------------------------------------------------------- 11. lr_schedule="cosine"
def test_cosine_factor_is_torch_cosine_annealing_in_closed_form():
    total, lr = 37, 0.3
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    for step in range(total):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr * cosine_factor(step, total), abs=1e-12)
        opt.step()
        scheduler.step()
    assert cosine_factor(0, total) == 1.0 and cosine_factor(total, total) == pytest.approx(0.0, abs=1e-16)


def test_cluster_sgd_with_the_cosine_schedule_equals_torch_lambda_lr_bit_for_bit():
    steps, lr = 9, 0.1
    cluster = make_cluster(Method("sgd", lr=lr, lr_schedule="cosine"))
    cluster.fit(steps)
    reference = plain_sgd(
        cluster,
        steps,
        lr,
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: cosine_factor(t, steps)),
    )
    assert_same(cluster.workers[0].model.state_dict(), reference.state_dict(), "model")
    constant = make_cluster(Method("sgd", lr=lr))
    constant.fit(steps)
    assert not torch.equal(constant.center_row(), cluster.center_row())
