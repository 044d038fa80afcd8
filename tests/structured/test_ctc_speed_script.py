"""The CTC speed benchmark runs end to end on a tiny batch and writes its two records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ctc_speed_benchmark_writes_markdown_and_json(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.gtn_ctc_speed import main

    assert (
        main(
            [
                "--steps",
                "12",
                "--batch",
                "3",
                "--labels",
                "3",
                "--classes",
                "6",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "gtn_ctc_speed.json").read_text())
    assert [r["row"] for r in record["rows"]] == ["nn_ctcloss", "graph_ctc", "autograd_recursion"]
    assert record["max_loss_difference"] < 1e-4 and record["max_gradient_difference"] < 1e-4
    assert "nn.CTCLoss" in (tmp_path / "gtn_ctc_speed.md").read_text()
