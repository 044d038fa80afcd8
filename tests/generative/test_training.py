"""GAN and EBM training: the discriminators are energies, the generator learns the data,
bad input and divergence stop with one line, the last checkpoint is kept."""

from __future__ import annotations

import pytest
import torch

from genoise.energy import Energy, gibbs, infer
from genoise.generative import (
    ConvGenerator,
    GANLoss,
    MCMCConfig,
    MLPGenerator,
    conv_autoencoder_energy,
    conv_critic,
    generate,
    mlp_autoencoder_energy,
    mlp_critic,
    standing_statistics,
    train_gan,
    train_mcmc_ebm,
)
from genoise.train import NonFiniteLossError, Run, RunInterrupted
from genoise.train.checkpoint import load_checkpoint


def _blob(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([2.0, -1.0]) + 0.2 * torch.randn(n, 2, generator=g)


def test_conv_networks_shapes_and_range():
    generator = ConvGenerator(latent_dim=8, image_size=28, channels=1, width=4)
    images = generate(generator, 5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    for energy in (conv_critic(28, 1, 4), conv_autoencoder_energy(28, 1, 4, code=6)):
        assert isinstance(energy, Energy) and energy(images).shape == (5,)
    assert conv_autoencoder_energy(28, 1, 4, code=6).embed(images).shape == (5, 6)
    with pytest.raises(ValueError, match="image_size must be a multiple of 4"):
        ConvGenerator(image_size=30)


def test_discriminators_work_with_infer_and_gibbs():
    torch.manual_seed(0)
    for energy in (mlp_autoencoder_energy(2), mlp_critic(2)):
        candidates = torch.randn(7, 2)
        probs = gibbs(energy(candidates)[None], beta=1.0)
        assert probs.shape == (1, 7) and float(probs.detach().sum()) == pytest.approx(1.0, abs=1e-6)
        start = torch.randn(4, 2)
        found = infer(energy, method="gradient", init=start, steps=50, lr=0.05)
        assert (energy(found) <= energy(start) + 1e-6).all()  # inference descends the energy


@pytest.mark.parametrize("kind", ["ebgan", "wgan_gp", "dcgan"])
def test_gan_moves_the_generator_onto_a_2d_blob(kind):
    torch.manual_seed(0)
    data = _blob()
    generator = MLPGenerator(latent_dim=2, out_dim=2, hidden=(32, 32))
    energy = mlp_autoencoder_energy(2, (32, 32), code=4) if kind == "ebgan" else mlp_critic(2, (32, 32))
    loss = GANLoss(kind, margin=0.5, gp_weight=1.0, critic_steps=5 if kind == "wgan_gp" else 1)
    before = generate(generator, 500, torch.Generator().manual_seed(1)).mean(0)
    train_gan(generator, energy, data, 300, loss=loss, batch_size=64, lr=2e-3, progress=False,
              checkpoint_every=None, betas=(0.5, 0.9))
    after = generate(generator, 500, torch.Generator().manual_seed(1)).mean(0)
    target = data.mean(0)
    assert (after - target).norm() < 0.5 < (before - target).norm()


def test_two_time_scales_give_each_player_its_own_adam_step(tmp_path):
    """TTUR: Adam's first step moves each coordinate by about its learning rate (|g| ≫ ε), so after
    one update the discriminator's largest move is ``discriminator_lr`` and the generator's ``lr``."""
    torch.manual_seed(0)
    generator, critic = MLPGenerator(latent_dim=2, out_dim=2, hidden=(8,)), mlp_critic(2, (8,))
    g0 = [p.detach().clone() for p in generator.parameters()]
    d0 = [p.detach().clone() for p in critic.parameters()]
    train_gan(generator, critic, _blob(), 1, loss=GANLoss("dcgan"), batch_size=64, lr=1e-4,
              discriminator_lr=4e-4, progress=False, checkpoint_every=None)
    def moved(net, before):
        return max(float((p.detach() - q).abs().max()) for p, q in zip(net.parameters(), before, strict=True))

    moved_g, moved_d = moved(generator, g0), moved(critic, d0)
    assert moved_g == pytest.approx(1e-4, rel=0.02) and moved_d == pytest.approx(4e-4, rel=0.02)
    with pytest.raises(ValueError, match="discriminator_lr must be > 0"):
        train_gan(generator, critic, _blob(), 1, discriminator_lr=0.0, progress=False, checkpoint_every=None)


def _rates(path) -> tuple[float, ...]:
    """(step, the trained network's rate[, the discriminator's rate]) of the last checkpoint."""
    state = load_checkpoint(path / "last.pt")
    rates = (state["step"], state["optimizer"]["param_groups"][0]["lr"])
    if "discriminator_optimizer" in state["extra_state"]:
        rates += (state["extra_state"]["discriminator_optimizer"]["param_groups"][0]["lr"],)
    return rates


def test_linear_schedule_decays_both_players_and_the_ebm_to_zero(tmp_path):
    """After t of T updates each rate is its base × (1 − t/T) (the discriminator's own step too),
    read from the checkpoint of a run stopped after 2 of 4 updates, then resumed to the end."""
    def gan(run):
        torch.manual_seed(0)
        generator, critic = MLPGenerator(latent_dim=2, out_dim=2, hidden=(8,)), mlp_critic(2, (8,))
        train_gan(generator, critic, _blob(), 4, loss=GANLoss("dcgan", critic_steps=2), batch_size=16,
                  lr=1e-3, discriminator_lr=4e-3, lr_schedule="linear", checkpoint_every=1, run=run)

    def ebm(run):
        torch.manual_seed(0)
        cfg = MCMCConfig(steps=2, step_size=0.01, noise_std=0.005, grad_clip=10.0, buffer_size=32, alpha=0.1)
        train_mcmc_ebm(mlp_critic(2, (8,)), torch.rand(64, 2), 4, cfg=cfg, batch_size=16, lr=1e-3,
                       lr_schedule="linear", checkpoint_every=1, run=run)

    for name, train, expected in (("gan", gan, (2, 0.5e-3, 2e-3)), ("ebm", ebm, (2, 0.5e-3))):
        with pytest.raises(RunInterrupted):
            train(Run(tmp_path / name, progress=False, stop_after=2))
        assert _rates(tmp_path / name) == pytest.approx(expected, rel=1e-12)
        train(Run(tmp_path / name, progress=False, resume=True))
        assert _rates(tmp_path / name) == (4, *[0.0] * (len(expected) - 1))
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        train_gan(MLPGenerator(latent_dim=2, out_dim=2), mlp_critic(2), _blob(), 1, lr_schedule="cosine",
                  progress=False, checkpoint_every=None)


def test_generator_output_that_does_not_match_the_data_is_one_line():
    generator = MLPGenerator(latent_dim=2, out_dim=3)
    with pytest.raises(ValueError, match=r"generator's output \(3,\) does not match the data \(2,\)"):
        train_gan(generator, mlp_critic(2), _blob(), 2, progress=False, checkpoint_every=None)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("margin", 0.0, "margin must be > 0"), ("kind", "vae", "kind must be one of"),
    ("critic_steps", 0, "critic_steps"), ("pt_weight", -1.0, "pt_weight"),
    ("r1_weight", -1.0, "r1_weight")])
