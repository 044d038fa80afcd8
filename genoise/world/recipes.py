"""Recipe entry points: ``world-model-traffic`` (collect traffic, train the forward model,
prediction error vs horizon) and ``world-mpur-traffic`` (policies through the model + the driving
evaluation table)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genoise._checks import check_positive
from genoise.train.run import Run
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset, collect_traffic
from genoise.world.forward import ForwardModel, load_forward_model, save_forward_model
from genoise.world.raster import RasterSpec
from genoise.world.render import save_png
from genoise.world.traffic import RoadConfig
from genoise.world.train import error_vs_horizon, normalise_from_data, train_forward_model


def _road(config: dict[str, Any]) -> RoadConfig:
    return RoadConfig(
        n_lanes=int(config["lanes"]),
        road_length=float(config["road_length"]),
        density=float(config["density"]),
    )


def _raster(config: dict[str, Any]) -> RasterSpec:
    return RasterSpec(shape=tuple(config["raster_shape"]), extent=tuple(config["raster_extent"]))


def _kinematics(data: TrafficDataset) -> dict[str, float]:
    return {"dt": data.dt, "n_lanes": data.road.n_lanes, "lane_width": data.road.lane_width}


def _data_dir(run: Run, config: dict[str, Any]) -> Path:
    if config.get("traffic_dir"):
        return Path(config["traffic_dir"])
    root = run.path("traffic")
    if not (root / "manifest.json").exists():
        collect_traffic(
            root,
            n_episodes=int(config["episodes"]),
            steps=int(config["steps"]),
            seed=int(config["seed"]),
            road=_road(config),
            warmup=int(config.get("warmup", 300)),
            progress=run.progress,
        )
    return root


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


def world_model_traffic(run: Run) -> dict[str, Any]:
    """Collect the traffic-camera data set (unless ``traffic_dir`` is given), train the
    forward model, report raster MSE vs horizon on the test split, save ``forward_model.pt``."""
    config = run.config
    torch.manual_seed(int(config["seed"]))
    generator = torch.Generator().manual_seed(int(config["seed"]))
    root = _data_dir(run, config)
    raster, history = _raster(config), int(config["history"])
    train = TrafficDataset(root, "train", history=history, n_future=int(config["n_future"]), raster=raster)
    test = TrafficDataset(root, "test", history=history, n_future=int(config["eval_horizon"]), raster=raster)
    model = ForwardModel(
        history=history,
        raster=raster,
        nz=int(config["nz"]),
        width=int(config["width"]),
        hidden=int(config["hidden"]),
        dropout=float(config["dropout"]),
        ego_kinematics=_kinematics(train) if config.get("ego_kinematics", False) else None,
    ).to(run.device)
    checkpoint = run.path("forward_model.pt")
    if run.resume and checkpoint.is_file():  # resume: the model stage is done
        model = load_forward_model(checkpoint, {"obs_mode": "raster", "raster": asdict(raster)})
    else:
        _fit_forward_model(run, model, train, config, generator)
    errors = error_vs_horizon(model, test, n_batches=int(config["eval_batches"]), generator=generator)
    _plot_errors(run, errors, train.dt)
    _save_prediction_strip(run, model, test, generator)
    summary = {
        "test_mse_step1": errors["model"][0],
        "test_mse_last": errors["model"][-1],
        "copy_last_mse_step1": errors["copy_last"][0],
        "copy_last_mse_last": errors["copy_last"][-1],
        "error_vs_horizon": errors,
        "traffic_dir": str(root),
    }
    return summary


def _fit_forward_model(
    run: Run, model: ForwardModel, train: TrafficDataset, config: dict[str, Any], generator: torch.Generator
) -> None:
    normalise_from_data(model, train, generator=generator)
    train_forward_model(
        model,
        train,
        int(config["train_steps"]),
        int(config["batch_size"]),
        float(config["lr"]),
        float(config["beta"]),
        float(config["z_dropout"]),
        generator,
        log=run.log,
        progress=run.progress,
    )
    save_forward_model(
        model,
        run.path("forward_model.pt"),
        {
            "obs_mode": "raster",
            "raster": asdict(model.raster),
            "road": asdict(train.road),
            "history": model.history,
        },
    )


def _save_prediction_strip(
    run: Run, model: ForwardModel, data: TrafficDataset, generator: torch.Generator
) -> None:
    from genoise.world.forward import rollout

    batch = data.sample_batch(1, generator)
    model.eval()
    with torch.no_grad():
        images, _ = rollout(
            model,
            batch["images"],
            batch["states"],
            batch["actions"],
            model.sample_prior((1, batch["actions"].shape[1]), generator),
        )
    # columns: true then predicted frames, channels as RGB (lanes red, cars green, ego blue)
    true = batch["target_images"][0].permute(0, 2, 3, 1)
    pred = images[0].permute(0, 2, 3, 1)
    gap = torch.ones(true.shape[1], 1, 3)
    row = lambda frames: torch.cat([torch.cat([f, gap], 1) for f in frames], 1)  # noqa: E731
    picture = torch.cat([row(true), torch.ones(2, row(true).shape[1], 3), row(pred)], 0)
    picture = picture.repeat_interleave(3, 0).repeat_interleave(3, 1)
    save_png((picture.clamp(0, 1).numpy() * 255).astype(np.uint8), run.path("predictions.png"))


def _load_or_train_model(run: Run, config: dict[str, Any]) -> tuple[ForwardModel, Path]:
    if config.get("model_run"):
        folder = Path(config["model_run"])
        summary = (
            json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else {}
        )
        expect = {"obs_mode": "raster", "raster": asdict(_raster(config))}
        return load_forward_model(folder / "forward_model.pt", expect), Path(summary.get("traffic_dir", ""))
    sub = run.subrun("world_model")
    if run.resume and (sub.path("summary.json")).is_file() and sub.path("forward_model.pt").is_file():
        summary = json.loads(sub.path("summary.json").read_text())
        return load_forward_model(sub.path("forward_model.pt")), Path(summary["traffic_dir"])
    summary = world_model_traffic(sub)
    sub.save_summary(summary)
    return load_forward_model(sub.path("forward_model.pt")), Path(summary["traffic_dir"])


def cost_config(config: dict[str, Any], lane_width: float) -> CostConfig:
    """The driving cost of a recipe configuration (keys ``lane_weight``, ``offroad_weight``,
    ``speed_gradient``, ``rear_speed``; the paper's values when absent)."""
    return CostConfig(
        lane_weight=float(config.get("lane_weight", 0.2)),
        offroad_weight=float(config.get("offroad_weight", 1.0)),
        lane_width=lane_width,
        speed_gradient=bool(config.get("speed_gradient", True)),
        rear_speed=str(config.get("rear_speed", "current")),
    )


def train_policy(
    method: str,
    model: ForwardModel,
    data: TrafficDataset,
    expert_data: TrafficDataset,
    low: np.ndarray,
    high: np.ndarray,
    config: dict[str, Any],
    generator: torch.Generator,
    log=None,
) -> torch.nn.Module:
    """Train one policy: ``mpur``, ``mpur_no_u``, ``mper`` or ``bc``."""
    from genoise.world.policy import DrivingPolicy, bc_loss, mper_loss, mpur_loss

    policy = DrivingPolicy(model, low, high)
    costs = cost_config(config, data.road.lane_width)
    optimiser = torch.optim.Adam(policy.parameters(), lr=float(config["policy_lr"]))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for step in range(int(config["policy_steps"])):
        if method in ("mpur", "mpur_no_u"):
            batch = data.sample_batch(int(config["policy_batch"]), generator)
            losses = mpur_loss(
                policy,
                model,
                batch,
                int(config["horizon"]),
                float(config["u_weight"]) if method == "mpur" else 0.0,
                int(config["n_dropout"]),
                config=costs,
                generator=generator,
                action_weight=float(config.get("action_weight", 0.0)),
            )
        elif method == "mper":
            losses = mper_loss(
                policy, model, expert_data.sample_batch(int(config["policy_batch"]), generator)
            )
        elif method == "bc":
            losses = bc_loss(policy, data.sample_batch(int(config["policy_batch"]), generator))
        else:
            raise ValueError(f"unknown policy method {method!r}; use mpur, mpur_no_u, mper or bc")
        optimiser.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 5.0)
        optimiser.step()
        if log is not None and (step % 50 == 0 or step == int(config["policy_steps"]) - 1):
            log({f"{method}/{k}": v.item() for k, v in losses.items()}, step)
    return policy.eval()


