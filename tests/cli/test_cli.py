"""The command line: recipes, overrides, errors, run folders, the demo driver."""

from __future__ import annotations

import json

import pytest
import yaml

from genoise.cli import demo as demo_module
from genoise.cli import main
from genoise.recipes import (
    DEMO_SECTIONS,
    EVALUATORS,
    list_recipes,
    load_recipe,
    recipe_module,
    resolve_config,
)


def test_help_exits_zero_for_every_command(capsys):
    for argv in (["--help"], ["train", "--help"], ["recipes", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_every_shipped_recipe_loads_and_names_an_importable_entry():
    recipes = list_recipes()
    assert {"energy-landscapes", "loss-table"} <= {r.name for r in recipes}
    for recipe in recipes:
        assert callable(recipe.load_entry()), recipe.name
        for key, allowed in recipe.choices.items():
            assert recipe.config[key] in allowed, (recipe.name, key)


def test_an_alias_is_the_same_recipe_under_another_name(tmp_path):
    alias, target = load_recipe("mpur-traffic"), load_recipe("world-mpur-traffic")
    assert (alias.name, alias.entry, alias.config, alias.choices) == (
        "mpur-traffic", target.entry, target.config, target.choices
    )
    broken = tmp_path / "loop.yaml"
    broken.write_text("alias_of: no-such-recipe\n")
    with pytest.raises(ValueError, match="alias of 'no-such-recipe', which is not a recipe"):
        load_recipe(str(broken))


def test_override_with_unknown_key_names_the_key_and_allowed_keys():
    recipe = load_recipe("loss-table")
    with pytest.raises(ValueError, match=r"unknown key 'stepz'.*allowed keys: .*steps"):
        resolve_config(recipe, ["stepz=3"])


def test_override_with_bad_value_or_choice_is_refused():
    recipe = load_recipe("loss-table")
    with pytest.raises(ValueError, match="steps must be an integer"):
        resolve_config(recipe, ["steps=many"])
    with pytest.raises(ValueError, match=r"dataset='imagenet' is not allowed.*mnist, digits"):
        resolve_config(recipe, ["dataset=imagenet"])
    with pytest.raises(ValueError, match="key=value"):
        resolve_config(recipe, ["steps"])


def test_override_values_are_typed():
    recipe = load_recipe("loss-table")
    config = resolve_config(recipe, ["steps=7", "lr=1e-2", "losses=[hinge, nll]", "beta=2"])
    assert config["steps"] == 7 and config["lr"] == 0.01 and config["beta"] == 2.0
    assert config["losses"] == ["hinge", "nll"]


def test_unknown_recipe_is_a_one_line_error(capsys):
    assert main(["train", "no-such-recipe"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genoise: error: unknown recipe 'no-such-recipe'") and "\n" not in err


def test_recipes_command_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    assert "loss-table" in capsys.readouterr().out
    assert main(["recipes", "loss-table"]) == 0
    out = capsys.readouterr().out
    assert "one of mnist, digits" in out and "default" in out


def test_train_writes_config_metrics_and_summary(tmp_path):
    code = main(["train", "loss-table", "dataset=digits", "steps=20", "batch_size=32",
                 "losses=[hinge]", "--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu"])
    assert code == 0
    run_dir = tmp_path / "loss-table"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["steps"] == 20 and config["losses"] == ["hinge"]
    summary = json.loads((run_dir / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["loss"] == "hinge" and 0 <= row["test_error"] <= 100
    assert (run_dir / "metrics.jsonl").read_text().strip()
    assert (run_dir / "hinge" / "last.pt").is_file()


def test_bad_device_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "loss-table", "--device", "tpu", "--runs-dir", str(tmp_path)]) == 2
    assert "device" in capsys.readouterr().err


def test_demo_writes_report_with_every_section_and_rejects_unknown(tmp_path, monkeypatch):
    def fake(run, full):
        (run.dir / "pic.png").write_bytes(b"png")
        return f"## fake {run.name} full={full}\n\n![picture](pic.png)"

    monkeypatch.setattr(demo_module, "DEMO_SECTIONS", {"one": "x", "two": "x"})
    monkeypatch.setattr(demo_module, "_section_function", lambda name: fake)
    report = demo_module.run_demo(tmp_path, full=True, progress=False)
    text = report.read_text()
    assert "## fake one full=True" in text and "## fake two full=True" in text
    assert "![picture](one/pic.png)" in text and "![picture](two/pic.png)" in text
    assert "| **total** |" in text
    with pytest.raises(ValueError, match=r"unknown demo section\(s\) three; available: one, two"):
        demo_module.run_demo(tmp_path, only=["three"])


def test_demo_only_updates_its_section_and_keeps_the_others(tmp_path, monkeypatch):
    calls = []

    def fake(run, full):
        calls.append(run.name)
        return f"## {run.name} call {len(calls)}"

    monkeypatch.setattr(demo_module, "DEMO_SECTIONS", {"one": "x", "two": "x"})
    monkeypatch.setattr(demo_module, "_section_function", lambda name: fake)
    demo_module.run_demo(tmp_path, progress=False)
    text = demo_module.run_demo(tmp_path, only=["two"], progress=False).read_text()
    assert calls == ["one", "two", "two"]
    assert "## one call 1" in text and "## two call 3" in text and "## two call 2" not in text


def test_demo_refuses_a_link_to_a_file_the_section_did_not_write(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "DEMO_SECTIONS", {"one": "x"})
    monkeypatch.setattr(demo_module, "_section_function", lambda name: lambda run, full: "![x](gone.png)")
    with pytest.raises(ValueError, match=r"links 'gone\.png', which it did not write"):
        demo_module.run_demo(tmp_path, progress=False)


def _fake_section_task(name, out_dir, options):
    """A worker task for the tests below: writes a section, or fails for ``bad``."""
    if name == "bad":
        raise ValueError("bad section")
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    (out_dir / name / demo_module.SECTION_FILE).write_text(f"<!-- seconds: 2.0 -->\n## {name} in a worker\n")
    return 2.0


def test_demo_jobs_run_sections_in_worker_processes_and_name_the_failures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo_module, "DEMO_SECTIONS", {"one": "x", "bad": "x", "two": "x"})
    with pytest.raises(demo_module.DemoSectionError, match=r"demo section\(s\) bad failed; .*bad\.log"):
        demo_module._run_in_processes(["one", "bad", "two"], tmp_path, 2, task=_fake_section_task,
                                      data_dir=None)
    text = (tmp_path / "report.md").read_text()
    assert "## one in a worker" in text and "## two in a worker" in text  # the others went on
    assert "| **total** | 4 |" in text
    assert "bad FAILED (ValueError)" in capsys.readouterr().out


def test_demo_jobs_run_exclusive_sections_alone_last_in_this_process(tmp_path, monkeypatch):
    order = []
    monkeypatch.setattr(demo_module, "DEMO_SECTIONS", {"deploy": "x", "one": "x", "two": "x"})
    monkeypatch.setattr(demo_module, "_run_in_processes",
                        lambda names, out_dir, jobs, **options: order.append(("workers", list(names), jobs)))
    monkeypatch.setattr(demo_module, "_section_function",
                        lambda name: lambda run, full: order.append(("here", run.name)) or f"## {run.name}")
    demo_module.run_demo(tmp_path, jobs=2, progress=False)
    assert order == [("workers", ["one", "two"], 2), ("here", "deploy")]
    with pytest.raises(ValueError, match="jobs must be"):
        demo_module.run_demo(tmp_path, jobs=0)


def test_demo_worker_writes_a_failing_sections_traceback_to_its_log(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(demo_module.DemoSectionError, match=r"lista failed"):
        demo_module._run_in_processes(["lista"], tmp_path, 2, data_dir=missing, full=False, device="cpu")
    log = (tmp_path / "logs" / "lista.log").read_text()
    assert "Traceback" in log and "which is not a folder" in log


def test_every_demo_section_and_evaluator_is_a_recipe_module_function():
    for module in DEMO_SECTIONS.values():
        assert callable(recipe_module(module).demo), module
    for module, _ in EVALUATORS.values():
        assert callable(recipe_module(module).evaluate), module


def test_no_entry_or_section_points_into_a_capability_package():
    for recipe in list_recipes():
        assert recipe.entry.startswith("genoise.recipes."), (recipe.name, recipe.entry)


def test_eval_refuses_unknown_kind_and_missing_folder(tmp_path, capsys):
    assert main(["eval", "telepathy", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown evaluation kind 'telepathy'; available: linear, knn, babi, driving" in err
    assert main(["eval", "babi", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_world_without_a_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["world"])
    assert info.value.code == 2
    assert "genoise world" in capsys.readouterr().err


def test_train_resume_continues_from_the_checkpoint_to_the_same_result(tmp_path):
    base = ["train", "loss-table", "dataset=digits", "batch_size=32", "losses=[nll]",
            "--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert main([*base, "steps=12", "--name", "straight"]) == 0
    # An interrupted run: stopped after 6 steps, then resumed.
    assert main([*base, "steps=12", "--name", "resumed", "--stop-after", "6"]) == 0
    assert not (tmp_path / "resumed" / "summary.json").exists()
    assert main([*base, "--name", "resumed", "--resume"]) == 0
    straight = json.loads((tmp_path / "straight" / "summary.json").read_text())["rows"][0]
    resumed = json.loads((tmp_path / "resumed" / "summary.json").read_text())["rows"][0]
    assert resumed["test_error"] == straight["test_error"]
    assert resumed["margin_gap"] == straight["margin_gap"]


def test_a_closed_pipe_is_not_a_traceback():
    import subprocess
    import sys

    out = subprocess.run(f"{sys.executable} -m genoise recipes | head -1", shell=True, capture_output=True,
                         text=True, check=False)
    assert out.stdout.strip() and "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr
