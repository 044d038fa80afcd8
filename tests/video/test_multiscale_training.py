"""The multi-scale generator and discriminator, the latent-variable predictor, and a short run
of every loss lowering the validation error."""

from __future__ import annotations

import re

import pytest
import torch

from genoise.data.moving_mnist import MovingMNIST, MovingMNISTConfig, fixed_sequences
from genoise.video import (
    LatentVideoPredictor,
    MultiScaleDiscriminator,
    MultiScaleGenerator,
    VideoLoss,
    rollout,
    train_predictor,
)
from genoise.video.train import VideoStep, build_predictor, load_predictor, reconstruction_loss


def test_generator_shapes_at_every_scale() -> None:
    model = MultiScaleGenerator(image_size=64, context=4, horizon=1, scales=4, width=4)
    frames = torch.rand(2, 4, 1, 64, 64)
    outs = model(frames, scales=True)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 1, s, s) for s in (8, 16, 32, 64)]
    assert model(frames).shape == (2, 1, 1, 64, 64)
    two = MultiScaleGenerator(image_size=32, context=3, horizon=2, scales=2, width=4)
    assert two(torch.rand(1, 3, 1, 32, 32)).shape == (1, 2, 1, 32, 32)
    assert rollout(two, torch.rand(1, 5, 1, 32, 32), 5).shape == (1, 5, 1, 32, 32)


def test_each_scale_refines_the_upsampled_coarser_prediction() -> None:
    model = MultiScaleGenerator(image_size=16, context=2, scales=2, width=4)
    for p in model.stages[1].parameters():  # the finest refinement does nothing
        torch.nn.init.zeros_(p)
    coarse, fine = model(torch.rand(1, 2, 1, 16, 16), scales=True)
    up = torch.nn.functional.interpolate(coarse[:, 0], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(fine[:, 0], up, atol=1e-6)


def test_eval_mode_clamps_to_the_unit_interval() -> None:
    model = MultiScaleGenerator(image_size=16, context=2, scales=2, width=4)
    with torch.no_grad():
        model.stages[0][-1].bias.fill_(5.0)
    frames = torch.rand(1, 2, 1, 16, 16)
    assert float(model(frames).detach().max()) > 1
    assert float(model.eval()(frames).detach().max()) == 1.0


def test_discriminator_gives_one_logit_per_scale() -> None:
    d = MultiScaleDiscriminator(image_size=32, context=4, horizon=1, scales=3, width=4)
    logits = d(torch.rand(5, 4, 1, 32, 32), torch.rand(5, 1, 1, 32, 32))
    assert [tuple(x.shape) for x in logits] == [(5,)] * 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.rand(2, 3, 1, 32, 32)), r"\(B, 4, 1, 32, 32\)"),
        (lambda m: m(torch.rand(2, 4, 3, 32, 32)), r"got \(2, 4, 3, 32, 32\)"),
        (lambda m: m(torch.rand(2, 4, 1, 28, 28)), r"got \(2, 4, 1, 28, 28\)"),
        (lambda m: m(torch.rand(2, 4, 1, 32, 32), z=torch.rand(2, 3)), "expects z"),
    ],
)
def test_bad_frames_get_one_line_errors(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call(MultiScaleGenerator(image_size=32, scales=2, width=4))


def test_bad_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="halved"):
        MultiScaleGenerator(image_size=30, scales=4)
    with pytest.raises(ValueError, match="width"):
        MultiScaleGenerator(width=0)


def test_latent_predictor_draws_different_futures_and_its_loss_has_the_kl() -> None:
    model = LatentVideoPredictor(image_size=32, scales=2, width=4, latent=3)
    frames, future = torch.rand(4, 4, 1, 32, 32), torch.rand(4, 1, 1, 32, 32)
    g = torch.Generator().manual_seed(0)
    a, b = model(frames, generator=g), model(frames, generator=g)
    assert a.shape == (4, 1, 1, 32, 32) and not torch.allclose(a, b)
    out = model.loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=0.0, beta=1.0)
    assert set(out) == {"loss", "reconstruction", "kl"}
    loss, reconstruction, kl = (out[key].detach() for key in ("loss", "reconstruction", "kl"))
    assert float(loss) == pytest.approx(float(reconstruction + kl), rel=1e-6)
    dropped = model.loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=1.0)
    assert float(dropped["kl"].detach()) == 0.0  # every z from the prior: no posterior to pay for


