"""Policies through the model (MPUR / MPER / BC losses) and the closed-loop evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.world.control import expert, keep_speed
from genoise.world.dataset import TrafficDataset
from genoise.world.evaluate import evaluate_driving
from genoise.world.forward import ForwardModel
from genoise.world.policy import DrivingPolicy, bc_loss, mper_loss, mpur_loss
from tests.world.conftest import HIGH, LOW, ROAD, SPEC


@pytest.fixture(scope="module")
def data(traffic_root):
    return TrafficDataset(traffic_root, "train", history=2, n_future=3, raster=SPEC)


def make(nz: int = 2) -> tuple[ForwardModel, DrivingPolicy]:
    torch.manual_seed(0)
    model = ForwardModel(history=2, raster=SPEC, nz=nz, width=4, hidden=32, dropout=0.2)
    return model, DrivingPolicy.from_model(model, LOW, HIGH, width=4, hidden=32)


def test_policy_actions_stay_inside_the_bounds(data) -> None:
    _, policy = make()
    batch = data.sample_batch(8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in policy.head[-1].parameters():
            p.mul_(100.0)  # saturate the tanh
        actions = policy(batch["images"], batch["states"])
    assert bool((actions >= torch.as_tensor(LOW, dtype=torch.float32)).all())
    assert bool((actions <= torch.as_tensor(HIGH, dtype=torch.float32)).all())


def test_mpur_gradient_reaches_the_policy_and_uncertainty_adds_on(data) -> None:
    model, policy = make()
    batch = data.sample_batch(4, torch.Generator().manual_seed(0))
    plain = mpur_loss(
        policy, model, batch, horizon=3, u_weight=0.0, generator=torch.Generator().manual_seed(1)
    )
    regular = mpur_loss(
        policy, model, batch, horizon=3, u_weight=0.5, n_dropout=3, generator=torch.Generator().manual_seed(1)
    )
    assert plain["loss"].item() == pytest.approx(plain["cost"].item())
    assert regular["cost"].item() == pytest.approx(plain["cost"].item())  # same latents, dropout off
    assert regular["uncertainty"].item() > 0
    assert regular["loss"].item() == pytest.approx(
        (regular["cost"] + 0.5 * regular["uncertainty"]).item(), rel=1e-5
    )
    regular["loss"].backward()
    grads = [p.grad for p in policy.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None or float(p.grad.abs().sum()) >= 0 for p in model.parameters())


def test_mper_and_bc_losses_vanish_for_a_perfect_imitator(data) -> None:
    model, policy = make(nz=0)
    batch = data.sample_batch(4, torch.Generator().manual_seed(0))
    assert mper_loss(policy, model, batch)["loss"].item() > 0
    expert_actions = batch["actions"][:, 0]

    class Oracle(torch.nn.Module):
        low, high = policy.low, policy.high

        def forward(self, images, states):
            return expert_actions

    assert bc_loss(Oracle(), batch)["loss"].item() == 0.0
    assert bc_loss(policy, batch)["loss"].item() > 0


def test_evaluation_counts_outcomes() -> None:
    env_kwargs = dict(
        road=ROAD, raster=SPEC, route_length=25.0, max_steps=40, warmup=10
    )
    replay = evaluate_driving(expert, [0, 1], env_kwargs, history=2, record=0)
    assert replay["success_rate"] == 1.0 and replay["outcomes"] == ["arrived", "arrived"]
    assert replay["mean_distance"] >= 25.0 and len(replay["frames"]) > 2

    def brake(env, images, states):
        assert images.shape == (2, 3, 16, 8) and states.shape == (2, 3)
        return np.array([-6.0, 0.0])

    stopped = evaluate_driving(brake, [0], env_kwargs, history=2)
    assert stopped["success_rate"] == 0.0 and stopped["outcomes"][0] in ("collision", "time_limit")

    def towards_the_nearest_edge(env, images, states):
        return np.array([0.0, 2.0 if float(states[-1, 0]) > 5.55 else -2.0])

    drift = evaluate_driving(towards_the_nearest_edge, [0], {**env_kwargs, "route_length": 150.0}, history=2)
    assert drift["outcomes"][0] in ("off_road", "collision")
    assert keep_speed(None, None, None).tolist() == [0.0, 0.0]


def test_a_zero_output_keeps_speed_and_the_box_must_contain_zero() -> None:
    _, policy = make()
    for parameter in policy.head[-1].parameters():
        torch.nn.init.zeros_(parameter)  # raw output 0 for every input
    action = policy(torch.rand(3, 2, 3, *SPEC.shape), torch.rand(3, 2, 3))
    assert torch.equal(action, torch.zeros(3, 2))  # not the box's centre (-1.5 m/s² for [-6, 3])
    model, _ = make()
    with pytest.raises(ValueError, match="must contain 0"):
        DrivingPolicy.from_model(model, np.array([0.5, -1.0]), np.array([3.0, 1.0]))


def test_from_model_copies_the_observation_format_and_the_state_normalisation() -> None:
    model, _ = make()
    model.set_normalisation(torch.randn(50, 3) * 4 + 10, torch.randn(50, 2))
    policy = DrivingPolicy.from_model(model, LOW, HIGH, width=4, hidden=32)
    assert (policy.history, policy.raster, policy.kwargs["state_dim"]) == (2, SPEC, 3)
    assert torch.equal(policy.state_mean, model.state_mean) and torch.equal(policy.state_std, model.state_std)
    plain = DrivingPolicy(2, SPEC, 3, LOW, HIGH, width=4, hidden=32)
    plain.load_state_dict(policy.state_dict())  # same parameters and buffers: one network
    images, states = torch.rand(3, 2, 3, *SPEC.shape), torch.rand(3, 2, 3) * 10
    torch.testing.assert_close(plain(images, states), policy(images, states))
    rebuilt = DrivingPolicy.from_kwargs(policy.kwargs)
    rebuilt.load_state_dict(policy.state_dict())
    torch.testing.assert_close(rebuilt(images, states), policy(images, states))
