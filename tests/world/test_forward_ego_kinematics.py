"""The forward model with known ego kinematics (``ForwardModel(ego_kinematics=...)``, its
rollout and a policy unrolled through it): exact ego state and lanes, the predicted raster
responds to the action, the cost is differentiable in the action."""

from __future__ import annotations

import pytest
import torch

from genoise.world.checkpoints import load_forward_model, save_forward_model
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, rollout
from genoise.world.raster import CARS, LANES
from genoise.world.uncertainty import predicted_cost
from tests.world.conftest import HIGH, KIN, LOW, SPEC


@pytest.fixture(scope="module")
def batch(traffic_root):
    data = TrafficDataset(traffic_root, "train", history=2, n_future=4, raster=SPEC)
    return data.sample_batch(16, torch.Generator().manual_seed(0))


def model(nz: int = 0, action_conditioned: bool = False, car_motion: str = "kinematic") -> ForwardModel:
    torch.manual_seed(0)
    return ForwardModel(history=2, raster=SPEC, nz=nz, width=4, hidden=16, ego_kinematics=KIN,
                        action_conditioned=action_conditioned, car_motion=car_motion).eval()


def test_ego_state_and_lane_channel_are_exact_on_recorded_data(batch) -> None:
    images, states = rollout(model(), batch["images"], batch["states"], batch["actions"])
    torch.testing.assert_close(states, batch["target_states"], atol=1e-4, rtol=0)
    torch.testing.assert_close(images[:, :, LANES], batch["target_images"][:, :, LANES], atol=1e-4, rtol=0)


def test_untrained_model_with_zero_action_copies_the_last_frame(batch) -> None:
    zero = torch.zeros_like(batch["actions"][:, :1])
    images, _ = rollout(model(), batch["images"], batch["states"], zero)
    torch.testing.assert_close(images[:, 0], batch["images"][:, -1], atol=1e-5, rtol=0)


def test_predicted_cars_move_back_when_the_ego_accelerates() -> None:
    m = model()
    images = torch.zeros(1, 2, 3, *SPEC.shape)
    images[:, :, CARS, 4, 3] = 1.0  # a car ahead, row 4
    states = torch.tensor([[[5.55, 10.0, 0.0]] * 2])
    row = torch.arange(SPEC.shape[0], dtype=torch.float32)
    centre = []
    for accel in (0.0, 125.0):  # (v' - v) dt = 12.5 m/s * 0.1 s = 1.25 m = half a row (2.5 m)
        with torch.no_grad():
            image, state = m(images, states, torch.tensor([[accel, 0.0]]))
        cars = image[0, CARS].sum(-1)
        centre.append(float((cars * row).sum() / cars.sum()))
    assert centre[0] == pytest.approx(4.0, abs=1e-5)
    assert centre[1] == pytest.approx(4.5, abs=1e-4)
    assert float(state[0, 1]) == pytest.approx(10.0 + 125.0 * 0.1)


def test_cost_gradient_wrt_actions_matches_finite_differences(batch) -> None:
    m = model(nz=2).double()
    images, states = batch["images"][:2].double(), batch["states"][:2].double()
    actions = (batch["actions"][:2, :3].double() + 0.3).requires_grad_(True)
    z = torch.randn(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def cost(a: torch.Tensor) -> torch.Tensor:
        return predicted_cost(m, images, states, a, z)["total"]

    assert cost(actions).sum().item() > 0
    grad = torch.autograd.grad(cost(actions).sum(), actions)[0]
    assert float(grad.abs().sum()) > 0  # the plan changes the predicted cost
    assert torch.autograd.gradcheck(cost, (actions,), eps=1e-6, atol=1e-4)


def test_kinematic_checkpoint_round_trip_and_bad_configuration(tmp_path, batch) -> None:
    m = model(nz=2)
    save_forward_model(m, tmp_path / "fm.pt")
    loaded = load_forward_model(tmp_path / "fm.pt").eval()
    assert loaded.kinematics == KIN
    a = batch["actions"]
    torch.testing.assert_close(
        rollout(loaded, batch["images"], batch["states"], a)[0],
        rollout(m, batch["images"], batch["states"], a)[0],
    )
    with pytest.raises(ValueError, match="ego_kinematics needs keys"):
        ForwardModel(history=2, raster=SPEC, ego_kinematics={"dt": 0.1})


def test_one_step_rollout_is_the_one_step_model(batch) -> None:
    m = model(nz=2)
    z = torch.randn(16, 1, 2, generator=torch.Generator().manual_seed(2))
    images, states = rollout(m, batch["images"], batch["states"], batch["actions"][:, :1], z)
    image, state = m(batch["images"], batch["states"], batch["actions"][:, 0], z[:, 0])
    torch.testing.assert_close(images[:, 0], image)
    torch.testing.assert_close(states[:, 0], state)


def test_braking_brings_the_other_cars_closer_by_the_accumulated_deviation() -> None:
    m = model()  # untrained: the reference future copies the last frame
    images = torch.zeros(1, 2, 3, *SPEC.shape)
    images[:, :, CARS, 12, 3] = 1.0  # a follower, row 12 (2.5 m rows)
    states = torch.tensor([[[5.55, 10.0, 0.0]] * 2])
    brake = torch.tensor([[[-10.0, 0.0]] * 3])  # v = 9, 8, 7: the ego falls back 0.1 + 0.2 + 0.3 m
    with torch.no_grad():
        pictures, moved = rollout(m, images, states, brake)
    row = torch.arange(SPEC.shape[0], dtype=torch.float32)
    cars = pictures[0, :, CARS].sum(-1)  # (T, H)
    centre = (cars * row).sum(-1) / cars.sum(-1)
    torch.testing.assert_close(centre, 12.0 - torch.tensor([0.1, 0.3, 0.6]) / 2.5, atol=1e-4, rtol=0)
    torch.testing.assert_close(moved[0, :, 1], torch.tensor([9.0, 8.0, 7.0]))


@pytest.mark.parametrize("action_conditioned, car_motion",
                         [(False, "kinematic"), (True, "kinematic"), (True, "learned")])
def test_policy_unroll_equals_the_rollout_of_its_actions(
    batch, action_conditioned: bool, car_motion: str
) -> None:
    """The policy drives inside the model as ``rollout`` replays its actions — for the
    action-blind model (the other cars' future predicted once), the action-conditioned one
    (predicted step by step, reading each action) and the one with a learned car motion
    (every step in the ego's own frame)."""
    from genoise.world.policy import DrivingPolicy, unroll_policy

    m = model(nz=2, action_conditioned=action_conditioned, car_motion=car_motion)
    torch.nn.init.normal_(m.decoder[-1].weight, std=0.1)  # a network that predicts something
    torch.manual_seed(3)
    policy = DrivingPolicy.from_model(m, LOW, HIGH, width=4, hidden=16)
    z = torch.randn(16, 4, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        actions, images, states = unroll_policy(policy, m, batch["images"], batch["states"], 4, z)
        again, moved = rollout(m, batch["images"], batch["states"], actions, z)
    torch.testing.assert_close(images, again)
    torch.testing.assert_close(states, moved)
    assert float(actions.std(0).sum()) > 0  # the policy reacts to its (different) inputs
