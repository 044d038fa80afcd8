"""``genoise/HighwayTraffic-v0``: drive an ego car through dense IDM/MOBIL traffic
(the setting of Henaff, Canziani & LeCun, ICLR 2019, with simulated instead of NGSIM
traffic).

At ``reset`` the ring road is filled (:func:`~genoise.world.traffic.spawn_traffic`),
warmed up, and one of the cars becomes the ego car — as in the paper, where the ego is a
car of the recording whose trajectory is removed. By default (``reactive=False``, the
paper's "invisible car" setting) the other cars replay the simulation that contains the
original driver (the *ghost*, hidden from observations and collisions), so they do not
react to the ego car; the ghost's action is the expert action in ``info``. With
``reactive=True`` the ghost is removed and the ego car takes part in everybody's IDM and
MOBIL decisions.

Action: ``(longitudinal acceleration m/s², lateral velocity m/s)`` in a bounded ``Box``.
Out-of-bounds actions are **clipped with a ``UserWarning``** (planners and policies often
overshoot; ``info["action_clipped"]`` says it happened); ``strict_actions=True`` raises a
``ValueError`` instead. Non-finite actions always raise.

Observation (``obs_mode="raster"``): ``{"raster": (3, H, W) lanes/cars/ego, "state":
(y, v, v_y)}``; (``obs_mode="vector"``): ``(y, v, v_y)`` followed by the ``n_neighbours``
nearest cars' ``(dx, dy, dv, dv_y, present)``.

The episode terminates on ``"collision"``, ``"off_road"`` (part of the car beyond a road
edge) or ``"arrived"`` (``route_length`` metres driven) and is truncated at
``max_steps`` (``"time_limit"``); ``info["termination"]`` says which. The reward is minus
the paper's driving cost of the true raster (:func:`genoise.world.costs.driving_cost`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from genoise._checks import check_choice, check_positive
from genoise.world.costs import CostConfig, driving_cost
from genoise.world.neighbours import nearest_cars
from genoise.world.raster import RasterSpec, ego_raster
from genoise.world.traffic import Drivers, RoadConfig, TrafficState, simulate, spawn_traffic, traffic_step


class HighwayTrafficEnv(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        road: RoadConfig | dict | None = None,
        raster: RasterSpec | dict | None = None,
        obs_mode: str = "raster",
        n_neighbours: int = 6,
        reactive: bool = False,
        route_length: float = 200.0,
        max_steps: int = 400,
        warmup: int = 300,
        max_accel: float = 3.0,
        max_brake: float = 6.0,
        max_lateral_speed: float = 2.0,
        strict_actions: bool = False,
        cost: CostConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.road = road if isinstance(road, RoadConfig) else RoadConfig.from_dict(road or {})
        self.spec_raster = raster if isinstance(raster, RasterSpec) else RasterSpec(**(raster or {}))
        self.obs_mode = check_choice("obs_mode", obs_mode, ("raster", "vector"))
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        for name, value in (
            ("route_length", route_length),
            ("max_accel", max_accel),
            ("max_brake", max_brake),
            ("max_lateral_speed", max_lateral_speed),
        ):
            check_positive(name, value)
        if route_length >= self.road.road_length:
            raise ValueError(
                f"route_length={route_length} must be shorter than the ring "
                f"(road_length={self.road.road_length})"
            )
        self.n_neighbours, self.reactive = int(n_neighbours), bool(reactive)
        self.route_length, self.max_steps, self.warmup = float(route_length), int(max_steps), int(warmup)
        self.strict_actions, self.render_mode = strict_actions, render_mode
        self.cost_config = cost or CostConfig(lane_width=self.road.lane_width)
        self.action_space = gym.spaces.Box(
            np.array([-max_brake, -max_lateral_speed], dtype=np.float32),
            np.array([max_accel, max_lateral_speed], dtype=np.float32),
        )
        state_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        if self.obs_mode == "raster":
            self.observation_space = gym.spaces.Dict(
                {
                    "raster": gym.spaces.Box(0.0, 1.0, shape=(3, *self.spec_raster.shape), dtype=np.float32),
                    "state": state_space,
                }
            )
        else:
            self.observation_space = gym.spaces.Box(
                -np.inf, np.inf, shape=(3 + 5 * self.n_neighbours,), dtype=np.float32
            )
        self.traffic: TrafficState | None = None
        self.drivers: Drivers | None = None

    # ------------------------------------------------------------------ ego state
    def config(self) -> dict[str, Any]:
        """Everything that fixes the observation format (stored with models and data)."""
        return {
            "obs_mode": self.obs_mode,
            "raster": asdict(self.spec_raster),
            "road": asdict(self.road),
            "n_neighbours": self.n_neighbours,
        }

    def _visible(self) -> np.ndarray:
        keep = np.ones(self.traffic.x.shape[0], dtype=bool)
        keep[self.ego_index] = False
        return keep

    def _neighbour_arrays(self) -> tuple[np.ndarray, ...]:
        keep = self._visible()
        L = self.road.road_length
        dx = np.mod(self.traffic.x[keep] - self.ego["x"] + L / 2, L) - L / 2
        dy = self.traffic.y[keep] - self.ego["y"]
        return (
            dx,
            dy,
            self.traffic.v[keep],
            self.traffic.vy[keep],
            self.drivers.length[keep],
            self.drivers.width[keep],
        )

    def ego_state(self) -> np.ndarray:
        return np.array([self.ego["y"], self.ego["v"], self.ego["vy"]], dtype=np.float32)

    def raster(self) -> np.ndarray:
        dx, dy, _, _, length, width = self._neighbour_arrays()
        near = (np.abs(dx) < self.spec_raster.extent[0] / 2 + 8.0) & (
            np.abs(dy) < self.spec_raster.extent[1] / 2 + 2.0
        )
        dx, dy, length, width = dx[near], dy[near], length[near], width[near]
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32).reshape(1, -1)  # noqa: E731
        image = ego_raster(
            t(self.ego["y"]).view(1),
            t(self.ego["length"]).view(1),
            t(self.ego["width"]).view(1),
            t(dx),
            t(dy),
            t(length),
            t(width),
            self.spec_raster,
            self.road.n_lanes,
            self.road.lane_width,
        )
        return image[0].numpy()

    def vector_observation(self) -> np.ndarray:
        """The ``obs_mode="vector"`` observation of the current state (available in either mode)."""
        dx, dy, v, vy, _, _ = self._neighbour_arrays()
        relative = (dx, dy, v - self.ego["v"], vy - self.ego["vy"])
        rel = [torch.as_tensor(a, dtype=torch.float64) for a in relative]
        rows = nearest_cars(*rel, self.n_neighbours)
        return np.concatenate([self.ego_state(), rows.numpy().astype(np.float32).ravel()])

    def _observation(self, raster: np.ndarray) -> Any:
        if self.obs_mode == "raster":
            return {"raster": raster.astype(np.float32), "state": self.ego_state()}
        return self.vector_observation()

    def _termination(self) -> str | None:
        dx, dy, _, _, length, width = self._neighbour_arrays()
        hit = (np.abs(dx) < 0.5 * (length + self.ego["length"])) & (
            np.abs(dy) < 0.5 * (width + self.ego["width"])
        )
        if hit.any():
            return "collision"
        half = 0.5 * self.ego["width"]
        if self.ego["y"] - half < 0.0 or self.ego["y"] + half > self.road.road_width:
            return "off_road"
        if self.ego["progress"] >= self.route_length:
            return "arrived"
        return None

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        self.traffic, self.drivers = spawn_traffic(self.road, rng)
        for _ in range(self.warmup):
            self.traffic = traffic_step(self.traffic, self.drivers, self.road, rng)
        cars = np.flatnonzero(self.drivers.length < 6.0)
        self.ego_index = int(rng.choice(cars if cars.size else np.arange(self.traffic.x.shape[0])))
        e = self.ego_index
        self.ego = {
            "x": float(self.traffic.x[e]),
            "y": float(self.traffic.y[e]),
            "v": float(self.traffic.v[e]),
            "vy": float(self.traffic.vy[e]),
            "length": float(self.drivers.length[e]),
            "width": float(self.drivers.width[e]),
            "progress": 0.0,
        }
        if self.reactive:  # remove the original driver: nobody sees it any more
            self.traffic = replace(self.traffic, lane=self.traffic.lane.copy())
            self.traffic.lane[e] = -1
            self.replay = None
        else:  # pre-simulate the whole episode once; the cars then replay it
            self.replay, _ = simulate(
                self.road, self.max_steps, rng, warmup=0, state=self.traffic, drivers=self.drivers
            )
        self.steps = 0
        raster = self.raster()
        return self._observation(raster), self._info(raster, None, False)

    def _check_action(self, action: Any) -> tuple[np.ndarray, bool]:
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,):
            raise ValueError(
                f"action must have 2 values (acceleration, lateral velocity), got {action.shape[0]}"
            )
        if not np.isfinite(action).all():
            raise ValueError(f"action must be finite, got {action.tolist()}")
        low, high = self.action_space.low, self.action_space.high
        outside = bool(((action < low) | (action > high)).any())
        if outside:
            message = f"action {action.tolist()} outside the bounds low={low.tolist()} high={high.tolist()}"
            if self.strict_actions:
                raise ValueError(message)
            warnings.warn(message + "; clipped", UserWarning, stacklevel=3)
        return np.clip(action, low, high), outside

    def _replay_frame(self, t: int) -> TrafficState:
        return TrafficState(
            x=self.replay["x"][t],
            y=self.replay["y"][t],
            v=self.replay["v"][t],
            vy=self.replay["vy"][t],
            lane=self.replay["lane"][t].astype(np.int64),
            step=t,
        )

    def expert_action(self) -> np.ndarray | None:
        """The ghost driver's next action ``((v[t+1] - v[t]) / dt, (y[t+1] - y[t]) / dt)``
        in the invisible-car mode (None in reactive mode or at the last step)."""
        if self.replay is None or self.steps >= self.max_steps:
            return None
        e, t, dt = self.ego_index, self.steps, self.road.dt
        return np.array(
            [
                (self.replay["v"][t + 1, e] - self.replay["v"][t, e]) / dt,
                (self.replay["y"][t + 1, e] - self.replay["y"][t, e]) / dt,
            ],
            dtype=np.float32,
        )

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self.traffic is None:
            raise ValueError("call reset() before step()")
        (accel, lateral), clipped = self._check_action(action)
        dt = self.road.dt
        extra = None
        if self.reactive:
            lane = int(np.clip(self.ego["y"] // self.road.lane_width, 0, self.road.n_lanes - 1))
            extra = (self.ego["x"], lane, self.ego["v"], self.ego["length"])
        if self.replay is None:
            self.traffic = traffic_step(self.traffic, self.drivers, self.road, self.np_random, extra=extra)
        else:
            self.traffic = self._replay_frame(min(self.steps + 1, self.max_steps))
        v_next = max(0.0, self.ego["v"] + accel * dt)
        self.ego.update(
            x=float(np.mod(self.ego["x"] + v_next * dt, self.road.road_length)),
            y=self.ego["y"] + lateral * dt,
            vy=float(lateral),
            v=v_next,
            progress=self.ego["progress"] + v_next * dt,
        )
        self.steps += 1
        termination = self._termination()
        truncated = termination is None and self.steps >= self.max_steps
        raster = self.raster()
        info = self._info(raster, "time_limit" if truncated else termination, clipped)
        return self._observation(raster), -float(info["cost"]), termination is not None, truncated, info

    def _info(self, raster: np.ndarray, termination: str | None, clipped: bool) -> dict[str, Any]:
        costs = driving_cost(
            torch.as_tensor(raster)[None],
            torch.tensor([self.ego["v"]], dtype=torch.float32),
            self.spec_raster,
            self.cost_config,
        )
        return {
            "termination": termination,
            "progress": self.ego["progress"],
            "speed": self.ego["v"],
            "cost": float(costs["total"]),
            "costs": {k: float(v) for k, v in costs.items()},
            "action_clipped": clipped,
            "expert_action": self.expert_action(),
            "steps": self.steps,
        }

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from genoise.world.render import top_view

        dx, dy, _, _, length, width = self._neighbour_arrays()
        return top_view(self.ego, dx, dy + self.ego["y"], length, width, self.road)
