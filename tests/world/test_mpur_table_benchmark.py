"""benchmarks/mpur_table.py's options: ``--model-set`` changes the forward model the table is
built on (named in its record), ``--record`` keeps the main record, and bad overrides are
refused before anything is written."""

from __future__ import annotations

import json

import pytest

from tests._benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("mpur_table")


def test_the_model_overrides_reach_the_record(bench, tmp_path) -> None:
    args = ["--report", "--out", str(tmp_path / "cells"), "--records", str(tmp_path / "records"),
            "--record", "mpur_learned", "--model-set", "car_motion=learned", "n_future=10"]
    assert bench.main(args) == 0
    payload = json.loads((tmp_path / "records" / "mpur_learned.json").read_text())
    assert payload["model"] == {**bench.MODEL, "car_motion": "learned", "n_future": 10}
    assert "'car_motion': 'learned'" in (tmp_path / "records" / "mpur_learned.md").read_text()
    assert not (tmp_path / "records" / "mpur_table.json").exists()


def test_bad_model_overrides_are_refused(bench, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--report", "--out", str(tmp_path / "cells"), "--model-set", "car_motion=physics"])
    assert "--model-set" in capsys.readouterr().err
    assert not (tmp_path / "cells").exists()


def test_a_diverged_seed_is_counted_apart(bench, tmp_path) -> None:
    """A training the divergence guard stopped leaves no policy: the row's mean is over the
    seeds that trained, and the record says how many stopped."""
    cells = tmp_path / "cells" / "cells"
    cells.mkdir(parents=True)
    for seed, success in ((0, 0.35), (2, 0.55)):
        cell = {"success_rate": success, "collision_rate": 0.5, "offroad_rate": 0.0, "mean_distance": 150.0,
                "method": "mpur", "seed": seed, "steps": 400}
        (cells / f"mpur_s{seed}_n400.json").write_text(json.dumps(cell))
    (cells / "diverged_mpur_s1.json").write_text(
        json.dumps({"method": "mpur", "seed": 1, "steps": 400, "error": "diverged: gradient norm"}))
    records = tmp_path / "records"
    assert bench.main(["--report", "--out", str(tmp_path / "cells"), "--records", str(records)]) == 0
    row = json.loads((records / "mpur_table.json").read_text())["rows"]["mpur"]
    assert row["seeds"] == 2 and row["success_mean"] == pytest.approx(45.0)
    assert row["diverged"] == 1 and row["diverged_seeds"] == [1]
    assert "| 2 (+ 1 diverged) |" in (records / "mpur_table.md").read_text()
