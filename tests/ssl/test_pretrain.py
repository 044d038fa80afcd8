"""End to end: a short pre-training run on digits beats the same network at random
initialisation; the recipe entry writes its run folder; ``evaluate_run`` reads it back."""

from __future__ import annotations

import json

import pytest
import torch

from genoise.data import load_dataset
from genoise.io import read_metrics
from genoise.ssl.augment import ViewAugment
from genoise.ssl.backbones import make_backbone
from genoise.ssl.evaluate import extract_features, knn_accuracy
from genoise.ssl.methods import build_method
from genoise.ssl.pretrain import pretrain
from genoise.ssl.recipes import evaluate_run, pretrain_recipe
from genoise.train import Run


def _knn(backbone, train, test):
    return knn_accuracy(extract_features(backbone, train.images), train.labels,
                        extract_features(backbone, test.images), test.labels)


@pytest.mark.slow
def test_short_simclr_run_on_digits_beats_random_init_knn():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    torch.manual_seed(0)
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=64)
    before = _knn(backbone, train, test)
    method = build_method("simclr", backbone, proj_hidden=256, proj_dim=64, temperature=0.2)
    _, row = pretrain(method, train, augment=ViewAugment("digits"), test=test, epochs=6, batch_size=128,
                      lr=2e-3, progress=False)
    after = _knn(backbone, train, test)
    assert after["knn_k20"] > before["knn_k20"] + 2.0
    assert after["knn_k200"] > before["knn_k200"] + 5.0
    assert row["rankme"] > 5 and row["probe_test_acc"] > 50


def test_recipe_entry_writes_metrics_checkpoint_plot_and_evaluates(tmp_path):
    config = {"method": "vicreg", "dataset": "digits", "epochs": 2, "batch_size": 256, "out_dim": 32,
              "width": 8, "proj_hidden": 64, "proj_dim": 64, "seed": 0, "device": "cpu", "data_dir": None}
    run = Run(tmp_path / "run", config=config, progress=False)
    run.save_config()
    summary = pretrain_recipe(run)
    rows = read_metrics(run.path("metrics.jsonl"))
    assert len(rows) == 2  # one row per epoch
    for key in ("ssl_loss", "probe_test_acc", "rankme", "emb_std_mean", "alignment", "uniformity"):
        assert key in rows[-1]
    assert run.path("last.pt").is_file() and run.path("embedding_pca.png").stat().st_size > 1000
    assert 0 <= summary["linear_acc"] <= 100
    knn = evaluate_run(run.dir, "knn")
    assert knn["knn_k20"] == pytest.approx(summary["knn_k20"])
    assert json.loads(run.path("eval_knn.json").read_text()) == knn
    with pytest.raises(ValueError, match="kind must be"):
        evaluate_run(run.dir, "svm")
    with pytest.raises(ValueError, match="not a run folder"):
        evaluate_run(tmp_path, "knn")
