"""The learned prior p_ψ(z | x) of :class:`LatentVideoPredictor` (SVG-LP, Denton & Fergus 2018):
its KL against torch's closed form, that it reads the context and nothing else, its draws'
moments, where its gradients come from, checkpoints, and the recipe's key."""

from __future__ import annotations

import json

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genoise.cli import main
from genoise.data.moving_mnist import MovingMNIST, MovingMNISTConfig, fixed_sequences
from genoise.video import load_predictor
from genoise.video.evaluate import latent_information
from genoise.video.latent import LatentVideoPredictor, gaussian_kl
from genoise.video.train import VideoLoss, build_predictor, train_predictor


def _dfn(**kwargs) -> LatentVideoPredictor:
    return LatentVideoPredictor(image_size=16, context=3, horizon=2, width=4, latent=2, backbone="dfn",
                                hidden=8, window=2, **kwargs)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, 1, 16, 16, generator=g), torch.rand(4, 2, 1, 16, 16, generator=g)


def test_gaussian_kl_equals_torch_closed_form_summed_over_z() -> None:
    g = torch.Generator().manual_seed(0)
    mean, log_var, p_mean, p_log_var = (torch.randn(5, 3, 4, 4, generator=g) for _ in range(4))
    q, p = Normal(mean, (0.5 * log_var).exp()), Normal(p_mean, (0.5 * p_log_var).exp())
    expected = kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_kl(mean, log_var, p_mean, p_log_var), expected)
    standard = kl_divergence(q, Normal(torch.zeros_like(mean), torch.ones_like(mean))).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_kl(mean, log_var), standard)
    torch.testing.assert_close(gaussian_kl(mean, log_var, torch.zeros_like(mean), torch.zeros_like(mean)),
                               standard)


