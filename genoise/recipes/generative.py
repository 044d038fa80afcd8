"""Recipes of GANs as energy-based models and of the MCMC-trained image EBM
(``genoise train ebgan-mnist | wgan-gp-mnist | dcgan-mnist | mcmc-ebm-mnist``), their
evaluator (``genoise eval generative RUN_DIR``) and the ``genoise demo`` panel.

``train``: the networks train in ``RUN_DIR/model`` (a resumable
:class:`~genoise.train.Trainer`; the discriminator / replay buffer ride in its extra
state), then ``samples`` images are generated and scored against the test split in the
features of the table's LeNet-5 (:mod:`genoise.generative.metrics`): ``evaluation.md`` /
``evaluation.json`` and ``samples.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genoise._checks import check_choice
from genoise.data import load_dataset
from genoise.generative.ebm import EBM_KIND, START, MCMCConfig, ebm_card, sample_ebm, train_mcmc_ebm
from genoise.generative.ebm import langevin_sampler as make_sampler
from genoise.generative.gan import GAN_KIND, GANLoss, gan_card, train_gan
from genoise.generative.metrics import classify, feature_classifier, gaussian_stats, sample_quality
from genoise.generative.networks import (
    ConvGenerator,
    conv_autoencoder_energy,
    conv_critic,
    generate,
    standing_statistics,
)
from genoise.io import atomic_write_text
from genoise.recipes import OptionSpec, check_options, count
from genoise.train.checkpoint import load_checkpoint
from genoise.train.ema import averaged_weights
from genoise.train.run import Run
from genoise.train.run_folder import read_run_config

ROW_TITLES = {"ebgan": "EBGAN", "ebgan_pt": "EBGAN + pulling-away", "wgan_gp": "WGAN-GP",
              "dcgan": "DCGAN (non-saturating)", "dcgan_r1": "DCGAN + R1", "mcmc_ebm": "short-run-MCMC EBM",
              "vae": "VAE, 16-D latent (reference)", "vae_recipe": "VAE, recipe defaults (2-D latent)",
              "test_images": "MNIST test images (floor)"}
# a run that kept a weight average of its generator, sampled from its last weights instead
GAN_ROWS = ("ebgan", "ebgan_pt", "wgan_gp", "dcgan", "dcgan_r1")
ROW_TITLES.update({f"{row}_last": f"{ROW_TITLES[row]}, last weights" for row in GAN_ROWS})
WEIGHTS = ("ema", "last")
MCMC_KEYS = {"mcmc_steps": "steps", "step_size": "step_size", "noise_std": "noise_std",
             "grad_clip": "grad_clip", "buffer_size": "buffer_size", "reinit_fraction": "reinit_fraction",
             "alpha": "alpha"}


def row_name(config: dict[str, Any]) -> str:
    kind = str(config["kind"])
    if kind == "ebgan" and float(config.get("pt_weight", 0)) > 0:
        return "ebgan_pt"
    return "dcgan_r1" if kind == "dcgan" and float(config.get("r1_weight", 0)) > 0 else kind


def gan_loss(config: dict[str, Any]) -> GANLoss:
    return GANLoss(kind=str(config["kind"]), margin=float(config["margin"]),
                   pt_weight=float(config["pt_weight"]), gp_weight=float(config["gp_weight"]),
                   critic_steps=int(config["critic_steps"]),
                   r1_weight=float(config.get("r1_weight", 0.0)))  # runs from before the key: none


def mcmc_config(config: dict[str, Any]) -> MCMCConfig:
    """The EBM's Langevin settings; a key a run's config lacks (written before the key existed)
    keeps :class:`MCMCConfig`'s default."""
    return MCMCConfig(**{field: config[key] for key, field in MCMC_KEYS.items() if key in config})


def default_start(config: dict[str, Any]) -> str:
    """Where the EBM's evaluation chains start unless told: from noise for a run trained on
    non-persistent chains (``reinit_fraction`` = 1, Nijkamp et al.: its model *is* the K-step
    sampler from noise), else from the replay buffer (Du & Mordatch)."""
    return "noise" if mcmc_config(config).reinit_fraction >= 1 else "buffer"


