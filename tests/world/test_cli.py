"""`genoise world collect` and `genoise plan` (`genoise.cli.world`): real sub-parsers, one-line
errors for bad input, and `plan` driving with the cost configuration of the recipe."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch

from genoise.cli.world import add_subcommands
from genoise.recipes.world import train_model
from genoise.train.run import Run
from genoise.world.costs import CostConfig
from genoise.world.dataset import TrafficDataset
from tests.world.conftest import TINY, recipe_config


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genoise")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse(argv)
    return args.handler(args)


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    """A tiny `genoise train world-model-traffic` run folder (config.yaml as the CLI writes it)."""
    folder = Run(tmp_path_factory.mktemp("plan") / "model", progress=False,
                 config=recipe_config("world-model-traffic", **TINY))
    folder.save_summary(train_model(folder))
    folder.save_config()
    return folder


def test_collect_writes_a_loadable_dataset(tmp_path, capsys) -> None:
    code = run(["world", "collect", str(tmp_path / "d"), "--episodes", "1", "--steps", "60", "--warmup", "10",
                "--lanes", "2", "--length", "200", "--no-progress"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[0])["split"] == "train" and lines[-1].startswith("wrote")
    data = TrafficDataset(tmp_path / "d", "train", history=2)
    assert data.road.n_lanes == 2 and data.road.road_length == 200.0 and data.road.density == 40.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["world", "collect", "OUT", "--episodes", "0"], "argument --episodes: must be >= 1, got 0"),
        (["world", "collect", "OUT", "--lanes", "two"], "argument --lanes: must be an int, got 'two'"),
        (["world", "collect", "OUT", "--length", "-5"], "argument --length: must be > 0, got -5"),
        (["world", "collect", "OUT", "--density", "0"], "argument --density: must be > 0, got 0"),
        (["world"], "the following arguments are required: COMMAND"),
        (["world", "gather", "OUT"], "invalid choice: 'gather'"),
        (["plan", "RUN", "--planner", "ilqr"], "argument --planner: invalid choice: 'ilqr'"),
        (["plan", "RUN", "--episodes", "-1"], "argument --episodes: must be >= 1, got -1"),
        (["plan", "RUN", "--samples", "1"], "argument --samples: must be >= 2, got 1"),
        (["plan", "RUN", "--route-length", "0"], "argument --route-length: must be > 0, got 0"),
    ],
)
def test_bad_arguments_get_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors


def test_bad_folders_are_one_line_errors(tmp_path, model_run) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^\S+file is a file, not a folder$"):
        run(["world", "collect", str(tmp_path / "file"), "--no-progress"])
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such run folder"):
        run(["plan", str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError, match=r"no forward model in .*model/last.pt and forward_model.pt"):
        run(["plan", str(tmp_path)])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"^not a genoise checkpoint: .*last.pt"):
        run(["plan", str(tmp_path)])
    with pytest.raises(ValueError, match=r"route_length=400.0 must be shorter than the ring"):
        run(["plan", str(model_run.dir), "--route-length", "400", "--episodes", "1"])
    cut = tmp_path / "cut"
    shutil.copytree(model_run.dir, cut)
    checkpoint = torch.load(cut / "model" / "last.pt", weights_only=False)
    torch.save({**checkpoint, "step": 1}, cut / "model" / "last.pt")  # as `--stop-after 1` leaves it
    with pytest.raises(ValueError, match=r"last.pt stopped at step 1 of 3; finish it with"):
        run(["plan", str(cut)])


def test_plan_drives_with_the_cost_configuration_of_the_recipe(model_run, capsys) -> None:
    """`genoise plan` used off-road weight 1.0 while the recipe plans with 5.0 (issue 13)."""
    small = ["--episodes", "1", "--horizon", "2", "--samples", "4", "--iterations", "1", "--route-length",
             "20", "--max-steps", "15"]
    assert run(["plan", str(model_run.dir), "--planner", "cem", *small]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    recipe = CostConfig.from_config(model_run.config, lane_width=3.7)
    assert out["costs"] == vars(recipe)
    assert out["costs"]["offroad_weight"] == 5.0
    assert out["costs"]["rear_speed"] == model_run.config["rear_speed"] == "initial"
    assert out["planner"] == "cem" and out["options"] == {"population": 4, "n_elites": 2, "iterations": 1}
    assert len(out["outcomes"]) == 1
    assert run(["plan", str(model_run.dir), "--planner", "mpc", "--rear-speed", "current", *small]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["costs"]["rear_speed"] == "current" and out["planner"] == "gradient"
