"""`genoise train ebgan-mnist` (and the other generative recipes) and `genoise eval
generative`: tiny runs end to end and the one-line errors (the bit-for-bit resume is in
tests/recipes/test_resume_generative.py)."""

from __future__ import annotations

import json

import pytest

from genoise.cli import main

TINY = ["dataset=digits", "width=4", "latent_dim=4", "code=4", "steps=3", "batch_size=8", "samples=30"]


def refused(tmp_path, capsys, recipe: str, override: str) -> str:
    """`genoise train RECIPE … OVERRIDE` into ``tmp_path/bad`` fails and writes nothing; its
    error output (stripped)."""
    args = ["train", recipe, *TINY, override, "--runs-dir", str(tmp_path), "--name", "bad"]
    assert main(args) != 0
    assert not (tmp_path / "bad").exists()
    return capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("generative")
    old = os.environ.get("GENOISE_CACHE")
    os.environ["GENOISE_CACHE"] = str(root / "cache")
    try:
        for recipe in ("ebgan-mnist", "mcmc-ebm-mnist", "dcgan-mnist"):
            extra = {"ebgan-mnist": ["pt_weight=0.1"], "mcmc-ebm-mnist": ["mcmc_steps=2", "buffer_size=16"],
                     "dcgan-mnist": ["ema_decay=0.5", "d_lr=0.0004"]}[recipe]
            args = ["train", recipe, *TINY, *extra, "--runs-dir", str(root), "--name", recipe,
                    "--no-progress"]
            assert main(args) == 0
        yield root
    finally:
        if old is None:
            os.environ.pop("GENOISE_CACHE", None)
        else:
            os.environ["GENOISE_CACHE"] = old


