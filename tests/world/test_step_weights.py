"""``forward_model_loss(step_weights="harmonic")``: the unroll's steps weighted by ``1/t``
(normalised); checked against the per-step losses recovered from the uniform loss of the
unroll's first k steps, in both unroll frames; ``uniform`` is the plain mean."""

from __future__ import annotations

import pytest
import torch

from genoise.recipes.world import validate
from genoise.world.forward import forward_model_loss, unroll_step_weights
from tests.world.test_reference_unroll import batch, first_steps, model  # noqa: F401 (fixture)


def test_harmonic_weights_sum_to_one_and_fall_as_one_over_t() -> None:
    w = unroll_step_weights(10, "harmonic")
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    torch.testing.assert_close(w[0] / w, torch.arange(1, 11, dtype=torch.float32))
    assert float(w[0]) == pytest.approx(1 / sum(1 / t for t in range(1, 11)))
    assert unroll_step_weights(10, "uniform") is None
    with pytest.raises(ValueError, match="step_weights must be one of"):
        unroll_step_weights(3, "linear")


@pytest.mark.parametrize("frame", ["ego", "reference"])
def test_the_harmonic_loss_weights_each_steps_loss(batch, frame) -> None:  # noqa: F811
    """Step t's loss l_t = t·L_t − (t−1)·L_{t−1}, from the uniform losses L_k of the first k
    steps (a deterministic model: the unroll of k steps is the start of the unroll of n)."""
    m = model(True)
    n = batch["actions"].shape[1]
    with torch.no_grad():
        prefix = [forward_model_loss(m, first_steps(batch, k), unroll_frame=frame) for k in range(1, n + 1)]
    w = unroll_step_weights(n, "harmonic")
    weighted = forward_model_loss(m, batch, unroll_frame=frame, step_weights="harmonic")
    for key in ("image_mse", "state_mse"):
        totals = [0.0] + [k * p[key].item() for k, p in enumerate(prefix, 1)]
        per_step = torch.diff(torch.tensor(totals, dtype=torch.float64))
        torch.testing.assert_close(weighted[key].detach(), (per_step * w).sum().float(), rtol=1e-4, atol=1e-9)
        if key == "image_mse":  # (the kinematic ego's states are exact)
            assert per_step[-1] > 1.5 * per_step[0]  # the error grows along the unroll: the weights matter
    uniform = forward_model_loss(m, batch, unroll_frame=frame)
    assert weighted["image_mse"].item() < uniform["image_mse"].item()


def test_uniform_weights_are_the_plain_mean(batch) -> None:  # noqa: F811
    m = model(True, nz=2).train()
    torch.manual_seed(5)
    generator = torch.Generator().manual_seed(3)
    explicit = forward_model_loss(m, batch, generator=generator, step_weights="uniform")
    torch.manual_seed(5)
    default = forward_model_loss(m, batch, generator=torch.Generator().manual_seed(3))
    for key in ("loss", "image_mse", "state_mse", "kl"):
        assert torch.equal(explicit[key], default[key])


def test_an_unknown_weighting_is_refused(batch) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="step_weights must be one of"):
        forward_model_loss(model(True), batch, step_weights="late")
    validate({"ego_kinematics": True, "step_weights": "harmonic"})  # a known value passes
