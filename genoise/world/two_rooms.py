"""Two Rooms (the "DotWall" of PLDM, Sobal et al. 2025, and eb_jepa's ``ac_video_jepa``):
a point agent in a square arena split by a wall with one door — batched, vectorised core.

Geometry (world units are the pixels of the reference 65 × 65 image; ``x`` is the column,
``y`` the row)::

    border lines at lo = border − 1 = 4 and hi = size − border = 60: the dot stays in [lo, hi]²
    middle wall   |x − wall_x| ≤ wall_width // 2 = 1,  wall_x ∈ [wall_padding, size − wall_padding) = [20, 45)
    door          |y − door_y| ≤ door_half = 4,      door_y ∈ [door_padding, size − door_padding) = [10, 55)

A step moves the dot by the action ``a`` (‖a‖ ≤ ``max_norm`` = 2.45 when planning) along a
straight segment. If the segment meets a wall — a border, or one of the two jambs of the
middle wall (the wall outside the door) — the dot stops at the first contact point and
bounces off: it is pushed back along the wall's normal by |ε_n| and slides by ε_t, with
ε ~ N(0, 0.5² I), then kept 0.3 from the borders (the reference's ``check_wall_intersect``;
``bounce_std=0`` makes the physics deterministic). Hence the dot never enters the wall and
changes rooms only through the door (tested).

Observations are two channels at ``image_size`` px (65, the reference, or a cheaper 33):
a Gaussian dot (std ``dot_std`` = 1.3 world px) and the walls, drawn with their exact
pixel coverage so that the 33 px image is an anti-aliased copy of the 65 px one.

Episodes (the planning protocol of eb_jepa, ``level: normal``): start in one room and goal
in the other, each uniform over its room with a margin of 2·dot_std from the walls; the
agent has ``max_steps`` = 200 steps and succeeds when its *final* position is within
``success_radius`` = 4.5 of the goal.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class RoomsGeometry:
    """The arena of the reference (``eb_jepa/datasets/two_rooms/data_config.yaml``)."""

    size: int = 65
    border: int = 5
    wall_width: int = 3
    door_half: int = 4
    wall_padding: int = 20
    door_padding: int = 10
    dot_std: float = 1.3
    max_norm: float = 2.45
    success_radius: float = 4.5
    max_steps: int = 200
    fixed_wall: tuple[int, int] = (32, 18)

    @property
    def lo(self) -> float:
        return float(self.border - 1)

    @property
    def hi(self) -> float:
        return float(self.size - self.border)

    @property
    def half_wall(self) -> float:
        return float(self.wall_width // 2)

    @property
    def wall_range(self) -> tuple[int, int]:
        """Inclusive range of ``wall_x``."""
        return self.wall_padding, self.size - self.wall_padding - 1

    @property
    def door_range(self) -> tuple[int, int]:
        """Inclusive range of ``door_y``."""
        return self.door_padding, self.size - self.door_padding - 1

    def to_dict(self) -> dict:
        return asdict(self)


GEOMETRY = RoomsGeometry()
_MARGIN = 0.3  # how far a bounced dot stays from a border (the reference's 0.3)


def in_wall(pos: Tensor, wall_x: Tensor, door_y: Tensor, geometry: RoomsGeometry = GEOMETRY) -> Tensor:
    """True where ``pos`` (..., 2) lies in the middle wall outside the door (closed set)."""
    x, y = pos[..., 0], pos[..., 1]
    return ((x - wall_x).abs() <= geometry.half_wall) & ((y - door_y).abs() > geometry.door_half)


def outside_arena(pos: Tensor, geometry: RoomsGeometry = GEOMETRY) -> Tensor:
    return ((pos < geometry.lo) | (pos > geometry.hi)).any(-1)


def room_of(pos: Tensor, wall_x: Tensor) -> Tensor:
    """0 for the room left of the wall (x < wall_x), 1 for the right one."""
    return (pos[..., 0] >= wall_x).long()


def check_layout(wall_x: Tensor, door_y: Tensor, geometry: RoomsGeometry = GEOMETRY) -> None:
    (w0, w1), (d0, d1) = geometry.wall_range, geometry.door_range
    if bool(((wall_x < w0) | (wall_x > w1)).any()):
        raise ValueError(f"wall_x must lie in [{w0}, {w1}], got {wall_x.flatten().tolist()[:4]}")
    if bool(((door_y < d0) | (door_y > d1)).any()):
        raise ValueError(f"door_y must lie in [{d0}, {d1}], got {door_y.flatten().tolist()[:4]}")


def check_positions(
    name: str, pos: Tensor, wall_x: Tensor, door_y: Tensor, geometry: RoomsGeometry = GEOMETRY
) -> None:
    """One-line errors for a position outside the arena or inside the wall."""
    if pos.shape[-1] != 2:
        raise ValueError(f"{name} must have 2 coordinates (x, y), got shape {tuple(pos.shape)}")
    if not bool(torch.isfinite(pos).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    if bool(outside_arena(pos, geometry).any()):
        raise ValueError(
            f"{name} {pos.reshape(-1, 2)[0].tolist()} lies outside the arena [{geometry.lo}, {geometry.hi}]²"
        )
    inside = in_wall(pos, wall_x, door_y, geometry)
    if bool(inside.any()):
        bad = pos.reshape(-1, 2)[inside.reshape(-1)][0].tolist()
        raise ValueError(
            f"{name} {bad} lies inside the wall (|x − wall_x| ≤ {geometry.half_wall:g} outside the door)"
        )


def _slab(p: Tensor, d: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Parameter interval [t0, t1] where p + t·d lies in [lo, hi] (one axis, Liang–Barsky)."""
    moving = d != 0
    safe = torch.where(moving, d, torch.ones_like(d))
    ta, tb = (lo - p) / safe, (hi - p) / safe
    inside = (p >= lo) & (p <= hi)
    inf = torch.full_like(p, float("inf"))
    t0 = torch.where(moving, torch.minimum(ta, tb), torch.where(inside, -inf, inf))
    t1 = torch.where(moving, torch.maximum(ta, tb), torch.where(inside, inf, -inf))
    return t0, t1


