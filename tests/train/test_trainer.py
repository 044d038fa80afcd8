"""Trainer: bit-for-bit resume (after a crash, a max_steps split and Ctrl-C), NaN stops,
metrics rows, seeds and data order, gradient clipping, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from genoise.io import read_metrics
from genoise.train import CHECKPOINT_NAME, NonFiniteLossError, Run, Trainer, load_checkpoint


class Counter:
    """Stands for a replay buffer / EMA teacher: state checkpointed via extra_state."""

    def __init__(self) -> None:
        self.value = 0

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def make_trainer(run_dir=None, *, max_steps=20, seed=0, init_seed=0, step_fn=None, callbacks=(),
                 **kwargs) -> Trainer:
    """A small regression MLP with dropout (global RNG), input noise from the trainer's
    generator, NumPy noise (global NumPy RNG), Adam and a step scheduler: every RNG and
    every piece of state a resume must restore."""
    torch.manual_seed(init_seed)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    y = torch.sin(x.sum(1, keepdim=True))
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.5)
    counter = Counter()

    def default_step(model, batch, generator):
        xb, yb = batch
        noise = torch.randn(xb.shape, generator=generator, device=generator.device)
        jitter = float(np.random.uniform(0.9, 1.1))
        counter.value += 1
        loss = ((model(xb + 0.1 * noise) - yb) ** 2).mean() * jitter
        return {"loss": loss, "jitter": jitter}

    kwargs.setdefault("checkpoint_every", 5)
    kwargs.setdefault("log_every", 1)
    return Trainer(model, optimizer, step_fn or default_step, (x, y), run_dir=run_dir, max_steps=max_steps,
                   batch_size=8, scheduler=scheduler, seed=seed, progress=False,
                   extra_state={"counter": counter}, callbacks=callbacks, **kwargs)


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q), name
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for key in sa:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[key][field], sb[key][field])
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.extra_state["counter"].value == b.extra_state["counter"].value
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def losses(run_dir) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in read_metrics(run_dir / "metrics.jsonl")}


@pytest.fixture
def reference(tmp_path) -> Trainer:
    """An uninterrupted 20-step run."""
    trainer = make_trainer(tmp_path / "reference")
    trainer.fit()
    return trainer


def test_resume_after_crash_in_callback_is_bit_for_bit(tmp_path, reference):
    def crash(trainer, step, metrics):
        if step == 13:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        make_trainer(tmp_path / "run", callbacks=[crash]).fit()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 10
    # a fresh process: different initial weights, fully overwritten by the checkpoint
    resumed = make_trainer(tmp_path / "run", init_seed=99)
    final = resumed.fit(resume=True)
    assert final["step"] == 20 and resumed.step == 20
    assert_same_state(reference, resumed)
    # rows 11-13 of the crashed attempt were dropped and redone: each step logged once
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [row["step"] for row in rows] == list(range(1, 21))
    assert losses(tmp_path / "run") == losses(tmp_path / "reference")


def test_resume_after_max_steps_split_is_bit_for_bit(tmp_path, reference):
    make_trainer(tmp_path / "run", max_steps=8).fit()
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 8
    resumed = make_trainer(tmp_path / "run", init_seed=5)
    resumed.fit(resume=True)
    assert_same_state(reference, resumed)
    assert losses(tmp_path / "run") == losses(tmp_path / "reference")


def test_ctrl_c_saves_completed_steps_and_resume_is_bit_for_bit(tmp_path, reference):
    calls = {"n": 0}
    inner = make_trainer().step_fn  # a step function with its own Counter; only the loss matters

    def interrupted(model, batch, generator):
        calls["n"] += 1
        out = inner(model, batch, generator)  # consume RNGs, then interrupt mid-step
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return out

    trainer = make_trainer(tmp_path / "run", step_fn=interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert state["step"] == 12  # the 13th update was interrupted: 12 completed updates saved
    assert trainer.step == 12
    resumed = make_trainer(tmp_path / "run", init_seed=3)
    resumed.fit(resume=True)
    # the counter of make_trainer's own step counts only resumed calls; compare the rest
    resumed.extra_state["counter"].value = reference.extra_state["counter"].value
    assert_same_state(reference, resumed)
    assert losses(tmp_path / "run") == losses(tmp_path / "reference")


def test_dropout_makes_rng_state_matter(tmp_path, reference):
    """Sanity check of the resume tests: resuming without restoring the global RNG (here:
    reseeding it) gives different parameters, so the tests above do exercise it."""
    make_trainer(tmp_path / "run", max_steps=8).fit()
    resumed = make_trainer(tmp_path / "run", max_steps=20)
    original = resumed.load_checkpoint

    def load_then_reseed(path=None):
        step = original(path)
        torch.manual_seed(1234)
        return step

    resumed.load_checkpoint = load_then_reseed
    resumed.fit(resume=True)
    assert not all(torch.equal(p, q) for p, q in zip(reference.model.parameters(),
                                                     resumed.model.parameters(), strict=True))


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def step_fn(model, batch, generator):
        calls["n"] += 1
        loss = ((model(batch[0]) - batch[1]) ** 2).mean()
        return loss * math.nan if calls["n"] == 7 else loss

    trainer = make_trainer(tmp_path, step_fn=step_fn)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 7") as info:
        trainer.fit()
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert "last good checkpoint" in str(info.value)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["step"] == 5
    assert trainer.step == 6  # the bad update was not applied
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert max(row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")) == 6


def test_nonfinite_gradient_norm_stops(tmp_path):
    def step_fn(model, batch, generator):
        # d/dw sqrt(0 * w) = 0 / (2 sqrt(0)) = nan although the loss itself is 0
        return torch.sqrt(0.0 * model[0].weight.abs().sum())

    with pytest.raises(NonFiniteLossError, match=r"non-finite grad_norm .* at step 1; .*no checkpoint"):
        make_trainer(tmp_path, step_fn=step_fn).fit()
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_metrics_rows_hold_loss_lr_speed_and_callback_values(tmp_path):
    seen = []

    def probe(trainer, step, metrics):
        seen.append((step, dict(metrics)))
        return {"probe_accuracy": 0.5}

    trainer = make_trainer(tmp_path, max_steps=10, log_every=4, callbacks=[probe])
    final = trainer.fit()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [4, 8, 10]
    for row in rows:
        assert {"loss", "jitter", "grad_norm", "lr", "steps_per_sec", "epoch", "probe_accuracy"} <= set(row)
        assert row["steps_per_sec"] > 0 and 0.9 <= row["jitter"] <= 1.1
    # StepLR(step_size=7, gamma=0.5): lr after 4, 8, 10 scheduler steps
    assert [row["lr"] for row in rows] == [1e-2, 5e-3, 5e-3]
    assert [row["epoch"] for row in rows] == [4 / 5, 8 / 5, 10 / 5]
    assert [s for s, _ in seen] == [4, 8, 10] and "probe_accuracy" not in seen[0][1]
    assert final["step"] == 10 and final["loss"] == rows[-1]["loss"]


def test_logged_loss_is_mean_over_the_window(tmp_path):
    values = iter(range(1, 100))

    def step_fn(model, batch, generator):
        return model[0].weight.sum() * 0 + float(next(values))

    make_trainer(tmp_path, max_steps=6, log_every=3, step_fn=step_fn).fit()
    assert [row["loss"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [2.0, 5.0]


def test_same_seed_same_parameters_different_seed_differs():
    a, b, c = make_trainer(max_steps=6), make_trainer(max_steps=6), make_trainer(max_steps=6, seed=1)
    for trainer in (a, b, c):
        trainer.fit()
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.model.parameters(), c.model.parameters(), strict=True))


def test_data_order_is_a_fresh_permutation_every_epoch():
    trainer = make_trainer(max_steps=20)  # 40 samples, batch 8 → 5 steps per epoch
    epoch0 = torch.cat([trainer.batch_indices(s) for s in range(5)])
    epoch1 = torch.cat([trainer.batch_indices(s) for s in range(5, 10)])
    assert sorted(epoch0.tolist()) == list(range(40)) == sorted(epoch1.tolist())
    assert not torch.equal(epoch0, epoch1)
    again = make_trainer(max_steps=20)
    assert torch.equal(again.batch_indices(7), trainer.batch_indices(7))  # independent of history
    assert not torch.equal(make_trainer(seed=1).batch_indices(0), trainer.batch_indices(0))


def test_incomplete_last_batch_is_dropped():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]).sum(),
                      torch.randn(10, 2), max_steps=1, batch_size=4, progress=False)
    assert trainer.steps_per_epoch == 2
    assert all(len(trainer.batch_indices(s)) == 4 for s in range(4))


def test_grad_clip_matches_manual_clipping():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    model = nn.Linear(3, 1)
    manual = nn.Linear(3, 1)
    manual.load_state_dict(model.state_dict())

    def step_fn(m, batch, generator):
        return 100 * ((m(batch[0]) - batch[1]) ** 2).mean()

    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), step_fn, (x, y), max_steps=1, batch_size=8,
            grad_clip=0.5, progress=False).fit()
    loss = step_fn(manual, (x, y), None)
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in manual.parameters()])
    scale = 0.5 / grads.norm()
    assert scale < 1  # clipping is active
    with torch.no_grad():
        for p in manual.parameters():
            p -= 0.1 * p.grad * scale
    for p, q in zip(model.parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_run_supplies_folder_device_and_resume(tmp_path):
    run = Run(tmp_path / "run", progress=False)
    x, y = torch.randn(16, 2), torch.randn(16, 1)
    model = nn.Linear(2, 1)

    def build() -> Trainer:
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                       lambda m, b, g: ((m(b[0]) - b[1]) ** 2).mean(), (x, y), run=run, max_steps=4,
                       batch_size=4, log_every=2)

    trainer = build()
    assert trainer.device == run.device and trainer.progress is False
    trainer.fit()
    assert (run.dir / CHECKPOINT_NAME).exists()
    assert [row["step"] for row in read_metrics(run.dir / "metrics.jsonl")] == [2, 4]
    run.resume = True
    assert build().fit()["step"] == 4  # nothing left to do: the checkpoint is at max_steps


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    a = make_trainer(tmp_path / "a", max_steps=5)
    a.fit(resume=True)
    b = make_trainer(tmp_path / "b", max_steps=5)
    b.fit()
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))


def test_tensorboard_events_are_written(tmp_path):
    make_trainer(tmp_path, max_steps=2, tensorboard=True).fit()
    assert any((tmp_path / "tensorboard").iterdir())


def test_step_fn_returning_a_tensor_is_accepted(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2, step_fn=lambda m, b, g: ((m(b[0]) - b[1]) ** 2).mean())
    assert set(trainer.fit()) >= {"step", "loss", "lr", "grad_norm", "steps_per_sec"}
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["step"] == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_steps": 0}, "max_steps must be an integer >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size must be an integer, got 2.5"),
    ({"batch_size": 50}, "batch_size=50 is larger than the 40 samples"),
    ({"log_every": -1}, "log_every must be an integer >= 1, got -1"),
    ({"grad_clip": 0.0}, "grad_clip must be > 0"),
    ({"seed": -1}, "seed must be an int"),
    ({"data": (torch.zeros(4, 2), torch.zeros(5))}, "batch sizes differ"),
    ({"data": [1, 2, 3]}, "data must be a Tensor"),
    ({"extra_state": {"buffer": object()}}, r"extra_state\['buffer'\] must have state_dict"),
    ({"callbacks": [3]}, "every callback must be callable"),
    ({"device": "tpu"}, "device must be"),
    ({"run": "x", "run_dir": "y"}, "either run or run_dir"),
])
def test_bad_arguments_raise_one_line_value_errors(kwargs, message):
    model = nn.Linear(2, 1)
    args = {"max_steps": 3, "batch_size": 4, "data": (torch.zeros(40, 2),), **kwargs}
    with pytest.raises(ValueError, match=message):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]).sum(),
                args.pop("data"), progress=False, **args)


def test_bad_step_output_and_resume_without_folder_raise():
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]),
                      torch.zeros(8, 2), max_steps=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="step_fn must return a scalar loss"):
        trainer.fit()
    with pytest.raises(ValueError, match="resume=True needs a run or run_dir"):
        trainer.fit(resume=True)


# ---------------------------------------------------------------------- batch sources
def _source_trainer(run, *, max_steps=12, lr=0.1, **kwargs) -> Trainer:
    """A linear model fed by a batch source drawing fresh noisy samples every step."""
    torch.manual_seed(3)
    model = nn.Linear(4, 1)
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0]])

    def sample(step: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = torch.randn(16, 4, generator=generator)
        return x, x @ w.T + 0.01 * torch.randn(16, 1, generator=generator)

    def step_fn(model, batch, generator):
        xb, yb = batch
        return ((model(xb) - yb) ** 2).mean()

    kwargs.setdefault("kind", "test-linear")
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=lr), step_fn, sample, run=run,
                   max_steps=max_steps, batch_size=16, checkpoint_every=None, log_every=1,
                   desc="linear", **kwargs)


def test_batch_source_run_stops_at_stop_after_and_resumes_bit_for_bit(tmp_path):
    from genoise.train import RunInterrupted

    full = _source_trainer(Run(tmp_path / "full", progress=False))
    full.fit()
    interrupted = _source_trainer(Run(tmp_path / "cut", progress=False, stop_after=5))
    with pytest.raises(RunInterrupted, match="stopped after step 5"):
        interrupted.fit()
    state = load_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)
    assert state["step"] == 5 and state["kind"] == "test-linear" and state["max_steps"] == 12
    resumed = _source_trainer(Run(tmp_path / "cut", progress=False, resume=True))
    resumed.fit()
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.equal(full.data_generator.get_state(), resumed.data_generator.get_state())
    assert losses(tmp_path / "full") == losses(tmp_path / "cut")
    assert full.last_metrics["loss"] < 0.5 * losses(tmp_path / "full")[1]  # it learns


def test_batch_source_must_return_tensors(tmp_path):
    model = nn.Linear(2, 1)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]).sum(),
                      lambda step, gen: [1, 2], max_steps=2, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="batch source must return a tuple of Tensors"):
        trainer.fit()


def test_resume_refuses_a_checkpoint_of_another_kind(tmp_path):
    _source_trainer(Run(tmp_path / "a", progress=False), max_steps=2).fit()
    other = _source_trainer(Run(tmp_path / "a", progress=False, resume=True), kind="ssl-vicreg")
    with pytest.raises(ValueError, match="holds a 'test-linear' run, not 'ssl-vicreg'"):
        other.fit()


def test_exploding_loss_stops_as_diverged_and_keeps_the_last_good_checkpoint(tmp_path):
    from genoise.train import DivergedError

    run = Run(tmp_path / "boom", progress=False)
    trainer = _source_trainer(run, max_steps=200, lr=5.0)  # SGD far past 2/L: |loss| grows ×~100/step
    trainer.checkpoint_every = 1
    with pytest.raises(DivergedError, match=r"diverged: \|loss\| .* exceeds 1000 x") as info:
        trainer.fit()
    assert "\n" not in str(info.value)
    assert isinstance(info.value, NonFiniteLossError)  # the CLI reports both the same way
    kept = load_checkpoint(tmp_path / "boom" / CHECKPOINT_NAME)
    assert 0 < kept["step"] < 200
    assert all(torch.isfinite(v).all() for v in kept["model"].values())
    # the same run with the check off goes on until the loss overflows to inf/NaN
    with pytest.raises(NonFiniteLossError) as info:
        _source_trainer(Run(tmp_path / "off", progress=False), max_steps=400, lr=5.0,
                        diverge_factor=None).fit()
    assert not isinstance(info.value, DivergedError)


def test_a_gradient_spike_stops_an_unclipped_run_but_not_a_clipped_one(tmp_path):
    """One step's gradient is 1e6 times the others while the loss stays small: without
    clipping the update would be huge (DivergedError on the gradient norm); with
    ``grad_clip`` the update is bounded, so only the loss is watched and the run finishes."""
    from genoise.train import DivergedError

    model = nn.Linear(2, 1)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))

    def step_fn(model, batch, generator):
        loss = model(batch[0]).pow(2).mean()
        spike = 1e6 if step_fn.calls == 5 else 0.0
        step_fn.calls += 1
        weight = model.weight.sum()
        return loss + spike * (weight - weight.detach())  # value unchanged, gradient + 1e6

    def trainer(name, **kwargs):
        step_fn.calls = 0
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), step_fn, (x,),
                       run=Run(tmp_path / name, progress=False), max_steps=20, batch_size=32,
                       **kwargs)

    with pytest.raises(DivergedError, match=r"diverged: gradient norm .* at step 6 exceeds"):
        trainer("plain").fit()
    assert trainer("clipped", grad_clip=1.0).fit()["step"] == 20
    assert torch.isfinite(model.weight).all() and model.weight.abs().max() < 10


def test_a_normal_run_is_not_called_diverged(tmp_path):
    trainer = _source_trainer(Run(tmp_path / "fine", progress=False), max_steps=50)
    assert trainer.fit()["step"] == 50


def test_progress_bar_is_named_after_what_it_trains(tmp_path, capsys):
    trainer = _source_trainer(Run(tmp_path / "bar", progress=True), max_steps=3)
    trainer.fit()
    assert "linear" in capsys.readouterr().err


def test_drop_last_false_visits_every_sample_once_per_epoch_and_is_pure():
    """MemN2N's data order: the last batch of an epoch is smaller, nothing is dropped."""
    n = 37
    ids = torch.arange(n)
    data = (ids[:, None] * 10, ids[:, None] % 3, ids)  # three aligned tensors

    def make(seed: int, drop_last: bool = False) -> Trainer:
        model = nn.Linear(1, 1)
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]).sum(),
                       data, max_steps=1, batch_size=5, seed=seed, drop_last=drop_last, progress=False)

    trainer = make(3)
    assert trainer.steps_per_epoch == math.ceil(n / 5) == 8
    assert make(3, drop_last=True).steps_per_epoch == 7  # the default drops the last 2 samples
    orders = []
    for epoch in range(2):
        batches = [trainer.batch_indices(epoch * 8 + k) for k in range(8)]
        assert [len(b) for b in batches] == [5] * 7 + [2]  # the last batch is smaller
        order = torch.cat(batches)
        assert sorted(order.tolist()) == list(range(n))  # every sample once
        for index in batches:  # the tensors stay aligned
            assert torch.equal(data[0][index][:, 0], 10 * data[2][index])
            assert torch.equal(data[1][index][:, 0], data[2][index] % 3)
        orders.append(order)
    assert not torch.equal(orders[0], orders[1])  # a new order each epoch
    fresh = make(3)
    for step in (13, 2, 9):  # any order of calls, any object: the same batch
        assert torch.equal(fresh.batch_indices(step), trainer.batch_indices(step))
    assert not torch.equal(make(4).batch_indices(0), trainer.batch_indices(0))
