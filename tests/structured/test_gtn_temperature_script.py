"""``benchmarks/gtn_temperature.py``: the temperature chosen on one half of the amounts and scored
on the other, its tie rule, and a run end to end on a tiny trained reader."""

from __future__ import annotations

import json

import pytest
import torch

from genoise.cli import main as genoise
from tests._benchmarks import load_benchmark


@pytest.fixture(scope="module")
def script():
    return load_benchmark("gtn_temperature")


def test_the_temperature_is_chosen_on_one_half_and_scored_on_the_other(script):
    """Ten amounts, even ones wrong where T = 2 ranks them last; T = 1 ranks every wrong reading
    first. Choosing on the even half picks T = 2 and scores it on the odd half, and vice versa."""
    correct = torch.tensor([True, True] * 5)
    correct[[0, 1]] = False  # one wrong reading in each half
    at_one = torch.arange(10, 0, -1).float()  # the wrong readings first: nothing accepted at 1 %
    at_two = torch.arange(10).float()  # the wrong readings last: 4 of 5 accepted in each half
    confidences = {1.0: at_one, 2.0: at_two}
    assert script.choose(confidences, correct, torch.arange(0, 10, 2)) == 2.0
    fit = script.cross_fit(confidences, correct)
    assert fit["chosen"] == [2.0, 2.0]
    assert fit["held_out"] == [pytest.approx(0.8), pytest.approx(0.8)] and fit["at_one"] == [0.0, 0.0]
    # a tie goes to the temperature closest to 1
    assert script.choose({0.5: at_two, 1.0: at_two, 4.0: at_two}, correct, torch.arange(10)) == 1.0


def test_the_benchmark_runs_on_a_tiny_reader_and_refuses_bad_input(script, tmp_path, capsys):
    tiny = ["dataset=digits", "train_strings=24", "test_strings=12", "isolated_steps=3", "steps=2",
            "batch_size=4", "max_length=5"]
    assert genoise(["train", "gtn-amounts", *tiny, "--runs-dir", str(tmp_path), "--name", "r",
                    "--no-progress"]) == 0
    assert script.main([str(tmp_path / "r"), "--temperatures", "0.5", "2", "--records-dir",
                        str(tmp_path / "rec"), "--record", "t"]) == 0
    record = json.loads((tmp_path / "rec" / "t.json").read_text())
    (row,) = record["rows"]
    assert "commit" in record and "date" in record and "command" in record
    assert set(row["accepted_correct_by_temperature"]) == {"0.5", "1", "2"} and row["strings"] == 12
    assert all(t in (0.5, 1.0, 2.0) for t in row["chosen_temperatures"])
    assert "T = 0.5" in (tmp_path / "rec" / "t.md").read_text()
    capsys.readouterr()
    for argv, message in (([str(tmp_path / "r"), "--temperatures", "0"], "finite numbers > 0"),
                          ([str(tmp_path / "none")], "holds no trained reader")):
        with pytest.raises(SystemExit) as stop:
            script.main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err
