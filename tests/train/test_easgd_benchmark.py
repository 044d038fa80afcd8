"""benchmarks/easgd_center_vs_mean.py: goal 2 of issue 18 read from the better of the two
models and the best learning rate per (p, τ)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def row(p, tau, lr, center, mean, ddp=0.02):
    return {"workers": p, "tau": tau, "lr": lr, "error": center, "error_mean": mean,
            "error_best_worker": mean, "error_worst_worker": center, "ddp_error": ddp, "ddp_lr": 0.8,
            "bytes_per_worker": 100, "ddp_bytes_per_worker": 1600}


def test_the_goal_count_takes_the_better_model_and_the_best_learning_rate():
    sys.path.insert(0, str(ROOT))
    from benchmarks.easgd_center_vs_mean import table

    rows = [row(4, 16, 0.04, 0.030, 0.029), row(4, 16, 0.08, 0.023, 0.0215),  # mean: 1.075× DDP
            row(8, 16, 0.08, 0.025, 0.0230)]  # 1.15×: missed
    text = table(rows, "mnist", "python benchmarks/easgd_center_vs_mean.py")
    assert "within 1.1× of DDP in 1 of 2 (p, τ) settings (p=4 τ=16: 1.07×, p=8 τ=16: 1.15×)" in text
    assert "| 4 | 16 | 0.08 | 2.30 | 2.15 | 2.15 – 2.30 | 2.00 (0.8) | 1.15× | 1.07× | 1/16 |" in text


def cell(method, p, tau, error, nbytes):
    return {"dataset": "mnist", "method": method, "workers": p, "tau": tau, "error": error,
            "bytes_per_worker": nbytes, "rounds": 1}


def test_goal2_at_a_budget_takes_each_method_at_its_best_learning_rate():
    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_table

    rows = [cell("ddp@0.4", 4, 1, 0.020, 1600), cell("ddp@0.8", 4, 1, 0.015, 1600),  # DDP: 1.5 % at lr 0.8
            cell("eamsgd@0.04", 4, 16, 0.0170, 100), cell("eamsgd@0.08", 4, 16, 0.0160, 100),  # 1.07×
            cell("eamsgd@0.04", 4, 64, 0.0180, 25), cell("eamsgd@0.08", 4, 64, 0.0190, 25),  # 1.2×
            cell("eamsgd@0.02", 8, 16, 0.0100, 100)]  # no DDP at p = 8: no verdict
    lines, verdicts = goal2_table(rows, 16384)
    assert [(v["tau"], v["met"]) for v in verdicts] == [(16, True), (64, False)]
    assert verdicts[0]["eamsgd_lr"] == 0.08 and verdicts[0]["ddp_lr"] == 0.8
    assert verdicts[0]["eamsgd_lr_grid"] == {"0.04": 0.0170, "0.08": 0.0160}
    assert "| mnist | 4 | 16 | 1.50 (0.8) | 1.60 (0.08) | 1.07× | 16.00× | met |" in lines
    assert "| mnist | 4 | 64 | 1.50 (0.8) | 1.80 (0.04) | 1.20× | 64.00× | not met |" in lines


def test_goal2_needs_sixteen_times_fewer_bytes():
    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_table

    rows = [cell("ddp@0.8", 4, 1, 0.015, 1600), cell("eamsgd@0.08", 4, 16, 0.0150, 200)]  # equal error, 8×
    _, verdicts = goal2_table(rows, 16384)
    assert verdicts[0]["ratio"] == 1.0 and verdicts[0]["bytes_fewer"] == 8 and not verdicts[0]["met"]


def test_goal2_over_seeds_counts_the_seeds_within_the_goal():
    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_seed_lines, goal2_table

    rows = [cell("ddp@0.8", 4, 1, 0.015, 1600), cell("eamsgd@0.08", 4, 16, 0.0160, 100)]
    lines, verdicts = goal2_table(rows, 16384)
    verdicts[0] |= {"seeds": [0, 1], "ddp_errors": [0.015, 0.020], "eamsgd_errors": [0.016, 0.024],
                    "ratios": [0.016 / 0.015, 0.024 / 0.020]}  # 1.07× and 1.20×
    out = goal2_seed_lines(lines, verdicts)
    assert out[2].endswith("| met | 1.75 ± 0.35 | 2.00 ± 0.57 | 1.07 / 1.20 | 1 of 2 |")
    assert verdicts[0]["seeds_met"] == 1 and len(out) == 3


def test_goal2_cells_under_buffers_read_are_named_apart_and_ddp_cells_are_shared():
    import argparse

    import pytest

    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_cells, goal2_name, main, overrides

    args = argparse.Namespace(worker_steps=16384, eval_points=8, seed=0, quick=False, data_dir=None,
                              buffers="read", lr_schedule="constant", datasets=["mnist", "cifar10"],
                              workers=(4,), eamsgd_momentum=None, ddp_momentum=None)
    assert goal2_name("cifar10", "eamsgd@0.04", 4, 16, args) == "cifar10-eamsgd-lr0.04-p4-tau16-ws16384-bread"
    assert goal2_name("cifar10", "ddp@0.8", 4, 1, args) == "cifar10-ddp-lr0.8-p4-tau1-ws16384"
    assert overrides("eamsgd", 4, 16, args, 0.04)["buffers"] == "read"
    assert "buffers" not in overrides("ddp", 4, 1, args, 0.8)
    args.buffers = "round"
    assert goal2_name("cifar10", "eamsgd@0.04", 4, 16, args) == "cifar10-eamsgd-lr0.04-p4-tau16-ws16384"
    assert "buffers" not in overrides("eamsgd", 4, 16, args, 0.04)
    # DDP's grid goes one rate higher on CIFAR-10 only (its best was the top of the grid there)
    ddp = {(d, r) for d, r, p, tau in goal2_cells(args) if r.startswith("ddp")}
    assert ("cifar10", "ddp@1.6") in ddp and ("mnist", "ddp@1.6") not in ddp
    assert ("mnist", "ddp@0.8") in ddp
    args.lr_schedule = "cosine"  # every method's cells, DDP's too
    assert goal2_name("cifar10", "ddp@0.8", 4, 1, args) == "cifar10-ddp-lr0.8-p4-tau1-ws16384-cos"
    assert overrides("ddp", 4, 1, args, 0.8)["lr_schedule"] == "cosine"
    for flags in (["--buffers", "read"], ["--lr-schedule", "cosine"]):  # the main tables keep theirs
        with pytest.raises(SystemExit):
            main(flags)


def test_goal2_momentum_flags_name_their_cells_and_keep_the_effective_step_grid():
    import argparse

    import pytest

    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_cells, goal2_name, main, overrides

    args = argparse.Namespace(worker_steps=16384, eval_points=8, seed=0, quick=False, data_dir=None,
                              buffers="round", lr_schedule="constant", datasets=["mnist"], workers=(8,),
                              eamsgd_momentum=None, ddp_momentum=None)
    default = goal2_cells(args)
    assert "momentum" not in overrides("eamsgd", 8, 16, args, 0.04)  # the recipe's δ = 0.9
    # δ = 0.99: the grid is scaled by (1 − δ) / (1 − 0.9), so lr / (1 − δ) spans the same steps
    args.eamsgd_momentum = 0.99
    cells = goal2_cells(args)
    eamsgd = sorted({float(r.partition("@")[2]) for d, r, p, tau in cells if r.startswith("eamsgd")})
    assert eamsgd == pytest.approx([0.002, 0.004, 0.008, 0.012], abs=1e-12)
    assert [c for c in cells if c[1].startswith("ddp")] == [c for c in default if c[1].startswith("ddp")]
    assert goal2_name("mnist", "eamsgd@0.004", 8, 16, args) == "mnist-eamsgd-lr0.004-p8-tau16-ws16384-m0.99"
    assert goal2_name("mnist", "ddp@0.4", 8, 1, args) == "mnist-ddp-lr0.4-p8-tau1-ws16384"  # shared
    assert overrides("eamsgd", 8, 16, args, 0.004)["momentum"] == 0.99
    assert "momentum" not in overrides("ddp", 8, 1, args, 0.4)
    # DDP with heavy-ball μ = 0.9: its own cells, its grid times (1 − μ)
    args.eamsgd_momentum, args.ddp_momentum = None, 0.9
    ddp = [float(r.partition("@")[2]) for d, r, p, tau in goal2_cells(args) if r.startswith("ddp")]
    assert ddp == pytest.approx([0.01, 0.02, 0.04, 0.08], abs=1e-12)
    assert goal2_name("mnist", "ddp@0.04", 8, 1, args) == "mnist-ddp-lr0.04-p8-tau1-ws16384-m0.9"
    assert overrides("ddp", 8, 1, args, 0.04)["momentum"] == 0.9
    for flags in (["--eamsgd-momentum", "0.99"], ["--goal2", "--ddp-momentum", "1.0"]):
        with pytest.raises(SystemExit):  # goal 2 only; a momentum in [0, 1)
            main(flags)


def test_a_goal2_shard_runs_the_seeds_only_once_the_whole_grid_is_done(tmp_path, monkeypatch, capsys):
    import argparse

    sys.path.insert(0, str(ROOT))
    import benchmarks.distributed_averaging as bench

    ran = []

    def fake_cell(out, recipe, name, cell, summary):  # writes the summary a real cell would
        ran.append(name)
        (out / name).mkdir(parents=True)
        error = 0.01 + cell["lr"] / 100
        record = {"error": error, "bytes_per_worker": 1 if cell["distributed"] == "eamsgd" else 64,
                  "rounds": 1}
        (out / name / "summary.json").write_text(bench.json.dumps(record))
        return record, 1.0

    def skip_done(out, recipe, name, cell, summary):
        path = out / name / "summary.json"
        return (bench.json.loads(path.read_text()), 0.0) if path.is_file() else fake_cell(
            out, recipe, name, cell, summary)

    monkeypatch.setattr(bench, "run_cell", skip_done)
    monkeypatch.setattr(bench, "write_records", lambda *a, **k: None)
    args = argparse.Namespace(worker_steps=64, eval_points=0, seed=0, quick=False, data_dir=None,
                              buffers="round", lr_schedule="constant", datasets=["mnist"], workers=(4,),
                              eamsgd_momentum=None, ddp_momentum=None, goal_seeds=[1], shard="0/2")
    grid = len(bench.goal2_cells(args))
    assert bench.goal2(tmp_path, args) == 0
    assert len(ran) == (grid + 1) // 2 and not any("seed" in n for n in ran)  # half the grid, no seed
    assert "seeds wait" in capsys.readouterr().out
    args.shard = "1/2"
    assert bench.goal2(tmp_path, args) == 0  # the whole grid is now there: this shard's seeds run
    assert any("seed1" in n for n in ran) and len({n for n in ran}) == len(ran)


def test_goal2_variant_table_names_cells_records_and_commands_as_the_records_on_disk():
    """One table (``goal2_variants``) names a variant's cells, its record and its command line:
    each variant record of ``benchmarks/records`` has the stem and the command it predicts."""
    import argparse
    import json

    sys.path.insert(0, str(ROOT))
    from benchmarks.distributed_averaging import goal2_name, goal2_variants

    base = dict(worker_steps=16384, buffers="round", lr_schedule="constant", eamsgd_momentum=None,
                ddp_momentum=None)
    for change in ({"buffers": "read"}, {"lr_schedule": "cosine"}, {"eamsgd_momentum": 0.99},
                   {"ddp_momentum": 0.9}):
        args = argparse.Namespace(**{**base, **change})
        (variant,) = goal2_variants(args)
        stem = f"distributed_averaging_goal2_ws16384{variant.record}"
        record = json.loads((ROOT / "benchmarks" / "records" / f"{stem}.json").read_text())
        assert record["command"].endswith(variant.flag), (stem, record["command"])
    both = argparse.Namespace(**{**base, "lr_schedule": "cosine", "eamsgd_momentum": 0.99})
    assert [v.record for v in goal2_variants(both)] == ["_cos", "_d0.99"]
    assert goal2_name("mnist", "eamsgd@0.004", 8, 16, both).endswith("-ws16384-cos-m0.99")
    assert goal2_name("mnist", "ddp@0.4", 8, 1, both).endswith("-ws16384-cos")
    assert goal2_variants(argparse.Namespace(**base)) == []
