"""``genoise.ssl.pretrain``: a short pre-training run on digits beats the same network at
random initialisation; the progress bar and the checkpoint say what is trained; the
schedule's arguments are checked. (The recipe entry is tested in tests/recipes/test_ssl.py.)"""

from __future__ import annotations

import pytest
import torch

from genoise.data import load_dataset
from genoise.ssl.augment import ViewAugment
from genoise.ssl.backbones import make_backbone
from genoise.ssl.evaluate import extract_features, knn_accuracy
from genoise.ssl.methods import build_method
from genoise.ssl.pretrain import pretrain
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


def _tiny(run=None, **kwargs):
    train = load_dataset("digits", "train", subset=256)
    torch.manual_seed(0)
    backbone = make_backbone("conv", in_channels=1, image_size=8, out_dim=8, width=4)
    method = build_method("simclr", backbone, proj_hidden=16, proj_dim=8)
    return pretrain(method, train, augment=ViewAugment("digits"), run=run, batch_size=128,
                    progress=True, **{"epochs": 1, **kwargs})


def test_the_progress_bar_and_the_checkpoint_name_the_method(tmp_path, capsys):
    _tiny(Run(tmp_path / "run", progress=True))
    assert "simclr" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["kind"] == "ssl-simclr"
    _tiny(Run(tmp_path / "other", progress=True), desc="my label", kind="ssl-custom")
    assert "my label" in capsys.readouterr().err
    assert torch.load(tmp_path / "other" / "last.pt", weights_only=False)["kind"] == "ssl-custom"


@pytest.mark.parametrize("kwargs, message", [({"epochs": 0}, "epochs must be > 0"),
                                             ({"warmup_epochs": -1.0}, "warmup_epochs must be >= 0")])
def test_bad_schedule_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _tiny(**kwargs)
