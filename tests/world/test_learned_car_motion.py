"""``ForwardModel(car_motion="learned")``: the other cars are predicted in the ego's own frame,
step by step, reading the action (the paper's forward model), while the ego state and the lane
channel stay exact; the rollout and the uncertainty go through the same one-step model (the
policy's unroll = the rollout of its actions is tested with the other models in
``test_forward_ego_kinematics.py``), and the option is refused where it cannot work."""

from __future__ import annotations

import pytest
import torch

from genoise.world.checkpoints import load_forward_model, save_forward_model
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, rollout
from genoise.world.raster import CARS, EGO, LANES
from genoise.world.uncertainty import uncertainty_terms
from tests.world.conftest import KIN, SPEC


@pytest.fixture(scope="module")
def batch(traffic_root):
    data = TrafficDataset(traffic_root, "train", history=2, n_future=4, raster=SPEC)
    return data.sample_batch(16, torch.Generator().manual_seed(0))


def model(nz: int = 0, car_motion: str = "learned", trained_like: bool = False) -> ForwardModel:
    torch.manual_seed(0)
    m = ForwardModel(history=2, raster=SPEC, nz=nz, width=4, hidden=16, ego_kinematics=KIN,
                     action_conditioned=True, car_motion=car_motion).eval()
    if trained_like:  # a decoder that predicts something
        torch.nn.init.normal_(m.decoder[-1].weight, std=0.1)
    return m


def test_ego_state_and_lanes_stay_exact_while_the_cars_are_learned(batch) -> None:
    images, states = rollout(model(trained_like=True), batch["images"], batch["states"], batch["actions"])
    torch.testing.assert_close(states, batch["target_states"], atol=1e-4, rtol=0)
    torch.testing.assert_close(images[:, :, LANES], batch["target_images"][:, :, LANES], atol=1e-4, rtol=0)
    ego = batch["images"][:, -1:, EGO].expand_as(images[:, :, EGO])
    torch.testing.assert_close(images[:, :, EGO], ego)


def test_an_untrained_model_does_not_move_the_cars_whatever_the_action(batch) -> None:
    """The kinematic model shifts the cars by the ego's deviation; the learned one leaves every
    displacement to its network, which starts at zero (a copy of the last frame's cars)."""
    brake = torch.tensor([-6.0, 0.0]).expand(16, 3, 2)
    with torch.no_grad():
        learned, _ = rollout(model(), batch["images"], batch["states"], brake)
        kinematic, _ = rollout(model(car_motion="kinematic"), batch["images"], batch["states"], brake)
    last = batch["images"][:, -1:, CARS].expand_as(learned[:, :, CARS])
    torch.testing.assert_close(learned[:, :, CARS], last, atol=0, rtol=0)
    assert float((kinematic[:, -1, CARS] - batch["images"][:, -1, CARS]).abs().max()) > 1e-3


def test_the_rollout_feeds_its_own_ego_frame_predictions_back(batch) -> None:
    m = model(nz=2, trained_like=True)
    z = torch.randn(16, 3, 2, generator=torch.Generator().manual_seed(1))
    actions = batch["actions"][:, :3]
    with torch.no_grad():
        images, states = rollout(m, batch["images"], batch["states"], actions, z)
        past, past_states = batch["images"], batch["states"]
        for t in range(3):
            image, state = m(past, past_states, actions[:, t], z[:, t])
            torch.testing.assert_close(images[:, t], image)
            torch.testing.assert_close(states[:, t], state)
            past = torch.cat([past[:, 1:], image.unsqueeze(1)], 1)
            past_states = torch.cat([past_states[:, 1:], state.unsqueeze(1)], 1)


def test_the_predicted_cars_depend_on_the_action(batch) -> None:
    m = model(trained_like=True)
    with torch.no_grad():
        a, _ = m(batch["images"], batch["states"], torch.zeros(16, 2))
        b, _ = m(batch["images"], batch["states"], torch.tensor([-6.0, 0.0]).expand(16, 2))
    assert float((a[:, CARS] - b[:, CARS]).abs().max()) > 1e-4


def test_dropout_uncertainty_is_differentiable_in_the_action(batch) -> None:
    m = model(trained_like=True)
    actions = batch["actions"][:4, :3].clone().requires_grad_(True)
    torch.manual_seed(5)
    terms = uncertainty_terms(m, batch["images"][:4], batch["states"][:4], actions, None, 4)
    grad = torch.autograd.grad(terms["image"].sum(), actions)[0]
    assert float(terms["image"].detach().sum()) > 0 and float(grad.abs().sum()) > 0


def test_checkpoint_round_trip_keeps_the_car_motion(tmp_path, batch) -> None:
    m = model(nz=2, trained_like=True)
    save_forward_model(m, tmp_path / "fm.pt")
    loaded = load_forward_model(tmp_path / "fm.pt").eval()
    assert loaded.car_motion == "learned" and not loaded.reference_frame
    torch.testing.assert_close(
        rollout(loaded, batch["images"], batch["states"], batch["actions"])[0],
        rollout(m, batch["images"], batch["states"], batch["actions"])[0],
    )


def test_refusals() -> None:
    from genoise.recipes.world import validate

    with pytest.raises(ValueError, match="car_motion='learned' needs an action_conditioned"):
        ForwardModel(history=2, raster=SPEC, width=4, hidden=16, ego_kinematics=KIN, car_motion="learned")
    with pytest.raises(ValueError, match="car_motion must be one of kinematic, learned"):
        model(car_motion="physics")
    with pytest.raises(ValueError, match="reference_future needs an ego_kinematics model with car_motion"):
        model().reference_future(torch.zeros(1, 2, 3, *SPEC.shape), torch.zeros(1, 2, 3), 2)
    with pytest.raises(ValueError, match="car_motion=learned needs action_conditioned=true"):
        validate({"ego_kinematics": True, "car_motion": "learned"})
    validate({"ego_kinematics": True, "action_conditioned": True, "car_motion": "learned"})
