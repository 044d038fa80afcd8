"""The fast mode of the driving world model: vector observations (ego state + the k nearest
cars) instead of rasters, end to end in minutes on one core.

1. Transitions of every pseudo-ego of the traffic-camera data set in vector mode
   (``TrafficDataset(obs_mode="vector")``, the environment's own features).
2. A residual MLP forward model (``genoise.world.dynamics.MLPDynamics``) fitted on the train
   split; one-step and multi-step prediction error on the test split beside copying the last
   observation (multi-step: the recorded actions replayed through the model).
3. Receding-horizon CEM over the model with the driving cost of vector observations
   (``genoise.world.vector_cost``, rear reach from the initial speed), driven on the same
   held-out episodes (seeds 100000…) as ``world_driving.py``, beside keeping speed and the
   replayed IDM driver measured in the same run.

    python benchmarks/world_vector.py --traffic-dir runs/world-model-kin/traffic [--episodes 20] [--quick]

Writes ``benchmarks/results/world_vector.md`` (and ``world_vector_model.pt``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from world_driving import DEFAULTS  # the evaluation setting of the raster-mode benchmark

from genoise.world.control import episode_mpc_controller, expert, keep_speed
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset
from genoise.world.dynamics import MLPDynamics, model_rollout_cost
from genoise.world.evaluate import eval_seeds, evaluation_table
from genoise.world.vector_cost import vector_driving_cost

RESULTS = Path(__file__).parent / "results"


def prediction_errors(model: MLPDynamics, data: TrafficDataset, n: int, seed: int) -> list[tuple]:
    """Mean squared error per horizon (1 … F) of the model and of copy-last, ego state and
    neighbour features separately, on ``n`` random test samples."""
    batch = data.sample_batch(n, torch.Generator().manual_seed(seed))
    state, last = batch["vectors"][:, -1], batch["vectors"][:, -1]
    rows = []
    with torch.no_grad():
        for h in range(batch["actions"].shape[1]):
            state = model(state, batch["actions"][:, h])
            target = batch["target_vectors"][:, h]
            ego, cars = slice(0, 3), slice(3, None)
            rows.append((h + 1, *(float((p[:, part] - target[:, part]).square().mean())
                                  for part in (ego, cars) for p in (state, last))))
    return rows


def planner(model: MLPDynamics, road, config, horizon: int, options: dict, seed: int):
    """CEM over the MLP model; cost = vector driving cost + 0.01 |a|²."""
    def make_rollout_cost(obs: torch.Tensor):
        def cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
            c = vector_driving_cost(state, road, config, initial_speed=obs[1])["total"]
            return c + 0.01 * action.square().sum(-1)

        return model_rollout_cost(model, cost, obs)

    observe = lambda env: torch.as_tensor(env.vector_observation())  # noqa: E731
    return episode_mpc_controller(make_rollout_cost, observe, horizon, "cem", options, seed)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traffic-dir", default="runs/world-model-kin/traffic")
    parser.add_argument("--neighbours", type=int, default=6)
    parser.add_argument("--fit-steps", type=int, default=4000)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="500 fit steps, 3 episodes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if args.quick:
        args.fit_steps, args.episodes = 500, 3
    start = time.time()
    kw = dict(obs_mode="vector", n_neighbours=args.neighbours)
    train = TrafficDataset(args.traffic_dir, "train", history=1, n_future=1, **kw)
    test = TrafficDataset(args.traffic_dir, "test", history=1, n_future=10, **kw)
    data = train.transitions()
    built = time.time() - start
    model = MLPDynamics(data["obs"].shape[1], 2, hidden=256, depth=3)
    losses = model.fit(data, steps=args.fit_steps, batch_size=512, seed=args.seed)
    fitted = time.time() - start - built
    model.eval()
    errors = prediction_errors(model, test, 4096, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), RESULTS / "world_vector_model.pt")

    env_kwargs = dict(road=train.road, **{k: DEFAULTS[k] for k in ("route_length", "max_steps", "warmup")})
    config = CostConfig.from_config(DEFAULTS, train.road.lane_width)
    options = dict(population=64, n_elites=8, iterations=3)
    controllers = {
        "none": keep_speed,
        "idm": expert,
        "cem_vector": planner(model, train.road, config, args.horizon, options, args.seed),
    }
    seeds = eval_seeds(args.episodes)
    drive_start = time.time()
    table = evaluation_table(controllers, seeds, env_kwargs, 1, record=None)
    driven = time.time() - drive_start

    lines = [
        "## Vector-mode world model (`python benchmarks/world_vector.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]) + "`)",
        "",
        f"Data: {len(train)} train transitions ({args.neighbours} nearest cars, "
        f"{data['obs'].shape[1]} numbers per observation) from `{args.traffic_dir}`, "
        f"built in {built:.0f} s; MLPDynamics 3 × 256, "
        f"{args.fit_steps} Adam steps in {fitted:.0f} s (loss {losses[0]:.3f} → {losses[-1]:.3f}).",
        "",
        "Prediction error on the test split (4096 samples, recorded actions replayed), mean squared error:",
        "",
        "| horizon (steps of 0.1 s) | ego state, model | ego state, copy-last | neighbours, model "
        "| neighbours, copy-last |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {h} | {a:.4f} | {b:.4f} | {c:.4f} | {d:.4f} |"
              for h, a, b, c, d in errors if h in (1, 2, 5, 10)]
    lines += ["", f"Driving ({driven:.0f} s for all rows; CEM {options}, horizon {args.horizon}):", "",
              table["table"]]
    text = "\n".join(lines)
    (RESULTS / "world_vector.md").write_text(text)
    (RESULTS / "world_vector.json").write_text(json.dumps(
        {"errors": errors, "driving": table["results"], "seeds": seeds, "args": vars(args)}) + "\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
