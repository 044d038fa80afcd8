"""Recipes of the driving world model (Henaff, Canziani & LeCun, ICLR 2019).

- ``genoise train world-model-traffic`` → :func:`train_model`: collect the traffic-camera
  data set (unless ``traffic_dir`` is given), train the stochastic forward model
  (``model/last.pt``), prediction error vs horizon on the test split.
- ``genoise train world-mpur-traffic`` (alias ``mpur-traffic``) → :func:`train_mpur`: the
  policies through the model (``policy/<method>/last.pt``) and the planners, every
  controller driven on the same held-out seeds (``evaluation.md``).
- ``genoise eval driving RUN_DIR [key=value …]`` → :func:`evaluate`.
- ``genoise demo --only world`` → :func:`demo`.

The library code these call lives in :mod:`genoise.world`; the defaults in the YAML files
(``_world.yaml`` and its two children).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genoise._checks import check_positive
from genoise.io import atomic_write_text
from genoise.recipes import OptionSpec, check_options, count, positive_number
from genoise.train.run import Run
from genoise.train.seed import derive_seed
from genoise.world.checkpoints import (
    check_finished,
    find_forward_model,
    find_policies,
    load_forward_model,
    load_policy,
    observation_config,
)
from genoise.world.control import expert, keep_speed, planner_controller, policy_controller
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset, collect_traffic
from genoise.world.evaluate import EVAL_SEED, driving_setting, eval_seeds, evaluate_driving, evaluation_table
from genoise.world.forward import ForwardModel, rollout
from genoise.world.highway_env import HighwayTrafficEnv
from genoise.world.planners import PLANNERS, planner_options
from genoise.world.raster import RasterSpec
from genoise.world.render import filmstrip, save_gif, save_png
from genoise.world.traffic import RoadConfig
from genoise.world.train import POLICY_METHODS, error_vs_horizon, train_forward_model, train_policy

# ---------------------------------------------------------------------- world-model-traffic


def _road(config: dict[str, Any]) -> RoadConfig:
    return RoadConfig(n_lanes=int(config["lanes"]), road_length=float(config["road_length"]),
                      density=float(config["density"]))


def _raster(config: dict[str, Any]) -> RasterSpec:
    return RasterSpec(shape=tuple(config["raster_shape"]), extent=tuple(config["raster_extent"]))


def _check_config(config: dict[str, Any], policies: bool) -> None:
    """Refuse, before any work, the values the YAML's ranges cannot express (one line each)."""
    shape, extent = config["raster_shape"], config["raster_extent"]
    if not (isinstance(shape, list) and len(shape) == 2
            and all(isinstance(v, int) and v > 0 and v % 8 == 0 for v in shape)):
        raise ValueError(f"raster_shape={shape!r} must be two positive multiples of 8, e.g. [64,16]")
    if not (isinstance(extent, list) and len(extent) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in extent)):
        raise ValueError(f"raster_extent={extent!r} must be two positive lengths in metres, e.g. [80,16]")
    if not policies:
        return
    for key, allowed in (("policies", POLICY_METHODS), ("planners", PLANNERS)):
        value = config[key]
        if not isinstance(value, list) or not set(value) <= set(allowed):
            raise ValueError(f"{key}={value!r} must be a list among {', '.join(allowed)}")
    if not config.get("model_run") and float(config["route_length"]) >= float(config["road_length"]):
        raise ValueError(f"route_length={config['route_length']} must be shorter than the ring "
                         f"(road_length={config['road_length']})")


def _traffic_dir(run: Run, config: dict[str, Any]) -> Path:
    """``traffic_dir`` if given, else the data set collected into ``run.dir/traffic``."""
    if config.get("traffic_dir"):
        return Path(config["traffic_dir"])
    root = run.path("traffic")
    if not (root / "manifest.json").exists():
        collect_traffic(root, n_episodes=int(config["episodes"]), steps=int(config["steps"]),
                        seed=int(config["seed"]), road=_road(config), warmup=int(config["warmup"]),
                        progress=run.progress)
    return root


