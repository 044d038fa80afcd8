"""Pictures of Two Rooms episodes: a frame (walls, goal, trail, planned or decoded
positions) as an RGB array, a GIF of an episode, and a matplotlib figure of a trajectory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genoise.world.render import save_gif
from genoise.world.two_rooms import GEOMETRY, RoomsGeometry, render_walls

_WALL, _TRAIL, _DOT, _GOAL, _PLAN = (60, 60, 60), (120, 160, 230), (20, 70, 200), (220, 40, 40), (40, 170, 80)


def _disc(
    image: np.ndarray, centre: np.ndarray, radius: float, colour: tuple[int, int, int], scale: int
) -> None:
    """Paint a disc of ``radius`` world units, touching only its bounding box."""
    h, w = image.shape[:2]
    cx, cy = (np.asarray(centre, dtype=np.float64) + 0.5) * scale - 0.5
    r = radius * scale
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, w)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    patch = image[y0:y1, x0:x1]
    patch[(xs - cx) ** 2 + (ys - cy) ** 2 <= r * r] = colour


def draw_frame(
    trail: np.ndarray,
    goal: np.ndarray,
    wall_x: float,
    door_y: float,
    *,
    plan: np.ndarray | None = None,
    scale: int = 4,
    geometry: RoomsGeometry = GEOMETRY,
) -> np.ndarray:
    """RGB uint8 (size·scale)² image: walls (grey), goal (red ring), trail (light blue),
    planned/decoded positions (green), the dot (blue). Positions in world units."""
    walls = render_walls(torch.tensor([wall_x]), torch.tensor([door_y]), geometry.size, geometry)[0].numpy()
    walls = np.kron(walls, np.ones((scale, scale)))
    image = np.full((*walls.shape, 3), 255, np.uint8)
    image[walls > 0.5] = _WALL
    for point in np.asarray(trail)[:-1]:
        _disc(image, point, 0.6, _TRAIL, scale)
    if plan is not None:
        for point in np.asarray(plan):
            _disc(image, point, 0.6, _PLAN, scale)
    _disc(image, np.asarray(goal), geometry.success_radius, _GOAL, scale)
    _disc(image, np.asarray(goal), geometry.success_radius - 0.6, (255, 255, 255), scale)
    _disc(image, np.asarray(trail)[-1], 1.5, _DOT, scale)
    return image


def save_episode_gif(
    trail: np.ndarray,
    goal: np.ndarray,
    wall_x: float,
    door_y: float,
    path: str | Path,
    *,
    plans: list[np.ndarray] | None = None,
    every: int = 2,
    scale: int = 3,
    geometry: RoomsGeometry = GEOMETRY,
) -> Path:
    """Animated GIF of an episode (every ``every``-th step; ``plans[t]`` drawn at step t)."""
    frames = [
        draw_frame(
            trail[: t + 1],
            goal,
            wall_x,
            door_y,
            scale=scale,
            geometry=geometry,
            plan=None if plans is None or t >= len(plans) else plans[t],
        )
        for t in range(0, len(trail), every)
    ]
    return save_gif(frames, Path(path))


def trajectory_figure(
    trail: np.ndarray,
    goal: np.ndarray,
    wall_x: float,
    door_y: float,
    *,
    decoded: np.ndarray | None = None,
    title: str = "",
    geometry: RoomsGeometry = GEOMETRY,
):
    """Matplotlib figure: the executed trajectory over the two rooms and, if given, the
    probe's decoding of the latent rollout of the first plan."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(4.2, 4.2))
    walls = render_walls(torch.tensor([wall_x]), torch.tensor([door_y]), geometry.size, geometry)[0].numpy()
    ax.imshow(walls, cmap="Greys", vmin=0, vmax=1.5, origin="upper")
    ax.plot(trail[:, 0], trail[:, 1], "-", color="tab:blue", lw=1.5, label="executed")
    if decoded is not None:
        ax.plot(decoded[:, 0], decoded[:, 1], ".", color="tab:green", ms=4, label="probe(latent plan)")
    ax.plot(*trail[0], "o", color="tab:blue", ms=7, label="start")
    ax.add_patch(plt.Circle(tuple(goal), geometry.success_radius, fill=False, color="tab:red", lw=1.5))
    ax.plot(*goal, "x", color="tab:red", ms=7, label="goal")
    ax.set_xlim(-0.5, geometry.size - 0.5)
    ax.set_ylim(geometry.size - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return figure
