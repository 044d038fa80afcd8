"""`genoise train jepa-two-rooms` and `genoise eval planning`: a tiny run end to end, the
evaluator's options and its one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from genoise.cli import main
from genoise.world.jepa_train import load_jepa
from tests.recipes.test_resume_jepa import _TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("jepa")
    assert (
        main(["train", "jepa-two-rooms", *_TINY, "--runs-dir", str(root), "--name", "tiny", "--no-progress"])
        == 0
    )
    return root / "tiny"


def test_training_writes_the_model_the_baseline_the_table_and_the_figures(run_dir) -> None:
    for name in (
        "jepa/last.pt",
        "gcbc/last.pt",
        "data/manifest.json",
        "planning.md",
        "planning.json",
        "planning.png",
        "episode.gif",
        "summary.json",
    ):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "planning.json").read_text())
    assert set(record["results"]) == {"mppi", "gcbc", "oracle"}
    assert record["protocol"]["success_radius"] == 4.5 and record["protocol"]["max_steps"] == 200
    assert record["results"]["oracle"]["success"] == 100.0
    table = (run_dir / "planning.md").read_text()
    assert "Protocol:" in table and "by detour < 3 / 3–10 / ≥ 10 (tasks)" in table
    for r in record["results"].values():  # every task falls in one detour class
        assert sum(v["tasks"] for v in r["success_by_detour"].values()) == record["protocol"]["episodes"]


def test_eval_planning_reloads_the_run(run_dir, capsys) -> None:
    assert (
        main(
            [
                "eval",
                "planning",
                str(run_dir),
                "rows=[oracle,random]",
                "episodes=3",
                "seed=5",
                "figures=false",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == {"oracle", "random"} and out["protocol"]["episodes"] == 3
    assert out["results"]["oracle"]["success"] == 100.0


@pytest.mark.parametrize(
    "option, message",
    [
        ("colour=red", "unknown option"),
        ("episodes=0", "episodes=0 must be an integer >= 1"),
        ("rows=[mppi,teleport]", "unknown row"),
        ("rows=oracle", "must be a list"),
        ("horizon=0", "horizon"),
    ],
)
def test_eval_planning_refuses_bad_options(run_dir, option: str, message: str, capsys) -> None:
    assert main(["eval", "planning", str(run_dir), option]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_eval_planning_without_a_model_names_the_file(run_dir, tmp_path, capsys) -> None:
    (tmp_path / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    assert main(["eval", "planning", str(tmp_path)]) != 0
    assert "no trained JEPA" in capsys.readouterr().err


def test_train_refuses_inconsistent_keys_before_writing(tmp_path, capsys) -> None:
    assert (
        main(["train", "jepa-two-rooms", *_TINY, "window=20", "--runs-dir", str(tmp_path), "--name", "bad"])
        != 0
    )
    assert "window=20 exceeds the trajectory length=4" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_eval_planning_reads_a_run_trained_before_the_newer_keys(run_dir, tmp_path, capsys) -> None:
    """A run folder written before ``noise_beta``/``select``/``hard_weight``/``map_*``
    existed is evaluated with their defaults (which reproduce the old planner and loss)."""
    import shutil

    import yaml

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    saved = yaml.safe_load((old / "config.yaml").read_text())
    for key in ("noise_beta", "select", "hard_weight", "hard_fraction", "map_channels", "map_hidden"):
        saved.pop(key)
    (old / "config.yaml").write_text(yaml.safe_dump(saved))
    assert main(["eval", "planning", str(old), "rows=[oracle]", "episodes=2", "figures=false"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"]["oracle"]["success"] == 100.0


def test_eval_planning_diagnose_writes_the_wall_measurements(run_dir, capsys) -> None:
    assert main(["eval", "planning", str(run_dir), "rows=[oracle]", "episodes=2", "figures=false",
                 "diagnose=true"]) == 0
    record = json.loads((run_dir / "diagnostics.json").read_text())
    assert set(record["wall_hallucination"]) == {"speed 1", "speed 2.45"}
    for r in record["wall_hallucination"].values():
        assert 0.0 <= r["model"] <= 1.0 and r["true"] == 0.0
    assert record["transition_errors"]["free_transitions"] > 0
    assert "beyond the wall" in (run_dir / "diagnostics.md").read_text()


def test_diagnose_data_common_measures_every_run_on_the_same_transitions(run_dir, capsys) -> None:
    from genoise.recipes import load_recipe
    from genoise.recipes.jepa import common_data

    defaults = load_recipe("jepa-two-rooms").config
    common = common_data(defaults, n=50)
    # a run trained on other data (other knobs, another seed) is diagnosed on the same transitions
    other = common_data({**defaults, "seed": 3, "cross_wall_rate": 0.7, "wall_bump_rate": 0.3}, n=50)
    for key in ("positions", "actions", "wall_x", "door_y"):
        assert torch.equal(common[key], other[key]), key
    assert common["actions"].shape == (50, defaults["length"], 2)
    assert main(["eval", "planning", str(run_dir), "plan=false", "diagnose=true"]) == 0
    own = json.loads((run_dir / "diagnostics.json").read_text())
    common_args = ["plan=false", "diagnose=true", "diagnose_data=common"]
    assert main(["eval", "planning", str(run_dir), *common_args]) == 0
    record = json.loads((run_dir / "diagnostics.json").read_text())
    assert (own["transition_data"], record["transition_data"]) == ("run", "common")
    # the tiny run's 24 trajectories and the common 4,000 give other transitions, other errors
    assert record["transition_errors"]["free"] != own["transition_errors"]["free"]
    assert "on the common data" in (run_dir / "diagnostics.md").read_text()
    capsys.readouterr()
    assert main(["eval", "planning", str(run_dir), "plan=false", "diagnose=true", "diagnose_data=mine"]) == 2
    assert "diagnose_data" in capsys.readouterr().err
    assert main(["eval", "planning", str(run_dir), "rows=[oracle]", "diagnose_data=common"]) == 2
    assert "add diagnose=true" in capsys.readouterr().err


def test_the_convolutional_predictor_trains_plans_and_is_diagnosed(tmp_path, capsys) -> None:
    args = [*_TINY, "predictor=conv", "map_channels=2", "map_hidden=3", "gcbc_steps=0", "rows=[mppi]"]
    assert main(["train", "jepa-two-rooms", *args, "--runs-dir", str(tmp_path), "--name", "conv",
                 "--no-progress"]) == 0
    run = tmp_path / "conv"
    config = load_jepa(run / "jepa" / "last.pt", image_size=17).config
    assert (config.predictor, config.map_channels, config.map_hidden) == ("conv", 2, 3)
    capsys.readouterr()
    assert main(["eval", "planning", str(run), "rows=[mppi]", "episodes=1", "figures=false",
                 "diagnose=true"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["results"]["mppi"]["success"] <= 100.0
    record = json.loads((run / "diagnostics.json").read_text())
    assert record["transition_errors"]["free"] > 0


def test_eval_planning_plan_false_diagnoses_and_leaves_the_runs_table(run_dir, capsys) -> None:
    table = (run_dir / "planning.json").read_bytes()
    assert main(["eval", "planning", str(run_dir), "plan=false", "diagnose=true"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["diagnostics"]["wall_hallucination"]) == {"speed 1", "speed 2.45"}
    assert (run_dir / "planning.json").read_bytes() == table  # the run's own table is kept
    assert main(["eval", "planning", str(run_dir), "plan=false"]) == 2
    assert "plan=false leaves nothing to do without diagnose=true" in capsys.readouterr().err


def test_eval_planning_takes_the_squared_distance_and_records_it(run_dir, tmp_path, capsys) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["eval", "planning", str(copy), "rows=[mppi]", "episodes=1", "figures=false",
                 "distance=squared"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["results"]["mppi"]["success"] <= 100.0
    assert json.loads((copy / "planning.json").read_text())["planner"]["distance"] == "squared"
    assert main(["eval", "planning", str(copy), "rows=[mppi]", "distance=l1"]) == 2
    assert "distance" in capsys.readouterr().err
