"""`genoise train video-mmnist` and `genoise eval video`: tiny runs end to end and the
one-line errors (the bit-for-bit resume is in tests/recipes/test_resume_video.py)."""

from __future__ import annotations

import json

import pytest

from genoise.cli import main
from genoise.video import load_predictor

TINY = ["image_size=32", "scales=2", "width=4", "latent=2", "steps=3", "batch_size=2", "test_sequences=4",
        "samples=2", "discriminator_width=4"]


@pytest.fixture(scope="module")
def data_args(shared_data) -> list[str]:
    """MNIST from ../shared/data when present, else scikit-learn's digits (always offline)."""
    if shared_data is not None and (shared_data / "mnist").is_dir():
        return [f"data_dir={shared_data}"]
    return ["dataset=digits"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_args):
    root = tmp_path_factory.mktemp("video")
    args = ["train", "video-mmnist", *TINY, *data_args, "loss=latent", "--runs-dir", str(root), "--name",
            "tiny", "--no-progress"]
    assert main(args) == 0
    return root / "tiny"


def test_training_writes_the_model_the_table_and_the_figures(run_dir) -> None:
    for name in ("model/last.pt", "evaluation.md", "evaluation.json", "prediction.png", "rollout.gif",
                 "summary.json"):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "evaluation.json").read_text())
    assert set(record["rows"]) == {"latent", "latent_best_of_2", "copy_last", "mean_frame",
                                  "blank_frame"}
    assert record["steps"] == 2 and len(record["rows"]["latent"]["moving_psnr"]) == 2
    assert len(record["test_sha256"]) == 64 and record["test_sequences"] == 4
    # best of two draws is never worse than one draw on the summed error it selects by
    best, one = record["rows"]["latent_best_of_2"]["mse"], record["rows"]["latent"]["mse"]
    assert sum(best) <= sum(one) * 1.5
    assert "PSNR moving" in (run_dir / "evaluation.md").read_text()


def test_eval_video_reloads_the_run_and_its_test_set_is_the_same(run_dir, capsys) -> None:
    first = json.loads((run_dir / "evaluation.json").read_text())
    assert main(["eval", "video", str(run_dir), "test_sequences=4", "eval_steps=3", "samples=1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3 and "latent_best_of_2" not in out["rows"]
    assert main(["eval", "video", str(run_dir), "eval_steps=2"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_sha256"] == first["test_sha256"]
    assert again["rows"]["copy_last"] == first["rows"]["copy_last"]


@pytest.mark.parametrize(
    ("option", "message"),
    [("colour=red", "unknown option"), ("test_sequences=0", "test_sequences=0 must be an integer >= 1"),
     ("samples=two", "samples='two' must be an integer >= 1")],
)
def test_eval_video_refuses_bad_options(run_dir, option: str, message: str, capsys) -> None:
    assert main(["eval", "video", str(run_dir), option]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_eval_video_without_a_model_names_the_file(run_dir, tmp_path, capsys) -> None:
    (tmp_path / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    assert main(["eval", "video", str(tmp_path)]) != 0
    assert "no trained predictor" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["loss=latent", "model=multiscale"], "do not go together"),
     (["loss=l2", "model=latent"], "do not go together"),
     (["scales=4", "image_size=36"], "halved"),
     (["model=dfn", "loss=l2", "context=4", "window=5"], "window (5) must be <= context (4)"),
     (["loss=latent", "latent_map=true"], "latent_map=true needs model=latent backbone=dfn")],
)
def test_train_refuses_inconsistent_keys_before_writing(tmp_path, capsys, overrides, message) -> None:
    args = ["train", "video-mmnist", *TINY, "dataset=digits", *overrides, "--runs-dir", str(tmp_path),
            "--name", "bad"]
    assert main(args) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_missing_mnist_folder_is_one_line_naming_it(tmp_path, capsys) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    args = ["train", "video-mmnist", *TINY, f"data_dir={empty}", "--runs-dir", str(tmp_path / "runs"),
            "--name", "nodata"]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "mnist" in err and "missing" in err and len(err.splitlines()) == 1



def test_the_dynamic_filter_network_trains_and_reloads_through_the_recipe(tmp_path, data_args,
                                                                          capsys) -> None:
    """``model=dfn`` end to end: a tiny 10 → 10 run, its table, and ``eval video`` on it."""
    args = ["train", "video-mmnist", "image_size=32", "model=dfn", "loss=l2", "stochastic=false", "context=4",
            "horizon=3", "eval_steps=3", "width=4", "hidden=8", "steps=2", "batch_size=2", "test_sequences=4",
            *data_args, "--runs-dir", str(tmp_path), "--name", "dfn", "--no-progress"]
    assert main(args) == 0
    record = json.loads((tmp_path / "dfn" / "evaluation.json").read_text())
    assert record["model"] == "dfn" and len(record["rows"]["l2"]["ssim"]) == 3
    capsys.readouterr()
    assert main(["eval", "video", str(tmp_path / "dfn"), "eval_steps=5"]) == 0  # recursive past horizon
    assert len(json.loads(capsys.readouterr().out)["rows"]["l2"]["mse"]) == 5
    assert load_predictor(tmp_path / "dfn" / "model" / "last.pt")[0].window == 3  # the recipe's default


def test_the_dynamic_filter_network_reads_the_window_it_is_given(tmp_path, data_args) -> None:
    args = ["train", "video-mmnist", "image_size=32", "model=dfn", "loss=l2", "stochastic=false", "context=4",
            "horizon=2", "eval_steps=2", "width=4", "hidden=8", "window=4", "steps=1", "batch_size=2",
            "test_sequences=2", *data_args, "--runs-dir", str(tmp_path), "--name", "w4", "--no-progress"]
    assert main(args) == 0
    model = load_predictor(tmp_path / "w4" / "model" / "last.pt")[0]
    assert model.window == 4 and model.full[0][0].in_channels == 4


def test_the_latent_dynamic_filter_network_trains_and_scores_best_of_k_through_the_recipe(tmp_path,
                                                                                          data_args) -> None:
    """``model=latent backbone=dfn latent_map=true loss=latent``: a tiny 4 → 3 run with its
    best-of-k row."""
    args = ["train", "video-mmnist", "image_size=32", "model=latent", "backbone=dfn", "loss=latent",
            "stochastic=false", "context=4", "horizon=3", "eval_steps=3", "width=4", "hidden=8", "latent=2",
            "latent_map=true",
            "steps=2", "batch_size=2", "test_sequences=4", "samples=2", *data_args, "--runs-dir",
            str(tmp_path), "--name", "ldfn", "--no-progress"]
    assert main(args) == 0
    record = json.loads((tmp_path / "ldfn" / "evaluation.json").read_text())
    assert {"latent", "latent_best_of_2"} <= set(record["rows"])
    assert len(record["rows"]["latent"]["ssim"]) == 3
    model = load_predictor(tmp_path / "ldfn" / "model" / "last.pt")[0]
    assert model.backbone == "dfn" and model.generator.latent == 2 and model.latent_shape == (2, 8, 8)
