"""The weight average (genoise.train.ema) and the Trainer's ``ema_decay``: the recursion with
its warm-up by hand, buffers copied, training unchanged, bit-for-bit resume, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.train import Trainer
from genoise.train.ema import averaged_weights, ema_model, update_ema
from tests.train.test_trainer import Counter, make_trainer


def test_average_follows_the_recursion_with_its_warm_up():
    model = nn.Linear(3, 2)
    average = ema_model(model, 0.9)  # the warm-up n/(n + 9) binds until n = 81: both regimes below
    weights = [torch.randn(2, 3, generator=torch.Generator().manual_seed(n)) for n in range(100)]
    expected = None
    for n, w in enumerate(weights, start=1):
        with torch.no_grad():
            model.weight.copy_(w)
        update_ema(average, model)
        delta = min(0.9, n / (n + 9))  # TensorFlow's warm-up: (1 + k)/(10 + k), k = n - 1 averaged so far
        expected = w.double() if n == 1 else delta * expected + (1 - delta) * w.double()
        torch.testing.assert_close(average.module.weight.double(), expected, rtol=1e-6, atol=1e-6)
    assert int(average.n_averaged) == 100
    assert not any(p.requires_grad for p in average.parameters())


def test_buffers_are_copied_not_averaged():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    average = ema_model(model, 0.99)
    for seed in range(3):
        model.train()(torch.randn(16, 4, generator=torch.Generator().manual_seed(seed)) * (seed + 1))
        update_ema(average, model)
    for (name, mine), theirs in zip(average.module.named_buffers(), model.buffers(), strict=True):
        assert torch.equal(mine, theirs), name


def test_averaged_weights_load_into_the_model_and_an_empty_average_is_refused():
    model = nn.Linear(3, 2)
    average = ema_model(model, 0.5)
    with pytest.raises(ValueError, match="no update yet"):
        averaged_weights(average.state_dict())
    update_ema(average, model)
    copy = nn.Linear(3, 2)
    copy.load_state_dict(averaged_weights(average.state_dict()))
    assert torch.equal(copy.weight, model.weight) and torch.equal(copy.bias, model.bias)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1, 1.5])
def test_a_decay_outside_the_open_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0, 1\)"):
        ema_model(nn.Linear(2, 2), decay)


def test_the_trainer_average_changes_nothing_in_training_and_tracks_every_update(tmp_path):
    plain = make_trainer(tmp_path / "plain")
    plain.fit()
    averaged = make_trainer(tmp_path / "averaged", ema_decay=0.8)
    averaged.fit()
    for p, q in zip(plain.model.parameters(), averaged.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert plain.ema is None and int(averaged.ema.n_averaged) == 20
    last = torch.cat([p.flatten() for p in averaged.model.parameters()])
    mean = torch.cat([p.flatten() for p in averaged.ema.module.parameters()])
    assert not torch.equal(last, mean)


def test_an_interrupted_run_resumes_its_average_bit_for_bit(tmp_path):
    reference = make_trainer(tmp_path / "reference", ema_decay=0.8)
    reference.fit()
    first = make_trainer(tmp_path / "split", ema_decay=0.8, max_steps=12)
    first.fit()
    resumed = make_trainer(tmp_path / "split", ema_decay=0.8)
    resumed.fit(resume=True)
    assert resumed.step == 20
    for p, q in zip(reference.ema.state_dict().values(), resumed.ema.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_an_extra_state_named_ema_is_refused_beside_ema_decay():
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="extra_state\\['ema'\\] is the Trainer's weight average"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b, g: m(b[0]).sum(),
                (torch.randn(8, 2),), max_steps=1, batch_size=4, progress=False,
                extra_state={"ema": Counter()}, ema_decay=0.9)
