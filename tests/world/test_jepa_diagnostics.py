"""The wall diagnostics of a Two Rooms JEPA, on stand-in models whose answers are known: an
"encoder" that reads the dot's position off the image (its centroid), a probe that is the
identity in world units, and a predictor that either ignores the wall (z + a) or applies
the arena's physics."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from genoise.world.jepa_diagnostics import transition_errors, wall_hallucination, wall_states
from genoise.world.jepa_train import normalise_positions
from genoise.world.two_rooms import GEOMETRY, in_wall, step_positions
from genoise.world.two_rooms_data import RoomsDataConfig, generate_trajectories


class PositionModel(nn.Module):
    """z = the dot's (x, y) in world units; ``physics``: the predictor knows the walls."""

    def __init__(self, physics: bool, image_size: int = 65) -> None:
        super().__init__()
        self.config = SimpleNamespace(image_size=image_size)
        self.physics = physics
        self.layout: tuple[Tensor, Tensor] | None = None

    def encode(self, obs: Tensor) -> Tensor:
        dots = obs[..., 0, :, :]
        pixel = (GEOMETRY.size - 1) / (obs.shape[-1] - 1)
        centres = torch.arange(obs.shape[-1], dtype=obs.dtype) * pixel
        mass = dots.sum((-2, -1))
        x = (dots.sum(-2) * centres).sum(-1) / mass
        y = (dots.sum(-1) * centres).sum(-1) / mass
        return torch.stack([x, y], -1)

    def step(self, z: Tensor, action: Tensor) -> Tensor:
        if not self.physics:
            return z + action
        wall_x, door_y = self.layout
        return step_positions(z, action, wall_x, door_y, bounce_std=0.0)

    def unroll(self, z0: Tensor, actions: Tensor) -> Tensor:
        out, z = [], z0
        for t in range(actions.shape[-2]):
            z = self.step(z, actions[..., t, :])
            out.append(z)
        return torch.stack(out, -2)

    def represent(self, state: Tensor) -> Tensor:
        return state

    def probe(self, z: Tensor) -> Tensor:
        return normalise_positions(z)


def test_wall_states_face_the_wall_away_from_the_door() -> None:
    s = wall_states(500, 6.0, 15.0, np.random.default_rng(0))
    gap = (s["wall_x"] - s["start"][:, 0]) * s["heading"][:, 0] - GEOMETRY.half_wall
    assert torch.allclose(gap, torch.full_like(gap, 6.0))
    assert bool(((s["start"][:, 1] - s["door_y"]).abs() >= 15.0 - 1e-4).all())
    assert not bool(in_wall(s["start"], s["wall_x"], s["door_y"]).any())
    assert set(s["side"].tolist()) == {-1.0, 1.0}


def test_wall_states_refuse_a_clearance_larger_than_the_arena() -> None:
    with pytest.raises(ValueError, match="door_clearance=60"):
        wall_states(10, 6.0, 60.0, np.random.default_rng(0))


@pytest.mark.parametrize("speed", [1.0, 2.45])
def test_a_predictor_that_ignores_the_wall_hallucinates_every_push(speed: float) -> None:
    r = wall_hallucination(PositionModel(physics=False), n=100, speed=speed)
    assert r["true"] == 0.0 and r["encoder"] == 0.0
    assert r["model"] == 1.0
    assert r["model_overshoot"] == pytest.approx(12 * speed - 6.0, abs=0.3)


def test_a_predictor_with_the_physics_never_crosses() -> None:
    model = PositionModel(physics=True)
    s = wall_states(100, 6.0, 15.0, np.random.default_rng(0))
    model.layout = (s["wall_x"], s["door_y"])  # the same states wall_hallucination draws (seed 0)
    r = wall_hallucination(model, n=100, seed=0)
    assert r == {**r, "model": 0.0, "encoder": 0.0, "true": 0.0, "model_overshoot": 0.0}


def test_transition_errors_single_out_the_wall() -> None:
    data = generate_trajectories(RoomsDataConfig(n_trajectories=400, length=16, seed=3))
    r = transition_errors(PositionModel(physics=False), data, n=3000)
    assert r["wall_transitions"] > 20 and r["free_transitions"] > 2000
    # z + a is exact on free transitions (up to the centroid's rendering error near borders)
    assert r["free"] < 0.05 and r["wall"] > 0.2 and r["ratio"] > 100
