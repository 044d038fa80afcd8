"""The run-folder rules of `genoise train`: a rejected or failing command leaves an existing
run untouched, nothing is replaced without a flag, one writer at a time, names stay inside
--runs-dir, killed writes leave no temporary files for ever, --resume refuses model changes,
config.yaml records what the run used, divergence exits non-zero."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genoise.cli import main
from genoise.train import load_checkpoint
from genoise.train.run_folder import RunLock, machine

RECIPE = """description: least squares on Gaussian batches (command-line tests)
entry: tests.cli._entries:linear
config:
  steps: 6
  lr: 0.1
  width: 4
keys:
  steps: {help: SGD updates, min: 1}
  lr: {help: learning rate, min: 0, exclusive_min: true}
  width: {help: input size, min: 1, fixed: true}
"""


@pytest.fixture
def recipe(tmp_path) -> str:
    path = tmp_path / "linear.yaml"
    path.write_text(RECIPE)
    return str(path)


def train(tmp_path: Path, recipe: str, *args: str) -> int:
    return main(["train", recipe, "--runs-dir", str(tmp_path / "runs"), "--no-progress", *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rejected_command_leaves_an_existing_run_untouched(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "--name", "x") == 0
    before = snapshot(tmp_path / "runs" / "x")
    for bad in (["steps=-5"], ["steps="], ["lr=0"], ["stepz=3"], ["steps=1.5"], ["--device", "tpu"]):
        assert train(tmp_path, recipe, "--name", "x", "--resume", *bad) == 2, bad
        err = capsys.readouterr().err.strip()
        assert err.startswith("genoise: error:") and "\n" not in err, err
        assert snapshot(tmp_path / "runs" / "x") == before, bad
    assert train(tmp_path, recipe, "--name", "x", "steps=-5") == 2
    assert snapshot(tmp_path / "runs" / "x") == before


def test_out_of_range_and_empty_values_name_the_key(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "steps=-5") == 2
    assert "steps=-5 is out of range for recipe 'linear': must be >= 1" in capsys.readouterr().err
    assert train(tmp_path, recipe, "steps=") == 2
    assert "steps= needs a value" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing written at all


def test_training_into_an_existing_run_needs_resume_or_overwrite(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "--name", "x") == 0
    before = snapshot(tmp_path / "runs" / "x")
    assert train(tmp_path, recipe, "--name", "x") == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err and "--overwrite" in err
    assert snapshot(tmp_path / "runs" / "x") == before
    (tmp_path / "runs" / "x" / "note.txt").write_text("mine")
    assert train(tmp_path, recipe, "--name", "x", "--overwrite", "steps=4") == 0
    assert not (tmp_path / "runs" / "x" / "note.txt").exists()
    assert load_checkpoint(tmp_path / "runs" / "x" / "last.pt")["step"] == 4
    assert train(tmp_path, recipe, "--name", "new", "--resume") == 2
    assert "no run at" in capsys.readouterr().err


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path, recipe, capsys):
    folder = tmp_path / "runs" / "x"
    assert train(tmp_path, recipe, "--name", "x", "--stop-after", "2") == 0
    with RunLock(folder) as lock:
        lock.write_holder()
        assert train(tmp_path, recipe, "--name", "x", "--resume") == 2
        err = capsys.readouterr().err
        assert "is in use by another writer" in err and f"pid {os.getpid()}" in err
    assert train(tmp_path, recipe, "--name", "x", "--resume") == 0  # released
    assert not (folder / ".lock").exists()


def test_the_lock_holds_across_processes(tmp_path):
    folder = tmp_path / "runs" / "x"
    code = ("import sys, time; from genoise.train.run_folder import RunLock\n"
            f"lock = RunLock({str(folder)!r}).acquire(); lock.write_holder(); print('held', flush=True)\n"
            "sys.stdin.readline()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by another writer \(pid {holder.pid}"):
            RunLock(folder).acquire()
    finally:
        holder.communicate("\n", timeout=30)
    RunLock(folder).acquire().release()  # the kernel dropped the dead holder's lock


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", ".hidden"])
def test_a_name_cannot_leave_the_runs_dir(tmp_path, recipe, name, capsys):
    assert train(tmp_path, recipe, "--name", name) == 2
    assert "--name" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


def test_an_absolute_name_is_refused(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "--name", str(tmp_path / "elsewhere")) == 2
    assert not (tmp_path / "elsewhere").exists()


def test_temporaries_of_killed_writes_are_removed_when_the_run_is_next_opened(tmp_path, recipe):
    assert train(tmp_path, recipe, "--name", "x", "--stop-after", "2") == 0
    folder = tmp_path / "runs" / "x"
    stale = [folder / ".last.pt.k2j3h4g5.tmp", folder / "sub" / ".metrics.jsonl.abcdef12.tmp"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a checkpoint")
    keep = folder / ".notes.tmp"  # not the atomic writer's pattern: not ours to delete
    keep.write_text("x")
    assert train(tmp_path, recipe, "--name", "x", "--resume") == 0
    assert not any(p.exists() for p in stale) and keep.exists()


def test_resume_refuses_a_model_change_and_logs_a_schedule_change(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "--name", "x", "--stop-after", "2") == 0
    assert "stopped after step 2" in capsys.readouterr().err
    before = snapshot(tmp_path / "runs" / "x")
    assert train(tmp_path, recipe, "--name", "x", "--resume", "width=8") == 2
    err = capsys.readouterr().err
    assert "--resume cannot change width" in err and "\n" not in err.strip()
    assert snapshot(tmp_path / "runs" / "x") == before
    assert train(tmp_path, recipe, "--name", "x", "--resume", "steps=9") == 0
    assert "changed steps: 6 -> 9" in capsys.readouterr().err
    config = yaml.safe_load((tmp_path / "runs" / "x" / "config.yaml").read_text())
    assert config["steps"] == 9 and config["run"]["resumed"][0]["changed"] == ["steps: 6 -> 9"]
    assert load_checkpoint(tmp_path / "runs" / "x" / "last.pt")["step"] == 9


def test_config_records_what_the_run_used(tmp_path, recipe):
    import genoise

    assert train(tmp_path, recipe, "--name", "x", "--device", "cpu") == 0
    config = yaml.safe_load((tmp_path / "runs" / "x" / "config.yaml").read_text())
    info = config["run"]
    assert info["recipe"] == "linear" and info["status"] == "finished" and info["device"] == "cpu"
    assert info["genoise"] == genoise.__version__ and "torch" in info and "git_commit" in info
    assert info["machine"] == machine()  # the CPU and its instruction set: numbers depend on them
    assert info["ended"] >= info["started"]
    # the command main() was called with (here in-process, from pytest), not the host's sys.argv
    expected = ["genoise", "train", recipe, "--runs-dir", str(tmp_path / "runs"), "--no-progress",
                "--name", "x", "--device", "cpu"]
    assert shlex.split(info["command"]) == expected


def test_the_recorded_command_is_the_innermost_call(tmp_path, recipe):
    from genoise._invocation import invocation, invoked_as

    with invoked_as(["benchmark", "--flag"]):
        assert train(tmp_path, recipe, "--name", "inner") == 0
        assert invocation() == ("benchmark", "--flag")  # restored after the nested call
    command = yaml.safe_load((tmp_path / "runs" / "inner" / "config.yaml").read_text())["run"]["command"]
    assert shlex.split(command)[:3] == ["genoise", "train", recipe]
    assert invocation() == tuple(sys.argv[1:])


def test_config_records_the_data_actually_read(tmp_path):
    assert main(["train", "loss-table", "dataset=digits", "steps=2", "batch_size=32", "losses=[hinge]",
                 "--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    info = yaml.safe_load((tmp_path / "loss-table" / "config.yaml").read_text())["run"]
    assert info["data_read"] and any("digits" in source for source in info["data_read"])


def test_a_diverging_run_exits_non_zero_keeps_its_last_good_checkpoint_and_says_so(tmp_path, recipe, capsys):
    assert train(tmp_path, recipe, "--name", "x", "lr=5", "steps=200") == 2
    err = capsys.readouterr().err
    assert err.startswith("genoise: error: diverged:") and "\n" not in err.strip()
    folder = tmp_path / "runs" / "x"
    assert yaml.safe_load((folder / "config.yaml").read_text())["run"]["status"] == "diverged"
    assert not (folder / "summary.json").exists()
    assert 0 < load_checkpoint(folder / "last.pt")["step"] < 200


def test_recipes_command_explains_every_key(capsys):
    assert main(["recipes", "loss-table"]) == 0
    out = capsys.readouterr().out
    for key in ("steps", "lr", "seed", "device"):
        line = next(row for row in out.splitlines() if row.strip().startswith(key + " "))
        assert "default" in line and "(undocumented)" not in line, line


def test_every_key_of_every_shipped_recipe_is_documented_with_a_range():
    from genoise.recipes import list_recipes

    problems = []
    for recipe in list_recipes():
        for key, value in recipe.config.items():
            info = recipe.keys.get(key, {})
            if not info.get("help"):
                problems.append(f"{recipe.name}.{key}: no help")
            numeric = recipe.key_type(key) in ("int", "float")
            if numeric and key not in recipe.choices and "min" not in info and "max" not in info:
                problems.append(f"{recipe.name}.{key}: numeric without a range")
            if value is None and "type" not in info:
                problems.append(f"{recipe.name}.{key}: null default without a type")
    assert not problems, "\n".join(problems[:40])


def test_help_does_not_import_torch():
    code = "import sys, genoise.cli as c; c._parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_extends_merges_a_base_and_refuses_cycles(tmp_path):
    from genoise.recipes import load_recipe

    child = tmp_path / "child.yaml"
    child.write_text("extends: loss-table\ndescription: a child\nconfig:\n  steps: 3\n")
    recipe, parent = load_recipe(str(child)), load_recipe("loss-table")
    assert recipe.config == {**parent.config, "steps": 3} and recipe.entry == parent.entry
    assert recipe.keys == parent.keys and recipe.description == "a child"
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop\nconfig: {}\n")
    with pytest.raises(ValueError, match="'extends' cycle"):
        load_recipe(str(loop))


def test_a_recipe_modules_own_checks_run_before_anything_is_written(tmp_path, capsys):
    code = main(["train", "vicreg-digits", "method_options={bogus: 1}", "--runs-dir", str(tmp_path),
                 "--no-progress"])
    assert code == 2
    assert "method_options: unknown key(s) bogus" in capsys.readouterr().err
    assert not tmp_path.joinpath("vicreg-digits").exists()