@pytest.mark.parametrize("latent_map", [False, True])
def test_the_loss_charges_the_kl_to_the_learned_prior_of_the_context(latent_map: bool) -> None:
    model = _dfn(latent_map=latent_map, prior="learned")
    frames, future = _batch()
    mean, log_var = model.encode(frames, future)
    p_mean, p_log_var = model.prior_params(frames)
    assert p_mean.shape == mean.shape == (4, *model.latent_shape)
    out = model.loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=0.0, beta=1.0)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()),
                             Normal(p_mean, (0.5 * p_log_var).exp())).flatten(1).sum(1).mean()
    assert float(out["kl"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    # not the KL to N(0, I): the prior is a function of the context
    assert float(out["kl"].detach()) != pytest.approx(float(gaussian_kl(mean, log_var).mean().detach()),
                                                      rel=1e-3)


def test_the_learned_prior_reads_the_context_and_never_the_future() -> None:
    model = _dfn(latent_map=True, prior="learned")
    frames, future = _batch()
    other_frames, other_future = _batch(1)
    p_mean = model.prior_params(frames)[0]
    assert not torch.allclose(model.prior_params(other_frames)[0], p_mean)
    assert model.prior[0].in_channels == 3  # context frames × channels: no room for the future
    # the posterior sees the future, the prior's draw for the same context does not move with it
    assert not torch.allclose(model.encode(frames, future)[0], model.encode(frames, other_future)[0])
    g = torch.Generator().manual_seed(3)
    draw = model.eval()(frames, generator=g)
    again = model(frames, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(draw, again)


def test_a_draw_from_the_learned_prior_has_its_mean_and_spread() -> None:
    model = _dfn(prior="learned")
    frames = _batch()[0][:1].expand(20000, -1, -1, -1, -1)
    with torch.no_grad():
        p_mean, p_log_var = model.prior_params(frames[:1])
        z = model.prior_sample(20000, torch.Generator().manual_seed(0), frames=frames)
    torch.testing.assert_close(z.mean(0), p_mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), (0.5 * p_log_var[0]).exp(), atol=0.03, rtol=0.03)
    with pytest.raises(ValueError, match="learned prior p\\(z \\| x\\) draws z from the context frames"):
        model.prior_sample(3)


def test_a_fixed_prior_has_no_prior_network_and_draws_standard_normals() -> None:
    model = _dfn()
    assert model.prior is None and model.prior_params(_batch()[0]) is None
    assert "prior" not in model.kwargs and not any(k.startswith("prior.") for k in model.state_dict())
    z = model.prior_sample(3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, torch.randn(3, 2, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="prior"):
        _dfn(prior="vamp")


def test_dropped_latents_are_drawn_from_the_learned_prior_and_train_it() -> None:
    """latent_dropout=1: no KL, every z a draw from p_ψ(z | x), so the reconstruction's gradient
    reaches ψ (through the reparameterised draw) and not the posterior."""
    model = _dfn(prior="learned")
    frames, future = _batch()
    out = model.loss(frames, future, torch.Generator().manual_seed(0), latent_dropout=1.0)
    assert float(out["kl"].detach()) == 0.0
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.posterior.parameters())


def test_a_checkpointed_learned_prior_comes_back_with_its_kwargs() -> None:
    model = _dfn(latent_map=True, prior="learned").eval()
    assert model.kwargs["prior"] == "learned"
    again = build_predictor("latent", **model.kwargs).eval()
    again.load_state_dict(model.state_dict())
    frames = _batch()[0]
    torch.testing.assert_close(model(frames, generator=torch.Generator().manual_seed(1)),
                               again(frames, generator=torch.Generator().manual_seed(1)))
    multiscale = LatentVideoPredictor(image_size=16, context=3, horizon=1, scales=2, width=4, latent=2,
                                      prior="learned")
    assert multiscale(frames).shape == (4, 1, 1, 16, 16)


@pytest.mark.parametrize("prior", ["fixed", "learned"])
def test_latent_information_is_the_mean_kl_to_each_prior_over_the_sequences(prior: str) -> None:
    model = _dfn(latent_map=True, prior=prior)
    g = torch.Generator().manual_seed(2)
    frames = torch.rand(7, 6, 1, 16, 16, generator=g)  # 3 context + 2 future + 1 unused
    info = latent_information(model, frames, batch_size=3)  # chunks of 3, 3 and 1
    with torch.no_grad():
        mean, log_var = model.encode(frames[:, :3], frames[:, 3:5])
        p_mean, p_log_var = model.prior_params(frames[:, :3]) if prior == "learned" else (None, None)
    standard = float(gaussian_kl(mean, log_var).mean())
    assert info["kl_standard"] == pytest.approx(standard, rel=1e-5)
    if prior == "fixed":
        assert info["kl_prior"] == info["kl_standard"]
    else:
        learned = float(gaussian_kl(mean, log_var, p_mean, p_log_var).mean())
        assert info["kl_prior"] == pytest.approx(learned, rel=1e-5)
        assert info["kl_prior"] != info["kl_standard"]
    with pytest.raises(ValueError, match="shorter than context \\+ horizon = 3 \\+ 2"):
        latent_information(model, frames[:, :4])


def test_a_short_run_teaches_the_prior_where_the_posterior_puts_z() -> None:
    """After 150 updates on one-digit sequences the KL from the posterior to the learned prior is
    under a tenth of the KL to N(0, I) on held-out sequences (0.004 of it here; 0.6 before
    training): the prior has learned where, given the past, the posterior puts z."""
    g = torch.Generator().manual_seed(0)
    digits = torch.zeros(40, 28, 28, dtype=torch.uint8)
    digits[:, 8:20, 10:18] = (torch.rand(40, 12, 8, generator=g) * 155 + 100).to(torch.uint8)
    pool = MovingMNIST(digits, MovingMNISTConfig(length=5, image_size=32, num_digits=1))
    torch.manual_seed(0)
    model = LatentVideoPredictor(image_size=32, context=4, horizon=1, scales=2, width=8, latent=2,
                                 prior="learned")
    train_predictor(model, "latent", pool, 150, loss=VideoLoss(loss="latent", beta=1e-2), batch_size=8,
                    lr=3e-3, seed=0, progress=False)
    frames, _ = fixed_sequences(pool.digits, pool.config, 64, "val")
    with torch.no_grad():
        mean, log_var = model.encode(frames[:, :4], frames[:, 4:5])
        to_learned = float(gaussian_kl(mean, log_var, *model.prior_params(frames[:, :4])).mean())
        to_standard = float(gaussian_kl(mean, log_var).mean())
    assert to_learned < 0.1 * to_standard, (to_learned, to_standard)


def test_the_recipe_trains_a_learned_prior_and_refuses_it_without_a_latent(tmp_path, shared_data,
                                                                          capsys) -> None:
    data = ([f"data_dir={shared_data}"] if shared_data is not None and (shared_data / "mnist").is_dir()
            else ["dataset=digits"])
    args = ["train", "video-mmnist", "image_size=32", "model=latent", "backbone=dfn", "loss=latent",
            "prior=learned", "latent_map=true", "context=4", "horizon=2", "eval_steps=2", "width=4",
            "hidden=8", "latent=2", "steps=2", "batch_size=2", "test_sequences=4", "samples=2", *data,
            "--runs-dir", str(tmp_path), "--name", "lp", "--no-progress"]
    assert main(args) == 0
    record = json.loads((tmp_path / "lp" / "evaluation.json").read_text())
    assert {"latent", "latent_best_of_2"} <= set(record["rows"])
    model = load_predictor(tmp_path / "lp" / "model" / "last.pt")[0]
    assert model.prior is not None and model.kwargs["prior"] == "learned"
    assert set(record["latent"]) == {"kl_prior", "kl_standard"} and record["latent"]["kl_prior"] >= 0
    assert "KL(q(z | x, y) ‖ p(z | x))" in (tmp_path / "lp" / "evaluation.md").read_text()
    capsys.readouterr()
    bad = ["train", "video-mmnist", "image_size=32", "loss=l2", "prior=learned", "dataset=digits",
           "--runs-dir", str(tmp_path), "--name", "bad"]
    assert main(bad) != 0
    err = capsys.readouterr().err.strip()
    assert "prior=learned needs model=latent" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
