"""Forward models: training signal, rollouts, gradients vs finite differences,
uncertainty, checkpoints."""

from __future__ import annotations

import pytest
import torch

from genoise.world.checkpoints import load_forward_model, save_forward_model
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, forward_model_loss, prediction_error, rollout
from genoise.world.raster import RasterSpec
from genoise.world.uncertainty import predicted_cost, uncertainty_cost
from tests.world.conftest import SPEC


@pytest.fixture(scope="module")
def data(traffic_root):
    return TrafficDataset(traffic_root, "train", history=2, n_future=3, raster=SPEC)


def small_model(nz: int = 0, dropout: float = 0.1) -> ForwardModel:
    torch.manual_seed(0)
    return ForwardModel(history=2, raster=SPEC, nz=nz, width=4, hidden=32, dropout=dropout)


@pytest.mark.parametrize("nz", [0, 4])
def test_training_reduces_the_prediction_loss(data, nz: int) -> None:
    model = small_model(nz)
    generator = torch.Generator().manual_seed(0)
    batch = data.sample_batch(32, generator)
    model.set_normalisation(batch["states"].reshape(-1, 3), batch["actions"].reshape(-1, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = forward_model_loss(model, batch, generator=generator)
        optimiser.zero_grad()
        loss["loss"].backward()
        optimiser.step()
        losses.append(loss["loss"].item())
    assert losses[-1] < 0.5 * losses[0]
    assert loss["kl"].item() >= 0 and (nz > 0 or loss["kl"].item() == 0)
    errors = prediction_error(model, batch, generator)
    assert errors["model"].shape == (3,) and errors["copy_last"].shape == (3,)


def test_per_sample_errors_average_to_the_error_vs_horizon(data) -> None:
    """``errors_per_sample`` scores the same batches and prior draws as ``error_vs_horizon``
    (equal generators), one row per sample: its mean over samples is that curve."""
    from genoise.world.train import error_vs_horizon, errors_per_sample

    model = small_model(nz=4)
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)  # predicts something
    def seeded(seed: int) -> dict:
        return {"n_batches": 3, "batch_size": 5, "generator": torch.Generator().manual_seed(seed)}

    curve = error_vs_horizon(model, data, **seeded(7))
    rows = errors_per_sample(model, data, **seeded(7))
    assert rows["model"].shape == (15, 3) and rows["state_model"].shape == (15, 3)
    for key in ("model", "copy_last", "state_model"):
        torch.testing.assert_close(rows[key].mean(0), torch.tensor(curve[key]), rtol=1e-5, atol=1e-9)
    other = errors_per_sample(model, data, **seeded(8))
    assert not torch.equal(other["copy_last"], rows["copy_last"])  # other batches


def test_latent_dropout_one_means_the_latent_is_ignored(data) -> None:
    model = small_model(nz=4, dropout=0.0).eval()
    batch = data.sample_batch(8, torch.Generator().manual_seed(1))
    loss = forward_model_loss(model, batch, z_dropout=1.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images, _ = rollout(model, batch["images"], batch["states"], batch["actions"], torch.zeros(8, 3, 4))
    assert loss["image_mse"].item() == pytest.approx(
        float((images - batch["target_images"]).pow(2).mean()), rel=1e-5
    )


@pytest.mark.parametrize("nz", [0, 3])
def test_rollout_cost_gradient_matches_finite_differences(data, nz: int) -> None:
    model = small_model(nz).double().eval()
    batch = {k: v.double() for k, v in data.get_batch(torch.tensor([5, 40])).items()}
    z = (
        None
        if nz == 0
        else torch.randn(2, 3, nz, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    config = CostConfig(lateral_reach=3.0)

    def cost(actions: torch.Tensor) -> torch.Tensor:
        return predicted_cost(model, batch["images"], batch["states"], actions, z, config)["total"]

    actions = batch["actions"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(cost, (actions,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_uncertainty_is_a_differentiable_dropout_variance(data) -> None:
    batch = data.get_batch(torch.arange(4))
    model = small_model(dropout=0.3).eval()
    actions = batch["actions"].clone().requires_grad_(True)
    torch.manual_seed(0)
    u = uncertainty_cost(model, batch["images"], batch["states"], actions, n_samples=6)
    assert u.shape == (4,) and bool((u > 0).all())
    (grad,) = torch.autograd.grad(u.sum(), actions)
    assert float(grad.abs().sum()) > 0
    assert not model.training  # dropout was switched on for the call only
    without_dropout = small_model(dropout=0.0)
    u0 = uncertainty_cost(without_dropout, batch["images"], batch["states"], batch["actions"], n_samples=3)
    assert u0.abs().max().item() < 1e-10  # identical masks: no variance
    with pytest.raises(ValueError, match="n_samples"):
        uncertainty_cost(model, batch["images"], batch["states"], actions, n_samples=1)


def test_checkpoint_round_trip_and_observation_mismatch(data, tmp_path) -> None:
    model = small_model(nz=2).eval()
    path = tmp_path / "fm.pt"
    save_forward_model(model, path)
    loaded = load_forward_model(path, expect_obs={"obs_mode": "raster"}).eval()
    batch = data.get_batch(torch.arange(3))
    z = torch.zeros(3, 3, 2)
    with torch.no_grad():
        a = rollout(model, batch["images"], batch["states"], batch["actions"], z)[0]
        b = rollout(loaded, batch["images"], batch["states"], batch["actions"], z)[0]
    assert torch.equal(a, b)
    with pytest.raises(
        ValueError, match=r"trained for obs_mode='raster' but the environment gives obs_mode='vector'"
    ):
        load_forward_model(path, expect_obs={"obs_mode": "vector"})


def test_raster_shape_must_suit_the_convnet() -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        ForwardModel(raster=RasterSpec(shape=(20, 6)))


def test_conv_encoder_maps_rasters_to_features() -> None:
    from genoise.world.forward import conv_encoder

    encoder = conv_encoder(6, width=4, shape=(16, 8), out_features=10)
    assert encoder(torch.rand(3, 6, 16, 8)).shape == (3, 10)
    assert encoder[1].in_features == 2 * 4 * (16 // 8) * (8 // 8)  # three stride-2 convolutions
    with pytest.raises(ValueError, match="multiples of 8"):
        conv_encoder(3, 4, (12, 8), 10)
