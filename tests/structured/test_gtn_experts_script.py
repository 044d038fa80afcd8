"""``benchmarks/gtn_experts.py``: which products its table reads, and a run end to end on tiny
readers and SDNNs of two seeds (cells, product rows, record), with its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._benchmarks import load_benchmark

TINY = ["dataset=digits", "train_strings=24", "test_strings=6", "batch_size=4", "max_length=5"]


@pytest.fixture(scope="module")
def script():
    return load_benchmark("gtn_experts")


def test_the_products_are_every_pair_and_each_kind_together(script):
    folders = {n: Path(n) for n in ("reader_s0", "reader_s1", "sdnn_s0", "sdnn_s1")}
    rows = dict(script.products(folders))
    assert rows["reader_s0"] == ["reader_s0"] and rows["sdnn_s1"] == ["sdnn_s1"]
    assert rows["reader_s1 × sdnn_s0"] == ["reader_s1", "sdnn_s0"]
    assert rows["all check readers"] == ["reader_s0", "reader_s1"]
    assert rows["all SDNNs"] == ["sdnn_s0", "sdnn_s1"]
    assert rows["all"] == ["reader_s0", "reader_s1", "sdnn_s0", "sdnn_s1"]
    assert len(rows) == 4 + 4 + 3
    one = dict(script.products({"reader_s0": Path("r"), "sdnn_s0": Path("s")}))
    assert list(one) == ["reader_s0", "sdnn_s0", "reader_s0 × sdnn_s0"]  # nothing "all" of one each


def test_the_benchmark_runs_on_tiny_readers_and_refuses_bad_settings(script, tmp_path, capsys):
    argv = ["--seeds", "0", "1", "--out", str(tmp_path / "cells"), "--records-dir", str(tmp_path / "rec"),
            "--record", "e", "--reader-set", *TINY, "isolated_steps=3", "steps=2", "pretrain_epochs=0",
            "character_weight=0", "--sdnn-set", *TINY, "sdnn_steps=2"]
    assert script.main(argv) == 0
    record = json.loads((tmp_path / "rec" / "e.json").read_text())
    assert {"date", "command", "commit", "rows", "summary"} <= set(record)
    assert record["rows"]["reader_s1 × sdnn_s0"]["members"] == ["reader_s1", "sdnn_s0"]
    assert record["summary"]["reader_x_sdnn_pairs"]["n"] == 4
    assert record["summary"]["readers_alone"]["n"] == 2 and record["summary"]["sdnns_alone"]["n"] == 2
    pair = record["rows"]["reader_s0 × sdnn_s0"]
    assert pair["cpu_minutes"] == pytest.approx(record["rows"]["reader_s0"]["cpu_minutes"]
                                                + record["rows"]["sdnn_s0"]["cpu_minutes"])
    assert (tmp_path / "cells" / "reader_s0" / "experts+sdnn_s0" / "evaluation.json").is_file()
    assert "| all |" in (tmp_path / "rec" / "e.md").read_text() and (tmp_path / "rec" / "e.png").is_file()
    capsys.readouterr()
    for flag, item, message in (("--reader-set", "seed=3", "seed is set by the benchmark"),
                                ("--sdnn-set", "loss=isolated", "loss is set by the benchmark"),
                                ("--reader-set", "bogus=1", "unknown key 'bogus'")):
        with pytest.raises(SystemExit) as stop:
            script.main(["--out", str(tmp_path / "cells"), flag, item])
        assert stop.value.code == 2 and message in capsys.readouterr().err