def _enter_box(p: Tensor, d: Tensor, x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor) -> tuple[Tensor, Tensor]:
    """Time in [0, 1] at which the segment p → p + d enters the box (inf if never) and the
    axis (0: x, 1: y) of the face it enters through."""
    tx0, tx1 = _slab(p[:, 0], d[:, 0], x0, x1)
    ty0, ty1 = _slab(p[:, 1], d[:, 1], y0, y1)
    t_enter = torch.maximum(tx0, ty0)
    t_exit = torch.minimum(tx1, ty1)
    hit = (t_enter <= t_exit) & (t_enter >= 0) & (t_enter <= 1)
    return torch.where(hit, t_enter, torch.full_like(t_enter, float("inf"))), (ty0 > tx0).long()


def step_positions(
    pos: Tensor,
    action: Tensor,
    wall_x: Tensor,
    door_y: Tensor,
    *,
    geometry: RoomsGeometry = GEOMETRY,
    bounce_std: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One physics step for N dots at once: pos, action (N, 2); wall_x, door_y (N,).

    Vectorised: the contact time with the two jambs (slab intersection) and with the
    arena's border (exit time), the earliest wins; no Python loop over dots."""
    g, h = geometry, geometry.half_wall
    pos, action = pos.float(), action.float()
    wall_x, door_y = wall_x.to(pos), door_y.to(pos)
    lo, hi = torch.full_like(wall_x, g.lo), torch.full_like(wall_x, g.hi)
    t_a, axis_a = _enter_box(pos, action, wall_x - h, wall_x + h, lo, door_y - g.door_half)
    t_b, axis_b = _enter_box(pos, action, wall_x - h, wall_x + h, door_y + g.door_half, hi)
    # leaving the arena: per axis, the time the moving coordinate reaches its border
    moving = action != 0
    target = torch.where(action > 0, torch.full_like(pos, g.hi), torch.full_like(pos, g.lo))
    t_out = torch.where(
        moving,
        (target - pos) / torch.where(moving, action, torch.ones_like(action)),
        torch.full_like(pos, float("inf")),
    ).clamp(min=0)
    t_c, axis_c = t_out.min(-1)
    t_c = torch.where(t_c <= 1, t_c, torch.full_like(t_c, float("inf")))
    times = torch.stack([t_a, t_b, t_c], -1)
    axes = torch.stack([axis_a, axis_b, axis_c], -1)
    t, which = times.min(-1)
    hit = torch.isfinite(t)
    axis = axes.gather(-1, which.unsqueeze(-1)).squeeze(-1)
    contact = pos + torch.where(hit, t, torch.ones_like(t)).unsqueeze(-1) * action
    if not bool(hit.any()):
        return contact
    normal = torch.zeros_like(pos)
    normal.scatter_(-1, axis.unsqueeze(-1), -torch.sign(action.gather(-1, axis.unsqueeze(-1))))
    if bounce_std > 0:
        noise = torch.randn(pos.shape, generator=generator, dtype=pos.dtype) * bounce_std
    else:
        noise = torch.zeros_like(pos)
    along = (noise * normal).sum(-1, keepdim=True)
    bounced = contact + noise - along * normal + along.abs() * normal
    fallback = contact + _MARGIN * normal
    bad = in_wall(bounced, wall_x, door_y, g) | _crosses_jamb(contact, bounced, wall_x, door_y, g)
    bounced = torch.where(bad.unsqueeze(-1), fallback, bounced)
    bounced = bounced.clamp(g.lo + _MARGIN, g.hi - _MARGIN)
    return torch.where(hit.unsqueeze(-1), bounced, contact)


def stopped(before: Tensor, after: Tensor, action: Tensor, tol: float = 1e-3) -> Tensor:
    """Which steps met a wall or the border (bool, the batch shape): a free step moves the dot
    by its action exactly, a stopped one ends at the contact and bounces off
    (:func:`step_positions`), so ‖(after − before) − action‖ > ``tol``."""
    return ((after - before) - action).norm(dim=-1) > tol


def _crosses_jamb(p: Tensor, q: Tensor, wall_x: Tensor, door_y: Tensor, g: RoomsGeometry) -> Tensor:
    """Whether the segment p → q passes through a jamb (used to reject a bounce)."""
    h = g.half_wall
    d = q - p
    lo, hi = torch.full_like(wall_x, g.lo - 1), torch.full_like(wall_x, g.hi + 1)
    t_a, _ = _enter_box(p, d, wall_x - h, wall_x + h, lo, door_y - g.door_half)
    t_b, _ = _enter_box(p, d, wall_x - h, wall_x + h, door_y + g.door_half, hi)
    return torch.isfinite(t_a) | torch.isfinite(t_b)


def rollout_positions(
    start: Tensor,
    actions: Tensor,
    wall_x: Tensor,
    door_y: Tensor,
    *,
    geometry: RoomsGeometry = GEOMETRY,
    bounce_std: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Positions (N, T + 1, 2) visited from ``start`` (N, 2) under ``actions`` (N, T, 2)."""
    positions = [start.float()]
    for t in range(actions.shape[1]):  # time is sequential; the N dots are one batch
        positions.append(
            step_positions(
                positions[-1],
                actions[:, t],
                wall_x,
                door_y,
                geometry=geometry,
                bounce_std=bounce_std,
                generator=generator,
            )
        )
    return torch.stack(positions, 1)


def _coverage(centres: Tensor, pixel: float, a: Tensor, b: Tensor) -> Tensor:
    """Fraction of each pixel [c − pixel/2, c + pixel/2] covered by [a, b]: (N, S)."""
    left = torch.maximum(centres - pixel / 2, a.unsqueeze(-1))
    right = torch.minimum(centres + pixel / 2, b.unsqueeze(-1))
    return (right - left).clamp(min=0) / pixel


def render_walls(
    wall_x: Tensor, door_y: Tensor, image_size: int, geometry: RoomsGeometry = GEOMETRY
) -> Tensor:
    """Wall channel (N, S, S): the border lines and the middle wall minus the door, each
    pixel valued by the fraction of its area inside a wall (exactly 0/1 at 65 px)."""
    g = geometry
    wall_x, door_y = wall_x.float().reshape(-1), door_y.float().reshape(-1)
    n = wall_x.shape[0]
    pixel = (g.size - 1) / (image_size - 1)
    centres = torch.arange(image_size, dtype=torch.float32, device=wall_x.device) * pixel
    w = g.half_wall + 0.5
    column = _coverage(centres, pixel, wall_x - w, wall_x + w)  # (N, S) over x
    door = _coverage(centres, pixel, door_y - g.door_half - 0.5, door_y + g.door_half + 0.5)  # over y
    middle = (1 - door).unsqueeze(-1) * column.unsqueeze(-2)  # [y, x]
    line = lambda c: _coverage(centres, pixel, torch.full((n,), c - 0.5), torch.full((n,), c + 0.5))  # noqa: E731
    border = torch.maximum(line(g.lo), line(g.hi))  # (N, S)
    ones = torch.ones(n, image_size, dtype=torch.float32, device=wall_x.device)
    frame = torch.maximum(
        border.unsqueeze(-1) * ones.unsqueeze(-2), ones.unsqueeze(-1) * border.unsqueeze(-2)
    )
    return torch.maximum(middle, frame)


def dot_std(image_size: int, geometry: RoomsGeometry = GEOMETRY) -> float:
    """The dot's std in world units at ``image_size``: ``dot_std`` at full size; below it,
    widened by half a pixel in quadrature, sqrt(σ² + (p/2)²) with p the pixel size in world
    units — the anti-aliasing blur of a downsampled image (1.64 at 33 px instead of 1.3,
    where an undersampled 0.65 px dot would make the image jump between pixel positions)."""
    pixel = (geometry.size - 1) / (image_size - 1)
    return geometry.dot_std if pixel <= 1 else float((geometry.dot_std**2 + (pixel / 2) ** 2) ** 0.5)


def render_dots(pos: Tensor, image_size: int, geometry: RoomsGeometry = GEOMETRY) -> Tensor:
    """Dot channel (..., S, S): exp(−‖c − p‖² / (2 σ²)) at every pixel centre c (world units),
    σ = :func:`dot_std`."""
    pixel = (geometry.size - 1) / (image_size - 1)
    centres = torch.arange(image_size, dtype=torch.float32, device=pos.device) * pixel
    scale = 2 * dot_std(image_size, geometry) ** 2
    gx = torch.exp(-((centres - pos[..., 0:1].float()) ** 2) / scale)
    gy = torch.exp(-((centres - pos[..., 1:2].float()) ** 2) / scale)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def render(
    pos: Tensor, wall_x: Tensor, door_y: Tensor, image_size: int = 65, geometry: RoomsGeometry = GEOMETRY
) -> Tensor:
    """Observations: positions (N, 2) or (N, T, 2) → (N, [T,] 2, S, S) float32 in [0, 1]."""
    if image_size < 9:
        raise ValueError(f"image_size must be at least 9, got {image_size}")
    dots = render_dots(pos, image_size, geometry)
    walls = render_walls(wall_x, door_y, image_size, geometry)
    if pos.dim() == 3:
        walls = walls.unsqueeze(1).expand(-1, pos.shape[1], -1, -1)
    return torch.stack([dots, walls], -3)


def sample_layouts(
    n: int, rng: np.random.Generator, *, fixed: bool = False, geometry: RoomsGeometry = GEOMETRY
) -> tuple[Tensor, Tensor]:
    """``n`` walls: (wall_x, door_y) integers uniform over their ranges, or the fixed wall."""
    if fixed:
        wx, dy = geometry.fixed_wall
        return torch.full((n,), float(wx)), torch.full((n,), float(dy))
    (w0, w1), (d0, d1) = geometry.wall_range, geometry.door_range
    return (
        torch.from_numpy(rng.integers(w0, w1 + 1, n)).float(),
        torch.from_numpy(rng.integers(d0, d1 + 1, n)).float(),
    )


def sample_tasks(
    n: int, rng: np.random.Generator, *, fixed_wall: bool = False, geometry: RoomsGeometry = GEOMETRY
) -> dict[str, Tensor]:
    """``n`` planning tasks (the reference's ``level: normal``): a wall, then start and goal
    uniform in opposite rooms (2·dot_std from the walls), the direction flipped half the time."""
    g = geometry
    wall_x, door_y = sample_layouts(n, rng, fixed=fixed_wall, geometry=g)
    pad = 2 * g.dot_std
    border_pad = g.lo + pad
    left_hi, right_lo = wall_x - g.half_wall - pad, wall_x + g.half_wall + pad
    u = torch.from_numpy(rng.random((n, 4))).float()
    start_x = border_pad + u[:, 0] * (left_hi - border_pad)
    goal_x = right_lo + u[:, 1] * (g.size - 1 - border_pad - right_lo)
    y_span = g.size - 1 - 2 * border_pad
    start_y, goal_y = border_pad + u[:, 2] * y_span, border_pad + u[:, 3] * y_span
    flip = torch.from_numpy(rng.random(n) < 0.5)
    start = torch.stack([torch.where(flip, goal_x, start_x), start_y], -1)
    goal = torch.stack([torch.where(flip, start_x, goal_x), goal_y], -1)
    return {"start": start, "goal": goal, "wall_x": wall_x, "door_y": door_y}


def detour(tasks: dict[str, Tensor]) -> Tensor:
    """How far out of its way a task sends the dot: the length of the path from start to
    goal through the door's centre (wall_x, door_y) minus the straight line,
    ‖s − d‖ + ‖d − g‖ − ‖s − g‖ ≥ 0 (world units). Near 0 when the straight line passes
    through the door; a planner that walks through the wall fails the tasks with a large
    detour (docs/jepa.md)."""
    door = torch.stack([tasks["wall_x"], tasks["door_y"]], -1).to(tasks["start"].dtype)
    start, goal = tasks["start"], tasks["goal"]
    via = (start - door).norm(dim=-1) + (door - goal).norm(dim=-1)
    return (via - (start - goal).norm(dim=-1)).clamp(min=0)


DETOUR_BINS = (3.0, 10.0)  # the classes of ``success_by_detour``: < 3, 3–10, ≥ 10 world units


def success_by_detour(successes: Tensor, detours: Tensor, bins: tuple[float, ...] = DETOUR_BINS) -> dict:
    """Success % and task count per detour class (edges ``bins``), e.g. ``{"< 3": {"success":
    88.9, "tasks": 9}, "3–10": …, "≥ 10": …}``; an empty class has success ``None``."""
    edges = [0.0, *bins, float("inf")]
    out = {}
    for lo, hi in itertools.pairwise(edges):
        name = f"< {hi:g}" if lo == 0 else (f"≥ {lo:g}" if hi == float("inf") else f"{lo:g}–{hi:g}")
        inside = (detours >= lo) & (detours < hi)
        count = int(inside.sum())
        rate = float(successes[inside].float().mean()) * 100 if count else None
        out[name] = {"success": rate, "tasks": count}
    return out


def clip_norm(actions: Tensor, max_norm: float) -> Tensor:
    """Scale every action (..., 2) whose norm exceeds ``max_norm`` back onto the disc."""
    norm = actions.norm(dim=-1, keepdim=True)
    return actions * torch.clamp(max_norm / norm.clamp(min=1e-12), max=1.0)


def success(final: Tensor, goal: Tensor, geometry: RoomsGeometry = GEOMETRY) -> Tensor:
    """The protocol's success test: ‖final − goal‖ < success_radius (the reference: 4.5 px)."""
    return (final - goal).norm(dim=-1) < geometry.success_radius
