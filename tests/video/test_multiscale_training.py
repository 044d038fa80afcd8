"""The multi-scale generator and discriminator, the latent-variable predictor, and a short run
of every loss lowering the validation error."""

from __future__ import annotations

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
from genoise.video.train import VideoStep, load_predictor, reconstruction_loss


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


def test_sequences_shorter_than_context_plus_horizon_are_refused(pool) -> None:
    from genoise.video.train import SequenceBatches

    with pytest.raises(ValueError, match="shorter than context \\+ horizon = 4 \\+ 2"):
        SequenceBatches(pool, 2, context=4, horizon=2)  # the pool's sequences have 5 frames
