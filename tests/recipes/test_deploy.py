"""``genoise train lenet5-mnist``, ``genoise export`` and ``genoise bench-inference`` end to end
on scikit-learn's digits: files written, tables complete, one-line errors for what cannot be
deployed."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from genoise.cli import main
from genoise.deploy.onnx_runtime import has_extra, ort_run, ort_session
from genoise.recipes.deploy import batch1_speedups, load_deployable

ONNX = has_extra("onnx", "onnxscript", "onnxruntime")


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "train",
                "lenet5-mnist",
                "dataset=digits",
                "epochs=4",
                "batch_size=64",
                "--runs-dir",
                str(runs),
                "--name",
                "lenet",
                "--no-progress",
            ]
        )
        == 0
    )
    return runs / "lenet"


def test_train_reports_accuracy_and_sparsity(lenet_run) -> None:
    summary = json.loads((lenet_run / "summary.json").read_text())
    assert summary["test_acc"] > 50  # four short epochs on digits; chance is 10
    assert set(summary["input_sparsity"]) == {"c1", "c3", "c5", "f6", "output"}


@pytest.mark.skipif(not ONNX, reason="the [deploy] extra (onnx, onnxscript, onnxruntime) is not installed")
def test_export_writes_onnx_that_equals_eager(lenet_run, capsys) -> None:
    assert main(["export", str(lenet_run), "--format", "onnx", "--int8", "--calibration-samples", "256"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert set(written) == {"onnx", "onnx_int8", "max_abs_difference"}
    deployable = load_deployable(lenet_run)
    x = deployable.test_set.images[:16]
    with torch.no_grad():
        assert torch.allclose(ort_run(ort_session(written["onnx"]), x), deployable.model(x), atol=1e-4)
    assert ort_run(ort_session(written["onnx_int8"]), x).shape == (16, 10)


def test_bench_inference_writes_the_table(lenet_run) -> None:
    rows = "fp32_eager,posit8,anna_6w3a,ternary,sparse_event,sparse_event_l1"
    assert (
        main(
            ["bench-inference", str(lenet_run), "--rows", rows, "--repeats", "10", "--rounds",
            "2",
            "--emulation-limit", "100"]
        )
        == 0
    )
    table = json.loads((lenet_run / "inference.json").read_text())
    assert [r["row"] for r in table] == rows.split(",")
    by = {r["row"]: r for r in table}
    assert by["fp32_eager"]["batch1_median_us"] > 0 and by["fp32_eager"]["threads"] == 1
    assert len(by["fp32_eager"]["batch1_median_us_rounds"]) == 2 and by["posit8"]["batch1_median_us"] is None
    speedups = batch1_speedups(table)
    assert set(speedups) == {"sparse_event"}  # the emulated rows have no latency
    assert len(speedups["sparse_event"]["rounds"]) == 2
    assert by["posit8"]["weight_bytes"] < by["fp32_eager"]["weight_bytes"] / 3
    assert by["anna_6w3a"]["test_images"] == 100 and by["anna_6w3a"]["accuracy"] is not None
    assert by["sparse_event"]["macs"] <= by["fp32_eager"]["macs"]
    assert by["sparse_event_l1"]["status"].startswith("skipped")
    assert "| sparse_event |" in (lenet_run / "inference.md").read_text()


def test_batch1_speedups_pair_the_rounds() -> None:
    rows = [
        {"row": "fp32_eager", "batch1_median_us": 300.0, "batch1_median_us_rounds": [200.0, 300.0, 400.0]},
        {"row": "onnx_fp32", "batch1_median_us": 60.0, "batch1_median_us_rounds": [40.0, 90.0, 60.0]},
        {"row": "posit8", "batch1_median_us": None},
        {"row": "old", "batch1_median_us": 30.0},  # a record without rounds: one round
    ]
    with pytest.raises(ValueError, match="row 'old' has 1 timing rounds, 'fp32_eager' has 3"):
        batch1_speedups(rows)
    got = batch1_speedups(rows[:3])
    assert set(got) == {"onnx_fp32"}
    assert got["onnx_fp32"]["median"] == 5.0  # 300 / 60: medians over the rounds
    assert got["onnx_fp32"]["rounds"] == [5.0, 300.0 / 90.0, 400.0 / 60.0]
    assert got["onnx_fp32"]["worst_round"] == 300.0 / 90.0  # below 4 although the median is 5
    assert batch1_speedups(rows[1:]) == {}  # no reference row


def test_what_cannot_be_deployed_gets_one_line(tmp_path, lenet_run, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text(yaml.safe_dump({"dataset": "traffic", "seed": 0}))
    (other / "last.pt").write_bytes((lenet_run / "last.pt").read_bytes())
    assert main(["export", str(other)]) == 2
    assert "cannot deploy this run" in capsys.readouterr().err
    assert main(["bench-inference", str(tmp_path / "absent")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["bench-inference", str(lenet_run), "--rows", "fp32_eager,fp4"]) == 2
    assert "unknown row(s) fp4" in capsys.readouterr().err
