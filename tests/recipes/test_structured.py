"""The gtn-amounts recipe end to end on scikit-learn's digits: train, evaluate with and
without the grammar, ``genoise eval amounts``, ``init=`` and its errors."""

from __future__ import annotations

import json

import pytest

from genoise.cli import main
from genoise.recipes.structured import evaluate

_TINY = [
    "dataset=digits",
    "train_strings=24",
    "test_strings=6",
    "isolated_steps=3",
    "steps=2",
    "batch_size=4",
    "max_length=5",
]


def _train(tmp_path, name, *overrides):
    return main(
        [
            "train",
            "gtn-amounts",
            *_TINY,
            *overrides,
            "--runs-dir",
            str(tmp_path),
            "--name",
            name,
            "--no-progress",
        ]
    )


def test_train_init_and_evaluate(tmp_path):
    assert _train(tmp_path, "iso", "loss=isolated") == 0
    record = json.loads((tmp_path / "iso" / "evaluation.json").read_text())
    assert set(record["rows"]) == {"isolated", "isolated_grammar"}
    for row in record["rows"].values():
        assert 0 <= row["string_accuracy"] <= 1 and row["character_error_rate"] >= 0
        assert row["accepted_error"] <= 0.01 + 1e-9
    assert (tmp_path / "iso" / "reading.png").stat().st_size > 1000
    assert _train(tmp_path, "global", "loss=viterbi", f"init={tmp_path / 'iso'}") == 0
    assert not (tmp_path / "global" / "isolated").exists()  # the isolated stage came from init=
    rows = evaluate(tmp_path / "global", strings=3)
    assert set(rows) == {"viterbi", "viterbi_grammar"}
    assert main(["eval", "amounts", str(tmp_path / "global"), "strings=3"]) == 0
    assert json.loads((tmp_path / "global" / "evaluation.json").read_text())["temperature"] == 1.0
    warm = evaluate(tmp_path / "global", strings=3, temperature=2.5)  # another ranking, the same readings
    assert all(warm[k]["string_accuracy"] == rows[k]["string_accuracy"] for k in rows)
    assert json.loads((tmp_path / "global" / "evaluation.json").read_text())["temperature"] == 2.5


def test_bad_init_and_options(tmp_path, capsys):
    assert _train(tmp_path, "glob", "loss=forward") == 0
    assert _train(tmp_path, "bad", "loss=viterbi", f"init={tmp_path / 'glob'}") != 0
    assert "must be loss=isolated" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # rejected before anything is written
    assert _train(tmp_path, "bad2", "loss=sdnn_ctc", f"init={tmp_path / 'glob'}") != 0
    assert "does not apply to loss=sdnn_ctc" in capsys.readouterr().err
    with pytest.raises(ValueError, match="strings"):
        evaluate(tmp_path / "glob", strings=0)
    assert main(["eval", "amounts", str(tmp_path / "glob"), "temperature=0"]) != 0
    err = capsys.readouterr().err.strip()
    assert "temperature" in err and "a number > 0" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("schedule", "last_lr"), [("constant", 1e-3), ("cosine", 0.0)])
def test_isolated_schedule(tmp_path, schedule, last_lr):
    """``isolated_schedule=cosine`` decays the isolated stage's rate to 0 at its last update."""
    options = ["loss=isolated", "isolated_steps=4", f"isolated_schedule={schedule}"]
    assert _train(tmp_path, schedule, *options) == 0
    lines = (tmp_path / schedule / "model" / "metrics.jsonl").read_text().splitlines()
    last = [json.loads(line) for line in lines if '"lr"' in line][-1]
    assert last["step"] == 4 and last["lr"] == pytest.approx(last_lr, abs=1e-12)


def test_recognizer_width(tmp_path, capsys):
    """``recognizer_width=2``: a LeNet-5 with twice the maps, evaluated and continued by ``init=``
    of the same width; another width is refused before anything is written."""
    from genoise.recipes.structured import load_model
    from genoise.train.run_folder import read_run_config

    assert _train(tmp_path, "wide", "loss=isolated", "recognizer_width=2") == 0
    model = load_model(tmp_path / "wide", read_run_config(tmp_path / "wide")[0])
    assert model.recognizer.c1.out_channels == 12 and model.recognizer.c5.out_channels == 240
    init = f"init={tmp_path / 'wide'}"
    assert _train(tmp_path, "wide_global", "loss=viterbi", "recognizer_width=2", init) == 0
    assert _train(tmp_path, "narrow", "loss=viterbi", init) != 0
    assert "recognizer_width=2, this run recognizer_width=1" in capsys.readouterr().err
    assert not (tmp_path / "narrow").exists()


