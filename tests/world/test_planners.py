"""Planners on a known linear model, checked against the closed-form optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genoise.world.dynamics import MLPDynamics, model_rollout_cost, pendulum_cost
from genoise.world.planners import MPC, colored_noise, plan_cem, plan_gradient, plan_mppi, planner_options

DT = 0.3
A = torch.tensor([[1.0, DT], [0.0, 1.0]])  # double integrator: position, velocity
B = torch.tensor([0.0, DT])
H = 10
X0 = torch.tensor([2.0, -1.0])
R = 0.01


def linear_model(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return state @ A.T + action * B


def quadratic_cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return state.pow(2).sum(-1) + R * action[..., 0] ** 2


def optimum() -> tuple[torch.Tensor, float]:
    """Closed form: the states are affine in the actions, x = F x0 + G u, so the cost
    |x|^2 + R |u|^2 is minimised by the normal equations (G^T G + R I) u = -G^T F x0."""
    A64, B64 = A.double(), B.double()
    F_rows, G = [], torch.zeros(2 * (H + 1), H, dtype=torch.float64)
    power = torch.eye(2, dtype=torch.float64)
    for t in range(H + 1):
        F_rows.append(power.clone())
        for k in range(t):
            G[2 * t : 2 * t + 2, k] = torch.linalg.matrix_power(A64, t - 1 - k) @ B64
        power = A64 @ power
    Fm = torch.cat(F_rows)
    x0 = X0.double()
    u = torch.linalg.solve(G.T @ G + R * torch.eye(H, dtype=torch.float64), -G.T @ Fm @ x0)
    x = Fm @ x0 + G @ u
    return u.float(), float(x.pow(2).sum() + R * u.pow(2).sum())


ROLLOUT = model_rollout_cost(linear_model, quadratic_cost, X0)
LOW, HIGH = np.array([-50.0]), np.array([50.0])


def random_plan() -> torch.Tensor:
    return torch.randn(H, 1, generator=torch.Generator().manual_seed(0)) * 5.0


def test_rollout_cost_matches_the_closed_form_objective() -> None:
    u, best = optimum()
    assert float(ROLLOUT(u.view(1, H, 1))[0]) == pytest.approx(best, rel=1e-4)


def test_gradient_mpc_reaches_the_closed_form_optimum() -> None:
    _, best = optimum()
    initial = float(ROLLOUT(random_plan().unsqueeze(0))[0])
    _, cost = plan_gradient(ROLLOUT, random_plan(), LOW, HIGH, iterations=100, lr=2.0)
    assert float(cost) < initial
    assert float(cost) == pytest.approx(best, rel=1e-2)


@pytest.mark.parametrize("planner", ["cem", "mppi"])
@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_sampling_planners_improve_a_random_plan(planner: str, beta: float) -> None:
    _, best = optimum()
    initial = float(ROLLOUT(random_plan().unsqueeze(0))[0])
    generator = torch.Generator().manual_seed(1)
    if planner == "cem":
        plan, cost = plan_cem(
            ROLLOUT,
            H,
            LOW,
            HIGH,
            population=300,
            n_elites=30,
            iterations=10,
            init_mean=random_plan(),
            init_std=0.2,
            generator=generator,
            noise_beta=beta,
        )
    else:
        plan, cost = plan_mppi(
            ROLLOUT,
            H,
            LOW,
            HIGH,
            samples=300,
            temperature=1.0,
            noise_std=0.1,
            iterations=15,
            init_mean=random_plan(),
            generator=generator,
            noise_beta=beta,
        )
    assert float(ROLLOUT(plan.unsqueeze(0))[0]) == pytest.approx(float(cost), rel=1e-5)
    assert float(cost) < 0.5 * initial
    assert float(cost) >= best * (1 - 1e-4)  # nobody beats the optimum


def test_mppi_can_return_its_weighted_mean_with_that_mean_s_cost() -> None:
    kwargs = dict(samples=300, temperature=1.0, noise_std=0.1, iterations=15, init_mean=random_plan())
    seeded = torch.Generator().manual_seed
    plan, cost = plan_mppi(ROLLOUT, H, LOW, HIGH, generator=seeded(1), select="mean", **kwargs)
    assert float(ROLLOUT(plan.unsqueeze(0))[0]) == pytest.approx(float(cost), rel=1e-5)
    best, _ = plan_mppi(ROLLOUT, H, LOW, HIGH, generator=seeded(1), **kwargs)
    assert not torch.equal(plan, best)  # the mean is a blend of elites, not a sample
    assert float(cost) < 0.5 * float(ROLLOUT(random_plan().unsqueeze(0))[0])
    with pytest.raises(ValueError, match="select"):
        plan_mppi(ROLLOUT, H, LOW, HIGH, select="median")


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_colored_noise_has_unit_variance_and_the_asked_spectrum(beta: float) -> None:
    """Periodogram slope of many coloured series ≈ −β on log-log axes (Pinneri et al. 2020)."""
    h = 256
    noise = colored_noise((400, h, 2), beta, torch.Generator().manual_seed(0))
    assert noise.shape == (400, h, 2)
    torch.testing.assert_close(noise.std(1), torch.ones(400, 2), atol=1e-4, rtol=0)
    power = torch.fft.rfft(noise.transpose(1, 2), dim=-1).abs().square().mean((0, 1))[1:]
    freqs = torch.fft.rfftfreq(h)[1:]
    slope = np.polyfit(np.log(freqs.numpy()), np.log(power.numpy()), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.15)
    white = colored_noise((400, h, 2), 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(white, torch.randn(400, h, 2, generator=torch.Generator().manual_seed(0)))


def test_colored_noise_is_smooth_where_white_noise_is_not() -> None:
    lag1 = lambda x: float((x[:, 1:] * x[:, :-1]).mean() / x.square().mean())  # noqa: E731
    smooth = colored_noise((200, 48, 2), 2.0, torch.Generator().manual_seed(0))
    white = colored_noise((200, 48, 2), 0.0, torch.Generator().manual_seed(0))
    assert lag1(smooth) > 0.8 and abs(lag1(white)) < 0.05


def test_batched_problems_are_solved_independently() -> None:
    x0s = torch.stack([X0, -2 * X0])
    batched = model_rollout_cost(linear_model, quadratic_cost, x0s)
    init = torch.zeros(2, H, 1)
    plans, costs = plan_gradient(batched, init, LOW, HIGH, iterations=50, lr=0.5)
    for e in range(2):
        single = model_rollout_cost(linear_model, quadratic_cost, x0s[e])
        plan, cost = plan_gradient(single, init[e], LOW, HIGH, iterations=50, lr=0.5)
        np.testing.assert_allclose(plans[e].numpy(), plan.numpy(), atol=1e-4)
        assert float(costs[e]) == pytest.approx(float(cost), rel=1e-5)


def test_bounds_are_respected() -> None:
    plan, _ = plan_gradient(ROLLOUT, random_plan(), [-0.5], [0.5], iterations=20, lr=0.5)
    assert float(plan.abs().max()) <= 0.5 + 1e-6
    plan, _ = plan_cem(ROLLOUT, H, [-0.5], [0.5], generator=torch.Generator().manual_seed(0))
    assert float(plan.abs().max()) <= 0.5 + 1e-6


def test_mpc_closed_loop_beats_doing_nothing() -> None:
    mpc = MPC(
        lambda obs: model_rollout_cost(linear_model, quadratic_cost, torch.as_tensor(obs)),
        [-5.0],
        [5.0],
        horizon=10,
        method="gradient",
        options=dict(iterations=15, lr=0.5),
    )
    costs = {}
    for name, policy in (("mpc", mpc), ("zero", lambda obs: np.zeros(1, dtype=np.float32))):
        state, total = X0.clone(), 0.0
        for _ in range(15):
            action = torch.as_tensor(policy(state.numpy()))
            total += float(quadratic_cost(state, action))
            state = linear_model(state, action)
        costs[name] = total
    assert costs["mpc"] < 0.5 * costs["zero"]


def reference_plan_gradient(rollout_cost, init, low, high, iterations, lr):
    """Projected Adam with keep-best written out as a loop (the planner before it ran on
    ``genoise.energy.infer.gradient_minimize``)."""
    low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
    plan = torch.maximum(torch.minimum(init.clone(), high), low).requires_grad_(True)
    optimiser = torch.optim.Adam([plan], lr=lr)
    best, best_cost = plan.detach().clone(), float("inf")
    for step in range(iterations + 1):
        cost = rollout_cost(plan.unsqueeze(0))[0]
        if float(cost.detach()) < best_cost:
            best, best_cost = plan.detach().clone(), float(cost.detach())
        if step == iterations:
            break
        optimiser.zero_grad()
        cost.backward()
        optimiser.step()
        with torch.no_grad():
            plan.copy_(torch.maximum(torch.minimum(plan, high), low))
    return best, best_cost


def test_gradient_planner_is_projected_adam_keeping_the_best_plan() -> None:
    low, high = np.array([-3.0]), np.array([3.0])  # active bounds: the projection matters
    for lr in (0.5, 8.0):  # 8.0 oscillates: the last plan is not the best one
        plan, cost = plan_gradient(ROLLOUT, random_plan(), low, high, iterations=12, lr=lr)
        expected, expected_cost = reference_plan_gradient(ROLLOUT, random_plan(), low, high, 12, lr)
        torch.testing.assert_close(plan, expected, rtol=1e-6, atol=1e-6)
        assert float(cost) == pytest.approx(expected_cost, rel=1e-6)
        assert float(cost) == pytest.approx(float(ROLLOUT(plan.unsqueeze(0))[0]), rel=1e-6)


def test_planner_options_are_shared_by_the_recipe_and_the_command_line() -> None:
    assert planner_options("cem", 32, 3) == {"population": 32, "n_elites": 8, "iterations": 3}
    assert planner_options("cem", 4, 1)["n_elites"] == 2  # at least two elites
    assert planner_options("mppi", 16, 2) == {"samples": 16, "iterations": 2, "temperature": 0.1}
    assert planner_options("gradient", 16, 5) == {"iterations": 5, "lr": 0.5}
    with pytest.raises(ValueError, match="method must be one of 'gradient', 'cem', 'mppi'"):
        planner_options("mpc", 8, 1)
    with pytest.raises(ValueError, match="iterations must be > 0"):
        planner_options("cem", 8, 0)


def test_bad_planner_input_is_refused() -> None:
    with pytest.raises(ValueError, match="low < high"):
        plan_gradient(ROLLOUT, random_plan(), [1.0], [0.0])
    with pytest.raises(ValueError, match="rollout_cost returned shape"):
        plan_cem(lambda a: a.sum(-1), H, LOW, HIGH)
    with pytest.raises(ValueError, match="method"):
        MPC(lambda obs: ROLLOUT, LOW, HIGH, method="ilqr")


def test_learned_dynamics_fit_a_known_system() -> None:
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(2000, 2, generator=generator)
    actions = torch.randn(2000, 1, generator=generator)
    data = {"obs": states, "actions": actions, "next_obs": linear_model(states, actions)}
    model = MLPDynamics(2, 1, hidden=32)
    # 600 steps: the max error over 100 states is 0.009-0.029 across four seeds (300: up to 0.055)
    losses = model.fit(data, steps=600, batch_size=128, lr=3e-3, seed=0)
    assert len(losses) == 6  # the mean loss of every 100 steps
    assert losses[-1] < 0.05 * losses[0]
    with torch.no_grad():
        error = (model(states[:100], actions[:100]) - data["next_obs"][:100]).abs().max()
    assert float(error) < 0.05
    assert float(pendulum_cost(torch.tensor([1.0, 0.0, 0.0]), torch.zeros(1))) == 0.0