def mpur_traffic(run: Run) -> dict[str, Any]:
    """Train the policies through the forward model (saved to ``policies/<method>.pt``) and
    evaluate every controller on the same held-out seeds: success rate, collision rate,
    mean distance (``evaluation.md``). With ``run.resume`` a policy whose checkpoint exists
    is loaded instead of trained."""
    from genoise.world.evaluate import (
        eval_seeds,
        evaluation_table,
        load_policy,
        observation_config,
        save_policy,
    )
    from genoise.world.highway_env import HighwayTrafficEnv
    from genoise.world.policy import expert, keep_speed, planner_controller, policy_controller

    config = run.config
    # runs saved before planner_episodes existed drove the planners on every episode
    n_planner_episodes = int(config.get("planner_episodes", config["eval_episodes"]))
    check_positive("planner_episodes", n_planner_episodes)
    torch.manual_seed(int(config["seed"]))
    generator = torch.Generator().manual_seed(int(config["seed"]))
    model, root = _load_or_train_model(run, config)
    history = model.history
    data = TrafficDataset(root, "train", history=history, n_future=1, raster=model.raster)
    expert_data = TrafficDataset(
        root, "train", history=history, n_future=int(config["horizon"]), raster=model.raster
    )
    env_kwargs = dict(
        road=data.road,
        raster=model.raster,
        route_length=float(config["route_length"]),
        max_steps=int(config["max_steps"]),
        warmup=int(config.get("warmup", 300)),
    )
    probe = HighwayTrafficEnv(**env_kwargs)
    obs_config = observation_config(probe, history)
    low, high = probe.action_space.low, probe.action_space.high
    seeds = eval_seeds(int(config["eval_episodes"]))
    controllers: dict[str, Any] = {"none": keep_speed, "idm": expert}
    (run.dir / "policies").mkdir(exist_ok=True)
    for method in config["policies"]:
        path = run.path(f"policies/{method}.pt")
        if run.resume and path.is_file():
            policy, _ = load_policy(path, expect_obs=obs_config)
        else:
            policy = train_policy(method, model, data, expert_data, low, high, config, generator, log=run.log)
            save_policy(policy, path, obs_config, {**config, "method": method}, method=method)
        controllers[method] = policy_controller(policy)
    for method in config["planners"]:
        options = {
            "gradient": dict(iterations=int(config["planner_iterations"]), lr=0.5),
            "cem": dict(
                population=int(config["planner_samples"]),
                n_elites=8,
                iterations=int(config["planner_iterations"]),
            ),
            "mppi": dict(
                samples=int(config["planner_samples"]),
                iterations=int(config["planner_iterations"]),
                temperature=0.1,
            ),
        }[method]
        controllers[method] = planner_controller(
            model,
            method,
            low,
            high,
            int(config["planner_horizon"]),
            options,
            cost_config(config, data.road.lane_width),
        )
    planners = {k: controllers.pop(k) for k in config["planners"]}
    out = evaluation_table(
        controllers, seeds, env_kwargs, history, out_dir=run.dir, record="mpur", log=run.log
    )
    table = out["table"]
    if planners:  # ~1 CPU-minute per planner episode: the first planner_episodes seeds only
        first = seeds[:n_planner_episodes]
        rows = {"none": keep_speed, "idm": expert, **planners}  # references again on these seeds
        extra = evaluation_table(rows, first, env_kwargs, history, record=None)
        table += "\nPlanners over the learned model, on the first episodes of the same seeds:\n\n"
        table += extra["table"]
        for key in planners:
            out["results"][key] = extra["results"][key]
            run.log({f"eval/{key}/success": extra["results"][key]["success_rate"]})
        out["planner_references"] = {k: extra["results"][k] for k in ("none", "idm")}
    run.path("evaluation.md").write_text(table)
    print(table)
    return {**out, "table": table}