def test_pretrain_epochs(tmp_path):
    """``pretrain_epochs=1``: one pass over the isolated training digits (in ``pretrain/``) before
    the isolated-segment stage; its metrics row is a finite loss."""
    assert _train(tmp_path, "pre", "loss=isolated", "pretrain_epochs=1") == 0
    lines = (tmp_path / "pre" / "pretrain" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows and all(row["loss"] == row["loss"] for row in rows if "loss" in row)
    assert (tmp_path / "pre" / "model" / "last.pt").is_file()


def test_freeze_features_after_pretraining(tmp_path):
    """``freeze_features=true``: C1-C5 leave the pre-training stage and never change again; F6 and
    the output layer go on training in the string stages."""
    import torch

    from genoise.train import load_checkpoint

    overrides = ("loss=discriminative_forward", "pretrain_epochs=1", "freeze_features=true")
    assert _train(tmp_path, "frozen", *overrides) == 0
    stages = [load_checkpoint(tmp_path / "frozen" / stage / "last.pt")["model"]
              for stage in ("pretrain", "isolated", "model")]
    for name, value in stages[0].items():
        if name.startswith("recognizer.") and name.split(".")[1] not in ("f6", "output"):
            assert all(torch.equal(value, stage[name]) for stage in stages[1:]), name
    assert not torch.equal(stages[0]["recognizer.f6.weight"], stages[2]["recognizer.f6.weight"])


@pytest.mark.parametrize(("overrides", "message"), [
    (("freeze_features=true",), "needs pre-trained features"),
    (("freeze_features=true", "loss=sdnn_ctc", "pretrain_epochs=1"), "loss=sdnn_ctc has none"),
])
def test_freeze_features_is_refused_without_features_to_freeze(tmp_path, capsys, overrides, message):
    assert _train(tmp_path, "bad", *overrides) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_isolated_characters_beside_both_string_stages(tmp_path, capsys):
    """``character_weight=w``: both string stages (isolated segments, then global) add w times
    the cross-entropy of isolated training digits, logged as ``characters``; refused for the
    SDNN, which has no LeNet-5."""
    assert _train(tmp_path, "chars", "loss=discriminative_forward", "character_weight=0.5") == 0
    for stage in ("isolated", "model"):
        lines = (tmp_path / "chars" / stage / "metrics.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        logged = [row["characters"] for row in rows if "characters" in row]
        assert logged and all(0 < value < 10 for value in logged), stage
    assert _train(tmp_path, "plain", "loss=discriminative_forward") == 0
    rows = (tmp_path / "plain" / "model" / "metrics.jsonl").read_text()
    assert "characters" not in rows
    assert _train(tmp_path, "bad", "loss=sdnn_ctc", "character_weight=0.5") != 0
    assert "loss=sdnn_ctc has none" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_segment_scale_string_reaches_the_reader_and_the_isolated_digits(tmp_path, capsys, monkeypatch):
    """``segment_scale=string``: the evaluated reader normalises its segments at the string's
    scale, the pre-training's digits are normalised the same way, and ``init=`` of another scale
    or the SDNN is refused before anything is written."""
    from genoise.recipes.structured import load_model
    from genoise.structured import train as structured_train
    from genoise.train.run_folder import read_run_config

    seen = []
    original = structured_train.normalise_characters
    monkeypatch.setattr(structured_train, "normalise_characters",
                        lambda images, **kw: seen.append(kw.get("scale")) or original(images, **kw))
    assert _train(tmp_path, "scaled", "loss=isolated", "segment_scale=string", "pretrain_epochs=1") == 0
    assert seen == ["string"]
    model = load_model(tmp_path / "scaled", read_run_config(tmp_path / "scaled")[0])
    assert model.scale == "string"
    init = f"init={tmp_path / 'scaled'}"
    assert _train(tmp_path, "plain", "loss=viterbi", init) != 0
    assert "segment_scale=string, this run segment_scale=segment" in capsys.readouterr().err
    assert not (tmp_path / "plain").exists()
    assert _train(tmp_path, "sdnn", "loss=sdnn_ctc", "segment_scale=string") != 0
    assert "loss=sdnn_ctc reads the string without segmenting it" in capsys.readouterr().err
    assert not (tmp_path / "sdnn").exists()


def test_a_reader_and_an_sdnn_read_as_a_product_of_experts(tmp_path, capsys):
    """``genoise eval amounts RUN experts=[SDNN]``: rows ``LOSS_experts`` in their own folder,
    cached by ``product_rows``; bad experts are refused in one line."""
    from genoise.recipes.structured import experts_folder, product_rows

    _train(tmp_path, "reader", "loss=discriminative_forward")
    _train(tmp_path, "sdnn", "loss=sdnn_ctc", "sdnn_steps=2")
    rows = evaluate(tmp_path / "reader", strings=3, experts=[str(tmp_path / "sdnn")])
    assert set(rows) == {"discriminative_forward_experts", "discriminative_forward_experts_grammar"}
    folder = experts_folder(tmp_path / "reader", [tmp_path / "sdnn"])
    assert folder.name == "experts+sdnn"
    record = json.loads((folder / "evaluation.json").read_text())
    assert record["experts"] == [str(tmp_path / "reader"), str(tmp_path / "sdnn")]
    assert "product of experts" in (folder / "evaluation.md").read_text()
    assert not (tmp_path / "reader" / "evaluation.json").read_text().count("experts")  # its own rows stay
    (folder / "evaluation.json").write_text(json.dumps({"rows": {"cached": {}}}))
    assert product_rows(tmp_path / "reader", [tmp_path / "sdnn"]) == {"cached": {}}  # read, not recomputed
    for experts, error, message in (
        ([str(tmp_path / "none")], FileNotFoundError, "is not a run folder"),
        ([str(tmp_path / "sdnn")], ValueError, "a product of readers has none"),
    ):
        with pytest.raises(error, match=message):
            evaluate(tmp_path / "reader", strings=3, experts=experts,
                     **({"temperature": 2.0} if error is ValueError else {}))
    with pytest.raises(ValueError, match=r"experts=.* must be a list of run folders"):
        evaluate(tmp_path / "reader", experts=str(tmp_path / "sdnn"))
    _train(tmp_path, "free", "loss=sdnn_ctc", "sdnn_steps=2", "mode=free")
    with pytest.raises(ValueError, match=r"trained on other strings \(mode: 'free' vs 'amount'\)"):
        evaluate(tmp_path / "reader", strings=3, experts=[str(tmp_path / "free")])
