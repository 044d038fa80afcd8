"""Video losses and metrics against hand-computed cases, kornia and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from kornia.metrics import psnr as kornia_psnr
from kornia.metrics import ssim as kornia_ssim

from genoise.video.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    gradient_difference_loss,
    lp_loss,
)
from genoise.video.metrics import frame_mae, frame_mse, moving_mask, psnr, sharpness, ssim


def test_gdl_on_a_hand_computed_case() -> None:
    target = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    pred = torch.tensor([[0.0, 0.5], [0.0, 0.5]])
    # vertical |differences|: target 0, 0; pred 0, 0 -> 0; horizontal: target 1, 1; pred 0.5, 0.5 -> 0.5
    assert float(gradient_difference_loss(pred, target, alpha=1)) == pytest.approx(0.5)
    assert float(gradient_difference_loss(pred, target, alpha=2)) == pytest.approx(0.25)
    # a shifted copy has the same gradient magnitudes where both are flat: GDL ignores a constant
    assert float(gradient_difference_loss(target + 0.3, target)) == pytest.approx(0.0, abs=1e-6)


def test_gdl_penalises_blur_that_l2_barely_sees() -> None:
    sharp = torch.zeros(1, 1, 16, 16)
    sharp[..., 4:12, 4:12] = 1.0
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    assert float(gradient_difference_loss(blurred, sharp)) > 0
    assert float(gradient_difference_loss(sharp, sharp)) == 0.0


def test_lp_loss_matches_its_definition_and_refuses_shape_mismatch() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 4, generator=g), torch.rand(3, 4, generator=g)
    assert float(lp_loss(a, b, 2)) == pytest.approx(float(((a - b) ** 2).mean()))
    assert float(lp_loss(a, b, 1)) == pytest.approx(float((a - b).abs().mean()))
    assert float(lp_loss(a, b, 3)) == pytest.approx(float((a - b).abs().pow(3).mean()))
    with pytest.raises(ValueError, match="differ in shape"):
        lp_loss(a, b[:2])


def test_sum_reduction_is_the_papers_per_sample_norm_averaged_over_the_batch() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 2, 5, 6, generator=g), torch.rand(3, 2, 5, 6, generator=g)
    for p in (1, 2, 3):
        per_sample = [float((a[n] - b[n]).abs().pow(p).sum()) for n in range(3)]
        assert float(lp_loss(a, b, p, "sum")) == pytest.approx(sum(per_sample) / 3, rel=1e-6)
    # GDL: Σ over each sample's vertical and horizontal gradient maps, by a loop over pixels
    expected = 0.0
    for n in range(3):
        for c in range(2):
            y, t = a[n, c], b[n, c]
            for i in range(5):
                for j in range(6):
                    if i:
                        expected += abs(abs(t[i, j] - t[i - 1, j]) - abs(y[i, j] - y[i - 1, j]))
                    if j:
                        expected += abs(abs(t[i, j] - t[i, j - 1]) - abs(y[i, j] - y[i, j - 1]))
    assert float(gradient_difference_loss(a, b, 1.0, "sum")) == pytest.approx(float(expected) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        lp_loss(a, b, 3, "max")


def test_adversarial_losses_are_the_binary_cross_entropies() -> None:
    real, fake = [torch.tensor([0.0, 2.0])], [torch.tensor([-1.0, 1.0])]
    expected = (-math.log(0.5) - math.log(1 / (1 + math.exp(-2)))) / 2 + (
        -math.log(1 - 1 / (1 + math.exp(1))) - math.log(1 - 1 / (1 + math.exp(-1)))
    ) / 2
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)
    assert float(generator_adversarial_loss(fake)) == pytest.approx(
        (-math.log(1 / (1 + math.exp(1))) - math.log(1 / (1 + math.exp(-1)))) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="one per scale"):
        discriminator_loss(real, fake + fake)


def _frames(seed: int = 0, shape=(2, 3, 1, 16, 16)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    return (target + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1), target


def test_psnr_matches_kornia_per_frame_and_a_closed_form() -> None:
    pred, target = _frames()
    ours = psnr(pred, target)
    for b in range(2):
        for t in range(3):
            expected = float(kornia_psnr(pred[b, t], target[b, t], 1.0))
            assert float(ours[b, t]) == pytest.approx(expected, rel=1e-5)
    constant = torch.full((1, 1, 1, 4, 4), 0.5)
    assert float(psnr(constant + 0.1, constant)) == pytest.approx(20.0, rel=1e-5)  # 10 log10(1 / 0.01)


def test_ssim_matches_kornia_and_is_one_on_identical_frames() -> None:
    pred, target = _frames(1)
    expected = kornia_ssim(pred.flatten(0, 1), target.flatten(0, 1), 11).mean((1, 2, 3)).reshape(2, 3)
    assert torch.allclose(ssim(pred, target), expected, atol=1e-6)
    assert torch.allclose(ssim(target, target), torch.ones(2, 3), atol=1e-5)


def test_sharpness_on_a_hand_computed_case() -> None:
    target = torch.zeros(1, 1, 1, 3, 3)
    target[..., 1, 1] = 1.0
    pred = torch.zeros_like(target)
    # on the 2 x 2 crop (i, j >= 1): ∇i + ∇j of the target is 2 at (1,1), 1 at (1,2) and (2,1), 0 at (2,2)
    expected = 10 * math.log10(1 / ((2 + 1 + 1 + 0) / 4))
    assert float(sharpness(pred, target)) == pytest.approx(expected)
    assert math.isinf(float(sharpness(target, target)))


def test_summed_errors_and_masks() -> None:
    pred, target = _frames(2)
    assert torch.allclose(frame_mse(pred, target), ((pred - target) ** 2).sum((2, 3, 4)))
    assert torch.allclose(frame_mae(pred, target), (pred - target).abs().sum((2, 3, 4)))
    mask = torch.zeros(2, 3, 16, 16, dtype=torch.bool)
    mask[..., :8, :] = True
    top = (slice(None), slice(None), slice(None), slice(0, 8))
    assert torch.allclose(psnr(pred, target, mask), psnr(pred[top], target[top]), atol=1e-5)
    assert torch.allclose(frame_mse(pred, target, mask), frame_mse(pred[top], target[top]))
    with pytest.raises(ValueError, match="mask must be bool"):
        psnr(pred, target, mask.float())
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(pred, target[:, :2])


def test_moving_mask_accumulates_from_the_last_observed_frame() -> None:
    digits = torch.zeros(1, 3, 1, 4, 4, dtype=torch.bool)
    digits[0, 0, 0, 0, 0] = True  # last observed frame
    digits[0, 1, 0, 1, 1] = True  # first target
    digits[0, 2, 0, 2, 2] = True  # second target
    moving = moving_mask(digits)
    assert moving.shape == (1, 2, 4, 4)
    assert moving[0, 0].nonzero().tolist() == [[0, 0], [1, 1]]
    assert moving[0, 1].nonzero().tolist() == [[0, 0], [1, 1], [2, 2]]
    with pytest.raises(ValueError, match="1 \\+ T"):
        moving_mask(digits[:, :1])


def test_closest_draw_keeps_the_draw_nearest_the_truth_per_sequence() -> None:
    from genoise.video.evaluate import closest_draw

    target = torch.zeros(2, 1, 1, 2, 2)
    draws = torch.stack([torch.full_like(target, 0.5), torch.full_like(target, 0.1)])
    draws[0, 1] = 0.05  # sequence 1: the first draw is closer
    chosen = closest_draw(draws, target)
    assert torch.equal(chosen[0], draws[1, 0]) and torch.equal(chosen[1], draws[0, 1])


def test_evaluate_scores_baselines_per_step_and_refuses_short_sequences() -> None:
    from genoise.video.evaluate import blank_frame, copy_last, evaluate, mean_frame

    frames = torch.zeros(3, 6, 1, 8, 8)
    frames[:, :, :, 2:4, 2:4] = 1.0  # a static square: copying the last frame is perfect
    masks = (frames > 0).expand(-1, -1, 2, -1, -1).clone()
    scores = evaluate(copy_last, frames, masks, context=4, steps=2)
    assert scores["mse"] == [0.0, 0.0] and scores["ssim"][0] == pytest.approx(1.0, abs=1e-5)
    black = evaluate(mean_frame(torch.zeros(1, 8, 8)), frames, masks, context=4, steps=2)
    assert black["mse"] == [4.0, 4.0] and black["moving_mse"] == [4.0, 4.0]
    assert black["moving_psnr"][0] == pytest.approx(0.0)  # every moving pixel off by 1
    assert evaluate(blank_frame, frames, masks, context=4, steps=2) == black
    with pytest.raises(ValueError, match="shorter than context"):
        evaluate(copy_last, frames, masks, context=4, steps=3)
