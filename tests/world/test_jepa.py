"""The action-conditioned JEPA: the multi-step prediction loss against an explicit loop,
the regularisers against their definitions, every planner lowering the cost of a random
plan on a known model, the baselines, GCBC on a tiny set, checkpoints and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genoise.world.jepa import (
    ActionConditionedJEPA,
    JEPAConfig,
    JEPALossWeights,
    covariance_loss_dd1,
    hard_mean,
    jepa_losses,
    multistep_predictions,
    prediction_errors,
    prediction_loss,
    time_similarity_loss,
)
from genoise.world.jepa_train import GoalConditionedPolicy, load_gcbc, load_jepa, train_gcbc
from genoise.world.latent_planning import (
    LatentPlanner,
    OracleController,
    PlannerConfig,
    PolicyController,
    Protocol,
    RandomController,
    latent_rollout_cost,
    run_episodes,
)
from genoise.world.two_rooms import render
from genoise.world.two_rooms_data import RoomsDataConfig, generate_trajectories
from tests.world.conftest import train_tiny_jepa

TINY = JEPAConfig(image_size=17, dim=8, width=4, hidden=16)


@pytest.mark.parametrize("predictor", ["mlp", "gru"])
def test_multistep_loss_matches_an_explicit_loop(predictor: str) -> None:
    torch.manual_seed(0)
    model = ActionConditionedJEPA(JEPAConfig(image_size=17, dim=6, width=4, hidden=8, predictor=predictor))
    z, actions = torch.randn(3, 6, 6), torch.randn(3, 5, 2)
    steps = 3
    expected = 0.0
    for k in range(1, steps + 1):
        errors = []
        for start in range(5 - k + 1):  # every start t, k steps fed its own predictions
            pred = z[:, start]
            for j in range(k):
                pred = model.predictor(pred, actions[:, start + j])
            errors.append((pred - z[:, start + k]).square())
        expected = expected + torch.stack(errors, 1).mean()
    expected = expected / steps
    assert torch.allclose(prediction_loss(model.predictor, z, actions, steps), expected, atol=1e-6)
    preds = multistep_predictions(model.predictor, z, actions, 10)  # capped at T = 5
    assert [p.shape[1] for p in preds] == [5, 4, 3, 2, 1]


def test_unroll_matches_the_predictor_applied_step_by_step() -> None:
    torch.manual_seed(1)
    model = ActionConditionedJEPA(TINY)
    z0, actions = torch.randn(4, 8), torch.randn(4, 6, 2)
    out, z = model.unroll(z0, actions), z0
    for t in range(6):
        z = model.predictor(z, actions[:, t])
        assert torch.allclose(out[:, t], z, atol=1e-6)


def test_regularisers_against_their_definitions() -> None:
    torch.manual_seed(2)
    z = torch.randn(50, 5)
    cov = torch.cov(z.T)
    off = cov - torch.diag(torch.diagonal(cov))
    assert torch.allclose(covariance_loss_dd1(z), off.square().sum() / (5 * 4), atol=1e-6)
    seq = torch.randn(3, 4, 5)
    assert torch.allclose(time_similarity_loss(seq), ((seq[:, 1:] - seq[:, :-1]) ** 2).mean())


@pytest.mark.parametrize("regularizer", ["vc", "sigreg"])
def test_losses_have_every_term_and_flow_gradients(regularizer: str) -> None:
    torch.manual_seed(3)
    data = generate_trajectories(RoomsDataConfig(n_trajectories=4, length=5, seed=0))
    model = ActionConditionedJEPA(TINY)
    obs = render(data["positions"], data["wall_x"], data["door_y"], 17)
    terms = jepa_losses(
        model,
        obs,
        data["actions"],
        JEPALossWeights(regularizer=regularizer, rollout=2),
        positions=data["positions"] / 64,
    )
    expected = {"pred", "loss", "probe"} | (
        {"var", "cov", "time_sim", "idm"} if regularizer == "vc" else {"sigreg"}
    )
    assert set(terms) == expected
    terms["loss"].backward()
    assert model.encoder[0][0].weight.grad.abs().sum() > 0


def test_hard_term_is_the_mean_of_the_largest_transition_errors() -> None:
    """Brute force: sort every per-transition error of every k-step prediction, average the
    top ``fraction``; the term enters the loss with its weight and nothing else changes."""
    torch.manual_seed(5)
    data = generate_trajectories(RoomsDataConfig(n_trajectories=6, length=5, seed=1))
    model = ActionConditionedJEPA(TINY)
    obs = render(data["positions"], data["wall_x"], data["door_y"], 17)
    with torch.no_grad():
        z = model.encode(obs)
    errors = []
    with torch.no_grad():
        preds = multistep_predictions(model.predictor, z, data["actions"], 3)
    for k, pred in enumerate(preds, 1):
        for b in range(z.shape[0]):
            for t in range(pred.shape[1]):
                errors.append(float((pred[b, t] - z[b, t + k]).square().mean()))
    top = sorted(errors, reverse=True)[: round(0.1 * len(errors))]
    with torch.no_grad():
        got = hard_mean(prediction_errors(model.predictor, z, data["actions"], 3), 0.1)
    assert float(got) == pytest.approx(sum(top) / len(top), rel=1e-5)
    with torch.no_grad():
        plain = jepa_losses(model, obs, data["actions"], JEPALossWeights(rollout=3))
        weights = JEPALossWeights(rollout=3, hard=2.0, hard_fraction=0.1)
        hard = jepa_losses(model, obs, data["actions"], weights)
    assert float(hard["hard"]) == pytest.approx(float(got), rel=1e-5) and "hard" not in plain
    assert float(hard["loss"] - plain["loss"]) == pytest.approx(2.0 * float(got), rel=1e-4)
    with pytest.raises(ValueError, match="hard_fraction"):
        JEPALossWeights(hard_fraction=0.0)


def test_encoding_another_image_size_is_refused() -> None:
    model = ActionConditionedJEPA(TINY)
    with pytest.raises(ValueError, match=r"model was built for 17 × 17"):
        model.encode(torch.zeros(2, 2, 33, 33))


class PointModel(nn.Module):
    """A known world model: z is the position, Pred(z, a) = z + a."""

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs

    def unroll(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z0.unsqueeze(-2) + actions.cumsum(-2)

    def represent(self, state: torch.Tensor) -> torch.Tensor:
        return state


@pytest.mark.parametrize("method", ["mppi", "cem", "gradient"])
def test_every_planner_lowers_the_cost_of_a_random_plan(method: str) -> None:
    model = PointModel()
    z0, goal = torch.zeros(3, 2), torch.tensor([[10.0, 0.0], [-6.0, 6.0], [0.0, -8.0]])
    config = PlannerConfig(
        method=method, horizon=10, iterations=10, samples=64, elites=8, replan_every=1, lr=0.5
    )
    planner = LatentPlanner(model, config, seed=0)
    planner.reset({}, goal)
    first = planner(z0, z0, 0)
    cost = latent_rollout_cost(model, z0, goal, "sum", planner.max_norm)
    random_plan = torch.randn(3, 1, 10, 2, generator=torch.Generator().manual_seed(5))
    assert (cost(planner.plan.unsqueeze(1)) < cost(random_plan)).all()
    # the first action heads to the goal
    cosine = torch.nn.functional.cosine_similarity(first[:, 0], goal, dim=-1)
    assert (cosine > 0.6).all()
    assert (first.norm(dim=-1) <= planner.max_norm + 1e-5).all()


def test_oracle_succeeds_and_random_fails_under_the_protocol() -> None:
    protocol = Protocol(episodes=10, seed=3)
    oracle = run_episodes(OracleController(), protocol, 17)
    random = run_episodes(RandomController(seed=0), protocol, 17)
    assert oracle["success"] == 100.0 and oracle["final_distance"] < 1.0
    assert random["success"] <= 20.0 and random["final_distance"] > 10


def test_recorded_episodes_hold_the_executed_actions_and_the_detour_classes() -> None:
    from genoise.world.two_rooms import step_positions

    protocol = Protocol(episodes=6, max_steps=30, seed=4)
    out = run_episodes(RandomController(seed=1), protocol, 17, record=True)
    positions, actions, tasks = out["positions"], out["actions"], out["tasks"]
    assert positions.shape == (6, 31, 2) and actions.shape == (6, 30, 2)
    assert float(actions.norm(dim=-1).max()) <= protocol.max_norm + 1e-5
    # replaying the recorded actions with the same bounce generator reproduces the trail
    bounce, pos = torch.Generator().manual_seed(protocol.seed + 1), tasks["start"].clone()
    for t in range(30):
        pos = step_positions(pos, actions[:, t], tasks["wall_x"], tasks["door_y"], generator=bounce)
        torch.testing.assert_close(pos, positions[:, t + 1])
    assert sum(v["tasks"] for v in out["success_by_detour"].values()) == 6


def test_gcbc_learns_a_tiny_set_and_reloads(tmp_path) -> None:
    from genoise.train import Run

    data = generate_trajectories(RoomsDataConfig(n_trajectories=16, length=4, seed=0))
    torch.manual_seed(0)
    policy = GoalConditionedPolicy(image_size=17, width=4, hidden=32)
    metrics = train_gcbc(
        policy,
        data,
        300,
        batch_size=16,
        lr=3e-3,
        seed=0,
        progress=False,
        run=Run(tmp_path / "gcbc", progress=False),
    )
    obs = render(data["positions"][:, 0], data["wall_x"], data["door_y"], 17)
    goal = render(data["positions"][:, 1], data["wall_x"], data["door_y"], 17)
    with torch.no_grad():
        error = (policy(obs, goal) - data["actions"][:, 0]).square().mean()
    assert float(error) < 0.1 * float(data["actions"][:, 0].square().mean())
    assert metrics["step"] == 300
    reloaded = load_gcbc(tmp_path / "gcbc" / "last.pt", image_size=17)
    with torch.no_grad():
        assert torch.equal(reloaded(obs, goal), policy.eval()(obs, goal))
    with pytest.raises(ValueError, match="trained on 17 px images, not 33 px"):
        load_gcbc(tmp_path / "gcbc" / "last.pt", image_size=33)
    with pytest.raises(ValueError, match="not 'world-two-rooms-jepa'"):
        load_jepa(tmp_path / "gcbc" / "last.pt")
    controller = PolicyController(policy)
    controller.reset({}, goal)
    assert controller(obs, None, 0).shape == (16, 1, 2)


def test_jepa_trains_resumes_and_reloads(tmp_path) -> None:
    train_tiny_jepa(TINY, tmp_path / "a", steps=6)
    with pytest.raises(ValueError, match="trained on 17 px images"):
        load_jepa(tmp_path / "a" / "last.pt", image_size=65)


def test_true_dynamics_planner_unrolls_the_exact_physics_and_reaches_goals() -> None:
    from genoise.world.latent_planning import TrueDynamicsPlanner
    from genoise.world.two_rooms import rollout_positions, sample_tasks

    tasks = sample_tasks(3, np.random.default_rng(4))
    planner = TrueDynamicsPlanner(PlannerConfig(horizon=6, iterations=1, samples=8, elites=2))
    planner.model.tasks = tasks
    plans = torch.randn(3, 5, 6, 2, generator=torch.Generator().manual_seed(0))
    start = tasks["start"][:, None].expand(3, 5, 2)
    got = planner.model.unroll(start, plans)
    for n in range(5):
        exact = rollout_positions(
            tasks["start"], plans[:, n], tasks["wall_x"], tasks["door_y"], bounce_std=0.0
        )
        torch.testing.assert_close(got[:, n], exact[:, 1:])
    config = PlannerConfig(horizon=32, iterations=4, samples=100, elites=10, temperature=10.0, noise_beta=2.0)
    protocol = Protocol(episodes=4, seed=2)
    reached = run_episodes(TrueDynamicsPlanner(config), protocol, 17)
    wandered = run_episodes(RandomController(), protocol, 17)
    assert reached["final_distance"] < 0.5 * wandered["final_distance"]
