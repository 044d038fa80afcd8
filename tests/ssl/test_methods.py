"""The uniform method surface: every method trains through one interface; EMA, momentum
schedule, MoCo queue, DeepCluster targets; bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from genoise.ssl.backbones import make_backbone
from genoise.ssl.base import cosine_momentum, ema_update
from genoise.ssl.contrastive import KeyQueue
from genoise.ssl.methods import METHODS, build_method

SMALL = {"proj_hidden": 32, "proj_dim": 16}
EXTRA = {"moco": {"queue_size": 64}, "swav": {"num_prototypes": 10}, "deepcluster": {"num_prototypes": 4},
         "byol": {"pred_hidden": 32}, "simsiam": {"pred_hidden": 8}, "lejepa": {"num_slices": 16}}


def _method(name: str, seed: int = 0):
    torch.manual_seed(seed)
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=16, width=8)
    return build_method(name, backbone, **SMALL, **EXTRA.get(name, {}))


def _views(generator, batch=8, n=2):
    return [torch.rand(batch, 1, 8, 8, generator=generator) for _ in range(n)]


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_gives_a_finite_loss_and_gradients_for_the_backbone(name, generator):
    method = _method(name)
    images = torch.rand(20, 1, 8, 8, generator=generator)
    method.prepare(images)
    views = _views(generator) + (_views(generator) if name in ("swav", "lejepa") else [])
    out = method(views, index=torch.arange(8))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.features.shape == (8, 16) and not out.features.requires_grad
    out.loss.backward()
    grads = [p.grad for p in method.backbone.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    method.update(1, 10)
    method.on_epoch_end(0)


@pytest.mark.parametrize("name", ["simclr", "vicreg", "lejepa"])
def test_method_loss_is_deterministic_for_a_seed(name, generator):
    """Same seed, same loss (bit for bit); another initialisation seed or other views give
    another loss, so the equality is not vacuous."""
    views = _views(generator)
    first = _method(name, seed=0)(views).loss.item()
    assert _method(name, seed=0)(views).loss.item() == first
    assert _method(name, seed=1)(views).loss.item() != first
    assert _method(name, seed=0)(_views(torch.Generator().manual_seed(1))).loss.item() != first


def test_ema_update_follows_the_closed_form():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = target.weight.detach().clone()
    ema_update(target, online, 0.9)
    torch.testing.assert_close(target.weight, 0.9 * before + 0.1 * online.weight.detach())
    ema_update(target, online, 0.0)
    torch.testing.assert_close(target.weight, online.weight.detach())


def test_byol_momentum_schedule_goes_from_base_to_one_by_cosine():
    values = [cosine_momentum(k, 100, 0.996) for k in range(101)]
    assert values[0] == pytest.approx(0.996) and values[-1] == pytest.approx(1.0)
    assert values[50] == pytest.approx(0.998)
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_byol_teacher_moves_toward_the_student_by_the_scheduled_momentum(generator):
    method = _method("byol")
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    teacher = [p.clone() for p in method.target_backbone.parameters()]
    method.update(0, 10)
    for t_new, t_old, s in zip(method.target_backbone.parameters(), teacher, method.backbone.parameters(),
                               strict=True):
        torch.testing.assert_close(t_new, 0.996 * t_old + 0.004 * s)
    assert all(not p.requires_grad for p in method.target_backbone.parameters())


def test_moco_queue_is_fifo_with_a_wrapping_pointer():
    queue = KeyQueue(5, 2)
    batches = [torch.full((2, 2), float(i)) for i in range(1, 4)]
    for b in batches:
        queue.enqueue(b)
    # slots 0-1 ← batch 1, 2-3 ← batch 2, 4 ← first row of batch 3, 0 ← second row (oldest overwritten)
    assert queue.keys[:, 0].tolist() == [3.0, 1.0, 2.0, 2.0, 3.0]
    assert int(queue.ptr) == 1
    assert queue.keys.shape == (5, 2)


def test_moco_enqueues_both_views_keys_each_training_step(generator):
    method = _method("moco")
    method(_views(generator))
    assert int(method.queue.ptr) == 16
    method.eval()
    method(_views(generator))
    assert int(method.queue.ptr) == 16  # evaluation does not touch the queue


def test_deepcluster_targets_are_kmeans_assignments_of_the_bank(generator):
    method = _method("deepcluster")
    method.prepare(torch.rand(40, 1, 8, 8, generator=generator))
    assert method.bank.shape == (40, 16) and method.targets.shape == (40,)
    sims = method.bank @ method.centroids.T
    assert torch.equal(sims.argmax(1), method.targets)


def test_deepcluster_without_index_or_prepare_is_refused(generator):
    method = _method("deepcluster")
    with pytest.raises(ValueError, match="prepare"):
        method(_views(generator), index=torch.arange(8))
    method.prepare(torch.rand(20, 1, 8, 8, generator=generator))
    with pytest.raises(ValueError, match="index"):
        method(_views(generator))


def test_unknown_method_name_is_refused():
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=16, width=8)
    with pytest.raises(ValueError, match="unknown SSL method 'vicregg'"):
        build_method("vicregg", backbone)


def test_unknown_method_argument_is_refused():
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=16, width=8)
    with pytest.raises(ValueError, match="bad argument for method 'simclr'"):
        build_method("simclr", backbone, temprature=0.1)


@pytest.mark.parametrize("name", ["vicreg", "swav", "byol"])
def test_projector_output_dimension_that_does_not_match_the_loss_is_refused(name, generator):
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=16, width=8)
    projector = nn.Linear(16, 12)
    projector.out_dim = 10  # claims 10: the loss heads (prototypes, predictor) are built for 10
    method = build_method(name, backbone, projector=projector)
    with pytest.raises(ValueError, match="projector output has 12 dims"):
        method(_views(generator))


@pytest.mark.parametrize("name", ["vicreg", "simclr", "barlowtwins"])
def test_batch_of_one_and_mismatched_views_are_refused(name, generator):
    method = _method(name)
    with pytest.raises(ValueError, match="batch size is 1"):
        method([torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)])
    with pytest.raises(ValueError, match="different shapes"):
        method([torch.rand(4, 1, 8, 8), torch.rand(3, 1, 8, 8)])
    with pytest.raises(ValueError, match="at least 2 views"):
        method([torch.rand(4, 1, 8, 8)])