def energy_activation(config: dict[str, Any]) -> str:
    """The EBM's energy-network activation (``activation``; runs from before the key: DCGAN's
    LeakyReLU)."""
    return str(config.get("activation", "leaky_relu"))


def validate(config: dict[str, Any]) -> None:
    """Cross-key checks, before anything is written."""
    ema_decay(config)
    if config["kind"] == "mcmc_ebm":
        if float(config.get("d_lr", 0.0)):
            raise ValueError("d_lr is the discriminator's learning rate of a GAN; the EBM has one network "
                             "(its step is lr)")
        mcmc_config(config)
    else:
        gan_loss(config)
        if energy_activation(config) != "leaky_relu":
            raise ValueError("activation sets the MCMC EBM's energy network; every GAN row keeps "
                             "DCGAN's LeakyReLU discriminator (the table's fixed architecture)")


def load_images(config: dict[str, Any], data_dir: Any, split: str) -> Tensor:
    subset = int(config.get("train_subset", 0)) if split == "train" else 0
    return load_dataset(str(config["dataset"]), split, data_dir=data_dir, subset=subset,
                        seed=int(config["seed"])).images


def build_networks(config: dict[str, Any], shape: tuple[int, ...]) -> tuple[nn.Module | None, nn.Module]:
    """(generator or None, discriminator / energy) for the recipe's ``kind``."""
    channels, size = shape[0], shape[-1]
    width = int(config["width"])
    if config["kind"] == "mcmc_ebm":
        return None, conv_critic(size, channels, width, energy_activation(config))
    generator = ConvGenerator(int(config["latent_dim"]), size, channels, width)
    if config["kind"] == "ebgan":
        return generator, conv_autoencoder_energy(size, channels, width, int(config["code"]))
    return generator, conv_critic(size, channels, width)


def train(run: Run) -> dict[str, Any]:
    """Every generative recipe: train, then generate and score."""
    config, seed = run.config, int(run.config["seed"])
    validate(config)
    images = load_images(config, run.data_dir, "train")
    torch.manual_seed(seed)
    generator, energy = build_networks(config, tuple(images.shape[1:]))
    common = dict(batch_size=int(config["batch_size"]), lr=float(config["lr"]), seed=seed,
                  run=run.subrun("model"), progress=run.progress,
                  lr_schedule=str(config.get("lr_schedule", "constant")))  # runs from before the key
    start = time.process_time()
    if generator is None:
        cfg = mcmc_config(config)
        card = ebm_card({"shape": list(images.shape[1:]), "width": int(config["width"]),
                         "activation": energy_activation(config)}, cfg)
        train_mcmc_ebm(energy.to(run.device), images, int(config["steps"]), cfg=cfg, card=card, **common)
    else:
        loss = gan_loss(config)
        card = gan_card(row_name(config), {"latent_dim": generator.latent_dim, "image_size": images.shape[-1],
                                           "channels": images.shape[1], "width": generator.width},
                        {"width": int(config["width"]), "code": int(config["code"])}, loss)
        betas = (0.0, 0.9) if loss.kind == "wgan_gp" else (0.5, 0.999)
        d_lr = float(config.get("d_lr", 0.0))  # runs from before the key: both players at lr
        train_gan(generator.to(run.device), energy.to(run.device), images, int(config["steps"]),
                  loss=loss, betas=betas, card=card, ema_decay=ema_decay(config),
                  discriminator_lr=d_lr or None, **common)
    cpu_minutes = (time.process_time() - start) / 60
    where = {"data_dir": str(run.data_dir)} if run.data_dir else {}
    result = evaluate(run.dir, cpu_minutes=cpu_minutes, **where)
    print((run.dir / "evaluation.md").read_text(), end="")
    return {"row": row_name(config), "cpu_minutes": cpu_minutes, **result["scores"]}


def ema_decay(config: dict[str, Any]) -> float | None:
    """The decay of the generator's weight average, or None when the run keeps none."""
    decay = float(config.get("ema_decay", 0.0))
    if decay and config["kind"] == "mcmc_ebm":
        raise ValueError("ema_decay averages a GAN's generator; the MCMC EBM (kind=mcmc_ebm) has none")
    return decay or None