def test_latent_predictor_on_the_dynamic_filter_network_rebuilds_from_its_kwargs() -> None:
    model = LatentVideoPredictor(image_size=16, context=3, horizon=2, width=4, latent=2, backbone="dfn",
                                 hidden=8, window=2)
    assert model.kwargs == {"channels": 1, "image_size": 16, "context": 3, "horizon": 2, "width": 4,
                            "latent": 2, "backbone": "dfn", "hidden": 8, "window": 2}
    again = build_predictor("latent", **model.kwargs)
    again.load_state_dict(model.state_dict())
    frames, future, z = torch.rand(3, 3, 1, 16, 16), torch.rand(3, 2, 1, 16, 16), torch.randn(3, 2)
    assert torch.equal(model.eval()(frames, z), again.eval()(frames, z))
    # z moves the last frame's pixels: every predicted pixel is a convex combination of them
    assert float(model(frames, z).detach().max()) <= float(frames[:, -1].max()) + 1e-6
    out = model.train().loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=0.0, beta=1.0)
    assert float(out["loss"].detach()) == pytest.approx(float((out["reconstruction"] + out["kl"]).detach()),
                                                        rel=1e-6)
    assert "scales" not in model.kwargs and "backbone" not in LatentVideoPredictor(image_size=16, scales=2,
                                                                                  width=4).kwargs
    with pytest.raises(ValueError, match="backbone"):
        LatentVideoPredictor(backbone="convlstm")
    with pytest.raises(ValueError, match="latent_map needs backbone='dfn'"):
        LatentVideoPredictor(latent_map=True)