@pytest.mark.parametrize(("recipe", "row"), [("ebgan-mnist", "ebgan_pt"), ("mcmc-ebm-mnist", "mcmc_ebm")])
def test_training_writes_the_model_the_scores_and_the_samples(runs, recipe, row):
    run_dir = runs / recipe
    for name in ("model/last.pt", "evaluation.md", "evaluation.json", "samples.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "evaluation.json").read_text())
    assert set(record["rows"]) == {row, "test_images"} and record["samples"] == 30
    scores = record["rows"][row]
    assert scores["cpu_minutes"] > 0 and len(scores["class_histogram"]) == 10
    # three updates of a 4-channel generator are far from the data; the test images are not
    assert scores["frechet"] > record["rows"]["test_images"]["frechet"]
    assert "Fréchet" in (run_dir / "evaluation.md").read_text()
    if row == "mcmc_ebm":  # the EBM's chains: the replay buffer's, continued for the run's mcmc_steps
        assert record["sampling"] == {"start": "buffer", "mcmc_steps": 2}


def test_eval_generative_reloads_the_run(runs, capsys):
    assert main(["eval", "generative", str(runs / "ebgan-mnist"), "samples=12", "seed=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the training's CPU-minutes stay beside the new scores (from the run's summary)
    trained = json.loads((runs / "ebgan-mnist" / "summary.json").read_text())["cpu_minutes"]
    assert set(out) == {"scores", "floor"} and out["scores"]["cpu_minutes"] == trained > 0
    assert json.loads((runs / "ebgan-mnist" / "evaluation.json").read_text())["samples"] == 12


def test_a_run_with_a_weight_average_is_sampled_from_it_unless_told_otherwise(runs, capsys):
    import torch

    from genoise.recipes.generative import load_model
    from genoise.train import load_checkpoint
    from genoise.train.ema import averaged_weights
    from genoise.train.run_folder import read_run_config

    run_dir = runs / "dcgan-mnist"
    config, _ = read_run_config(run_dir)
    state = load_checkpoint(run_dir / "model" / "last.pt")
    assert int(state["extra_state"]["ema"]["n_averaged"]) == 3
    assert json.loads((run_dir / "evaluation.json").read_text())["weights"] == "ema"
    average, _ = load_model(run_dir, config, (1, 8, 8))
    last, _ = load_model(run_dir, config, (1, 8, 8), weights="last")
    parameters = dict(average.named_parameters())
    for name, value in averaged_weights(state["extra_state"]["ema"]).items():
        if name in parameters:  # the batch-norm statistics are recomputed (standing statistics)
            assert torch.equal(parameters[name], value), name
    assert not average.training
    for name, value in state["model"].items():
        assert torch.equal(last.state_dict()[name], value), name
    assert not all(torch.equal(a, b) for a, b in zip(average.parameters(), last.parameters(), strict=True))
    assert main(["eval", "generative", str(run_dir), "weights=last"]) == 0
    capsys.readouterr()
    assert json.loads((run_dir / "evaluation.json").read_text())["weights"] == "last"
    # a run without an average is sampled from its last weights either way
    assert json.loads((runs / "ebgan-mnist" / "evaluation.json").read_text())["weights"] == "last"


@pytest.mark.parametrize(("option", "message"), [
    ("colour=red", "unknown option"), ("samples=2", "samples=2 must be an integer >= 10"),
    ("weights=best", "weights")])
def test_eval_generative_refuses_bad_options(runs, option, message, capsys):
    assert main(["eval", "generative", str(runs / "ebgan-mnist"), option]) != 0
    assert message in capsys.readouterr().err


def test_eval_of_a_folder_without_a_model_is_one_line(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("kind: dcgan\ndataset: digits\nseed: 0\nwidth: 4\nlatent_dim: 4\n"
                                          "code: 4\n")
    assert main(["eval", "generative", str(tmp_path)]) != 0
    assert "no trained model" in capsys.readouterr().err


@pytest.mark.parametrize(("override", "message"), [("margin=0", "margin"), ("kind=vae", "kind"),
                                                    ("pt_weight=-1", "pt_weight"),
                                                    ("ema_decay=1", "ema_decay")])
def test_bad_config_values_are_refused_before_anything_is_written(tmp_path, override, message, capsys):
    assert message in refused(tmp_path, capsys, "ebgan-mnist", override)


def test_pulling_away_with_another_gan_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "dcgan-mnist", "pt_weight=0.1")
    assert "pt_weight is EBGAN's pulling-away term" in err


def test_a_weight_average_for_the_mcmc_ebm_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "mcmc-ebm-mnist", "ema_decay=0.9")
    assert "ema_decay averages a GAN's generator" in err


def test_d_lr_reaches_the_discriminators_optimiser_and_lr_the_generators(runs):
    from genoise.train.checkpoint import load_checkpoint

    state = load_checkpoint(runs / "dcgan-mnist" / "model" / "last.pt")
    assert state["extra_state"]["discriminator_optimizer"]["param_groups"][0]["lr"] == 0.0004
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0002  # the recipe's lr, the generator's


def test_a_discriminator_rate_for_the_mcmc_ebm_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "mcmc-ebm-mnist", "d_lr=0.001")
    assert "d_lr is the discriminator's learning rate of a GAN" in err and len(err.splitlines()) == 1


def test_demo_panel_draws_the_three_energies_and_scores_the_samples(tmp_path):
    from genoise.recipes.generative import toy_panel
    from genoise.train.run import Run

    text = toy_panel(Run(tmp_path / "demo", progress=False), steps=20)
    assert (tmp_path / "demo" / "gan_energies.png").is_file()
    assert "![GAN energies](gan_energies.png)" in text
    assert all(name in text for name in ("EBGAN", "WGAN-GP", "DCGAN"))


def test_the_ebm_is_sampled_from_its_buffer_or_by_short_run_chains_from_noise(runs, capsys):
    import torch

    from genoise.generative.ebm import sample_ebm
    from genoise.recipes.generative import load_model, mcmc_config
    from genoise.train.run_folder import read_run_config

    run_dir = runs / "mcmc-ebm-mnist"
    config, _ = read_run_config(run_dir)
    energy, sampler = load_model(run_dir, config, (1, 8, 8))
    cfg = mcmc_config(config)
    # one step: still next to the chains' starts — stored buffer samples, or fresh U[0, 1] noise
    buffer = sample_ebm(energy, sampler, 5, cfg, torch.Generator().manual_seed(0), steps=1)
    kept = sampler.buffer.samples  # one step moves a pixel by ≤ ε/2 · clip = 0.1 plus the noise:
    # ≤ 0.8 + ≈ 0.04 in L2 over 64 pixels, where two U[0, 1] images are ≈ 3.3 apart
    assert (torch.cdist(buffer.flatten(1), kept.flatten(1)).amin(1) < 1.0).all()
    noise = sample_ebm(energy, sampler, 4000, cfg, torch.Generator().manual_seed(0), start="noise", steps=1)
    assert noise.shape == (4000, 1, 8, 8) and 0.0 <= float(noise.min()) and float(noise.max()) <= 1.0
    # one short Langevin step (ε/2 · clip 0.01 + noise 0.005) leaves U[0, 1]'s mean and spread
    assert abs(float(noise.mean()) - 0.5) < 0.02 and abs(float(noise.std()) - 12 ** -0.5) < 0.02
    with pytest.raises(ValueError, match="start"):
        sample_ebm(energy, sampler, 5, cfg, start="data")
    assert main(["eval", "generative", str(run_dir), "start=noise", "mcmc_steps=3", "samples=12"]) == 0
    capsys.readouterr()
    record = json.loads((run_dir / "evaluation.json").read_text())
    assert record["sampling"] == {"start": "noise", "mcmc_steps": 3} and record["samples"] == 12


@pytest.mark.parametrize(("recipe", "option", "message"), [
    ("mcmc-ebm-mnist", "start=data", "start"), ("mcmc-ebm-mnist", "mcmc_steps=0", "mcmc_steps=0 must be"),
    ("ebgan-mnist", "start=noise", "start set the MCMC EBM's sampling chains; this run's kind is ebgan")])
def test_eval_refuses_bad_sampling_options(runs, recipe, option, message, capsys):
    assert main(["eval", "generative", str(runs / recipe), option]) != 0
    assert message in capsys.readouterr().err


def test_a_run_trained_on_chains_from_noise_is_sampled_from_noise_unless_told(tmp_path, capsys):
    """``reinit_fraction=1``: every negative is a short-run chain from uniform noise (Nijkamp et
    al. 2019); such a model is its K-step sampler from noise, which is how it is scored."""
    import torch

    from genoise.recipes.generative import default_start, draw_samples, load_model, mcmc_config
    from genoise.train.checkpoint import load_checkpoint
    from genoise.train.run_folder import read_run_config

    args = ["train", "mcmc-ebm-mnist", *TINY, "mcmc_steps=2", "buffer_size=16", "reinit_fraction=1",
            "--runs-dir", str(tmp_path), "--name", "sr", "--no-progress"]
    assert main(args) == 0
    run_dir = tmp_path / "sr"
    card = load_checkpoint(run_dir / "model" / "last.pt")["extra_state"]["card"]
    assert card["mcmc"]["reinit_fraction"] == 1.0
    sampling = json.loads((run_dir / "evaluation.json").read_text())["sampling"]
    assert sampling == {"start": "noise", "mcmc_steps": 2}
    assert main(["eval", "generative", str(run_dir), "start=buffer", "samples=12"]) == 0
    capsys.readouterr()
    assert json.loads((run_dir / "evaluation.json").read_text())["sampling"]["start"] == "buffer"
    config, _ = read_run_config(run_dir)
    model, sampler = load_model(run_dir, config, (1, 8, 8))  # the benchmark's draws start there too
    unsaid, noise = (draw_samples(model, sampler, config, 6, 0, start) for start in (None, "noise"))
    assert torch.equal(unsaid, noise)
    # a run written before the key existed keeps the replay buffer's 5 % and its buffer sampling
    del config["reinit_fraction"]
    assert mcmc_config(config).reinit_fraction == 0.05 and default_start(config) == "buffer"


def test_a_swish_energy_is_trained_saved_and_rebuilt(tmp_path, capsys):
    """``activation=silu``: the EBM's energy network uses SiLU in place of LeakyReLU; the card
    records it and the evaluation rebuilds the same network from the run's config."""
    import torch
    from torch import nn

    from genoise.recipes.generative import load_model
    from genoise.train.checkpoint import load_checkpoint
    from genoise.train.run_folder import read_run_config

    args = ["train", "mcmc-ebm-mnist", *TINY, "mcmc_steps=2", "buffer_size=16", "activation=silu",
            "--runs-dir", str(tmp_path), "--name", "swish", "--no-progress"]
    assert main(args) == 0
    run_dir = tmp_path / "swish"
    state = load_checkpoint(run_dir / "model" / "last.pt")
    assert state["extra_state"]["card"]["kwargs"]["activation"] == "silu"
    config, _ = read_run_config(run_dir)
    energy, _ = load_model(run_dir, config, (1, 8, 8))
    kinds = {type(m) for m in energy.modules()}
    assert nn.SiLU in kinds and nn.LeakyReLU not in kinds
    for name, value in state["model"].items():  # the trained weights, loaded as they were saved
        assert torch.equal(energy.state_dict()[name], value)
    del config["activation"]  # a run from before the key: DCGAN's LeakyReLU
    energy, _ = load_model(run_dir, config, (1, 8, 8))
    assert nn.LeakyReLU in {type(m) for m in energy.modules()}


def test_an_activation_for_a_gan_row_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "wgan-gp-mnist", "activation=silu")
    assert "activation sets the MCMC EBM's energy network" in err and len(err.splitlines()) == 1


def test_dcgan_with_r1_is_its_own_row(tmp_path, capsys):
    from genoise.train.checkpoint import load_checkpoint

    args = ["train", "dcgan-mnist", *TINY, "r1_weight=10", "--runs-dir", str(tmp_path), "--name", "r1",
            "--no-progress"]
    assert main(args) == 0
    run_dir = tmp_path / "r1"
    assert load_checkpoint(run_dir / "model" / "last.pt")["extra_state"]["card"]["loss"]["r1_weight"] == 10.0
    assert set(json.loads((run_dir / "evaluation.json").read_text())["rows"]) == {"dcgan_r1", "test_images"}
    assert "DCGAN + R1" in (run_dir / "evaluation.md").read_text()
    err = refused(tmp_path, capsys, "ebgan-mnist", "r1_weight=1")
    assert "r1_weight is the non-saturating DCGAN's" in err
