"""``benchmarks/video_prediction_seeds.py``: mean ± std over per-seed records of table (a), the
ordering count, and one-line errors for a missing record or budget."""

from __future__ import annotations

import json

import pytest

from tests._benchmarks import load_benchmark


@pytest.fixture
def seeds(tmp_path, monkeypatch):
    module = load_benchmark("video_prediction_seeds")
    monkeypatch.setattr(module, "RECORDS", tmp_path)
    return module


def _record(path, psnr: dict[str, float], steps: int = 800) -> None:
    rows = [{"name": name, "table": "a", "frame": frame, "steps": steps,
             "moving_psnr": value - (frame - 1), "moving_sharpness": value / 2,
             "paper_psnr": 20.1 if name == "l2" else None, "paper_sharpness": 0.48 if name == "l2" else None}
            for name, value in psnr.items() for frame in (1, 2)]
    path.write_text(json.dumps({"command": "x", "date": "2026-12-06", "rows": rows}))


def test_mean_std_and_the_ordering_count_come_from_the_records(seeds, tmp_path):
    base = {"l1": 7.0, "gdl_l1": 7.5, "adv": 7.2, "latent": 6.0, "copy_last": 3.0}
    _record(tmp_path / "s0.json", {"l2": 6.0, **base, "adv_gdl": 8.0})   # the paper's ordering
    _record(tmp_path / "s1.json", {"l2": 9.0, **base, "adv_gdl": 8.0})   # l2 first: not
    assert seeds.main(["--group", "sum", "s0", "s1", "--record", "out"]) == 0
    record = json.loads((tmp_path / "out.json").read_text())
    l2 = next(r for r in record["rows"] if r["name"] == "l2")
    assert l2["moving_psnr"] == pytest.approx(7.5)
    assert l2["moving_psnr_std"] == pytest.approx(2.1213, abs=1e-4)
    assert l2["moving_psnr_per_seed"] == [6.0, 9.0]
    assert (l2["paper_psnr"], l2["paper_sharpness"]) == (20.1, 0.48)
    assert "| 20.1 / 0.48 |" in (tmp_path / "out.md").read_text()
    order = next(r for r in record["rows"] if r["name"] == "ordering_moving_psnr")
    assert (order["holds_in"], order["seeds"]) == (1, 2)
    assert "holds in 1 of 2 seeds" in (tmp_path / "out.md").read_text()


def test_a_missing_record_or_budget_is_one_line(seeds, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"no record .*nothing\.json"):
        seeds.main(["--group", "sum", "nothing"])
    _record(tmp_path / "s0.json", {"l2": 6.0, "l1": 7.0, "gdl_l1": 7.5, "adv": 7.2, "adv_gdl": 8.0,
                                   "latent": 6.0, "copy_last": 3.0}, steps=2000)
    with pytest.raises(SystemExit, match=r"no table \(a\) rows .* at 800 updates"):
        seeds.main(["--group", "sum", "s0"])
    with pytest.raises(SystemExit):
        seeds.main(["--group", "sum"])
    assert "--group needs a name and at least one record stem" in capsys.readouterr().err