def load_model(run_dir: Path, config: dict[str, Any], shape: tuple[int, ...],
               weights: str = "ema") -> tuple[nn.Module, Any]:
    """Rebuild the trained generator (GANs) or (energy, sampler) (the EBM) from its checkpoint.

    ``weights``: ``ema`` — the generator's weight average when the run kept one
    (``ema_decay``; its batch-norm statistics recomputed,
    :func:`~genoise.generative.networks.standing_statistics`), else its last weights;
    ``last`` — always the last weights."""
    check_choice("weights", weights, WEIGHTS)
    checkpoint = Path(run_dir) / "model" / "last.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no trained model in {run_dir} (expected {checkpoint}; train with "
                                f"`genoise train {str(config['kind']).replace('_', '-')}-mnist`)")
    state = load_checkpoint(checkpoint)
    generator, energy = build_networks(config, shape)
    if state.get("kind") not in (GAN_KIND, EBM_KIND):
        raise ValueError(f"{checkpoint} holds a {state.get('kind')!r} checkpoint, not a generative model")
    if generator is not None:
        average = state.get("extra_state", {}).get("ema")
        use_average = weights == "ema" and average is not None
        generator.load_state_dict(averaged_weights(average) if use_average else state["model"])
        # the average carries the last weights' batch-norm statistics: recompute its own
        return (standing_statistics(generator) if use_average else generator.eval()), None
    energy.load_state_dict(state["model"])
    sampler = make_sampler(energy, shape, mcmc_config(config), 0)
    sampler.load_state_dict(state["extra_state"]["sampler"])
    return energy.eval(), sampler


def draw_samples(model: nn.Module, sampler: Any, config: dict[str, Any], n: int, seed: int,
                 start: str | None = None, steps: int | None = None) -> Tensor:
    """``n`` samples of a GAN's generator, or of the EBM by Langevin chains from ``start``
    (``buffer`` or ``noise``, :func:`~genoise.generative.ebm.sample_ebm`; default
    :func:`default_start`) for ``steps``."""
    rng = torch.Generator().manual_seed(seed)
    if sampler is None:
        return generate(model, n, rng).cpu()
    start = default_start(config) if start is None else start
    return sample_ebm(model, sampler, n, mcmc_config(config), rng, start=start, steps=steps).cpu()


EVALUATE_OPTIONS: OptionSpec = {
    "samples": ("images generated and scored (default: the run's)", count(10), "an integer >= 10"),
    "seed": ("seed of the latent draws / sampling chains (default 0)", count(0), "an integer >= 0"),
    "data_dir": ("data folder (default: the run's, else $GENOISE_DATA)", None, "a folder"),
    "weights": ("GANs: 'ema' (the generator's weight average, when the run kept one; default) or 'last'",
                None, "ema or last"),
    "start": ("EBM: where the sampling chains start, 'buffer' (continue the replay buffer's chains; "
              "the default) or 'noise' (short-run chains from uniform noise, Nijkamp et al. 2019; "
              "the default for a run trained with reinit_fraction=1)",
              None, "buffer or noise"),
    "mcmc_steps": ("EBM: Langevin steps of each sampling chain (default: the run's mcmc_steps)",
                   count(1), "an integer >= 1"),
}


def score_table(scores: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of generation scores, one row per name in ``scores``."""
    lines = ["| row | Fréchet (LeNet-5 F6) ↓ | confident ≥ 0.9 ↑ | max class deviation (pts) ↓ "
             "| nearest train image (L2) | CPU-min |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in scores.items():
        minutes = "" if s.get("cpu_minutes") is None else f"{s['cpu_minutes']:.1f}"
        lines.append(f"| {ROW_TITLES.get(name, name)} | {s['frechet']:.2f} | {s['confident']:.3f} | "
                     f"{s['max_class_deviation']:.1f} | {s['nearest_train']:.2f} | {minutes} |")
    return "\n".join(lines)


def reference_scores(config: dict[str, Any], data_dir: Any, n: int) -> tuple[Any, tuple, Tensor, dict]:
    """The classifier, the test split's feature statistics, the training images, and the
    scores of ``n`` held-out test images themselves (the floor every row is read against)."""
    train_data = load_dataset(str(config["dataset"]), "train", data_dir=data_dir)
    test = load_dataset(str(config["dataset"]), "test", data_dir=data_dir)
    classifier = feature_classifier(train_data.images, train_data.labels)
    features = classify(classifier, test.images)[0]
    half = test.images.shape[0] // 2
    floor = sample_quality(test.images[half:half + n], classifier, gaussian_stats(features[:half]),
                           train_data.images)
    return classifier, gaussian_stats(features), train_data.images, floor


def evaluate(run_dir: str | Path, *, cpu_minutes: float | None = None, **options: Any) -> dict[str, Any]:
    """``genoise eval generative RUN_DIR [samples=N] [seed=S] [weights=ema|last]
    [start=buffer|noise] [mcmc_steps=K]``: reload the run's model, generate ``samples``
    images, score them (``evaluation.md`` / ``.json``, ``samples.png``).
    ``cpu_minutes`` (from ``train``) is the training cost written beside the scores; a later
    evaluation carries it over from the run's ``summary.json``."""
    check_options(options, EVALUATE_OPTIONS, "generative evaluation")
    run_dir = Path(run_dir)
    config, _ = read_run_config(run_dir)
    if cpu_minutes is None and (run_dir / "summary.json").is_file():
        cpu_minutes = json.loads((run_dir / "summary.json").read_text()).get("cpu_minutes")
    start = str(options.get("start", default_start(config)))  # a GAN draws no chains: unused
    check_choice("start", start, START)
    chain_options = sorted({"start", "mcmc_steps"} & set(options))
    if chain_options and config["kind"] != "mcmc_ebm":
        raise ValueError(f"{' and '.join(chain_options)} set the MCMC EBM's sampling chains; "
                         f"this run's kind is {config['kind']}")
    steps = int(options["mcmc_steps"]) if "mcmc_steps" in options else None  # None: the run's
    n = int(options.get("samples", config.get("samples", 2000)))
    data_dir = options.get("data_dir", config.get("data_dir"))
    classifier, stats, train_images, floor = reference_scores(config, data_dir, n)
    weights = str(options.get("weights", "ema"))
    model, sampler = load_model(run_dir, config, tuple(train_images.shape[1:]), weights)
    samples = draw_samples(model, sampler, config, n, int(options.get("seed", 0)), start, steps)
    row = row_name(config)
    scores = {row: {**sample_quality(samples, classifier, stats, train_images),
                    "cpu_minutes": cpu_minutes}, "test_images": floor}
    averaged = weights == "ema" and ema_decay(config) is not None
    record = {"rows": scores, "samples": n, "dataset": config["dataset"], "kind": config["kind"],
              "weights": "ema" if averaged else "last"}
    if sampler is not None:
        record["sampling"] = {"start": start, "mcmc_steps": steps or mcmc_config(config).steps}
    atomic_write_text(run_dir / "evaluation.json", json.dumps(record, indent=2) + "\n")
    table = score_table(scores)
    atomic_write_text(run_dir / "evaluation.md", table + "\n")
    save_sample_grid(run_dir / "samples.png", samples[:64], ROW_TITLES.get(row, row))
    return {"scores": scores[row], "floor": floor}


def save_sample_grid(path: Path, images: Tensor, title: str) -> None:
    import matplotlib.pyplot as plt

    from genoise.io import atomic_savefig
    from genoise.latent.figures import image_grid_figure  # the image grid of the latent models

    figure = image_grid_figure(images, title)
    atomic_savefig(figure, path, dpi=110, bbox_inches="tight")
    plt.close(figure)


# ---------------------------------------------------------------------- demo: 2-D GANs as energies
def train_toy_gan(kind: str, toy: str = "two_moons", steps: int = 1500, seed: int = 0,
                  run: Run | None = None) -> tuple[nn.Module, nn.Module, Tensor]:
    """An MLP GAN on a 2-D toy: (generator, discriminator energy, training points)."""
    from genoise.data.toys import make_toy
    from genoise.generative.networks import MLPGenerator, mlp_autoencoder_energy, mlp_critic

    torch.manual_seed(seed)
    points = make_toy(toy, 2000, seed=seed)
    generator = MLPGenerator(latent_dim=2, out_dim=2, hidden=(64, 64))
    energy = mlp_autoencoder_energy(2, (64, 64), code=8) if kind == "ebgan" else mlp_critic(2, (64, 64, 64))
    loss = {"ebgan": GANLoss("ebgan", margin=0.5), "dcgan": GANLoss("dcgan"),
            "wgan_gp": GANLoss("wgan_gp", gp_weight=1.0, critic_steps=3)}[kind]
    betas = (0.0, 0.9) if kind == "wgan_gp" else (0.5, 0.999)
    train_gan(generator, energy, points, steps, loss=loss, batch_size=128, lr=1e-3, betas=betas, seed=seed,
              run=run, progress=False, checkpoint_every=None, log_every=max(steps // 5, 1))
    return generator.eval(), energy.eval(), points


@torch.no_grad()
def toy_gan_figure(panels: dict[str, tuple[nn.Module, nn.Module, Tensor]], lim: float) -> Any:
    """Per GAN: the discriminator's energy over the plane (dark = low), the data (white)
    and the generator's samples (cyan) — the contrastive points the energy pushes up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genoise.recipes.landscapes import grid_points

    grid, _ = grid_points(lim, 100)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (kind, (generator, energy, points)) in zip(axes[0], panels.items(), strict=True):
        values = energy(grid).reshape(100, 100).double()
        values = (values - values.min()).clamp(max=float(torch.quantile(values - values.min(), 0.9)))
        ax.imshow(values.numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="magma")
        fake = generate(generator, 400, torch.Generator().manual_seed(1))
        ax.scatter(points[:400, 0], points[:400, 1], s=1.5, c="white", alpha=0.6, label="data")
        ax.scatter(fake[:, 0], fake[:, 1], s=1.5, c="cyan", alpha=0.6, label="G(z)")
        ax.set_title(ROW_TITLES[kind], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    axes[0][0].legend(loc="lower left", fontsize=7, markerscale=4)
    fig.suptitle("GANs as energies: the discriminator's E(y) (dark = low), data and generated samples")
    return fig


def demo(run: Run, full: bool) -> str:
    """2-D panel: EBGAN, WGAN-GP and DCGAN discriminators read as energies on two moons."""
    return toy_panel(run, 3000 if full else 250)


def toy_panel(run: Run, steps: int) -> str:
    """The demo section with ``steps`` generator updates per GAN."""
    from genoise.data.toys import toy_limits
    from genoise.generative.metrics import nearest_distance

    panels = {kind: train_toy_gan(kind, steps=steps, run=run.subrun(f"toy-{kind}"))
              for kind in ("ebgan", "wgan_gp", "dcgan")}
    lim = toy_limits("two_moons")
    run.save_figure(toy_gan_figure(panels, lim), "gan_energies.png")
    lines = ["| GAN | mean distance of G(z) to the nearest data point | of uniform points |",
             "|---|---:|---:|"]
    uniform = (torch.rand(1000, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1) * lim
    for kind, (generator, _, points) in panels.items():
        fake = generate(generator, 1000, torch.Generator().manual_seed(1))
        lines.append(f"| {ROW_TITLES[kind]} | {float(nearest_distance(fake, points).mean()):.3f} | "
                     f"{float(nearest_distance(uniform, points).mean()):.3f} |")
    return "\n".join([
        "## GANs as energy-based models (2-D)",
        "",
        f"MLP generators and discriminators, {steps} generator updates each on two moons. Each "
        "discriminator is an `Energy`: EBGAN's is an auto-encoder's reconstruction error, WGAN-GP's "
        "the negated critic, DCGAN's the negated logit. The generator's samples are the contrastive "
        "points whose energy the discriminator pushes up. MNIST: `genoise train ebgan-mnist` "
        "(and `wgan-gp-mnist`, `dcgan-mnist`, `mcmc-ebm-mnist`); table in "
        "`benchmarks/records/generative_mnist.md`.",
        "",
        *lines,
        "",
        "![GAN energies](gan_energies.png)",
    ])
