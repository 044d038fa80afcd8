"""Planning on the simulator's *true* future: the upper reference for the learned models.

In the invisible-car setting the other cars replay a pre-simulated episode, so the future
rasters of any ego action sequence are known exactly: the ego follows the simulator's
integrator (``v' = max(0, v + a dt)``, ``x' = x + v' dt``, ``y' = y + a_y dt``) and the
other cars are read from the replay. :func:`true_future_cost` rasterises them for a batch of
candidate sequences and sums the driving cost, so any planner of
:mod:`genoise.world.planners` can drive with it (:func:`oracle_controller`).

What it measures: how well a controller that *minimises this cost* can drive when the model
is perfect. With the paper's proximity cost (rear reach from the current speed) such a
planner brakes to a near stop in front of followers that cannot see it; with the rear reach
from the initial speed it succeeds as often as the replayed driver (``docs/world.md``). It
is the analogue of "CEM with the true equations" in the Pendulum benchmark.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genoise.world.control import Controller, episode_mpc_controller
from genoise.world.costs import CostConfig, driving_cost
from genoise.world.forward import ego_trajectory
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.planners import RolloutCost
from genoise.world.raster import ego_raster, relative_positions


def true_future_cost(env: HighwayTrafficEnv, config: CostConfig | None = None) -> RolloutCost:
    """``actions (N, H, 2) -> (N,)``: the driving cost summed over the next ``H`` true
    frames of ``env`` (invisible-car mode, after ``reset``) for each candidate sequence.
    The environment is not modified."""
    if getattr(env, "replay", None) is None:
        raise ValueError("true_future_cost needs an environment in the invisible-car mode, after reset()")
    config = config or env.cost_config
    road, spec, dt = env.road, env.spec_raster, env.road.dt
    keep = env._visible()
    start = dict(env.ego)
    t0 = env.steps
    length = torch.as_tensor(env.drivers.length[keep], dtype=torch.float32)
    width = torch.as_tensor(env.drivers.width[keep], dtype=torch.float32)

    def rollout_cost(actions: Tensor) -> Tensor:
        n, h, _ = actions.shape
        v, y = ego_trajectory(torch.full((n,), start["v"]), torch.full((n,), start["y"]), actions, dt)
        x = start["x"] + torch.cumsum(v * dt, 1)
        frames = np.minimum(np.arange(t0 + 1, t0 + h + 1), env.max_steps)
        other_x = torch.as_tensor(env.replay["x"][frames][:, keep], dtype=torch.float32)  # (H, K)
        other_y = torch.as_tensor(env.replay["y"][frames][:, keep], dtype=torch.float32)
        m = n * h
        dx = relative_positions(x.reshape(m), other_x.repeat(n, 1), road.road_length)
        dy = other_y.repeat(n, 1) - y.reshape(m, 1)
        raster = ego_raster(
            y.reshape(m),
            torch.full((m,), start["length"]),
            torch.full((m,), start["width"]),
            dx,
            dy,
            length.expand(m, -1),
            width.expand(m, -1),
            spec,
            road.n_lanes,
            road.lane_width,
        )
        costs = driving_cost(raster, v.reshape(m), spec, config, torch.tensor(start["v"]))
        return costs["total"].view(n, h).sum(1)

    return rollout_cost


def oracle_controller(
    method: str = "cem",
    horizon: int = 20,
    options: dict | None = None,
    config: CostConfig | None = None,
    seed: int = 0,
) -> Controller:
    """A controller for :func:`genoise.world.evaluate.evaluate_driving` that plans on the
    true future (receding horizon, warm-started). A fresh planner, seeded with ``seed``, starts
    every episode (:func:`~genoise.world.control.episode_mpc_controller`)."""
    return episode_mpc_controller(lambda e: true_future_cost(e, config), lambda e: e, horizon, method,
                                  options, seed)
