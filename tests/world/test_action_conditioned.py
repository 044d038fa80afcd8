"""An action-conditioned forward model (``ForwardModel(ego_kinematics=..., action_conditioned=True)``):
the network's code reads the ego's action, so its prediction — and its dropout uncertainty U —
can depend on where the ego goes (Henaff, Canziani & LeCun 2019); the kinematic ego motion and
the default (action-blind) model are unchanged (the policy unroll = rollout invariant is tested
for both in ``test_forward_ego_kinematics.py``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel
from genoise.world.policy import DrivingPolicy, unroll_policy
from genoise.world.uncertainty import uncertainty_cost
from tests.world.conftest import HIGH, KIN, LOW, SPEC


@pytest.fixture(scope="module")
def batch(traffic_root):
    data = TrafficDataset(traffic_root, "train", history=2, n_future=4, raster=SPEC)
    return data.sample_batch(16, torch.Generator().manual_seed(0))


def model(
    action_conditioned: bool, nz: int = 0, dropout: float = 0.1, learned_prior: bool = False
) -> ForwardModel:
    torch.manual_seed(0)
    return ForwardModel(
        history=2,
        raster=SPEC,
        nz=nz,
        width=4,
        hidden=16,
        dropout=dropout,
        ego_kinematics=KIN,
        action_conditioned=action_conditioned,
        learned_prior=learned_prior,
    ).eval()


def test_only_kinematic_models_take_the_flag() -> None:
    with pytest.raises(ValueError, match="action_conditioned applies to ego_kinematics"):
        ForwardModel(history=2, raster=SPEC, width=4, hidden=16, action_conditioned=True)
    assert model(True).kwargs["action_conditioned"] is True


def test_the_code_reads_the_action_only_when_conditioned(batch) -> None:
    images, states = batch["images"], batch["states"]
    a, b = torch.zeros(16, 2), torch.full((16, 2), 1.0)
    for conditioned in (False, True):
        m = model(conditioned)
        same = torch.equal(m.encode(images, states, a), m.encode(images, states, b))
        assert same is not conditioned


def test_policy_gradient_reaches_through_the_conditioned_prediction(batch) -> None:
    m = model(True)
    nn.init.normal_(m.decoder[-1].weight, std=0.1)
    policy = DrivingPolicy.from_model(m, LOW, HIGH, width=4, hidden=16)
    _, images, _ = unroll_policy(policy, m, batch["images"][:4], batch["states"][:4], 3, None)
    images[..., 1, :, :].sum().backward()  # the cars channel: only the network's prediction moves it
    assert all(p.grad is not None for p in policy.parameters())


def certain_at_rest(conditioned: bool) -> ForwardModel:
    """A model whose code is W_a·a alone (the scene and state encoders silenced), with a strong
    dropout and a non-zero decoder: certain (U = 0) for the action 0, uncertain for others."""
    m = model(conditioned, dropout=0.5)
    with torch.no_grad():
        for module in (m.encoder, m.state_encoder):
            for p in module.parameters():
                p.zero_()
        m.action_encoder.bias.zero_()
        m.action_mean.zero_()
        m.action_std.fill_(1.0)
        nn.init.normal_(m.decoder[-1].weight, std=0.3)
    return m


def test_uncertainty_depends_on_the_action_only_when_conditioned(batch) -> None:
    images, states = batch["images"][:8], batch["states"][:8]
    steps = 3
    data_like = torch.zeros(8, steps, 2)
    data_like[..., 0] = 0.05  # gentle acceleration
    hard_brake = torch.zeros(8, steps, 2)
    hard_brake[..., 0] = -2.0
    ratios = {}
    for conditioned in (False, True):
        m = certain_at_rest(conditioned)
        u = {}
        for name, actions in (("data", data_like), ("brake", hard_brake)):
            torch.manual_seed(5)  # the same dropout masks for both action sets
            with torch.no_grad():
                u[name] = uncertainty_cost(m, images, states, actions, None, n_samples=16)
        ratios[conditioned] = float(u["brake"].mean() / u["data"].mean().clamp_min(1e-30))
        if conditioned:
            torch.manual_seed(5)
            with torch.no_grad():
                rest = uncertainty_cost(m, images, states, torch.zeros(8, steps, 2), None, n_samples=16)
            assert float(rest.abs().max()) == 0.0  # h = W_a·0 = 0: every dropout mask agrees
        else:  # blind to the action, the same code h = 0 for every action: certain everywhere
            assert float(u["brake"].abs().max()) == 0.0 and float(u["data"].abs().max()) == 0.0
    assert ratios[True] >= 10  # the U-ratio criterion, on a model built to satisfy it


def test_the_recipe_refuses_conditioning_without_kinematics() -> None:
    from genoise.recipes.world import validate

    with pytest.raises(ValueError, match="action_conditioned=true needs ego_kinematics=true"):
        validate({"action_conditioned": True, "ego_kinematics": False})
    validate({"action_conditioned": True, "ego_kinematics": True})
