"""The memory recipe module (genoise.recipes.memory) through ``genoise train`` / ``genoise
eval`` on a handmade bAbI folder: the run folder, the YAML's checks, the missing-data
message, every evaluator option, and the demo section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from genoise.cli import main
from genoise.memory.training import KIND, LS_KIND
from genoise.recipes import load_recipe
from genoise.recipes.memory import EVALUATE_OPTIONS, demo, evaluate
from genoise.train import Run
from tests.data.test_babi import _fake_babi

TINY = ["task=1", "embedding_dim=6", "hops=1", "ls_epochs=2", "epochs=2", "batch_size=8"]


def _train(runs: Path, *args: str) -> int:
    return main(["train", "memn2n-babi", *args, "--runs-dir", str(runs), "--no-progress"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    data = _fake_babi(root / "data")
    assert _train(root / "runs", *TINY, f"data_dir={data}", "--name", "run") == 0
    return root / "runs" / "run", data


def test_run_folder_holds_both_phases_and_the_error_tables(trained):
    run_dir, data = trained
    for folder, kind in (("linear_start", LS_KIND), ("main", KIND)):
        state = torch.load(run_dir / folder / "last.pt", weights_only=False)
        assert state["kind"] == kind and state["config"]["embedding_dim"] == 6
        assert len((run_dir / folder / "metrics.jsonl").read_text().splitlines()) == 2
    assert not (run_dir / "checkpoint.pt").exists()
    errors = json.loads((run_dir / "errors.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert errors["test_error_pct"]["1"] == pytest.approx(summary["mean_test_error_pct"], abs=0.01)
    assert summary["epochs"] == "2 LS + 2"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["run"]["data_read"] == [str(data / "babi" / "en" / f"qa1_single-supporting-fact_{s}.txt")
                                          for s in ("train", "test")]


def test_evaluate_reloads_the_model_and_every_option_works(trained, monkeypatch):
    run_dir, data = trained
    summary = json.loads((run_dir / "summary.json").read_text())
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    result = evaluate(run_dir)  # the data folder recorded in config.yaml
    assert result["split"] == "test" and result["finished"]
    assert result["error_pct"]["1"] == pytest.approx(summary["mean_test_error_pct"], abs=0.01)
    assert "| 1 |" in result["table"]
    assert evaluate(run_dir, data_dir=str(data))["error_pct"] == result["error_pct"]
    for split in ("valid", "train"):
        assert evaluate(run_dir, split=split)["split"] == split
    with pytest.raises(ValueError, match=r"unknown option\(s\) k for the bAbI evaluation; allowed: data_dir"):
        evaluate(run_dir, k=20)
    with pytest.raises(ValueError, match="split must be one of 'test', 'valid', 'train'; got 'dev'"):
        evaluate(run_dir, split="dev")
    with pytest.raises(ValueError, match=r"data_dir points to .*nowhere.*not a folder"):
        evaluate(run_dir, data_dir=str(data / "nowhere"))
    assert set(EVALUATE_OPTIONS) == {"data_dir", "split"}


def test_genoise_eval_babi_prints_the_result(trained, capsys):
    run_dir, _ = trained
    assert main(["eval", "babi", str(run_dir), "split=valid"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "valid"
    assert main(["eval", "babi", str(run_dir), "kk=1"]) == 2
    assert "unknown option(s) kk" in capsys.readouterr().err


def test_evaluate_refuses_folders_that_are_not_memn2n_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"main/last\.pt: missing \(not a memn2n-babi run folder"):
        evaluate(tmp_path)
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"not a genoise checkpoint: .*main/last\.pt"):
        evaluate(tmp_path)
    torch.save({"step": 1, "kind": "ssl-vicreg"}, tmp_path / "main" / "last.pt")
    with pytest.raises(ValueError, match=r"holds a 'ssl-vicreg' run, not a memn2n-babi model"):
        evaluate(tmp_path)


@pytest.mark.parametrize(("value", "message"), [
    ("25", "task='25' is not allowed for recipe 'memn2n-babi'; allowed values: all, 1, 2,"),
    ("0", "task='0' is not allowed"),
    ("1,2", "task='1,2' is not allowed"),
])
def test_task_outside_1_to_20_or_all_is_refused_before_anything_is_written(tmp_path, capsys, value,
                                                                          message):
    assert _train(tmp_path, f"task={value}", "--name", "x") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("noise=1.0", "noise=1.0 is out of range for recipe 'memn2n-babi': must be >= 0 and < 1"),
    ("epochs=0", "epochs=0 is out of range for recipe 'memn2n-babi': must be >= 1"),
    ("lr=0", "lr=0.0 is out of range for recipe 'memn2n-babi': must be > 0"),
    ("valid_fraction=-0.1", "valid_fraction=-0.1 is out of range"),
    ("clip=none", "clip='none' is not allowed for recipe 'memn2n-babi'"),
])
def test_out_of_range_values_are_refused(tmp_path, capsys, override, message):
    assert _train(tmp_path, override, "--name", "x") == 2
    assert message in capsys.readouterr().err


def test_yaml_documents_every_key_and_marks_the_model_and_data_keys_fixed():
    recipe = load_recipe("memn2n-babi")
    for key, default in recipe.config.items():
        info = recipe.keys[key]
        assert info.get("help"), key
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert "min" in info or "max" in info, key
    assert set(recipe.fixed_keys) >= {"task", "babi_set", "hops", "encoding", "temporal", "tying",
                                      "embedding_dim", "memory_size", "empty_slots", "init_std",
                                      "valid_fraction"}
    assert recipe.choices["task"] == ["all", *map(str, range(1, 21))]


def test_yaml_choices_are_the_library_choices():
    from genoise.data.babi import BABI_SETS
    from genoise.memory.memn2n import EMPTY_SLOTS, ENCODINGS, TYING
    from genoise.memory.training import CLIP_MODES

    choices = load_recipe("memn2n-babi").choices
    for key, allowed in (("babi_set", BABI_SETS), ("encoding", ENCODINGS), ("tying", TYING),
                         ("empty_slots", EMPTY_SLOTS), ("clip", CLIP_MODES)):
        assert tuple(choices[key]) == tuple(allowed), key


def test_no_data_folder_names_genoise_data_and_the_files(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    assert _train(tmp_path, "task=3", "--name", "x") == 2
    err = capsys.readouterr().err
    assert "no bAbI data folder: set GENOISE_DATA or data_dir= (--data-dir)" in err
    assert "babi/en/qa3_three-supporting-facts_train.txt" in err


def test_missing_task_files_are_named(tmp_path, capsys):
    data = _fake_babi(tmp_path / "data")
    assert _train(tmp_path / "runs", "task=7", f"data_dir={data}", "--name", "x") == 2
    assert "bAbI file " in (err := capsys.readouterr().err) and "qa7_counting_train.txt is missing" in err


def test_demo_section_trains_task1_and_links_only_its_own_files(tmp_path):
    data = _fake_babi(tmp_path / "data")
    run = Run(tmp_path / "memn2n", data_dir=data, progress=False)
    text = demo(run, full=False)
    assert "| 1 single supporting fact |" in text and "[errors.md](errors.md)" in text
    assert (run.dir / "errors.md").is_file() and (run.dir / "main" / "last.pt").is_file()
    again = demo(run, full=False)  # a second demo starts afresh: one metrics row per epoch
    assert again.splitlines()[-1] == text.splitlines()[-1]
    assert len((run.dir / "main" / "metrics.jsonl").read_text().splitlines()) == 10
    skipped = demo(Run(tmp_path / "none", progress=False), full=False)
    assert "Skipped: no bAbI data folder (set GENOISE_DATA)" in skipped
