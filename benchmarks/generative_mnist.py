"""Image generation on MNIST (issue 16, table a): GANs read as energy-based models and an
MCMC-trained EBM against genoise's VAE, scored in one run by the same LeNet-5.

Rows ``ebgan``, ``ebgan_pt`` (pulling-away term 0.1), ``wgan_gp``, ``dcgan`` — the same
DCGAN-layout generator (z ∈ ℝ⁶⁴, width 16 unless ``--width``) and the same number of generator updates —
``mcmc_ebm`` (short-run Langevin negatives from a replay buffer, Du & Mordatch 2019) and
``vae`` (genoise's MLP VAE, 16-D latent: the non-contrastive reference), beside the
held-out test images themselves (the floor). Columns: Fréchet distance to the test set in
LeNet-5 F6 features, share of samples labelled with confidence ≥ 0.9, the largest
deviation of the class histogram from 10 % (points), the mean distance to the nearest
training image, training CPU-minutes. Goals of the issue: every contrastive row beats the
VAE's Fréchet distance; EBGAN and WGAN-GP cover all ten classes within ±3 points; each row
trains in ≤ 20 CPU-minutes.

Every row is also scored over ``--draws`` independent draws of samples (default 5: the
Fréchet distance's mean ± std, which one draw hides), and the rows below the VAE are
named from those means.

Every cell is a ``genoise train`` run folder under ``--out`` (reused when it finished).
Writes ``benchmarks/records/generative_mnist.{md,json,png}``.

    python benchmarks/generative_mnist.py                    # the default budget
    python benchmarks/generative_mnist.py --steps 3000 4500 --matched   # the recorded tables
    python benchmarks/generative_mnist.py --width 32         # every network twice as wide
                                                             # (its own cells and record, _w32)
    python benchmarks/generative_mnist.py --ema-decay 0.999  # GANs sampled from the average of
                                                             # the generator's weights, beside the
                                                             # last weights of the same runs (_ema999)
    python benchmarks/generative_mnist.py --steps --matched --matched-steps ebgan=25000 \
        ebgan_pt=15000 wgan_gp=9000 dcgan=40000 --ema-decay 0.999 --margin 0.05 \
        --ebm-steps 4500 --ebm-width 32 --record generative_mnist_cap20
                                                             # only an equal-CPU table, its budget
                                                             # per row, plain EBGAN's margin and
                                                             # the EBM's width set (≤ 20 CPU-min)
    python benchmarks/generative_mnist.py ... --ebm-steps 2000 --ebm-width 32 \
        --ebm-set reinit_fraction=1 mcmc_steps=100 --record generative_mnist_cap20_noise
                                                             # the same table, the EBM trained on
                                                             # short-run chains from noise
                                                             # (Nijkamp et al.; the other cells shared)
    python benchmarks/generative_mnist.py ... --r1 10 --record generative_mnist_cap20_r1
                                                             # also a row DCGAN + R1 (γ = 10,
                                                             # 36,000 updates; not a protocol row)
    python benchmarks/generative_mnist.py --quick            # a smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _cells as cells  # noqa: E402
import _data  # noqa: E402
from _records import write_records  # noqa: E402

from genoise.generative.metrics import sample_quality  # noqa: E402
from genoise.latent.vae import VAE  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402
from genoise.recipes.generative import (  # noqa: E402
    ROW_TITLES,
    default_start,
    draw_samples,
    load_model,
    reference_scores,
    score_table,
)
from genoise.train.checkpoint import load_checkpoint  # noqa: E402
from genoise.train.run_folder import read_run_config  # noqa: E402

GAN_ROWS = {"ebgan": ("ebgan-mnist", {}), "ebgan_pt": ("ebgan-mnist", {"pt_weight": 0.1}),
            "wgan_gp": ("wgan-gp-mnist", {}), "dcgan": ("dcgan-mnist", {})}
CONTRASTIVE = ("ebgan", "ebgan_pt", "wgan_gp", "dcgan", "mcmc_ebm")  # the protocol's rows
COVERAGE_ROWS, COVERAGE_POINTS, CPU_LIMIT = ("ebgan", "wgan_gp"), 3.0, 20.0
# generator updates that cost about the same CPU time (≈ 13–20 minutes here) in every GAN row
MATCHED = {"ebgan": 10000, "ebgan_pt": 10000, "wgan_gp": 4500, "dcgan": 12000}
R1_MATCHED = 36000  # DCGAN + R1 (--r1): about 18 CPU-minutes, the cost of 40,000 plain DCGAN updates + 27 %
DEFAULT_WIDTH = int(load_recipe("ebgan-mnist").config["width"])
DEFAULT_MARGIN = float(load_recipe("ebgan-mnist").config["margin"])
EBM_FIXED = ("kind", "dataset", "steps", "width", "samples", "seed")  # set by the benchmark's own flags
VAE_CONFIG = {"latent_dim": 16, "hidden": [512, 256], "kl_weight": 1.0, "batch_size": 128, "lr": 0.001}


def last_draw(draw: Callable[[int], torch.Tensor]) -> Callable[[int], torch.Tensor]:
    """``draw`` remembering its last draw: the table scores seed 0, then :func:`spread` asks for
    seeds 0 … count − 1, so the first draw (an EBM's Langevin chains included) is made once."""
    return functools.lru_cache(maxsize=1)(draw)


def vae_sampler(out: Path, name: str, overrides: dict, n: int) -> tuple[Callable[[int], torch.Tensor], float]:
    """Train (or reuse) a ``vae-mnist`` cell: draw(seed) gives n decoder means Dec(z),
    z ~ N(0, I), as (n, 1, 28, 28); and its CPU-minutes."""
    _, seconds = cells.run_cell(out, "vae-mnist", name, overrides, "summary.json")
    config, _ = read_run_config(out / name)
    vae = VAE(784, int(config["latent_dim"]), list(config["hidden"]), kl_weight=float(config["kl_weight"]))
    vae.load_state_dict(load_checkpoint(out / name / "last.pt")["model"])
    vae.eval()
    return last_draw(lambda seed: vae.sample(n, torch.Generator().manual_seed(seed)).reshape(n, 1, 28, 28)), \
        seconds / 60


def cell_sampler(out: Path, name: str, shape: tuple[int, ...], n: int,
                 weights: str = "ema") -> Callable[[int], torch.Tensor]:
    """draw(seed): n samples of a finished GAN or EBM cell, as ``genoise eval generative`` draws them."""
    config, _ = read_run_config(out / name)
    model, sampler = load_model(out / name, config, tuple(shape), weights=weights)
    return last_draw(lambda seed: draw_samples(model, sampler, config, n, seed))


def spread(draws: dict[str, Callable[[int], torch.Tensor]], classifier, stats, count: int) -> dict[str, dict]:
    """Per row, the Fréchet distance and the largest class deviation of ``count`` independent
    draws (seeds 0 … count − 1; seed 0 is the main table's draw for the GAN and VAE rows)."""
    out = {}
    for row, draw in draws.items():
        scores = [sample_quality(draw(seed), classifier, stats, torch.empty(0, 1, 28, 28), nearest=False)
                  for seed in range(count)]
        out[row] = {"frechet_draws": [s["frechet"] for s in scores],
                    "deviation_draws": [s["max_class_deviation"] for s in scores]}
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0


def spread_lines(spreads: dict[str, dict], count: int, samples: int) -> list[str]:
    """The table of the Fréchet distance over draws, and which rows beat the VAE on average."""
    lines = [f"Over {count} independent draws of {samples:,} samples per row (the sampling noise of the "
             "Fréchet distance, which a single draw hides):", "",
             "| row | Fréchet, mean ± std | min – max | max class deviation (pts), mean ± std |",
             "|---|---:|---:|---:|"]
    for row, s in spreads.items():
        fd, dev = mean_std(s["frechet_draws"]), mean_std(s["deviation_draws"])
        low, high = min(s["frechet_draws"]), max(s["frechet_draws"])
        lines.append(f"| {ROW_TITLES.get(row, row)} | {fd[0]:.2f} ± {fd[1]:.2f} | {low:.2f} – {high:.2f} | "
                     f"{dev[0]:.1f} ± {dev[1]:.1f} |")
    vae = mean_std(spreads["vae"]["frechet_draws"])[0]
    below = [row for row in spreads if row not in ("vae", "vae_recipe")
             and mean_std(spreads[row]["frechet_draws"])[0] < vae]
    lines += ["", f"- Rows whose mean Fréchet distance is below the 16-D VAE's ({vae:.2f}): "
              + (", ".join(below) if below else "none") + "."]
    return lines


def sample_figure(samples: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genoise.latent.figures import image_grid

    fig, axes = plt.subplots(1, len(samples), figsize=(2.6 * len(samples), 2.9))
    for ax, (name, images) in zip(axes, samples.items(), strict=True):
        ax.imshow(image_grid(images[:36], 6), cmap="gray", vmin=0, vmax=1)
        ax.set_title(ROW_TITLES.get(name, name), fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def goal_lines(scores: dict[str, dict]) -> tuple[list[str], dict[str, bool]]:
    vae = scores["vae"]["frechet"]
    beat = {r: scores[r]["frechet"] < vae for r in CONTRASTIVE}
    cover = {r: scores[r]["classes_covered"] == 10 and scores[r]["max_class_deviation"] <= COVERAGE_POINTS
             for r in COVERAGE_ROWS}
    cheap = {r: scores[r]["cpu_minutes"] <= CPU_LIMIT for r in CONTRASTIVE}
    goals = {"beat_vae": all(beat.values()), "coverage": all(cover.values()), "cpu": all(cheap.values())}
    mark = {True: "met", False: "**not met**"}
    return [
        f"- Every contrastive row beats the VAE's Fréchet distance ({vae:.2f}): {mark[goals['beat_vae']]} "
        "(" + ", ".join(f"{r} {scores[r]['frechet']:.2f}" for r in CONTRASTIVE) + ").",
        f"- Beside it, the shipped `vae-mnist` (2-D latent) has {scores['vae_recipe']['frechet']:.2f}: "
        f"{sum(scores[r]['frechet'] < scores['vae_recipe']['frechet'] for r in CONTRASTIVE)} of "
        f"{len(CONTRASTIVE)} contrastive rows beat that.",
        f"- EBGAN and WGAN-GP cover all ten classes within ±{COVERAGE_POINTS:g} points: "
        f"{mark[goals['coverage']]} ("
        + ", ".join(f"{r}: {scores[r]['classes_covered']} classes, max deviation "
                    f"{scores[r]['max_class_deviation']:.1f}" for r in COVERAGE_ROWS) + ").",
        f"- Each row trains in ≤ {CPU_LIMIT:g} CPU-minutes: {mark[goals['cpu']]} ("
        + ", ".join(f"{r} {scores[r]['cpu_minutes']:.1f}" for r in CONTRASTIVE) + ").",
    ] + ([extra_row_line(scores["dcgan_r1"], vae)] if "dcgan_r1" in scores else []), goals


def extra_row_line(score: dict, vae: float) -> str:
    """DCGAN + R1 (``--r1``) against the VAE: a line beside the goals, which it does not enter."""
    side = "below" if score["frechet"] < vae else "not below"
    return (f"- Beside the protocol's rows, DCGAN + R1: Fréchet {score['frechet']:.2f}, {side} the VAE's "
            f"({vae:.2f}); largest class deviation {score['max_class_deviation']:.1f} points; "
            f"{score['cpu_minutes']:.1f} CPU-minutes.")


def gan_rows(args: argparse.Namespace) -> dict[str, tuple[str, dict]]:
    """The GAN rows of this run: the protocol's four, and with ``--r1 γ`` the DCGAN with the R1
    penalty (``dcgan_r1``, an extra row beside the plain DCGAN baseline)."""
    return {**GAN_ROWS, **({"dcgan_r1": ("dcgan-mnist", {"r1_weight": args.r1})} if args.r1 else {})}


def matched_steps(pairs: list[str], rows: dict | None = None) -> dict[str, int]:
    """``--matched-steps ROW=N …``: the equal-CPU budget of ``rows`` (default the protocol's),
    MATCHED (and R1_MATCHED) with these rows' updates."""
    rows = GAN_ROWS if rows is None else rows
    budget = {row: MATCHED.get(row, R1_MATCHED) for row in rows}
    for pair in pairs:
        row, _, steps = pair.partition("=")
        if row not in rows or not steps.isdigit() or int(steps) < 1:
            raise SystemExit(f"--matched-steps takes ROW=N with ROW one of {', '.join(rows)} and N >= 1, "
                             f"got {pair!r}")
        budget[row] = int(steps)
    return budget


def budgets(args: argparse.Namespace) -> list[tuple[str, dict[str, int]]]:
    """(name, generator updates per GAN row): one table per ``--steps`` value (the same for
    every row), and with ``--matched`` one at about equal CPU time (``--matched-steps`` sets it)."""
    rows = gan_rows(args)
    equal = [(str(steps), dict.fromkeys(rows, steps)) for steps in args.steps]
    return equal + ([("matched", matched_steps(args.matched_steps, rows))] if args.matched else [])


def budget_title(name: str, budget: dict[str, int]) -> str:
    if name == "matched":
        each = ", ".join(f"{ROW_TITLES[row]} {steps:,}" for row, steps in budget.items())
        return f"About equal CPU time per GAN row (generator updates: {each})"
    return f"{budget['ebgan']:,} generator updates per GAN row"


def width_suffix(args: argparse.Namespace) -> str:
    """'' at the recipe's width, '-w32' at another: cells and records of another width have
    their own names."""
    return "" if args.width == DEFAULT_WIDTH else f"-w{args.width}"


def row_margin(args: argparse.Namespace, row: str) -> float:
    """EBGAN's margin m of a row: ``--pt-margin`` for the pulling-away row, ``--margin`` for
    plain EBGAN (each defaults to the recipe's)."""
    return args.pt_margin if row == "ebgan_pt" else args.margin


def margin_suffix(args: argparse.Namespace, row: str) -> str:
    """'' at the recipe's EBGAN margin, '-m0.05' at another (EBGAN cells only)."""
    margin = row_margin(args, row)
    return "" if not row.startswith("ebgan") or margin == DEFAULT_MARGIN else f"-m{margin:g}"


def ebm_width(args: argparse.Namespace) -> int:
    return args.width if args.ebm_width is None else args.ebm_width


def ema_suffix(args: argparse.Namespace) -> str:
    """'-ema999' for GAN cells that keep a weight average of decay 0.999, '' without one."""
    return f"-ema{format(args.ema_decay, 'g').removeprefix('0.')}" if args.ema_decay else ""


def r1_suffix(args: argparse.Namespace, row: str) -> str:
    """'-r1w10' for the DCGAN + R1 cells (γ = 10), '' for the others."""
    return f"-r1w{args.r1:g}" if row == "dcgan_r1" else ""


def seed_suffix(args: argparse.Namespace) -> str:
    """'' for training seed 0 (the recipes' default), '-s1' for seed 1 (every cell, VAEs too)."""
    return f"-s{args.seed}" if args.seed else ""


def train_cells(out: Path, args: argparse.Namespace, data: dict) -> dict:
    """Train (or reuse) every GAN cell of every budget and the EBM cell; their folder names."""
    common = {**data, "samples": args.samples, **({"seed": args.seed} if args.seed else {})}
    if args.width != DEFAULT_WIDTH:
        common["width"] = args.width
    suffix = width_suffix(args)
    ebm = {**common, **args.ebm_overrides, "steps": args.ebm_steps, "width": ebm_width(args)}
    names: dict = {"mcmc_ebm": f"mcmc_ebm-{args.ebm_steps}"
                   + ("" if ebm["width"] == DEFAULT_WIDTH else f"-w{ebm['width']}")
                   + cells.named(args.ebm_overrides) + seed_suffix(args)}
    average = {"ema_decay": args.ema_decay} if args.ema_decay else {}
    for _, budget in budgets(args):
        for row, (recipe, overrides) in gan_rows(args).items():
            steps = budget[row]
            margin = {"margin": row_margin(args, row)} if margin_suffix(args, row) else {}
            names[(row, steps)] = (f"{row}-{steps}{suffix}{margin_suffix(args, row)}{r1_suffix(args, row)}"
                                   f"{ema_suffix(args)}{seed_suffix(args)}")
            cells.run_cell(out, recipe, names[(row, steps)],
                           {**common, **overrides, **margin, **average, "steps": steps}, "evaluation.json")
    cells.run_cell(out, "mcmc-ebm-mnist", names["mcmc_ebm"], ebm, "evaluation.json")
    return names


def training_minutes(out: Path, name: str) -> float:
    """A finished cell's training CPU-minutes, from its ``summary.json`` (``genoise eval``
    rewrites ``evaluation.json`` without them; the summary is the training's own)."""
    return float(json.loads((out / name / "summary.json").read_text())["cpu_minutes"])


def rescore(draw: Callable[[int], torch.Tensor], out: Path, name: str, reference: tuple,
            weights: str) -> tuple[dict, torch.Tensor]:
    """A finished GAN or EBM cell scored here from the first draw of ``draw`` (its
    :func:`cell_sampler`: a GAN's weight average (``ema``) when it kept one, or its last weights
    (``last``)), rather than read from the cell's ``evaluation.json``, which ``genoise eval``
    rewrites with whatever options it was last given. The training CPU-minutes go with the
    ``ema`` row (a run's own row); 36 of the samples go to the figure."""
    classifier, stats, train_images = reference
    images = draw(0)
    minutes = training_minutes(out, name) if weights == "ema" else None
    return {**sample_quality(images, classifier, stats, train_images), "cpu_minutes": minutes}, images[:36]


def ebm_chains(args: argparse.Namespace) -> str:
    """The EBM's negatives and samples, in words (its recipe's Langevin settings and --ebm-set)."""
    config = {**load_recipe("mcmc-ebm-mnist").config, **args.ebm_overrides}
    chains = f"{config['mcmc_steps']} Langevin steps per negative"
    if default_start(config) == "noise":
        return (chains + ", every chain from uniform noise (reinit_fraction = 1: the non-persistent "
                "short-run training of Nijkamp et al. 2019), samples the same K-step chains from noise")
    extra = "".join(f", {key} = {value}" for key, value in sorted(args.ebm_overrides.items())
                    if key not in ("mcmc_steps", "buffer_size"))  # those two are said already
    return chains + f", replay buffer of {config['buffer_size']:,}" + extra


def setting(args: argparse.Namespace) -> str:
    return (f"GAN rows: the same generator (DCGAN layout, z ∈ ℝ⁶⁴, width {args.width}), batch 64, Adam 2e-4. "
            "EBGAN: "
            "convolutional auto-encoder discriminator (code 32), energy = per-pixel mean squared "
            f"reconstruction error, margin {args.margin:g} (pulling-away weight 0.1 and margin "
            f"{args.pt_margin:g} in its second row); "
            "WGAN-GP: λ = 10, "
            "5 critic updates per generator update, Adam β = (0, 0.9); DCGAN: non-saturating"
            + (f"; DCGAN + R1 (an extra row, not the protocol's): the same DCGAN with + γ/2 · mean "
               f"‖∇E(y)‖² on real images, γ = {args.r1:g} (Mescheder et al. 2018)" if args.r1 else "")
            + ". EBM: the "
            f"same {ebm_width(args)}-wide convolutional network as the energy, {args.ebm_steps} updates, "
            f"{ebm_chains(args)}. VAE: MLP 784-512-256-16, "
            f"{args.vae_epochs} epochs; "
            "'VAE, recipe defaults': `genoise train vae-mnist` as shipped (2-D latent, 10 epochs). "
            f"Scores: {args.samples} samples per row against the 10,000 MNIST test images, in the 84-D F6 "
            "features of a LeNet-5 trained 2 epochs on the training set (the same network for every row); "
            "'test images' scores held-out test images against the other half of the test set (the floor). "
            "CPU-min: training only, one thread."
            + (f" Weight average: every GAN row is sampled from an exponential moving average of its "
               f"generator's weights (decay {args.ema_decay:g}, warm-up min(δ, n/(n + 9)); "
               "Yazıcı et al. 2019); "
               "the rows 'last weights' score the same runs' last generator (training is the same)."
               if args.ema_decay else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="*", default=[3000],
                        help="generator updates of every GAN row; several budgets give one table each "
                             "(none: only the --matched table)")
    parser.add_argument("--matched", action="store_true",
                        help="also a table at about equal CPU time per GAN row (MATCHED updates)")
    parser.add_argument("--matched-steps", nargs="*", default=[], metavar="ROW=N",
                        help="generator updates of these rows in the --matched table (default "
                             + ", ".join(f"{k}={v}" for k, v in MATCHED.items()) + ")")
    parser.add_argument("--ebm-steps", type=int, default=1500, help="energy updates of the MCMC EBM")
    parser.add_argument("--ebm-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="recipe overrides of the EBM cell, e.g. reinit_fraction=1 mcmc_steps=100 (named "
                             "in its folder; the other cells are shared)")
    parser.add_argument("--ebm-width", type=int, default=None,
                        help="the EBM's width (default --width; the EBM is not a GAN row, whose generator "
                             "the protocol fixes)")
    for flag, row in (("--margin", "plain EBGAN"), ("--pt-margin", "pulling-away")):
        parser.add_argument(flag, type=float, default=DEFAULT_MARGIN,
                            help=f"EBGAN's margin m in the {row} row (another than the recipe's names "
                                 "its cells)")
    parser.add_argument("--r1", type=float, default=0.0, metavar="GAMMA",
                        help="also a row 'DCGAN + R1': the DCGAN with the zero-centred gradient penalty "
                             f"(γ/2) R1 on real images (r1_weight=GAMMA; {R1_MATCHED} updates in the "
                             "--matched table unless --matched-steps dcgan_r1=N); not one of the "
                             "protocol's rows, so not in its goals")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed of every cell (VAEs included); another than 0 names its "
                             "cells (-s1)")
    parser.add_argument("--record", default=None,
                        help="stem of the record under benchmarks/records (default generative_mnist plus "
                             "the width and weight-average suffixes)")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH,
                        help="channels of the first convolution of every GAN and EBM network (DCGAN layout); "
                             "another width than the recipe's names its own cells and record (_w32)")
    parser.add_argument("--ema-decay", type=float, default=0.0,
                        help="GAN rows sampled from an exponential moving average of the generator's weights "
                             "(decay, e.g. 0.999), each beside its last weights ('<row>_last'); own cells "
                             "and record (_ema999)")
    parser.add_argument("--draws", type=int, default=5,
                        help="independent draws of --samples images per row for the Fréchet distance's "
                             "mean ± std (the main table scores the first)")
    parser.add_argument("--vae-epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5000, help="images generated and scored per row")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/generative_mnist")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: the pipeline, not the numbers")
    args = parser.parse_args(argv)
    if not args.steps and not args.matched:
        parser.error("--steps with no budget needs --matched (otherwise there is no table)")
    if args.r1 < 0:
        parser.error(f"--r1 must be >= 0, got {args.r1:g}")
    args.ebm_overrides = cells.recipe_overrides(parser, "mcmc-ebm-mnist", "--ebm-set", args.ebm_set,
                                                EBM_FIXED, "is set by the benchmark's own flags")
    command = "python benchmarks/generative_mnist.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.steps, args.ebm_steps, args.vae_epochs, args.samples, args.matched = [20, 30], 10, 1, 200, False
        args.draws = 2
    folder = _data.data_dir(args.data_dir)
    data = {"dataset": "mnist", "data_dir": str(folder) if folder else None}
    out = Path(args.out + ("_quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    names = train_cells(out, args, data)
    config, _ = read_run_config(out / names["mcmc_ebm"])
    classifier, stats, train_images, floor = reference_scores(config, data["data_dir"], args.samples)
    shape = tuple(train_images.shape[1:])
    reference = (classifier, stats, train_images)
    shared_draws = {"mcmc_ebm": cell_sampler(out, names["mcmc_ebm"], shape, args.samples)}
    shared = {"mcmc_ebm": rescore(shared_draws["mcmc_ebm"], out, names["mcmc_ebm"], reference, "ema")}
    seeded = {"seed": args.seed} if args.seed else {}
    vaes = {"vae": (f"vae{seed_suffix(args)}", {**VAE_CONFIG, **data, **seeded, "epochs": args.vae_epochs}),
            "vae_recipe": (f"vae_recipe{seed_suffix(args)}",
                           {**data, **seeded, **({"epochs": 1} if args.quick else {})})}  # as shipped
    for row, (name, overrides) in vaes.items():
        shared_draws[row], minutes = vae_sampler(out, name, overrides, args.samples)
        images = shared_draws[row](0)
        shared[row] = ({**sample_quality(images, classifier, stats, train_images), "cpu_minutes": minutes},
                       images[:36])
    shared_spread = spread(shared_draws, classifier, stats, args.draws)
    records = ROOT / "benchmarks" / "records"
    stem = (args.record or "generative_mnist" + (width_suffix(args) + ema_suffix(args)).replace("-", "_")
            ) + ("_quick" if args.quick else "")
    lines = [f"# Image generation on MNIST: GANs as energy-based models ({date.today().isoformat()})", "",
             f"Command: `{command}`", "", setting(args), ""]
    rows, met = [], {}
    for index, (name, budget) in enumerate(budgets(args)):
        weights = (("", "ema"), ("_last", "last")) if args.ema_decay else (("", "ema"),)
        draws = {f"{row}{tag}": cell_sampler(out, names[(row, budget[row])], shape, args.samples, kind)
                 for tag, kind in weights for row in gan_rows(args)}
        # each model loaded once: its draw function serves the table and the draws
        pairs = {f"{row}{tag}": rescore(draws[f"{row}{tag}"], out, names[(row, budget[row])], reference, kind)
                 for tag, kind in weights for row in gan_rows(args)}
        pairs.update(shared)
        spreads = {**spread(draws, classifier, stats, args.draws), **shared_spread}
        scores = {row: {**score, **spreads.get(row, {})} for row, (score, _) in pairs.items()}
        scores["test_images"] = {**floor, "cpu_minutes": None}
        goals, met[name] = goal_lines(scores)
        figure = f"{stem}.png" if index == 0 else f"{stem}_{name}.png"
        sample_figure({row: images for row, (_, images) in pairs.items()}, records / figure)
        lines += [f"## {budget_title(name, budget)}", "", score_table(scores), "", "Goals:", "", *goals, "",
                  *spread_lines(spreads, args.draws, args.samples), "", f"![samples]({figure})", ""]
        rows += [{"row": row, "budget": name, "steps": budget.get(row), **s} for row, s in scores.items()]
    text = "\n".join(lines)
    print(text)
    write_records(records, stem, text, {"command": command, "date": date.today().isoformat(), "goals": met,
                                        "steps": args.steps, "width": args.width, "ebm_steps": args.ebm_steps,
                                        "ebm_width": ebm_width(args), "ebm_set": args.ebm_overrides,
                                        "margin": args.margin,
                                        "pt_margin": args.pt_margin, "seed": args.seed,
                                        "matched": budgets(args)[-1][1] if args.matched else None,
                                        "ema_decay": args.ema_decay, "draws": args.draws, "r1": args.r1,
                                        "samples": args.samples, "rows": rows})
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
