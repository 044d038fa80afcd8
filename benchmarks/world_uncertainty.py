"""Does the driving world model's uncertainty depend on the action? (issue 20, part 1)

    python benchmarks/world_uncertainty.py [--quick] [--states 256] [--horizon 20]

MPUR (Henaff, Canziani & LeCun, ICLR 2019) keeps a policy where its forward model is
reliable with an uncertainty cost U(a): the variance, over dropout masks, of the predicted
driving cost of the action sequence a. That can only work if U is larger for actions
unlike the data's. This benchmark trains (or reuses, under ``--out-dir``) two forward models
on the same traffic data with ``genoise train world-model-traffic`` — today's kinematic model,
whose network does not see the action (``blind``), and the same with
``action_conditioned=true`` — and measures on held-out test states, with the same latents
and the same dropout masks for every action set:

- U for the recorded (data) actions, for the same actions shuffled across states, and for
  out-of-distribution actions: hard braking (−6 m/s²), hard acceleration (+3 m/s²), a
  swerve (+2 m/s lateral) and a zig-zag (+2 then −2 m/s);
- the ratio U(kind) / U(data) (of the means, and the median per-state ratio) — the issue's
  goal is ≥ 10 for out-of-distribution actions;
- the prediction error against the horizon of both models (the issue: no worse than today),
  beside today's model: when ``--set`` or ``--train-steps`` changes the model or its
  training, a fourth cell ``today`` trains the recipe's defaults on the same data, raster and
  seed, and the verdict names each model's worst step.

``--learned`` adds a third model, ``action_conditioned=true car_motion=learned``: the network
predicts the other cars in the ego's own frame, so the scene's response to the ego's braking
or swerving is learned (the paper's forward model) rather than applied by exact kinematics,
and its U and prediction error are measured on the same states, latents and masks.
``--set KEY=VALUE …`` overrides the recipe for every model trained (e.g. ``n_future=10``, the
steps of the autoregressive training loss), with its own ``--out-dir``.

Writes ``benchmarks/records/world_uncertainty.{md,json}`` (rows, command, date).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._cells import recipe_overrides, run_cell  # noqa: E402
from benchmarks._records import write_records  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402
from genoise.recipes.world import error_generator  # noqa: E402
from genoise.world.checkpoints import find_forward_model, load_forward_model  # noqa: E402
from genoise.world.costs import CostConfig, driving_cost  # noqa: E402
from genoise.world.dataset import TrafficDataset  # noqa: E402
from genoise.world.forward import rollout  # noqa: E402
from genoise.world.train import errors_per_sample  # noqa: E402
from genoise.world.uncertainty import uncertainty_terms  # noqa: E402

KINDS = ("data", "shuffled", "brake", "accelerate", "swerve", "zigzag")
OOD = ("brake", "accelerate", "swerve", "zigzag")
RECIPE_DEFAULTS = load_recipe("world-model-traffic").config  # today's model
DEFAULT_TRAIN_STEPS = int(RECIPE_DEFAULTS["train_steps"])
# what today's model shares with the others when --set changes them: the data, the raster and
# the evaluation (the rest, the model and its training, stay at the recipe's defaults)
SHARED_KEYS = frozenset({"episodes", "steps", "warmup", "lanes", "road_length", "density", "raster_shape",
                         "raster_extent", "history", "eval_horizon", "eval_batches", "lane_weight",
                         "offroad_weight", "speed_gradient", "rear_speed"})
# recipe keys the benchmark sets itself (--set may not)
BENCHMARK_KEYS = frozenset({"seed", "train_steps", "action_conditioned", "car_motion", "traffic_dir"})


def action_sets(data: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every action set (B, T, 2) of the measurement, in the simulator's units."""
    b, steps = data.shape[:2]

    def constant(accel: float, lateral: float) -> torch.Tensor:
        return torch.tensor([accel, lateral]).expand(b, steps, 2).clone()

    zigzag = constant(0.0, 2.0)
    zigzag[:, steps // 2 :, 1] = -2.0
    return {
        "data": data,
        "shuffled": data[torch.randperm(b, generator=generator)],
        "brake": constant(-6.0, 0.0),
        "accelerate": constant(3.0, 0.0),
        "swerve": constant(0.0, 2.0),
        "zigzag": zigzag,
    }


def _measurement(run_dir: Path, model, states: int, horizon: int, seed: int) -> tuple:
    """What every U is measured on: the run's cost, ``states`` held-out test states (seeded),
    every action set, the latents (the prior of ``model``, seeded) and the run's summary."""
    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    test = TrafficDataset(
        summary["traffic_dir"], "test", history=model.history, n_future=horizon, raster=model.raster
    )
    costs = CostConfig.from_config(config, test.road.lane_width)
    g = torch.Generator().manual_seed(seed)
    batch = test.sample_batch(states, g)
    sets = action_sets(batch["actions"], g)
    z = model.sample_prior((states, horizon), torch.Generator().manual_seed(seed + 1))
    return costs, batch, sets, z, summary


def _ratio_row(u: torch.Tensor, data: torch.Tensor, image: torch.Tensor, data_image: torch.Tensor) -> dict:
    """One action set's U (per state) against the data actions' U on the same states, and the
    same for the variance of the predicted images. Many states have U = 0 for every action (no
    car near the ego's cost window), so a per-state ratio is mostly 0/0: how often U rises
    above the data's is reported beside the ratio of the means."""
    return {
        "u_mean": float(u.mean()),
        "ratio_of_means": float(u.mean() / data.mean()),
        "share_above_data": float((u > data).double().mean()),
        "share_zero": float((u == 0).double().mean()),
        "u_image_mean": float(image.mean()),
        "image_ratio_of_means": float(image.mean() / data_image.mean()),
        "image_share_above_data": float((image > data_image).double().mean()),
    }


def measure(run_dir: Path, states: int, horizon: int, samples: int, chunk: int, seed: int) -> dict:
    """U of every action set on ``states`` held-out states of the run's test split."""
    model = load_forward_model(find_forward_model(run_dir)).eval()
    costs, batch, sets, z, summary = _measurement(run_dir, model, states, horizon, seed)
    u: dict[str, list[torch.Tensor]] = {kind: [] for kind in KINDS}
    u_image: dict[str, list[torch.Tensor]] = {kind: [] for kind in KINDS}
    for start in range(0, states, chunk):
        part = slice(start, start + chunk)
        for kind in KINDS:
            torch.manual_seed(seed + 2 + start)  # the same dropout masks for every action set
            with torch.no_grad():
                terms = uncertainty_terms(
                    model,
                    batch["images"][part],
                    batch["states"][part],
                    sets[kind][part],
                    None if z is None else z[part],
                    samples,
                    costs,
                )
            # U as the policy's cost uses it (uncertainty_cost without stats: cost + state terms)
            u[kind].append((terms["cost"] + terms["state"]).sum(-1))
            # and the variance of the predicted images themselves ("variance of predictions")
            u_image[kind].append(terms["image"].sum(-1))
    values = {kind: torch.cat(v) for kind, v in u.items()}
    images = {kind: torch.cat(v) for kind, v in u_image.items()}
    rows = {kind: _ratio_row(v, values["data"], images[kind], images["data"]) for kind, v in values.items()}
    return {
        "rows": rows,
        "error_vs_horizon": summary["error_vs_horizon"]["model"],
        "copy_last": summary["error_vs_horizon"]["copy_last"],
        "action_conditioned": bool(model.action_conditioned),
    }


@torch.no_grad()
def measure_ensemble(run_dirs: list[Path], states: int, horizon: int, seed: int) -> dict:
    """Disagreement of K forward models trained from different seeds on the same data (each
    without dropout, the same latents): the variance over the members of the predicted cost
    (Σ_t) and of the predicted images (Σ_t of the per-pixel variance), on the same held-out
    states and action sets as :func:`measure` (the first run's test split and seed)."""
    models = [load_forward_model(find_forward_model(d)).eval() for d in run_dirs]
    costs, batch, sets, z, _ = _measurement(run_dirs[0], models[0], states, horizon, seed)
    speed0 = batch["states"][:, -1, 1:2]
    values = {}
    for kind in KINDS:
        cost, image = [], []
        for model in models:
            pred_images, pred_states = rollout(model, batch["images"], batch["states"], sets[kind], z)
            cost.append(driving_cost(pred_images, pred_states[..., 1], model.raster, costs, speed0)["total"])
            image.append(pred_images)
        values[kind] = (
            torch.stack(cost).var(0).sum(-1),
            torch.stack(image).var(0).flatten(2).mean(-1).sum(-1),
        )
    data_cost, data_image = values["data"]
    return {
        kind: {**_ratio_row(u, data_cost, ui, data_image),
               "median_state_ratio": float((u / data_cost.clamp(min=1e-12)).median())}
        for kind, (u, ui) in values.items()
    }


def error_verdict(error: list[float], today: list[float], paired: dict | None = None) -> dict:
    """The error-vs-horizon goal: ``error`` no worse than ``today`` at any step (ratio of the
    means ≤ 1); with ``paired`` (:func:`paired_errors`), also whether any step is worse by more
    than two standard errors of the paired difference (``significantly_worse_steps``)."""
    ratios = [e / t for e, t in zip(error, today, strict=True)]
    worst = max(range(len(ratios)), key=ratios.__getitem__)
    verdict = {"met": ratios[worst] <= 1.0, "worst_step": worst + 1, "worst_ratio": ratios[worst]}
    if paired is not None:
        steps = zip(paired["relative"], paired["se"], strict=True)
        verdict["significantly_worse_steps"] = [k + 1 for k, (rel, se) in enumerate(steps) if rel > 2 * se]
    return verdict


def sample_errors(run_dir: Path) -> torch.Tensor:
    """Each test sample's per-step MSE (N, T) of ``run_dir``'s model on the recipe's error
    protocol (its test batches and prior draws, from the run's seed): runs with the same seed
    and data are scored on the same samples."""
    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    model = load_forward_model(find_forward_model(run_dir)).eval()
    test = TrafficDataset(summary["traffic_dir"], "test", history=model.history,
                          n_future=int(config["eval_horizon"]), raster=model.raster)
    errors = errors_per_sample(model, test, int(config["eval_batches"]),
                               generator=error_generator(int(config["seed"])))
    return errors["model"].double()


def paired_errors(ours: torch.Tensor, reference: torch.Tensor) -> dict:
    """Per step, the relative difference of the per-sample errors ``ours`` from ``reference``
    (both (N, T), :func:`sample_errors`), ``mean(e − e_ref) / mean(e_ref)``, and its standard
    error, sample by sample."""
    diff, scale = ours - reference, reference.mean(0)
    se = diff.std(0) / diff.shape[0] ** 0.5
    relative = diff.mean(0) / scale
    return {"relative": relative.tolist(), "se": (se / scale).tolist(), "samples": diff.shape[0]}


def side_by_side(results: dict, cells) -> list[str]:
    """One Markdown row per action set: ``cells(blind_row, conditioned_row)`` between its name and
    the closing bar."""
    return [
        f"| {kind} | {cells(results['blind']['rows'][kind], results['conditioned']['rows'][kind])} |"
        for kind in KINDS
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 training steps, 64 states")
    parser.add_argument("--states", type=int, default=256, help="held-out test states")
    parser.add_argument("--horizon", type=int, default=20, help="rollout steps T of U")
    parser.add_argument("--samples", type=int, default=8, help="dropout masks M")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=DEFAULT_TRAIN_STEPS)
    parser.add_argument(
        "--today-steps",
        type=int,
        default=DEFAULT_TRAIN_STEPS,
        help="training steps of today's model, the error goal's reference (the recipe's default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (and, by default, the state seed)")
    parser.add_argument(
        "--state-seed",
        type=int,
        default=None,
        help="seed of the held-out states, latents and dropout masks (default: --seed)",
    )
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "world_uncertainty"))
    parser.add_argument("--records", default=str(ROOT / "benchmarks" / "records"))
    parser.add_argument(
        "--record", default="world_uncertainty", help="file stem of the record (another keeps the main one)"
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=0,
        help="also measure the disagreement of K action-conditioned models trained from seeds seed … "
        "seed + K − 1 on the same data (0: skip)",
    )
    parser.add_argument(
        "--learned",
        action="store_true",
        help="also train and measure an action-conditioned model with car_motion=learned (cell `learned`)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="recipe overrides of every model trained (e.g. n_future=10); give such a run its own --out-dir",
    )
    args = parser.parse_args(argv)
    model_set = recipe_overrides(parser, "world-model-traffic", "--set", args.set, BENCHMARK_KEYS)
    if args.ensemble == 1 or args.ensemble < 0:
        parser.error(f"--ensemble must be 0 (off) or >= 2 members, got {args.ensemble}")
    if args.quick:
        args.train_steps, args.states = 300, 64
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    base = {"seed": args.seed, "train_steps": args.train_steps, **model_set}
    run_cell(out, "world-model-traffic", "blind", base, "summary.json")
    traffic = json.loads((out / "blind" / "summary.json").read_text())["traffic_dir"]
    run_cell(
        out,
        "world-model-traffic",
        "conditioned",
        {**base, "action_conditioned": True, "traffic_dir": traffic},
        "summary.json",
    )
    names = ["blind", "conditioned"]
    if args.learned:
        overrides = {**base, "action_conditioned": True, "car_motion": "learned", "traffic_dir": traffic}
        run_cell(out, "world-model-traffic", "learned", overrides, "summary.json")
        names.append("learned")
    # the error goal's reference: today's model (the recipe's defaults, blind) on the same data;
    # without overrides that is the blind cell itself
    today = out / "blind"
    if set(model_set) - SHARED_KEYS or args.train_steps != args.today_steps:
        shared = {k: v for k, v in model_set.items() if k in SHARED_KEYS}
        defaults = {"seed": args.seed, "train_steps": args.today_steps, **shared, "traffic_dir": traffic}
        run_cell(out, "world-model-traffic", "today", defaults, "summary.json")
        today = out / "today"
    today_error = json.loads((today / "summary.json").read_text())["error_vs_horizon"]["model"]
    state_seed = args.seed if args.state_seed is None else args.state_seed
    results = {
        name: measure(out / name, args.states, args.horizon, args.samples, args.chunk, state_seed)
        for name in names
    }
    ensemble = None
    if args.ensemble:
        members = [out / "conditioned"]
        for k in range(1, args.ensemble):
            name = f"conditioned-seed{args.seed + k}"
            overrides = {**base, "seed": args.seed + k, "action_conditioned": True, "traffic_dir": traffic}
            run_cell(out, "world-model-traffic", name, overrides, "summary.json")
            members.append(out / name)
        ensemble = measure_ensemble(members, args.states, args.horizon, state_seed)
    date = datetime.date.today().isoformat()
    command = "python benchmarks/world_uncertainty.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"## Does U depend on the action? ({date})",
        "",
        f"`{command.strip()}` — {args.states} held-out states, T = {args.horizon}, M = {args.samples} "
        f"dropout masks, {args.train_steps} training steps per model"
        + "".join(f", `{key}={value}`" for key, value in model_set.items())
        + "; the same latents and masks for "
        "every action set. Reference: today's kinematic model (`blind`, the network does not see the "
        "action); ours: `action_conditioned=true`.",
        "",
        "| action set | blind: U | blind: U / U(data) | blind: states with U > U(data) | conditioned: U | "
        "conditioned: U / U(data) | conditioned: states with U > U(data) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += side_by_side(
        results,
        lambda b, c: f"{b['u_mean']:.3g} | {b['ratio_of_means']:.2f} | {100 * b['share_above_data']:.0f} % | "
        f"{c['u_mean']:.3g} | {c['ratio_of_means']:.2f} | {100 * c['share_above_data']:.0f} %",
    )
    ood = {name: min(results[name]["rows"][k]["ratio_of_means"] for k in OOD) for name in results}
    ood_image = {name: min(results[name]["rows"][k]["image_ratio_of_means"] for k in OOD) for name in results}
    lines += [
        "",
        f"Smallest out-of-distribution ratio (goal ≥ 10): blind {ood['blind']:.2f}, "
        f"conditioned {ood['conditioned']:.2f}.",
        "",
        "Beside it, the variance over the same dropout masks of the predicted *images* (Σ_t of the "
        "per-pixel variance, averaged over pixels; the term `uncertainty_terms` returns as `image`, "
        "which the policy's U leaves out):",
        "",
        "| action set | blind: U_image | blind: U_image / data | conditioned: U_image | "
        "conditioned: U_image / data | conditioned: states above data |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += side_by_side(
        results,
        lambda b, c: f"{b['u_image_mean']:.3g} | {b['image_ratio_of_means']:.2f} | {c['u_image_mean']:.3g} | "
        f"{c['image_ratio_of_means']:.2f} | {100 * c['image_share_above_data']:.0f} %",
    )
    lines += [
        "",
        f"Smallest out-of-distribution ratio of U_image: blind {ood_image['blind']:.2f}, "
        f"conditioned {ood_image['conditioned']:.2f}.",
        "",
    ]
    if "learned" in results:
        learned = results["learned"]["rows"]
        lines += [
            "The action-conditioned model with `car_motion=learned` (the other cars predicted in the ego's "
            "own frame, step by step; the ego state and lanes exact), on the same states, latents and masks:",
            "",
            "| action set | U | U / U(data) | states with U > U(data) | states with U = 0 | U_image / data |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                f"| {kind} | {r['u_mean']:.3g} | {r['ratio_of_means']:.2f} | "
                f"{100 * r['share_above_data']:.0f} % | {100 * r['share_zero']:.0f} % | "
                f"{r['image_ratio_of_means']:.2f} |"
                for kind, r in learned.items()
            ),
            "",
            f"Smallest out-of-distribution ratio (goal ≥ 10): learned car motion {ood['learned']:.2f} "
            f"(U_image: {ood_image['learned']:.2f}).",
            "",
        ]
    if ensemble is not None:
        lines += [
            f"An ensemble instead of dropout: the disagreement (variance over members, each without dropout, "
            f"the same latents) of {args.ensemble} action-conditioned models trained from seeds {args.seed}–"
            f"{args.seed + args.ensemble - 1} on the same data, on the same states and actions:",
            "",
            "| action set | U_cost | U_cost / data | median per-state ratio | states above data | "
            "U_image / data |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                f"| {kind} | {r['u_mean']:.3g} | {r['ratio_of_means']:.2f} | {r['median_state_ratio']:.2f} | "
                f"{100 * r['share_above_data']:.0f} % | {r['image_ratio_of_means']:.2f} |"
                for kind, r in ensemble.items()
            ),
            "",
            "Smallest out-of-distribution ratio of the ensemble's U_cost: "
            f"{min(ensemble[k]['ratio_of_means'] for k in OOD):.2f} (of the means), "
            f"{min(ensemble[k]['median_state_ratio'] for k in OOD):.2f} (median per state).",
            "",
        ]
    lines += [
        "| step | " + " | ".join(f"{name} MSE" for name in names) + " | today's model MSE | copy-last MSE |",
        "|---:|" + "---:|" * (len(names) + 2),
    ]
    curves = [results[name]["error_vs_horizon"] for name in names]
    curves += [today_error, results["blind"]["copy_last"]]
    for i, row in enumerate(zip(*curves, strict=False), 1):
        lines.append(f"| {i} | " + " | ".join(f"{v:.5f}" for v in row) + " |")
    compared = [name for name in names if out / name != today]
    today_samples = sample_errors(today) if compared else None
    paired = {name: paired_errors(sample_errors(out / name), today_samples) for name in compared}
    error_goal = {
        name: error_verdict(results[name]["error_vs_horizon"], today_error, paired.get(name))
        for name in names
    }
    lines += [
        "",
        "Prediction error against today's model (`world-model-traffic` defaults: blind, "
        f"n_future={RECIPE_DEFAULTS['n_future']}, {args.today_steps} steps, the same data, raster and "
        "seed; goal: no worse at any step): "
        + "; ".join(
            f"{name} {'met' if v['met'] else 'not met'} (worst step {v['worst_step']}: "
            f"{100 * (v['worst_ratio'] - 1):+.0f} %)"
            for name, v in error_goal.items()
        )
        + ".",
    ]
    if paired:
        steps = range(1, len(today_error) + 1)
        lines += [
            "",
            "The same, sample by sample on the same test batches and prior draws "
            f"({next(iter(paired.values()))['samples']} samples): per step, the relative difference "
            "of the MSE from today's model, ± its standard error (negative: better than today's):",
            "",
            "| model | " + " | ".join(f"step {k}" for k in steps) + " | steps worse by > 2 SE |",
            "|---|" + "---:|" * (len(today_error) + 1),
            *(
                f"| {name} | "
                + " | ".join(
                    f"{100 * r:+.0f} ± {100 * e:.0f} %" for r, e in zip(p["relative"], p["se"], strict=True)
                )
                + f" | {', '.join(map(str, error_goal[name]['significantly_worse_steps'])) or 'none'} |"
                for name, p in paired.items()
            ),
        ]
    text = "\n".join(lines) + "\n"
    payload = {
        "date": date,
        "command": command.strip(),
        "states": args.states,
        "horizon": args.horizon,
        "samples": args.samples,
        "train_steps": args.train_steps,
        "model_overrides": model_set,
        "state_seed": state_seed,
        "models": results,
        "u_ratio": ood,
        "u_image_ratio": ood_image,
        "today_error_vs_horizon": today_error,
        "error_goal": error_goal,
        "paired_error_vs_today": paired,
        "ensemble": ensemble,
    }
    write_records(args.records, args.record, text, payload)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