def validate(config: dict[str, Any]) -> None:
    """Checks across keys, run by ``genoise train`` before anything is written."""
    if config.get("action_conditioned") and not config.get("ego_kinematics"):
        raise ValueError("action_conditioned=true needs ego_kinematics=true (the fully learned model "
                         "always reads the action)")
    if config.get("car_motion", "kinematic") == "learned" and not config.get("action_conditioned"):
        raise ValueError("car_motion=learned needs action_conditioned=true (the network moves the other "
                         "cars in the ego's frame, so it must read the action)")
    if config.get("unroll_frame", "ego") == "reference" and (
            not config.get("ego_kinematics") or config.get("car_motion", "kinematic") != "kinematic"):
        raise ValueError("unroll_frame=reference needs ego_kinematics=true and car_motion=kinematic (the "
                         "frame of a reference ego that keeps its speed and lane)")
    if config.get("learned_prior") and int(config.get("nz", 0)) == 0:
        raise ValueError("learned_prior=true needs a latent (nz > 0)")


def _fit_model(run: Run) -> tuple[ForwardModel, TrafficDataset, Path]:
    """Build and train (or resume) the forward model in ``run.dir/model``; returns it in eval
    mode, the training split and the traffic folder."""
    config, seed = run.config, int(run.config["seed"])
    root = _traffic_dir(run, config)
    raster, history = _raster(config), int(config["history"])
    train = TrafficDataset(root, "train", history=history, n_future=int(config["n_future"]), raster=raster)
    kinematics = {"dt": train.dt, "n_lanes": train.road.n_lanes, "lane_width": train.road.lane_width}
    torch.manual_seed(seed)
    model = ForwardModel(
        history=history, raster=raster, nz=int(config["nz"]), width=int(config["width"]),
        hidden=int(config["hidden"]), dropout=float(config["dropout"]),
        ego_kinematics=kinematics if config["ego_kinematics"] else None,
        action_conditioned=bool(config["action_conditioned"]),
        learned_prior=bool(config.get("learned_prior", False)),
        car_motion=str(config.get("car_motion", "kinematic")),  # runs from before the key: kinematic
    ).to(run.device)
    obs_config = {"obs_mode": "raster", "raster": asdict(raster), "road": asdict(train.road),
                  "history": history}
    train_forward_model(
        model, train, int(config["train_steps"]), int(config["batch_size"]), float(config["lr"]),
        float(config["beta"]), float(config["z_dropout"]), seed=seed, run=run.subrun("model"),
        unroll_frame=str(config.get("unroll_frame", "ego")),  # runs from before the key: ego
        step_weights=str(config.get("step_weights", "uniform")),  # runs from before the key: uniform
        obs_config=obs_config,
    )
    return model.eval(), train, root


