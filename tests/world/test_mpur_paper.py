"""The training details of Henaff, Canziani & LeCun (2019) that MPUR was missing: the learned
latent prior (its KL against the closed form), latents from the posterior of data sequences
(shapes, determinism, the one-step identity), the normalised and hinged uncertainty cost
(closed form, sensitivity to the action) and the ``u_reg`` warm-up schedule; the resumed run
with all of them on is bit-for-bit the uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from genoise.latent.regularizers import kl_divergence, reparameterize
from genoise.world.dataset import TrafficDataset
from genoise.world.forward import ForwardModel, forward_model_loss, posterior_noise
from genoise.world.policy import DrivingPolicy, mpur_loss
from genoise.world.train import u_weight_at
from genoise.world.uncertainty import TERMS, UncertaintyStats, uncertainty_cost, uncertainty_terms
from tests.recipes._resume import assert_resume_bit_for_bit
from tests.world.conftest import HIGH, LOW, SPEC, TINY_MPUR
from tests.world.test_action_conditioned import certain_at_rest
from tests.world.test_action_conditioned import model as forward_model


@pytest.fixture(scope="module")
def batch(traffic_root):
    data = TrafficDataset(traffic_root, "train", history=2, n_future=4, raster=SPEC)
    return data.sample_batch(6, torch.Generator().manual_seed(0))


def stochastic(learned_prior: bool = True) -> ForwardModel:
    return forward_model(True, nz=3, dropout=0.2, learned_prior=learned_prior)


def test_kl_to_a_gaussian_prior_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu, logvar, pmu, plogvar = (torch.randn(5, 4, generator=g) for _ in range(4))
    reference = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(pmu, (0.5 * plogvar).exp())).sum(-1)
    torch.testing.assert_close(kl_divergence(mu, logvar, pmu, plogvar), reference)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(kl_divergence(mu, logvar, zeros, zeros), kl_divergence(mu, logvar))
    with pytest.raises(ValueError, match="both prior_mu and prior_logvar"):
        kl_divergence(mu, logvar, pmu)


def test_the_learned_prior_starts_at_the_standard_normal_and_maps_the_noise(batch) -> None:
    model = stochastic()
    h = model.encode(batch["images"], batch["states"], batch["actions"][:, 0])
    eps = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.latent(h, eps), eps)  # zero-initialised head: N(0, I)
    nn.init.normal_(model.prior_head[-1].weight, std=0.3)
    mu, logvar = model.prior(h)
    torch.testing.assert_close(model.latent(h, eps), mu + (0.5 * logvar).exp() * eps)
    assert model.latent(h, None) is None
    with pytest.raises(ValueError, match="learned_prior needs a latent"):
        ForwardModel(history=2, raster=SPEC, nz=0, width=4, hidden=16, learned_prior=True)


def test_the_kl_term_trains_the_prior(batch) -> None:
    model = stochastic().train()
    loss = forward_model_loss(
        model,
        {k: v[:, :2] if k.startswith(("actions", "target")) else v for k, v in batch.items()},
        beta=1.0,
        z_dropout=0.0,
        generator=torch.Generator().manual_seed(0),
    )
    loss["kl"].backward()
    assert float(model.prior_head[-1].weight.grad.abs().sum()) > 0
    blind = stochastic(learned_prior=False)
    assert not hasattr(blind, "prior_head")


def test_posterior_latents_shapes_determinism_and_the_one_step_identity(batch) -> None:
    model = stochastic()
    nn.init.normal_(model.prior_head[-1].weight, std=0.3)
    nn.init.normal_(model.posterior[-1].weight, std=0.3)
    noise = posterior_noise(model, batch, torch.Generator().manual_seed(4))
    assert noise.shape == (6, 4, 3)
    assert torch.equal(noise, posterior_noise(model, batch, torch.Generator().manual_seed(4)))
    assert not torch.equal(noise, posterior_noise(model, batch, torch.Generator().manual_seed(5)))
    # the first step's latent is the posterior sample drawn first from the same generator
    h = model.encode(batch["images"], batch["states"], batch["actions"][:, 0])
    stats = model.infer_latent(h, batch["target_images"][:, 0], batch["target_states"][:, 0])
    z = reparameterize(*stats, torch.Generator().manual_seed(4))
    torch.testing.assert_close(model.latent(h, noise[:, 0]), z)
    with pytest.raises(ValueError, match="posterior latents need a stochastic model"):
        posterior_noise(ForwardModel(history=2, raster=SPEC, width=4, hidden=16), batch)


def test_mpur_with_posterior_latents_needs_and_uses_the_recorded_future(batch) -> None:
    model = stochastic()
    nn.init.normal_(model.decoder[-1].weight, std=0.1)
    nn.init.normal_(model.posterior[-1].weight, std=1.0)
    policy = DrivingPolicy.from_model(model, LOW, HIGH, width=4, hidden=16)

    def run(latents: str, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return mpur_loss(policy, model, batch, 3, 0.0, latents=latents, generator=generator)["cost"]

    assert run("posterior", 0).item() == run("posterior", 0).item()
    assert run("posterior", 0).item() != run("prior", 0).item()
    with pytest.raises(ValueError, match="posterior latents need 5 recorded future steps"):
        mpur_loss(policy, model, batch, 5, 0.0, latents="posterior")
    with pytest.raises(ValueError, match="latents must be one of prior, posterior"):
        mpur_loss(policy, model, batch, 3, 0.0, latents="mean")


def test_normalised_uncertainty_is_the_hinge_of_the_standardised_variances(batch) -> None:
    model = certain_at_rest(True)
    images, states = batch["images"], batch["states"]
    actions = torch.zeros(6, 3, 2)
    actions[..., 0] = -2.0
    torch.manual_seed(3)
    with torch.no_grad():
        terms = uncertainty_terms(model, images, states, actions, None, n_samples=8)
    assert set(terms) == set(TERMS) and all(v.shape == (6, 3) for v in terms.values())
    ones = torch.ones(3)
    for shift, expected in ((0.0, 0.0), (2.0, 3 * 1.5)):  # relu(shift - 0.5) summed over 3 terms
        # stats whose mean is the measured variance (per step, averaged over the batch) minus shift
        stats = UncertaintyStats({k: v.mean(0) - shift for k, v in terms.items()}, {k: ones for k in TERMS})
        per_sample = {k: v - v.mean(0) for k, v in terms.items()}  # what relu sees beyond the shift
        torch.manual_seed(3)
        with torch.no_grad():
            u = uncertainty_cost(model, images, states, actions, None, n_samples=8, stats=stats)
        closed = sum(torch.relu(per_sample[k] + shift - 0.5).mean(-1) for k in TERMS)
        torch.testing.assert_close(u, closed)
        if shift:
            assert float(u.mean()) >= expected - 1e-6  # relu is convex: at least its value at the mean
    restored = UncertaintyStats.from_dict(stats.as_dict())
    assert all(torch.equal(restored.mean[k], stats.mean[k].float()) for k in TERMS)
    with pytest.raises(ValueError, match="cover 2 steps, fewer than the 3"):
        short = UncertaintyStats({k: v[:2] for k, v in stats.mean.items()}, {k: ones[:2] for k in TERMS})
        uncertainty_cost(model, images, states, actions, None, n_samples=8, stats=short)


def test_normalised_uncertainty_stays_zero_on_data_and_rises_off_it(batch) -> None:
    from genoise.world.uncertainty import uncertainty_stats

    model = certain_at_rest(True)
    images, states = batch["images"], batch["states"]
    data_like = torch.zeros(6, 3, 2)
    data_like[..., 0] = 0.05
    brake = torch.zeros(6, 3, 2)
    brake[..., 0] = -2.0
    torch.manual_seed(7)
    data = [{"images": images, "states": states, "actions": data_like}]
    stats = uncertainty_stats(model, data, n_samples=8)
    u = {}
    for name, actions in (("data", data_like), ("brake", brake)):
        torch.manual_seed(7)
        with torch.no_grad():
            u[name] = uncertainty_cost(model, images, states, actions, None, n_samples=8, stats=stats)
    assert float(u["brake"].min()) > 10 * float(u["data"].mean()) + 1.0


def test_robust_statistics_are_the_per_step_median_and_scaled_mad(batch) -> None:
    """``scale="robust"``: the centre is the median over the sequences and the spread 1.4826 ×
    the median absolute deviation (numpy on the same variances); ``scale="std"`` keeps the
    mean and the standard deviation; the scale travels with the checkpointed statistics."""
    import numpy as np

    from genoise.world.uncertainty import MAD_TO_STD, uncertainty_stats

    model = certain_at_rest(True)
    images, states = batch["images"], batch["states"]
    actions = 0.8 * torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(2))
    data = [{"images": images, "states": states, "actions": actions}]

    def measured(scale: str | None) -> UncertaintyStats | dict:
        torch.manual_seed(7)
        z_gen = torch.Generator().manual_seed(4)
        if scale is not None:
            return uncertainty_stats(model, data, n_samples=8, generator=z_gen, scale=scale)
        with torch.no_grad():
            z = model.sample_prior((6, 3), z_gen)
            return uncertainty_terms(model, images, states, actions, z, 8)

    terms = {k: v.double().numpy() for k, v in measured(None).items()}
    robust, plain = measured("robust"), measured("std")
    assert robust.scale == "robust" and plain.scale == "std"
    for k in TERMS:
        v = terms[k]
        floor = max(1e-3 * v.mean(), 1e-12)
        median = np.median(v, axis=0)
        mad = np.maximum(MAD_TO_STD * np.median(np.abs(v - median), axis=0), floor)
        np.testing.assert_allclose(robust.mean[k].numpy(), median, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(robust.std[k].numpy(), mad, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(plain.mean[k].numpy(), v.mean(0), rtol=1e-5, atol=1e-12)
        std = np.maximum(v.std(0, ddof=1), floor)
        np.testing.assert_allclose(plain.std[k].numpy(), std, rtol=1e-5, atol=1e-12)
    assert any(not torch.equal(robust.std[k], plain.std[k]) for k in TERMS)
    assert UncertaintyStats.from_dict(robust.as_dict()).scale == "robust"
    legacy = {k: v for k, v in plain.as_dict().items() if k != "scale"}  # checkpoints before the option
    assert UncertaintyStats.from_dict(legacy).scale == "std"
    with pytest.raises(ValueError, match="unknown uncertainty scale 'mad'; use one of std, robust"):
        uncertainty_stats(model, data, n_samples=8, scale="mad")


def test_mpur_statistics_follow_the_u_scale_key(traffic_root) -> None:
    from genoise.recipes import load_recipe, resolve_config
    from genoise.world.costs import CostConfig
    from genoise.world.train import mpur_uncertainty_stats

    data = TrafficDataset(traffic_root, "train", history=2, n_future=3, raster=SPEC)
    m, costs = forward_model(True, nz=2, dropout=0.5), CostConfig()
    with torch.no_grad():
        nn.init.normal_(m.decoder[-1].weight, std=0.3, generator=torch.Generator().manual_seed(0))
    config = {"horizon": 3, "policy_batch": 4, "n_dropout": 4, "u_stats_batches": 2}
    default = mpur_uncertainty_stats(m, data, config, costs, seed=0, dropout_seed=13)
    robust = mpur_uncertainty_stats(m, data, {**config, "u_scale": "robust"}, costs, seed=0, dropout_seed=13)
    assert (default.scale, robust.scale) == ("std", "robust")
    assert resolve_config(load_recipe("world-mpur-traffic"), [])["u_scale"] == "std"
    with pytest.raises(ValueError, match="u_scale"):
        resolve_config(load_recipe("world-mpur-traffic"), ["u_scale=mad"])


def test_the_statistics_with_a_dropout_seed_are_the_same_in_any_process_state(traffic_root) -> None:
    """Without ``dropout_seed`` the masks come from the global generator (train_policy seeds it
    first); with it, the statistics do not depend on what ran before, and the caller's
    generator is left where it was."""
    from genoise.world.costs import CostConfig
    from genoise.world.train import mpur_uncertainty_stats

    data = TrafficDataset(traffic_root, "train", history=2, n_future=3, raster=SPEC)
    m, costs = forward_model(True, nz=2, dropout=0.5), CostConfig()
    with torch.no_grad():
        nn.init.normal_(m.decoder[-1].weight, std=0.3, generator=torch.Generator().manual_seed(0))
    config = {"horizon": 3, "policy_batch": 4, "n_dropout": 4, "u_stats_batches": 2}

    def stats(global_seed: int, **kwargs) -> UncertaintyStats:
        torch.manual_seed(global_seed)
        return mpur_uncertainty_stats(m, data, config, costs, seed=0, **kwargs)

    def same(a: UncertaintyStats, b: UncertaintyStats) -> bool:
        return all(torch.equal(a.mean[k], b.mean[k]) and torch.equal(a.std[k], b.std[k]) for k in TERMS)

    assert same(stats(1), stats(1))
    assert not same(stats(1), stats(2))  # the masks follow the global generator
    assert same(stats(1, dropout_seed=13), stats(2, dropout_seed=13))
    assert not same(stats(1, dropout_seed=13), stats(1, dropout_seed=14))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    mpur_uncertainty_stats(m, data, config, costs, seed=0, dropout_seed=13)
    assert torch.equal(torch.rand(3), expected)


def test_the_u_reg_schedule_ramps_linearly_then_holds() -> None:
    assert u_weight_at(0, 0.05, 0) == 0.05
    assert [u_weight_at(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_mpur_with_the_paper_settings_resumes_bit_for_bit(tmp_path) -> None:
    """Stopped inside the MPUR loop (after 2 of 4 updates, mid-warm-up), then resumed."""
    import yaml

    settings = dict(
        TINY_MPUR,
        nz=2,
        action_conditioned=True,
        learned_prior=True,
        train_steps=1,
        policies=["mpur"],
        policy_steps=4,
        latents="posterior",
        u_normalise=True,
        u_warmup=3,
        u_stats_batches=2,
    )
    overrides = [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
        for k, v in settings.items()
    ]
    assert_resume_bit_for_bit(tmp_path, "world-mpur-traffic", overrides, 2)
