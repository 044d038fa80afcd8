"""``genoise/TwoRooms-v0``: the Two Rooms arena (:mod:`genoise.world.two_rooms`) as a
gymnasium environment, one episode of the planning protocol at a time.

- observation: (2, S, S) float32 in [0, 1] — dot and walls (``image_size`` 65 or 33);
  ``info["goal_observation"]`` is the image of the goal;
- action: (2,) displacement with ‖a‖ ≤ ``max_norm`` (2.45). An action of another shape,
  non-finite, or beyond the norm is **refused** with a one-line ``ValueError`` (planners
  scale their plans back with :func:`genoise.world.two_rooms.clip_norm` first); the
  ``action_space`` box is the square that contains the disc;
- reward: − distance to the goal; the episode is never terminated early (the protocol
  judges the *final* position), truncated after ``max_steps`` (200);
- ``info``: ``position``, ``goal``, ``wall_x``, ``door_y``, ``distance``, ``success``.

``reset(seed=, options={"wall_x", "door_y", "start", "goal"})`` fixes any part of the task
(the rest is sampled as in :func:`~genoise.world.two_rooms.sample_tasks`); a start or goal
inside the wall or outside the arena is a one-line ``ValueError``. ``render()`` returns an
RGB image (``scale`` × the observation size) with the trail and, when set with
``set_plan``, the planned positions drawn.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from genoise.world.two_rooms import (
    GEOMETRY,
    RoomsGeometry,
    check_layout,
    check_positions,
    render,
    sample_tasks,
    step_positions,
    success,
)
from genoise.world.two_rooms_render import draw_frame


class TwoRoomsEnv(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        image_size: int = 65,
        fixed_wall: bool = False,
        max_steps: int = 200,
        bounce_std: float = 0.5,
        render_mode: str | None = "rgb_array",
        geometry: RoomsGeometry = GEOMETRY,
    ) -> None:
        if image_size < 9:
            raise ValueError(f"image_size must be at least 9, got {image_size}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.image_size, self.fixed_wall, self.max_steps = int(image_size), bool(fixed_wall), int(max_steps)
        self.bounce_std, self.render_mode, self.geometry = float(bounce_std), render_mode, geometry
        m = geometry.max_norm
        self.action_space = gym.spaces.Box(-m, m, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(
            0.0, 1.0, shape=(2, self.image_size, self.image_size), dtype=np.float32
        )
        self._plan: np.ndarray | None = None

    def _observe(self, pos: torch.Tensor) -> np.ndarray:
        return render(pos[None], self.wall_x, self.door_y, self.image_size, self.geometry)[0].numpy()

    def _info(self) -> dict[str, Any]:
        distance = float((self.position - self.goal).norm())
        return {
            "position": self.position.numpy().copy(),
            "goal": self.goal.numpy().copy(),
            "wall_x": float(self.wall_x),
            "door_y": float(self.door_y),
            "distance": distance,
            "success": bool(success(self.position, self.goal, self.geometry)),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"wall_x", "door_y", "start", "goal"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: wall_x, door_y, start, goal")
        task = {
            k: v[0]
            for k, v in sample_tasks(
                1, self.np_random, fixed_wall=self.fixed_wall, geometry=self.geometry
            ).items()
        }
        for key in ("wall_x", "door_y"):
            if key in options:
                task[key] = torch.tensor(float(options[key]))
        check_layout(task["wall_x"], task["door_y"], self.geometry)
        for key in ("start", "goal"):
            if key in options:
                task[key] = torch.as_tensor(np.asarray(options[key], dtype=np.float32))
            check_positions(key, task[key], task["wall_x"], task["door_y"], self.geometry)
        self.wall_x, self.door_y = task["wall_x"].reshape(1), task["door_y"].reshape(1)
        self.position, self.goal = task["start"].clone(), task["goal"].clone()
        self.trail, self.steps, self._plan = [self.position.clone()], 0, None
        self._bounce = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        info = self._info()
        info["goal_observation"] = self._observe(self.goal)
        return self._observe(self.position), info

    def step(self, action):
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        norm = float(np.linalg.norm(a))
        if norm > self.geometry.max_norm + 1e-5:
            raise ValueError(
                f"action norm {norm:.3f} exceeds max_norm {self.geometry.max_norm} "
                "(scale it with genoise.world.two_rooms.clip_norm)"
            )
        self.position = step_positions(
            self.position[None],
            torch.from_numpy(a)[None],
            self.wall_x,
            self.door_y,
            geometry=self.geometry,
            bounce_std=self.bounce_std,
            generator=self._bounce,
        )[0]
        self.trail.append(self.position.clone())
        self.steps += 1
        info = self._info()
        return self._observe(self.position), -info["distance"], False, self.steps >= self.max_steps, info

    def set_plan(self, positions: np.ndarray | None) -> None:
        """Positions (H, 2) drawn by ``render`` (e.g. a probe's decoding of a latent plan)."""
        self._plan = None if positions is None else np.asarray(positions, dtype=np.float32)

    def render(self, scale: int = 4) -> np.ndarray:
        return draw_frame(
            torch.stack(self.trail).numpy(),
            self.goal.numpy(),
            float(self.wall_x),
            float(self.door_y),
            plan=self._plan,
            scale=scale,
            geometry=self.geometry,
        )