def error_generator(seed: int) -> torch.Generator:
    """The generator of the test batches and prior draws of a run's error-vs-horizon evaluation
    (:func:`~genoise.world.train.error_vs_horizon`), from the run's ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, 2))


def _report_model(run: Run, model: ForwardModel, root: Path, dt: float) -> dict[str, Any]:
    """Prediction error vs horizon on the test split (plot), a strip of predicted frames."""
    config = run.config
    test = TrafficDataset(root, "test", history=model.history, n_future=int(config["eval_horizon"]),
                          raster=model.raster)
    generator = error_generator(int(config["seed"]))
    errors = error_vs_horizon(model, test, n_batches=int(config["eval_batches"]), generator=generator)
    _plot_errors(run, errors, dt)
    _save_prediction_strip(run, model, test, generator)
    return {
        "test_mse_step1": errors["model"][0],
        "test_mse_last": errors["model"][-1],
        "copy_last_mse_step1": errors["copy_last"][0],
        "copy_last_mse_last": errors["copy_last"][-1],
        "error_vs_horizon": errors,
        "traffic_dir": str(root),
    }


def _plot_errors(run: Run, errors: dict[str, list[float]], dt: float) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    steps = np.arange(1, len(errors["model"]) + 1) * dt
    ax.plot(steps, errors["model"], "o-", label="forward model (z ~ prior)")
    ax.plot(steps, errors["copy_last"], "s--", label="copy last frame")
    ax.set_xlabel("prediction horizon (s)")
    ax.set_ylabel("raster MSE (test split)")
    ax.legend()
    run.save_figure(fig, "error_vs_horizon.png")


def _save_prediction_strip(run: Run, model: ForwardModel, data: TrafficDataset,
                           generator: torch.Generator) -> None:
    """``predictions.png``: true (top) and predicted (bottom) frames, channels as RGB (lanes
    red, cars green, ego blue)."""
    device = model.state_mean.device
    batch = {k: v.to(device) for k, v in data.sample_batch(1, generator).items()}
    with torch.no_grad():
        z = model.sample_prior((1, batch["actions"].shape[1]), torch.Generator(device).manual_seed(0))
        images, _ = rollout(model, batch["images"], batch["states"], batch["actions"], z)
    true = batch["target_images"][0].permute(0, 2, 3, 1).cpu()
    pred = images[0].permute(0, 2, 3, 1).cpu()
    gap = torch.ones(true.shape[1], 1, 3)
    row = lambda frames: torch.cat([torch.cat([f, gap], 1) for f in frames], 1)  # noqa: E731
    picture = torch.cat([row(true), torch.ones(2, row(true).shape[1], 3), row(pred)], 0)
    picture = picture.repeat_interleave(3, 0).repeat_interleave(3, 1)
    save_png((picture.clamp(0, 1).numpy() * 255).astype(np.uint8), run.path("predictions.png"))


def train_model(run: Run) -> dict[str, Any]:
    """``world-model-traffic``: collect the traffic-camera data set (unless ``traffic_dir``),
    train the forward model (``model/last.pt``), report raster MSE vs horizon on the test
    split (``error_vs_horizon.png``, ``predictions.png``)."""
    _check_config(run.config, policies=False)
    model, train, root = _fit_model(run)
    return _report_model(run, model, root, train.dt)


# ---------------------------------------------------------------------- world-mpur-traffic


def _model_for_policies(run: Run) -> tuple[ForwardModel, Path]:
    """The forward model of ``model_run`` (and its traffic folder), or one trained here."""
    config = run.config
    if config.get("model_run"):
        folder = Path(config["model_run"])
        checkpoint = find_forward_model(folder)
        summary_file = folder / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        root = config.get("traffic_dir") or summary.get("traffic_dir")
        if not root:
            raise ValueError(f"model_run={folder} has no summary.json naming its traffic_dir; "
                             "give traffic_dir=")
        expect = {"obs_mode": "raster", "raster": asdict(_raster(config))}
        return load_forward_model(checkpoint, expect).to(run.device).eval(), Path(root)
    model, train, root = _fit_model(run)
    report = run.subrun("model")
    report.save_summary(_report_model(report, model, root, train.dt))
    return model, root


def _planners(config: dict[str, Any], model: ForwardModel, low, high, lane_width: float) -> dict:
    costs = CostConfig.from_config(config, lane_width)
    return {
        method: planner_controller(
            model, method, low, high, int(config["planner_horizon"]),
            planner_options(method, int(config["planner_samples"]), int(config["planner_iterations"])), costs,
        )
        for method in config["planners"]
    }


def _drive(run: Run, controllers: dict, planners: dict, seeds: list[int], env_kwargs: dict,
           history: int) -> dict[str, Any]:
    """The evaluation table; the planners (~1 CPU-minute per episode) drive only the first
    ``planner_episodes`` seeds, next to the references on the same seeds."""
    out = evaluation_table(controllers, seeds, env_kwargs, history, out_dir=run.dir, record="mpur",
                           log=run.log)
    table = out["table"]
    if planners:
        first = seeds[: int(run.config["planner_episodes"])]
        extra = evaluation_table({"none": keep_speed, "idm": expert, **planners}, first, env_kwargs, history,
                                 record=None)
        table += "\nPlanners over the learned model, on the first episodes of the same seeds:\n\n"
        table += extra["table"]
        for key in planners:
            out["results"][key] = extra["results"][key]
            run.log({f"eval/{key}/success": extra["results"][key]["success_rate"]})
        out["planner_references"] = {k: extra["results"][k] for k in ("none", "idm")}
    atomic_write_text(run.path("evaluation.md"), table)
    return {**out, "table": table}


def train_mpur(run: Run) -> dict[str, Any]:
    """``world-mpur-traffic``: train the policies through the forward model (each in
    ``policy/<method>/``, resumable) and evaluate every controller — the policies, the
    planners, "no action" and the IDM driver — on the same held-out seeds: success rate,
    collision rate, mean distance (``evaluation.md``)."""
    config, seed = run.config, int(run.config["seed"])
    _check_config(config, policies=True)
    check_positive("planner_episodes", config["planner_episodes"])
    model, root = _model_for_policies(run)
    history = model.history
    data = TrafficDataset(root, "train", history=history, n_future=1, raster=model.raster)
    expert_data = TrafficDataset(root, "train", history=history, n_future=int(config["horizon"]),
                                 raster=model.raster)
    env_kwargs = dict(road=data.road, raster=model.raster, route_length=float(config["route_length"]),
                      max_steps=int(config["max_steps"]), warmup=int(config["warmup"]))
    probe = HighwayTrafficEnv(**env_kwargs)
    obs_config = observation_config(probe, history)
    low, high = probe.action_space.low, probe.action_space.high
    controllers: dict[str, Any] = {"none": keep_speed, "idm": expert}
    for method in config["policies"]:
        policy = train_policy(method, model, data, expert_data, low, high, config, seed=seed,
                              run=run.subrun(f"policy/{method}"), obs_config=obs_config)
        controllers[method] = policy_controller(policy.cpu())
    planners = _planners(config, model, low, high, data.road.lane_width)  # moves the model to the CPU
    return _drive(run, controllers, planners, eval_seeds(int(config["eval_episodes"])), env_kwargs, history)


# ---------------------------------------------------------------------- genoise eval driving

# option -> (meaning, check of a value, what a valid value is)
EVALUATE_OPTIONS: OptionSpec = {
    "episodes": ("number of held-out episodes (default: the run's eval_episodes)", count(1), "an int >= 1"),
    "seed_start": (f"first episode seed (default {EVAL_SEED}, as the recipe)", count(0), "an int >= 0"),
    "methods": ("saved policies to drive (default: all)",
                lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
                "a list of policy names, e.g. methods=[mpur,bc]"),
    "references": ("also drive 'no action' and the IDM driver (default true)",
                   lambda v: isinstance(v, bool), "true or false"),
    "route_length": ("route length in metres (default: the run's)", positive_number, "a number > 0"),
    "max_steps": ("time limit in steps (default: the run's)", count(1), "an int >= 1"),
    "env_overrides": ("extra HighwayTrafficEnv arguments", lambda v: isinstance(v, dict), "a mapping"),
    "gif": ("write <method>_episode.gif of the first policy's first episode (default false)",
            lambda v: isinstance(v, bool), "true or false"),
    "write": ("write evaluation_reloaded.md / .json (default true)", lambda v: isinstance(v, bool),
              "true or false"),
}


def evaluate(run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """``genoise eval driving RUN_DIR``: reload the policies of a ``world-mpur-traffic`` run
    folder and drive them on the fixed held-out seeds next to "no action" and the IDM driver.

    Options (:data:`EVALUATE_OPTIONS`; an unknown option or a bad value is a one-line
    ``ValueError``):
    ``episodes``, ``seed_start``, ``methods``, ``references``, ``route_length``,
    ``max_steps``, ``env_overrides`` (a different observation format is rejected),
    ``gif``, ``write``. Returns ``{"table": markdown, "results": {row: rates, outcomes…}}``
    and writes ``evaluation_reloaded.md`` / ``.json``."""
    options = check_options(options, EVALUATE_OPTIONS, "driving evaluation")
    run_dir = Path(run_dir)
    files = find_policies(run_dir)
    if not files:
        raise ValueError(f"no trained policies in {run_dir} (looked for policy/*/last.pt and policies/*.pt; "
                         "train with `genoise train world-mpur-traffic`)")
    methods = options.get("methods")
    if methods is not None and (missing := sorted(set(methods) - set(files))):
        raise ValueError(f"no saved policy for {missing} in {run_dir}; saved: {', '.join(files)}")
    _, meta = load_policy(next(iter(files.values())))
    config, trained = meta["config"], meta["obs_config"]
    env_kwargs = driving_setting(trained, config, route_length=options.get("route_length"),
                                 max_steps=options.get("max_steps"), **(options.get("env_overrides") or {}))
    history = int(trained["history"])
    expect = observation_config(HighwayTrafficEnv(**env_kwargs), history)
    references = options.get("references", True)
    controllers: dict[str, Any] = {"none": keep_speed, "idm": expert} if references else {}
    for method, path in files.items():
        if methods is None or method in methods:
            policy, _ = load_policy(path, expect_obs=expect)
            controllers[method] = policy_controller(policy)
            check_finished(path)
    episodes = options.get("episodes") or config.get("eval_episodes", 20)
    seeds = eval_seeds(int(episodes), int(options.get("seed_start", EVAL_SEED)))
    first = next((k for k in controllers if k not in ("none", "idm")), None)
    out = evaluation_table(controllers, seeds, env_kwargs, history,
                           out_dir=run_dir if options.get("gif", False) else None, record=first)
    if options.get("write", True):
        atomic_write_text(run_dir / "evaluation_reloaded.md", out["table"])
        env = {**env_kwargs, "road": asdict(env_kwargs["road"]), "raster": asdict(env_kwargs["raster"])}
        record = json.dumps({"seeds": seeds, "env": env, "results": out["results"]}, indent=1, default=str)
        atomic_write_text(run_dir / "evaluation_reloaded.json", record + "\n")
    return out


# ---------------------------------------------------------------------- genoise demo


def demo(run: Run, full: bool) -> str:
    """Episodes of the IDM driver (replayed ghost) and of "keep speed" on the same seeds;
    the first IDM episode is rendered to ``driving.gif`` / ``driving.png`` (in ``run.dir``)."""
    env_kwargs = dict(route_length=200.0, max_steps=300)
    seeds = list(range(10 if full else 4))
    rows = []
    for name, controller in (("IDM driver (replay)", expert), ("no action (keep speed)", keep_speed)):
        outcome = evaluate_driving(controller, seeds, env_kwargs, history=1,
                                   record=0 if controller is expert else None)
        if outcome["frames"]:
            save_gif(outcome["frames"][::2], run.path("driving.gif"))
            save_png(filmstrip(outcome["frames"], every=40), run.path("driving.png"))
        rows.append(f"| {name} | {100 * outcome['success_rate']:.0f} | "
                    f"{100 * outcome['collision_rate']:.0f} | {outcome['mean_distance']:.0f} |")
    return "\n".join([
        "## Driving in dense traffic (genoise/HighwayTraffic-v0)",
        "",
        "4-lane ring road, IDM car following + MOBIL lane changes, a slow merge zone in the right lane; "
        f"{len(seeds)} episodes of a 200 m route in the invisible-car setting.",
        "",
        "| controller | success % | collision % | mean distance (m) |",
        "|---|---|---|---|",
        *rows,
        "",
        "![driving episode](driving.png)",
        "",
        "[GIF of the episode](driving.gif)",
        "",
    ])
