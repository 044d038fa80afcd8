"""The JEPA with a convolutional predictor on a spatial state map (``predictor="conv"``):
the map's size, the state/representation split seen by the losses and the planning cost,
the predictor's locality, checkpoints and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.ssl.infomax import variance_loss
from genoise.world.jepa import (
    ActionConditionedJEPA,
    JEPAConfig,
    JEPALossWeights,
    covariance_loss_dd1,
    jepa_losses,
    map_side,
    prediction_loss,
    time_similarity_loss,
)
from genoise.world.jepa_diagnostics import transition_errors, wall_hallucination
from genoise.world.latent_planning import LatentPlanner, PlannerConfig, latent_rollout_cost
from genoise.world.two_rooms import render, sample_tasks
from genoise.world.two_rooms_data import RoomsDataConfig, generate_trajectories
from tests.world.conftest import train_tiny_jepa

CONV = JEPAConfig(image_size=17, dim=8, width=4, hidden=16, predictor="conv", map_channels=3, map_hidden=5)


@pytest.mark.parametrize("size", [17, 33, 65])
def test_the_state_is_the_flattened_map_and_z_its_head(size: int) -> None:
    config = JEPAConfig(image_size=size, dim=8, width=4, predictor="conv", map_channels=3)
    model = ActionConditionedJEPA(config)
    side = map_side(size)
    assert side == {17: 4, 33: 8, 65: 16}[size]
    state = model.encode(torch.rand(5, 2, size, size))
    assert state.shape == (5, 3 * side * side)
    # normalised over the whole map: mean 0, (biased) variance 1 per sample
    assert torch.allclose(state.mean(-1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(state.var(-1, unbiased=False), torch.ones(5), atol=1e-2)  # eps = 1e-5
    assert model.represent(state).shape == (5, 8)
    rolled = model.unroll(state, torch.randn(5, 4, 2))
    assert rolled.shape == (5, 4, 3 * side * side)
    assert torch.allclose(rolled.var(-1, unbiased=False), torch.ones(5, 4), atol=1e-2)


def test_the_predictor_sees_a_five_by_five_neighbourhood() -> None:
    """Two 3 × 3 convolutions: changing one cell of the map changes the residual only within
    two cells of it (before the normalisation, which is global)."""
    torch.manual_seed(0)
    model = ActionConditionedJEPA(JEPAConfig(image_size=33, dim=8, width=4, predictor="conv", map_channels=3))
    pred, side = model.predictor, 8
    maps = torch.randn(1, 3, side, side)
    a = torch.randn(1, 2, 1, 1).expand(1, 2, side, side)
    bumped = maps.clone()
    bumped[0, :, 4, 1] += 1.0
    with torch.no_grad():
        diff = (pred.net(torch.cat([bumped, a], 1)) - pred.net(torch.cat([maps, a], 1))).abs().sum(1)[0]
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    assert rows.numel() > 0
    assert int((rows - 4).abs().max()) <= 2 and int((cols - 1).abs().max()) <= 2
    assert float(diff[0].sum()) == 0.0 and float(diff[:, 4:].sum()) == 0.0


def test_losses_predict_states_and_regularise_representations() -> None:
    torch.manual_seed(1)
    data = generate_trajectories(RoomsDataConfig(n_trajectories=4, length=5, seed=0))
    model = ActionConditionedJEPA(CONV)
    obs = render(data["positions"], data["wall_x"], data["door_y"], 17)
    weights = JEPALossWeights(rollout=2)
    terms = jepa_losses(model, obs, data["actions"], weights, positions=data["positions"] / 64)
    with torch.no_grad():
        states = model.encode(obs)
        z = model.represent(states)
        flat = z.reshape(-1, 8)
        assert states.shape[-1] == 3 * 4 * 4 and z.shape[-1] == 8
        assert torch.allclose(terms["pred"], prediction_loss(model.predictor, states, data["actions"], 2))
        assert torch.allclose(terms["cov"], covariance_loss_dd1(flat))
        assert torch.allclose(terms["var"], variance_loss(flat))
        assert torch.allclose(terms["time_sim"], time_similarity_loss(z))
    terms["loss"].backward()
    assert model.head[0].weight.grad.abs().sum() > 0
    assert model.predictor.net[0].weight.grad.abs().sum() > 0


def test_planning_cost_compares_representations_of_the_rollout() -> None:
    torch.manual_seed(2)
    model = ActionConditionedJEPA(CONV).eval()
    tasks = sample_tasks(2, np.random.default_rng(0))
    start = render(tasks["start"], tasks["wall_x"], tasks["door_y"], 17)
    goal = render(tasks["goal"], tasks["wall_x"], tasks["door_y"], 17)
    plans = torch.randn(2, 3, 5, 2) * 0.5
    with torch.no_grad():
        s0, z_goal = model.encode(start), model.represent(model.encode(goal))
        got = latent_rollout_cost(model, s0, z_goal, "sum", 2.45)(plans)
        for e in range(2):
            for n in range(3):
                z = model.represent(model.unroll(s0[e], plans[e, n]))
                assert float(got[e, n]) == pytest.approx(float((z - z_goal[e]).norm(dim=-1).mean()), rel=1e-5)
    config = PlannerConfig(horizon=5, iterations=2, samples=8, elites=2, replan_every=2)
    planner = LatentPlanner(model, config)
    planner.reset(tasks, goal)
    assert planner(start, tasks["start"], 0).shape == (2, 2, 2)


def test_conv_checkpoint_round_trip_and_diagnostics(tmp_path) -> None:
    data, reloaded = train_tiny_jepa(CONV, tmp_path / "a", steps=4)
    pushes = wall_hallucination(reloaded, n=20, steps=3)
    assert 0 <= pushes["model"] <= 1 and pushes["true"] == 0
    errors = transition_errors(reloaded, data, n=200)
    assert errors["free"] > 0


def test_bad_map_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="map_channels"):
        JEPAConfig(predictor="conv", map_channels=0)
    with pytest.raises(ValueError, match="map_hidden"):
        JEPAConfig(predictor="conv", map_hidden=0)
    with pytest.raises(ValueError, match="predictor"):
        JEPAConfig(predictor="transformer")