def test_gan_loss_refuses_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        GANLoss(**{field: value})
    with pytest.raises(ValueError, match="pt_weight is EBGAN's pulling-away term"):
        GANLoss("dcgan", pt_weight=0.1)
    with pytest.raises(ValueError, match=r"r1_weight is the non-saturating DCGAN's .*wgan_gp has gp_weight"):
        GANLoss("wgan_gp", r1_weight=1.0)


def test_r1_adds_half_gamma_times_the_penalty_on_the_real_batch_to_the_discriminator():
    from genoise.generative import dcgan_discriminator_loss, r1_penalty
    from genoise.generative.gan import GANStep

    torch.manual_seed(0)
    critic, real, fake = mlp_critic(2, (8,)), _blob(16), _blob(16, seed=1) + 1.0
    optimizer = torch.optim.SGD(critic.parameters(), lr=0.0)
    plain = GANStep(GANLoss("dcgan"), critic, optimizer)._discriminator_loss(real, fake, None)[0]
    step = GANStep(GANLoss("dcgan", r1_weight=10.0), critic, optimizer)
    with_r1 = step._discriminator_loss(real, fake, None)[0]
    torch.testing.assert_close(plain, dcgan_discriminator_loss(critic(real), critic(fake)))
    torch.testing.assert_close(with_r1 - plain, 5.0 * r1_penalty(critic, real))
    assert float(r1_penalty(critic, real).detach()) > 0


