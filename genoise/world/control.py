"""Controllers of the driving simulator: ``controller(env, images (k, 3, H, W), states (k, S))
-> action (2,)``, driven by :func:`genoise.world.evaluate.evaluate_driving`.

- :func:`keep_speed` ("no action") and :func:`expert` (the replayed IDM driver): the references;
- :func:`policy_controller`: a trained network ``pi(images, states)``;
- :func:`planner_controller`: receding-horizon planning (gradient MPC, CEM, MPPI) over a
  learned forward model (Henaff, Canziani & LeCun, ICLR 2019);
- :func:`episode_mpc_controller`: planning over any rollout cost built from the environment
  (the true-future oracle, the vector-mode model).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from genoise.world.costs import DEFAULT_COSTS, CostConfig
from genoise.world.forward import ForwardModel
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.planners import MPC

Controller = Callable[[HighwayTrafficEnv, Tensor, Tensor], np.ndarray]


def policy_controller(policy: nn.Module) -> Controller:
    """Wrap a network ``pi(images, states)`` as a controller (the observations are moved to
    the network's device, the action comes back as a numpy array)."""
    device = next((t.device for t in (*policy.parameters(), *policy.buffers())), torch.device("cpu"))

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        with torch.no_grad():
            action = policy(images.unsqueeze(0).to(device), states.unsqueeze(0).to(device))[0]
        return action.cpu().numpy()

    return act


def keep_speed(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
    """The "no action" row: zero acceleration, zero lateral velocity."""
    return np.zeros(2, dtype=np.float32)


def expert(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
    """The "IDM driver itself" row: replay the ghost driver's action (invisible mode)."""
    action = env.expert_action()
    return np.zeros(2, dtype=np.float32) if action is None else action


def episode_mpc_controller(
    make_rollout_cost: Callable,
    observe: Callable[[HighwayTrafficEnv], object],
    horizon: int,
    method: str = "cem",
    options: dict | None = None,
    seed: int = 0,
) -> Controller:
    """A receding-horizon controller (:class:`genoise.world.planners.MPC` within the
    environment's action box) that starts a fresh planner, seeded with ``seed``, at every
    episode, so an episode's outcome does not depend on the episodes driven before it.
    ``make_rollout_cost`` receives ``observe(env)`` at every step."""
    state: dict[str, MPC] = {}

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        if env.steps == 0 or "mpc" not in state:
            low, high = env.action_space.low, env.action_space.high
            state["mpc"] = MPC(make_rollout_cost, low, high, horizon=horizon, method=method,
                               options=options or {}, seed=seed)
        return state["mpc"](observe(env))

    return act


def planner_controller(
    model: ForwardModel,
    method: str,
    low: np.ndarray,
    high: np.ndarray,
    horizon: int = 10,
    options: dict | None = None,
    config: CostConfig = DEFAULT_COSTS,
    seed: int = 0,
) -> Controller:
    """Receding-horizon planning over the learned driving model (gradient MPC, CEM or MPPI):
    the rollout cost of a candidate action sequence is the paper's cost of the predicted
    rasters (latent z = 0, dropout off). The model is frozen and used on the CPU, where the
    planners and the simulator run."""
    from genoise.world.uncertainty import predicted_cost

    model.cpu().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)

    def make_rollout_cost(context: tuple[Tensor, Tensor]):
        images, states = context

        def rollout_cost(actions: Tensor) -> Tensor:
            n = actions.shape[0]
            return predicted_cost(
                model, images.expand(n, *images.shape), states.expand(n, *states.shape), actions, None, config
            )["total"]

        return rollout_cost

    mpc = MPC(make_rollout_cost, low, high, horizon=horizon, method=method, options=options or {}, seed=seed)

    def act(env: HighwayTrafficEnv, images: Tensor, states: Tensor) -> np.ndarray:
        if env.steps == 0:
            mpc.reset()
        return mpc((images, states))

    return act
