"""The SSL recipes: the 30 YAML files (now ``extends:`` children of ``_ssl.yaml``) resolve to
the configurations shipped before the change; ranges and ``method_options`` are checked;
``train`` writes its run folder; ``evaluate`` takes every option ``genoise eval`` offers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from genoise.cli import main
from genoise.recipes import COMMON_DEFAULTS, list_recipes, load_recipe, resolve_config
from genoise.recipes.ssl import EVALUATE_OPTIONS, evaluate, train
from genoise.ssl.evaluate import extract_features, knn_accuracy
from genoise.ssl.methods import build_from_config, method_option_names
from genoise.train import Run

SHIPPED = yaml.safe_load((Path(__file__).parent / "data" / "ssl-recipes-ba9ed4c.yaml").read_text())
# Keys the YAML at ba9ed4c did not have: pool_grid came from the Python DEFAULTS (1);
# probe_iterations is new, with the value the recipe used (linear_probe's 200).
NEW_KEYS = {"pool_grid": 1, "probe_iterations": 200}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_ssl_recipe_resolves_to_the_configuration_shipped_at_ba9ed4c(name):
    old, recipe = SHIPPED[name], load_recipe(name)
    assert recipe.config == {**COMMON_DEFAULTS, **old["config"], **NEW_KEYS}
    assert recipe.description == old["description"]
    assert recipe.entry == "genoise.recipes.ssl:train"
    for key in ("backbone", "method"):
        assert recipe.choices[key] == old["choices"][key]
    # dataset: every preset accepts the three data sets (the resume tests run on digits)
    assert old["choices"]["dataset"][0] in recipe.choices["dataset"]


def test_the_ssl_names_are_the_same_and_the_bases_are_not_recipes():
    ssl = {r.name for r in list_recipes() if r.entry == "genoise.recipes.ssl:train"}
    assert ssl == set(SHIPPED)
    for base in ("_ssl", "_ssl-mnist", "_ssl-digits", "_ssl-cifar10"):
        with pytest.raises(ValueError, match="unknown recipe"):
            load_recipe(base)


@pytest.mark.parametrize("override, message", [
    ("warmup_epochs=-1", r"warmup_epochs=-1.0 is out of range for recipe 'vicreg-digits': must be >= 0"),
    ("train_subset=-5", r"train_subset=-5 is out of range for recipe 'vicreg-digits': must be >= 0"),
    ("lr=0", r"lr=0.0 is out of range .*must be > 0"),
    ("epochs=0", r"epochs=0 is out of range .*must be >= 1"),
    ("method_options=5", r"method_options must be a mapping"),
])
def test_out_of_range_or_mistyped_keys_are_refused_in_one_line(override, message):
    with pytest.raises(ValueError, match=message) as info:
        resolve_config(load_recipe("vicreg-digits"), [override])
    assert "\n" not in str(info.value)


def test_method_options_keys_are_checked_by_the_method_builder():
    config = resolve_config(load_recipe("vicreg-digits"), ["method_options={sim_weight: 25, temprature: 1}"])
    with pytest.raises(ValueError, match=r"unknown key\(s\) temprature for method 'vicreg'; allowed: "
                                         r"sim_weight, var_weight, cov_weight$"):
        build_from_config(config, torch.zeros(2, 1, 8, 8))
    config["method_options"] = {"proj_dim": 8}  # a recipe key of its own, not a method option
    with pytest.raises(ValueError, match=r"unknown key.*proj_dim"):
        build_from_config(config, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"method_options must be a mapping .*got 5"):
        build_from_config({**config, "method_options": 5}, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"lacks key.*pool_grid"):
        build_from_config({k: v for k, v in config.items() if k != "pool_grid"}, torch.zeros(2, 1, 8, 8))
    assert method_option_names("moco") == ("temperature", "queue_size", "momentum", "seed")


def test_every_shipped_method_options_value_is_accepted_by_its_method():
    for name in SHIPPED:
        config = load_recipe(name).config
        assert set(config["method_options"]) <= set(method_option_names(config["method"])), name


# ---------------------------------------------------------------------- train + evaluate
TINY = {"dataset": "digits", "epochs": 2, "batch_size": 128, "out_dim": 16, "width": 8,
        "proj_hidden": 32, "proj_dim": 32, "train_subset": 512, "probe_iterations": 20}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    config = {**load_recipe("vicreg-digits").config, **TINY, "device": "cpu"}
    run = Run(tmp_path_factory.mktemp("ssl") / "run", config=config, progress=False)
    run.save_config()
    return run.dir, train(run)


def test_train_writes_metrics_checkpoint_plot_and_summary(trained):
    from genoise.io import read_metrics

    run_dir, summary = trained
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert len(rows) == 2  # one row per epoch (4 steps of 128 images per epoch)
    for key in ("ssl_loss", "probe_test_acc", "rankme", "emb_std_mean", "alignment", "uniformity"):
        assert key in rows[-1]
    assert (run_dir / "last.pt").is_file() and (run_dir / "embedding_pca.png").stat().st_size > 1000
    checkpoint = torch.load(run_dir / "last.pt", weights_only=False)
    assert checkpoint["kind"] == "ssl-vicreg" and checkpoint["config"]["method"] == "vicreg"
    assert 0 <= summary["linear_acc"] <= 100 and summary["steps"] == 8


def test_evaluate_knn_matches_the_summary_and_an_independent_knn(trained):
    run_dir, summary = trained
    knn = evaluate(run_dir, kind="knn", progress=False)
    assert knn == pytest.approx({"knn_k20": summary["knn_k20"], "knn_k200": summary["knn_k200"]})
    assert json.loads((run_dir / "eval_knn.json").read_text()) == knn
    # k and temperature reach the vote: the same numbers as knn_accuracy on the backbone's features
    from genoise.data import load_dataset
    from genoise.recipes.ssl import load_data

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    train_set, test_set = load_data(config)
    method, _ = build_from_config(config, train_set.images)
    state = torch.load(run_dir / "last.pt", weights_only=False)["model"]
    method.backbone.load_state_dict({k[len("method.backbone."):]: v for k, v in state.items()
                                     if k.startswith("method.backbone.")})
    f_train = extract_features(method.backbone, train_set.images)
    f_test = extract_features(method.backbone, test_set.images)
    expected = knn_accuracy(f_train, train_set.labels, f_test, test_set.labels, ks=(1, 7), temperature=0.5)
    assert evaluate(run_dir, kind="knn", k=[1, 7], temperature=0.5, progress=False) == expected
    assert set(evaluate(run_dir, kind="knn", k=5, progress=False)) == {"knn_k5"}
    assert load_dataset("digits", "test").images.shape[0] == test_set.images.shape[0]


def test_evaluate_linear_with_iterations_device_data_dir_and_progress(trained, tmp_path, capsys):
    run_dir, _ = trained
    linear = evaluate(run_dir, kind="linear", iterations=5, device="cpu", data_dir=str(tmp_path),
                      progress=True)
    assert set(linear) == {"linear_acc", "linear_val_acc", "linear_wd"} and 0 <= linear["linear_acc"] <= 100
    err = capsys.readouterr().err
    assert "linear probe" in err and "features (train)" in err  # the probe shows progress
    assert evaluate(run_dir, kind="linear", iterations=5, progress=False) == linear


@pytest.mark.parametrize("options, message", [
    ({"kind": "svm"}, "kind must be 'linear' or 'knn'"),
    ({"kind": "knn", "kk": 3}, r"unknown evaluation option\(s\) kk; allowed: kind, k, temperature"),
    ({"kind": "linear", "k": 20}, "option k applies to kind=knn only"),
    ({"kind": "knn", "iterations": 5}, "option iterations applies to kind=linear only"),
    ({"kind": "knn", "k": 0}, "k must be an integer >= 1"),
    ({"kind": "knn", "k": [20, "x"]}, "k must be an integer >= 1"),
    ({"kind": "knn", "k": []}, "k must be an integer >= 1"),
    ({"kind": "knn", "temperature": 0}, "temperature must be a number > 0"),
    ({"kind": "linear", "iterations": 0}, "iterations must be an integer >= 1"),
    ({"kind": "linear", "progress": "yes"}, "progress must be true or false"),
    ({"kind": "linear", "device": "tpu"}, "device must be"),
])
def test_every_bad_evaluator_option_is_refused_in_one_line(trained, options, message):
    run_dir, _ = trained
    with pytest.raises(ValueError, match=message) as info:
        evaluate(run_dir, **options)
    assert "\n" not in str(info.value)


def test_evaluate_refuses_a_folder_that_is_not_a_trained_ssl_run(tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        evaluate(tmp_path, kind="knn")
    (tmp_path / "config.yaml").write_text("steps: 3\n")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate(tmp_path, kind="knn")
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="not the configuration of an SSL run"):
        evaluate(tmp_path, kind="knn")


def test_every_evaluator_option_is_documented_and_has_a_test():
    assert set(EVALUATE_OPTIONS) == {"kind", "k", "temperature", "iterations", "data_dir", "device",
                                     "progress"}


def test_genoise_eval_knn_with_k_runs_from_the_command_line(trained, capsys):
    """The example of `genoise eval --help` (a TypeError before)."""
    run_dir, _ = trained
    assert main(["eval", "knn", str(run_dir), "k=20", "temperature=0.07"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"knn_k20"}
    assert main(["eval", "knn", str(run_dir), "kk=20"]) == 2
    assert "unknown evaluation option(s) kk" in capsys.readouterr().err


def test_evaluate_reads_a_cli_run_folder_and_one_written_before_the_new_keys(trained, tmp_path):
    """config.yaml of `genoise train` has a `run:` section; a run folder written at ba9ed4c
    has no pool_grid / probe_iterations: both evaluate like the original."""
    import shutil

    run_dir, summary = trained
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    for name, config in (("cli", {**saved, "run": {"recipe": "vicreg-digits", "data_dir": None}}),
                         ("legacy", {k: v for k, v in saved.items() if k not in NEW_KEYS})):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(run_dir / "last.pt", folder / "last.pt")
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        assert evaluate(folder, kind="knn", k=20, progress=False) == pytest.approx(
            {"knn_k20": summary["knn_k20"]}), name
