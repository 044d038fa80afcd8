"""``forward_model_loss(unroll_frame="reference")``: the training unroll predicts the steps
as :func:`rollout` does (the other cars in the frame of a reference ego that keeps its speed
and lane, then shifted by the ego's exact deviation), so the loss is the error of the model's
own rollout; one step is the same in either frame; refused where there is no reference frame."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genoise.recipes.world import validate
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, forward_model_loss, rollout
from tests.world.conftest import KIN, SPEC


@pytest.fixture(scope="module")
def batch(traffic_root):
    data = TrafficDataset(traffic_root, "train", history=2, n_future=4, raster=SPEC)
    return data.sample_batch(16, torch.Generator().manual_seed(0))


def model(action_conditioned: bool, nz: int = 0) -> ForwardModel:
    torch.manual_seed(0)
    m = ForwardModel(history=2, raster=SPEC, nz=nz, width=4, hidden=16, ego_kinematics=KIN,
                     action_conditioned=action_conditioned).eval()  # eval: no dropout
    torch.nn.init.normal_(m.decoder[-1].weight, std=0.1)  # a decoder that predicts something
    return m


def first_steps(batch: dict, n: int) -> dict:
    return {k: v[:, :n] if k.startswith("target") or k == "actions" else v for k, v in batch.items()}


@pytest.mark.parametrize("action_conditioned", [False, True])
def test_the_reference_loss_is_the_error_of_the_rollout(batch, action_conditioned) -> None:
    m = model(action_conditioned)
    loss = forward_model_loss(m, batch, unroll_frame="reference")
    with torch.no_grad():
        images, states = rollout(m, batch["images"], batch["states"], batch["actions"])
    torch.testing.assert_close(loss["image_mse"], F.mse_loss(images, batch["target_images"]))
    state_mse = ((states - batch["target_states"]) / m.state_std).pow(2).mean()
    torch.testing.assert_close(loss["state_mse"], state_mse)
    assert loss["loss"].requires_grad
    ego = forward_model_loss(m, batch, unroll_frame="ego")  # feeds other frames back: not the rollout
    assert abs(float(ego["image_mse"].detach() - loss["image_mse"].detach())) > 1e-7


def test_one_step_is_the_same_in_either_frame(batch) -> None:
    m = model(True, nz=2).train()
    one = first_steps(batch, 1)
    torch.manual_seed(5)  # the same dropout masks
    ego = forward_model_loss(m, one, generator=torch.Generator().manual_seed(3), unroll_frame="ego")
    torch.manual_seed(5)
    ref = forward_model_loss(m, one, generator=torch.Generator().manual_seed(3), unroll_frame="reference")
    for key in ("loss", "image_mse", "state_mse", "kl"):
        torch.testing.assert_close(ref[key], ego[key], atol=1e-7, rtol=1e-5)


def test_reference_training_lowers_the_rollout_error(batch) -> None:
    """A few Adam steps on the reference loss lower the error of the rollout itself."""
    m = model(True).train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)

    def error() -> float:
        with torch.no_grad():
            images, _ = rollout(m.eval(), batch["images"], batch["states"], batch["actions"])
        m.train()
        return float(F.mse_loss(images, batch["target_images"]))
    before = error()
    for _ in range(30):
        opt.zero_grad()
        forward_model_loss(m, batch, unroll_frame="reference")["loss"].backward()
        opt.step()
    assert error() < 0.8 * before


def test_refused_without_a_reference_frame(batch) -> None:
    with pytest.raises(ValueError, match="unroll_frame must be one of"):
        forward_model_loss(model(False), batch, unroll_frame="world")
    torch.manual_seed(0)
    learned = ForwardModel(history=2, raster=SPEC, width=4, hidden=16, ego_kinematics=KIN,
                           action_conditioned=True, car_motion="learned")
    with pytest.raises(ValueError, match="unroll_frame='reference' needs an ego_kinematics model"):
        forward_model_loss(learned, batch, unroll_frame="reference")
    with pytest.raises(ValueError, match="unroll_frame=reference needs ego_kinematics=true and car_motion"):
        validate({"ego_kinematics": True, "action_conditioned": True, "car_motion": "learned",
                  "unroll_frame": "reference", "nz": 0})
    validate({"ego_kinematics": True, "unroll_frame": "reference", "nz": 0})  # accepted
