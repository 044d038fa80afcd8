"""The latent recipes end to end through ``genoise train`` at tiny size on the 8×8 digits:
their metrics against independent references (scikit-learn PCA and K-means energy,
Lloyd's monotone energy, learned encoders beating their algorithms at equal depth), the
pictures and ``last.pt`` they write; the demo sections at tiny size; no silent MNIST →
digits fallback."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import decomposition

from genoise.cli import main
from genoise.data import load_dataset
from genoise.io import read_metrics
from genoise.train.checkpoint import load_checkpoint
from genoise.train.run import Run

PNG = b"\x89PNG\r\n\x1a\n"


def _train(tmp_path: Path, recipe: str, *overrides: str) -> tuple[Path, dict]:
    code = main(["train", recipe, "dataset=digits", *overrides, "--runs-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    run_dir = tmp_path / recipe
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def _assert_pictures(run_dir: Path, *names: str) -> None:
    for name in names:
        assert (run_dir / name).read_bytes()[:8] == PNG, name


def test_pca_recipe_matches_scikit_learn(tmp_path):
    run_dir, summary = _train(tmp_path, "pca-mnist", "n_components=10", "train_subset=500")
    y = load_dataset("digits", "train", subset=500, seed=0).images.flatten(1).double().numpy()
    reference = decomposition.PCA(10).fit(y)
    assert summary["explained_variance"] == pytest.approx(reference.explained_variance_ratio_.sum(), rel=1e-4)
    y_test = load_dataset("digits", "test").images.flatten(1).double().numpy()
    residual = y_test - reference.inverse_transform(reference.transform(y_test))
    assert summary["test_reconstruction_energy"] == pytest.approx((residual**2).sum(1).mean(), rel=1e-3)
    _assert_pictures(run_dir, "components.png", "explained_variance.png")
    state = load_checkpoint(run_dir / "last.pt")
    assert state["kind"] == "estimator-pca" and state["finished"] and state["step"] == 1


def test_kmeans_recipe_lloyd_energy_decreases_and_clusters_follow_digits(tmp_path):
    run_dir, summary = _train(tmp_path, "kmeans-mnist", "n_clusters=10", "max_iter=50")
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "shift" in r]
    energies = [r["energy"] for r in rows]
    assert len(rows) == summary["n_iter"]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(energies))
    state = load_checkpoint(run_dir / "last.pt")
    centres = state["state"]["cluster_centers_"]
    y = load_dataset("digits", "train").images.flatten(1)
    energy = float(torch.cdist(y, centres).min(1).values.pow(2).mean())
    assert summary["train_energy"] == pytest.approx(energy, rel=1e-4)
    assert summary["test_purity"] > 0.6                               # chance is about 0.1
    _assert_pictures(run_dir, "prototypes.png")


@pytest.mark.parametrize("kind", ["bottleneck", "denoising", "masked"])
def test_autoencoder_recipe_trains_and_reconstructs(tmp_path, kind):
    run_dir, summary = _train(tmp_path, "ae-mnist", f"kind={kind}", "epochs=3", "hidden=[32]",
                              "latent_dim=8", "lr=0.003", "batch_size=64")
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert len(rows) == 3 and rows[-1]["test_energy"] < rows[0]["test_energy"]
    assert summary["test_reconstruction_energy"] == pytest.approx(rows[-1]["test_energy"], rel=1e-5)
    _assert_pictures(run_dir, "reconstructions.png")
    state = load_checkpoint(run_dir / "last.pt")
    assert state["kind"] == f"latent-ae-{kind}" and state["step"] == summary["steps"] == 3 * (1347 // 64)


def test_vae_recipe_raises_the_test_elbo(tmp_path):
    run_dir, summary = _train(tmp_path, "vae-mnist", "epochs=4", "hidden=[32]", "lr=0.003", "batch_size=64")
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert rows[-1]["test_elbo"] > rows[0]["test_elbo"]
    assert -60 < summary["test_elbo"] < 0
    _assert_pictures(run_dir, "samples.png", "latent_map.png")
    assert load_checkpoint(run_dir / "last.pt")["kind"] == "latent-vae"


def test_sparse_coding_recipe_lowers_the_objective_with_unit_atoms(tmp_path):
    run_dir, summary = _train(tmp_path, "sparse-coding-mnist", "n_atoms=24", "n_train=600", "n_test=200",
                              "batch_size=32", "epochs=2")
    objective = [r["objective"] for r in read_metrics(run_dir / "metrics.jsonl") if "objective" in r]
    assert len(objective) == 2 and objective[-1] < objective[0]
    dictionary = torch.load(run_dir / "dictionary.pt")
    assert dictionary.shape == (64, 24) and float(dictionary.min()) >= 0        # non-negative atoms
    torch.testing.assert_close(dictionary.norm(dim=0), torch.ones(24), rtol=0, atol=1e-5)
    assert 0 < summary["mean_nonzeros"] < 24 and summary["objective_test"] > 0
    _assert_pictures(run_dir, "atoms.png", "objective.png")


def test_lista_recipe_learned_encoders_beat_their_algorithms_at_equal_depth(tmp_path):
    run_dir, summary = _train(tmp_path, "lista-mnist", "n_atoms=32", "n_train=600", "n_test=200", "epochs=1",
                              "steps=[1,2,5]", "lista_steps=[1,2]", "lcod_steps=[5]", "encoder_epochs=10",
                              "encoder_batch_size=64")
    for t in (1, 2):
        assert summary[f"LISTA_{t}"] < summary[f"ISTA_{t}"]
    assert summary["LCoD_5"] < summary["CoD_5"]
    assert summary["FISTA_5"] <= summary["ISTA_5"]
    for sub in ("dictionary", "lista-1", "lista-2", "lcod-5"):
        assert (run_dir / sub / "last.pt").is_file()
    assert load_checkpoint(run_dir / "lista-2" / "last.pt")["kind"] == "latent-lista"
    _assert_pictures(run_dir, "lista_vs_fista.png")


def test_a_recipe_naming_mnist_never_trains_on_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GENOISE_DATA", raising=False)
    code = main(["train", "kmeans-mnist", "--runs-dir", str(tmp_path), "--no-progress"])
    assert code != 0
    assert "GENOISE_DATA" in capsys.readouterr().err
    assert not list(tmp_path.rglob("last.pt"))


@pytest.mark.parametrize(("recipe", "override", "message"), [
    ("ae-mnist", "hidden=[0]", "hidden must be a non-empty list of integers >= 1"),
    ("lista-mnist", "lista_steps=[]", "lista_steps must be a non-empty list"),
    ("kmeans-mnist", "n_clusters=5000", "n_clusters=5000 is larger than the number of samples (1347)"),
    ("vae-mnist", "batch_size=5000", "batch_size=5000 is larger than the 1347 samples"),
    ("pca-mnist", "train_subset=-5", "train_subset=-5 is out of range"),
    ("sparse-coding-mnist", "lam=-1", "lam=-1.0 is out of range"),
])
def test_bad_settings_get_one_line_naming_them(tmp_path, capsys, recipe, override, message):
    argv = ["train", recipe, "dataset=digits", override, "--runs-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err


def _links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


TINY_DEMOS = {
    "latent": {"kmeans": {"dataset": "digits", "seed": 0, "train_subset": 300, "n_clusters": 4, "n_init": 1,
                          "max_iter": 5},
               "pca": {"dataset": "digits", "seed": 0, "train_subset": 300, "n_components": 4,
                       "whiten": False, "svd_solver": "auto"},
               "vae": {"dataset": "digits", "seed": 0, "train_subset": 300, "latent_dim": 2, "hidden": [16],
                       "kl_weight": 1.0, "epochs": 1, "batch_size": 64, "lr": 1e-3}},
    "sparse_coding": {"dataset": "digits", "seed": 0, "n_atoms": 8, "lam": 0.1, "positive": True,
                      "positive_dictionary": True, "update": "bcd", "epochs": 1, "batch_size": 64,
                      "n_train": 200, "n_test": 50},
    "lista": {"dataset": "digits", "seed": 0, "n_atoms": 8, "lam": 0.3, "positive": False, "epochs": 1,
              "batch_size": 128, "n_train": 200, "n_test": 50, "steps": [1, 2], "lista_steps": [1],
              "lcod_steps": [2], "encoder_epochs": 1, "encoder_batch_size": 64, "encoder_lr": 3e-3},
}


@pytest.mark.parametrize("module", sorted(TINY_DEMOS))
def test_demo_section_runs_and_links_only_files_it_wrote(tmp_path, module):
    import importlib

    section = importlib.import_module(f"genoise.recipes.{module}").demo
    run = Run(tmp_path / module, progress=False)
    markdown = section(run, False, config=TINY_DEMOS[module])
    assert markdown.startswith("## ") and "nan" not in markdown.lower()
    links = _links(markdown)
    assert links
    for link in links:
        assert (run.dir / link).read_bytes()[:8] == PNG, link


def test_demo_config_uses_digits_without_a_data_folder():
    from genoise.recipes import latent, lista, sparse_coding

    assert latent.demo_config("digits", False)["vae"]["dataset"] == "digits"
    assert sparse_coding.demo_config("digits", False)["dataset"] == "digits"
    assert np.all([lista.demo_config("mnist", full)["n_atoms"] > 0 for full in (False, True)])
