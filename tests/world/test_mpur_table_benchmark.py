"""benchmarks/mpur_table.py's options: ``--model-set`` changes the forward model the table is
built on (named in its record), ``--record`` keeps the main record, and bad overrides are
refused before anything is written."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

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


def _cell(cells, name: str, seed: int, success: float, steps: int = 400) -> None:
    cell = {"success_rate": success, "collision_rate": 0.0, "offroad_rate": 0.0, "mean_distance": 200.0,
            "method": name.split("_h")[0], "seed": seed, "steps": steps}
    (cells / f"{name}_s{seed}_n{steps}.json").write_text(json.dumps(cell))


def test_cells_of_another_horizon_are_points_of_the_rollout_length_curve(bench, tmp_path) -> None:
    """Policies trained with another --horizon have cells of their own (``…_h{H}``): the report
    puts them in the rollout-length curve beside the table's H, not in the table's rows."""
    args = argparse.Namespace(u_weight=None, u_scale="std", horizon=10)
    assert bench.cell_name(args, "mpur_no_u") == "mpur_no_u_h10"
    args.u_weight = 0.1
    assert bench.cell_name(args, "mpur") == "mpur_uw0.1_h10"
    args.horizon = bench.HORIZON
    assert bench.cell_name(args, "mpur") == "mpur_uw0.1" and bench.cell_name(args, "bc") == "bc"
    cells = tmp_path / "cells" / "cells"
    cells.mkdir(parents=True)
    for name, seed, success in (
        ("mpur", 0, 0.6), ("mpur", 1, 0.8), ("mpur_h10", 0, 0.3), ("mpur_h10", 1, 0.4),
        ("mpur_no_u_h10", 0, 0.2), ("mpur_uw0.1_h10", 0, 0.9), ("mpur_h5", 0, 0.1),
    ):
        _cell(cells, name, seed, success)
    _cell(cells, "mpur_h5", 1, 0.7, steps=200)  # another budget: not in the curve at 400
    records = tmp_path / "records"
    assert bench.main(["--report", "--out", str(tmp_path / "cells"), "--records", str(records)]) == 0
    payload = json.loads((records / "mpur_table.json").read_text())
    mpur = payload["rows"]["mpur"]
    assert mpur["seeds"] == 2 and mpur["success_mean"] == pytest.approx(70.0)
    assert set(payload["rows"]) == {"mpur"}
    lengths = payload["rollout_length"]
    assert lengths["mpur"]["10"] == {"mean": pytest.approx(35.0), "std": pytest.approx(5.0), "seeds": 2}
    assert lengths["mpur"]["5"]["seeds"] == 1 and lengths["mpur"]["20"]["mean"] == pytest.approx(70.0)
    assert set(lengths["mpur_no_u"]) == {"10"}
    text = (records / "mpur_table.md").read_text()
    assert "| 10 | 35.0 ± 5.0 | 2 | 20.0 ± 0.0 | 1 |" in text and "| 20 | 70.0 ± 10.0 | 2 | – | 0 |" in text


def test_the_robust_u_scale_is_a_row_and_a_curve_of_its_own(bench, tmp_path, capsys) -> None:
    """``--u-scale robust`` names MPUR's cells ``mpur_robust``: the report gives them a row beside
    the table's and a column of the curve; the policy is trained with ``u_scale: robust``."""
    args = argparse.Namespace(u_weight=None, u_scale="robust", horizon=bench.HORIZON, steps=800)
    assert bench.cell_name(args, "mpur") == "mpur_robust"
    assert bench.cell_name(args, "mpur_no_u") == "mpur_no_u"
    assert bench.policy_config(args, 800)["u_scale"] == "robust"
    args.horizon = 10
    assert bench.cell_name(args, "mpur") == "mpur_robust_h10"
    cells = tmp_path / "cells" / "cells"
    cells.mkdir(parents=True)
    for name, seed, success, steps in (
        ("mpur", 0, 0.6, 800), ("mpur", 0, 0.4, 400),
        ("mpur_robust", 0, 0.9, 800), ("mpur_robust", 1, 0.7, 800), ("mpur_robust", 0, 0.5, 400),
    ):
        _cell(cells, name, seed, success, steps=steps)
    records = tmp_path / "records"
    argv = ["--report", "--steps", "800", "--out", str(tmp_path / "cells"), "--records", str(records)]
    assert bench.main(argv) == 0
    payload = json.loads((records / "mpur_table.json").read_text())
    robust = payload["rows"]["mpur_robust"]
    assert robust["seeds"] == 2 and robust["success_mean"] == pytest.approx(80.0)
    assert payload["curve"]["mpur_robust"]["400"]["mean"] == pytest.approx(50.0)
    text = (records / "mpur_table.md").read_text()
    assert "MPUR, U scaled by its median and 1.4826 × MAD (ours, `mpur_robust`) | 80.0 ± 10.0 | 2 |" in text
    assert "| 800 | 60.0 ± 0.0 | 1 | – | 0 | 80.0 ± 10.0 | 2 |" in text
    with pytest.raises(SystemExit):
        bench.main(["--u-scale", "robust", "--u-weight", "0.5", "--out", str(tmp_path / "other")])
    assert "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_table_options_refuse_another_horizon(bench, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--report", "--horizon", "10", "--out", str(tmp_path / "cells")])
    assert "--report works at the table's --horizon 20" in capsys.readouterr().err
    assert not (tmp_path / "cells").exists()