def test_a_map_of_z_gives_each_region_its_own_latent_and_its_kl_sums_over_the_map() -> None:
    model = LatentVideoPredictor(image_size=16, context=3, horizon=2, width=4, latent=2, backbone="dfn",
                                 hidden=8, window=2, latent_map=True)
    assert model.latent_shape == (2, 4, 4) and model.kwargs["latent_map"] is True
    g = torch.Generator().manual_seed(0)
    assert model.prior_sample(5, g).shape == (5, 2, 4, 4)
    frames, future = torch.rand(3, 3, 1, 16, 16), torch.rand(3, 2, 1, 16, 16)
    mean, log_var = model.encode(frames, future)
    assert mean.shape == log_var.shape == (3, 2, 4, 4)
    expected = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum((1, 2, 3)).mean()
    out = model.loss(frames, future, g, latent_dropout=0.0, beta=1.0)
    assert float(out["kl"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    z = torch.zeros(3, 2, 4, 4)
    z_corner = z.clone()
    z_corner[:, :, 0, 0] = 3.0  # a latent in one region changes the prediction
    assert not torch.allclose(model.eval()(frames, z), model(frames, z_corner))
    with pytest.raises(ValueError, match=re.escape("expects z (B, 2, 4, 4), got (3, 2)")):
        model(frames, torch.zeros(3, 2))
    dropped = model.train().loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=1.0)
    assert float(dropped["kl"].detach()) == 0.0


@pytest.fixture(scope="module")
def pool() -> MovingMNIST:
    g = torch.Generator().manual_seed(0)
    digits = torch.zeros(40, 28, 28, dtype=torch.uint8)
    digits[:, 8:20, 10:18] = (torch.rand(40, 12, 8, generator=g) * 155 + 100).to(torch.uint8)
    return MovingMNIST(digits, MovingMNISTConfig(length=5, image_size=32, num_digits=1))


def _val_error(model, pool) -> float:
    frames, _ = fixed_sequences(pool.digits, pool.config, 32, "val")
    model.eval()
    with torch.no_grad():
        error = float((model(frames[:, :4]) - frames[:, 4:5]).pow(2).mean())
    model.train()
    return error


@pytest.mark.parametrize("loss", ["l2", "l1", "gdl", "adv", "adv_gdl", "latent"])
def test_a_short_run_of_each_loss_lowers_validation_error(pool, loss: str, tmp_path) -> None:
    torch.manual_seed(0)
    if loss == "latent":
        model = LatentVideoPredictor(image_size=32, scales=2, width=8, latent=2)
        name = "latent"
    else:
        model, name = MultiScaleGenerator(image_size=32, scales=2, width=8), "multiscale"
    before = _val_error(model, pool)
    train_predictor(model, name, pool, 60, loss=VideoLoss(loss=loss), batch_size=8, lr=3e-3, seed=0,
                    progress=False)
    after = _val_error(model, pool)
    assert after < 0.7 * before, (before, after)


def test_checkpoint_rebuilds_the_model_and_keeps_the_discriminator(pool, tmp_path) -> None:
    from genoise.train import Run, load_checkpoint

    model = MultiScaleGenerator(image_size=32, scales=2, width=4)
    run = Run(tmp_path, config={"seed": 0}, progress=False)
    train_predictor(model, "multiscale", pool, 3, loss=VideoLoss(loss="adv"), batch_size=2, run=run)
    again, card = load_predictor(tmp_path / "last.pt")
    frames = torch.rand(1, 4, 1, 32, 32)
    assert torch.equal(again(frames), model.eval()(frames)) and card["loss"]["loss"] == "adv"
    state = load_checkpoint(tmp_path / "last.pt")
    assert {"discriminator", "discriminator_optimizer"} <= set(state["extra_state"])


def test_adversarial_step_needs_a_discriminator_and_reconstruction_sums_scales() -> None:
    with pytest.raises(ValueError, match="discriminator"):
        VideoStep(VideoLoss(loss="adv"))
    future = torch.rand(1, 1, 1, 16, 16)
    small = torch.nn.functional.interpolate(future[:, 0], size=(8, 8), mode="area")[:, None]
    total = reconstruction_loss([small, future], future, VideoLoss(loss="l2"))
    assert float(total) == 0.0
    with pytest.raises(ValueError, match="loss"):
        VideoLoss(loss="l3")
    with pytest.raises(ValueError, match="reduction"):
        VideoLoss(reduction="max")


def test_sum_reduction_weighs_scales_by_their_pixels_and_the_adversarial_term_as_the_paper() -> None:
    """The paper's loss divided by one sample's elements: ℓ1 at the finest scale as the mean,
    a scale with a quarter of the pixels a quarter of the weight, and λ_adv per those elements."""
    g = torch.Generator().manual_seed(0)
    future = torch.rand(2, 1, 1, 16, 16, generator=g)
    fine = future + 0.1 * torch.rand(future.shape, generator=g)
    coarse = torch.rand(2, 1, 1, 8, 8, generator=g)
    coarse_target = torch.nn.functional.interpolate(future[:, 0], size=(8, 8), mode="area")[:, None]
    mean = reconstruction_loss([coarse, fine], future, VideoLoss(loss="l1"))
    summed = reconstruction_loss([coarse, fine], future, VideoLoss(loss="l1", reduction="sum"))
    l1_fine, l1_coarse = (fine - future).abs().mean(), (coarse - coarse_target).abs().mean()
    assert float(mean) == pytest.approx(float(l1_fine + l1_coarse), rel=1e-5)
    assert float(summed) == pytest.approx(float(l1_fine + l1_coarse / 4), rel=1e-5)
    model = MultiScaleGenerator(image_size=16, scales=2, width=4)
    discriminator = MultiScaleDiscriminator(1, 16, 4, 1, 2, 4)
    optimizer = torch.optim.Adam(discriminator.parameters())
    step = VideoStep(VideoLoss(loss="adv", reduction="sum"), discriminator, optimizer)
    out = step(model, (torch.rand(2, 4, 1, 16, 16, generator=g), future), g)
    added = float((out["loss"] - out["reconstruction"]).detach())
    assert added == pytest.approx(0.05 / 256 * float(out["adversarial"]), rel=1e-4)


def test_sequences_shorter_than_context_plus_horizon_are_refused(pool) -> None:
    from genoise.video.train import SequenceBatches

    with pytest.raises(ValueError, match="shorter than context \\+ horizon = 4 \\+ 2"):
        SequenceBatches(pool, 2, context=4, horizon=2)  # the pool's sequences have 5 frames