class _PoisonAfter(torch.nn.Module):
    """A critic whose energy turns NaN after ``calls`` forward passes."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.inner, self.calls, self.seen = mlp_critic(2, (8,)), calls, 0

    def forward(self, y):
        self.seen += 1
        out = self.inner(y)
        return out * float("nan") if self.seen > self.calls else out


def test_nan_discriminator_energy_stops_as_diverged_and_keeps_the_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    generator = MLPGenerator(latent_dim=2, out_dim=2, hidden=(8,))
    critic = _PoisonAfter(calls=3 * 4)  # dcgan: 3 energy calls per step -> NaN at step 4
    run = Run(tmp_path / "gan", progress=False)
    with pytest.raises(NonFiniteLossError, match=r"diverged: the discriminator's energy on .* at step 4"):
        train_gan(generator, critic, _blob(), 10, loss=GANLoss("dcgan"), batch_size=16, run=run,
                  checkpoint_every=2)
    state = load_checkpoint(tmp_path / "gan" / "last.pt")
    assert state["step"] == 4  # written after step 4 (index 3); the bad step never updated
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_mcmc_ebm_lowers_the_energy_of_data_below_noise():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = (0.5 + 0.05 * torch.randn(256, 2, generator=g)).clamp(0, 1)
    energy = mlp_critic(2, (32, 32))
    cfg = MCMCConfig(steps=10, step_size=0.01, noise_std=0.005, grad_clip=10.0, buffer_size=256, alpha=0.1)
    sampler, _metrics = train_mcmc_ebm(energy, data, 150, cfg=cfg, batch_size=64, lr=1e-3, progress=False,
                                      checkpoint_every=None)
    noise = torch.rand(2000, 2, generator=g)
    far = noise[(noise - 0.5).norm(dim=1) > 0.25]  # uniform points well outside the data
    with torch.no_grad():
        e_data, e_far = energy(data), energy(far)
    # the energy ranks data below far noise: P(E(far) > E(data)) (the AUC) near 1
    auc = float((e_far[:, None] > e_data[None, :]).float().mean())
    assert auc > 0.9 and float(e_far.mean() - e_data.mean()) > 0.1
    assert sampler.buffer.samples.min() >= 0 and sampler.buffer.samples.max() <= 1
    with pytest.raises(ValueError, match=r"data samples \(3,\) do not match the sampler's \(2,\)"):
        train_mcmc_ebm(mlp_critic(3), torch.rand(64, 3), 2, cfg=cfg, progress=False, checkpoint_every=None,
                       sample_shape=(2,))


@pytest.mark.parametrize("kind", ["ebgan", "wgan_gp", "dcgan"])
def test_convolutional_gans_train_on_colour_images(kind):
    """The CIFAR layout (3 × 32 × 32): two updates run and change the generator."""
    torch.manual_seed(0)
    images = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    generator = ConvGenerator(latent_dim=8, image_size=32, channels=3, width=4)
    energy = conv_autoencoder_energy(32, 3, 4, code=8) if kind == "ebgan" else conv_critic(32, 3, 4)
    before = [p.detach().clone() for p in generator.parameters()]
    loss = GANLoss(kind, critic_steps=2 if kind == "wgan_gp" else 1)
    metrics = train_gan(generator, energy, images, 2, loss=loss, batch_size=8, progress=False,
                        checkpoint_every=None)
    assert metrics["step"] == 2 and all(torch.isfinite(torch.tensor(float(v))) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, generator.parameters(), strict=True))


def test_standing_statistics_are_the_generators_own_batch_statistics():
    generator = ConvGenerator(latent_dim=3, image_size=8, channels=1, width=2)
    norm = next(m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    norm.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    standing_statistics(generator, batches=3, batch_size=16, seed=5)
    assert not generator.training and len(seen) == 3
    # momentum None: cumulative averages of the per-batch mean and unbiased variance
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen])
    variances = torch.stack([x.transpose(0, 1).flatten(1).var(dim=1) for x in seen])
    torch.testing.assert_close(norm.running_mean, means.mean(0))
    torch.testing.assert_close(norm.running_var, variances.mean(0))
    assert norm.momentum == 0.1  # restored
    before = norm.running_mean.clone()
    standing_statistics(generator, batches=3, batch_size=16, seed=5)
    assert torch.equal(norm.running_mean, before)  # seeded


def test_the_conv_critic_takes_a_smooth_activation():
    from torch import nn

    images = torch.rand(3, 1, 28, 28)
    leaky, swish = conv_critic(28, 1, 4), conv_critic(28, 1, 4, activation="silu")
    assert {nn.LeakyReLU} <= {type(m) for m in leaky.modules()}
    kinds = {type(m) for m in swish.modules()}
    assert nn.SiLU in kinds and nn.LeakyReLU not in kinds
    swish.load_state_dict(leaky.state_dict())  # the same parameters: only the nonlinearity differs
    with torch.no_grad():
        assert swish(images).shape == (3,) and not torch.equal(swish(images), leaky(images))
    with pytest.raises(ValueError, match="activation must be one of 'leaky_relu', 'silu'; got 'relu'"):
        conv_critic(28, 1, 4, activation="relu")