def test_the_latents_check_is_reported_with_its_ratios(bench, tmp_path) -> None:
    """``--u-ratio-latents``' cell (U per action set for three latent choices) becomes a table of
    ratios U / U(data) in the record, one row per latent choice."""
    cells = tmp_path / "cells" / "cells"
    cells.mkdir(parents=True)
    _cell(cells, "mpur", 0, 0.5)
    u = {"data": 2e-4, "shuffled": 3e-4, "brake": 2e-3, "accelerate": 4e-4, "swerve": 4e-2, "zigzag": 1e-2}
    # ten states, one of them large: the mean is u[k], the median 1e-7
    values = {k: torch.tensor([10 * v - 9e-7] + [1e-7] * 9, dtype=torch.float64) for k, v in u.items()}
    values["accelerate"][1:] = 1e-4  # above the data's median everywhere but on its one large state
    check = {name: bench._ratio_rows(values) for name in ("prior", "prior_mean", "posterior")}
    (cells / "u_ratio_latents.json").write_text(json.dumps(check))
    records = tmp_path / "records"
    assert bench.main(["--report", "--out", str(tmp_path / "cells"), "--records", str(records)]) == 0
    text = (records / "mpur_table.md").read_text()
    rows = check["posterior"]["rows"]
    assert rows["brake"]["ratio_of_means"] == pytest.approx(10.0) and rows["brake"]["ratio_of_medians"] == 1.0
    assert rows["accelerate"]["ratio_of_medians"] == pytest.approx(1000.0)
    assert rows["data"]["top5_share"] > 0.99
    assert "| posterior | 0.0002 (1e-07) | 1.00 | 1.50 (1.00) | 10.00 (1.00) | 2.45 (1000.00) |" in text
    assert json.loads((records / "mpur_table.json").read_text())["u_ratio_latents"] == check


def test_cells_of_the_normalised_u_are_recomputed_once_the_masks_are_seeded(bench, tmp_path) -> None:
    """A cell made before ``STATS_DROPOUT_SEED`` (its normalised U depended on what the process
    had run before) is recomputed, marked, and then kept; other cells are kept as they are."""
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"u_data": 2.0}

    old = tmp_path / "u_data.json"
    old.write_text(json.dumps({"u_data": 1.0}))
    marked = {"u_data": 2.0, "stats_dropout_seed": bench.STATS_DROPOUT_SEED}
    assert bench._cached(old, compute, stats=True) == marked
    assert bench._cached(old, compute, stats=True)["u_data"] == 2.0
    assert json.loads(old.read_text())["stats_dropout_seed"] == bench.STATS_DROPOUT_SEED
    assert len(calls) == 1
    plain = tmp_path / "references.json"
    plain.write_text(json.dumps({"idm": 1.0}))
    assert bench._cached(plain, compute) == {"idm": 1.0} and len(calls) == 1


def test_a_u_ratio_cell_gains_the_robust_form_once_and_reports_it(bench, tmp_path, monkeypatch) -> None:
    """A U-ratio cell made before the robust form keeps its raw and normalised forms and gains
    ``normalised_robust`` (U standardised by MPUR's robust statistics) once; the report prints it."""
    # the sets' U are 1, 2, 4 times its index + 1 (KINDS: data, shuffled, brake, ...)
    values = {k: torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64) * (i + 1)
              for i, k in enumerate(bench.KINDS)}
    seen = []

    def per_set(s, batch, sets, z, stats):
        seen.append(stats)
        return values

    monkeypatch.setattr(bench, "_ratio_batch", lambda args, s: (None, None, None))
    monkeypatch.setattr(bench, "_u_per_set", per_set)

    class Setting:
        stats = "std statistics"

        @staticmethod
        def stats_with(scale: str) -> str:
            return f"{scale} statistics"

    cells = tmp_path / "cells" / "cells"
    cells.mkdir(parents=True)
    old = {"raw": bench._ratio_rows(values), "normalised": bench._ratio_rows(values),
           "stats_dropout_seed": bench.STATS_DROPOUT_SEED}
    (cells / "u_ratio.json").write_text(json.dumps(old))
    args = argparse.Namespace(out=str(tmp_path / "cells"))
    cell = bench.u_ratio(args, Setting())
    assert seen == ["robust statistics"]
    assert cell["raw"] == old["raw"] and cell["normalised_robust"]["rows"]["brake"]["ratio_of_means"] == 3.0
    assert bench.u_ratio(args, Setting()) == cell and len(seen) == 1  # kept
    records = tmp_path / "records"
    assert bench.main(["--report", "--out", str(tmp_path / "cells"), "--records", str(records)]) == 0
    assert "| brake | 7 | 3.00 | 7 | 3.00 | 7 | 3.00 |" in (records / "mpur_table.md").read_text()
