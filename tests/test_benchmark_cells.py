"""A benchmark cell folder is reused only for the setting it was trained with."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_cell():
    sys.path.insert(0, str(ROOT))
    from benchmarks._cells import run_cell

    return run_cell


def _finished_cell(folder: Path, config: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "summary.json").write_text("{}\n")
    (folder / "evaluation.json").write_text(json.dumps({"rows": {"a": 1}, "cpu_seconds": 12.5}))


def test_a_finished_cell_of_the_same_setting_is_reused(run_cell, tmp_path):
    _finished_cell(tmp_path / "cell", {"seed": 0, "rubbish_weight": 0.0, "data_dir": "/elsewhere"})
    overrides = {"seed": 0, "rubbish_weight": 0, "data_dir": "/here", "planner.tau": 3}
    record, cpu = run_cell(tmp_path, "recipe", "cell", overrides, "evaluation.json")
    assert record["rows"] == {"a": 1} and cpu == 12.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seed": 1}, "cell cell .* was trained with seed=0, not 1"),
        ({"rubbish_weight": 0.3}, "rubbish_weight=0.0, not 0.3"),
        ({"rows": ["mppi"]}, r"rows=\['mppi', 'cem'\], not \['mppi'\]"),
    ],
)
def test_a_cell_of_another_setting_is_refused(run_cell, tmp_path, overrides, message):
    _finished_cell(tmp_path / "cell", {"seed": 0, "rubbish_weight": 0.0, "rows": ["mppi", "cem"]})
    with pytest.raises(SystemExit, match=message):
        run_cell(tmp_path, "recipe", "cell", overrides, "evaluation.json")
