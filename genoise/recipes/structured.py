"""The check-amount reader (``genoise train gtn-amounts loss=…``), its evaluator (``genoise eval
amounts RUN_DIR``) and the ``genoise demo`` section.

``train``: strings of MNIST digits (training digits; test strings from test digits) are
read either by the segmentation-based reader (:class:`~genoise.structured.CheckReader`:
``loss=isolated`` trains its LeNet-5 on isolated segments; every graph loss first takes
the isolated weights — trained here, or from ``init=RUN_DIR`` — then trains globally at
the string level) or by the SDNN with CTC (``loss=sdnn_ctc``). The model trains in
``RUN_DIR/model`` (resumable), then ``evaluate`` reads the test strings without and with
the check-amount grammar: ``evaluation.md`` / ``evaluation.json`` and ``reading.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genoise.data import load_dataset
from genoise.data.digit_strings import (
    NUM_SYMBOLS,
    DigitStringConfig,
    DigitStrings,
    amount_text,
    digit_strings,
)
from genoise.io import atomic_write_text
from genoise.nn.lenet import LeNet5
from genoise.recipes import OptionSpec, check_options, count, positive_number
from genoise.structured.grammar import amount_grammar, digits_grammar
from genoise.structured.reader import NUM_CLASSES, CheckReader
from genoise.structured.sdnn import SDNN
from genoise.structured.segment_images import normalise_characters
from genoise.structured.train import (
    READER_KIND,
    SDNN_KIND,
    Characters,
    freeze_features,
    pretrain_recognizer,
    read_strings,
    train_reader,
    train_sdnn,
)
from genoise.train.checkpoint import load_checkpoint
from genoise.train.run import Run
from genoise.train.run_folder import read_run_config

# test strings come from the MNIST test digits with this fixed seed (training strings: run seed)
TEST_SEED = 1998
PRETRAIN_BATCH = 128  # isolated digits per update of the pre-training stage (pretrain_epochs)
CHARACTER_BATCH = 64  # isolated digits per string update beside the strings (character_weight)
ROW_TITLES = {
    "isolated": "isolated segmented digits only",
    "viterbi": "+ Viterbi training",
    "discriminative_viterbi": "+ discriminative Viterbi",
    "forward": "+ forward training",
    "discriminative_forward": "+ discriminative forward",
    "hinge": "+ hinge (best wrong path)",
    "log": "+ log loss (best wrong path)",
    "sdnn_ctc": "SDNN (sliding window) + nn.CTCLoss",
}


def string_config(config: dict[str, Any]) -> DigitStringConfig:
    return DigitStringConfig(
        min_length=int(config["min_length"]),
        max_length=int(config["max_length"]),
        mode=str(config["mode"]),
        min_gap=int(config["min_gap"]),
        max_gap=int(config["max_gap"]),
    )


def validate(config: dict[str, Any]) -> None:
    """Cross-key checks, before anything is written (``init=`` must be a ``loss=isolated`` run)."""
    string_config(config)
    if config.get("freeze_features") and config["loss"] == "sdnn_ctc":
        raise ValueError("freeze_features=true freezes the reader's LeNet-5; loss=sdnn_ctc has none")
    if config.get("freeze_features") and not (int(config.get("pretrain_epochs", 0)) or config.get("init")):
        raise ValueError("freeze_features=true needs pre-trained features: set pretrain_epochs > 0 "
                         "(or init=)")
    if config["loss"] == "sdnn_ctc" and float(config.get("character_weight", 0)):
        raise ValueError("character_weight trains the reader's LeNet-5 on isolated digits too; "
                         "loss=sdnn_ctc has none")
    if config["loss"] == "sdnn_ctc" and config.get("init"):
        raise ValueError("init= (isolated reader weights) does not apply to loss=sdnn_ctc")
    if config["loss"] == "sdnn_ctc" and segment_scale(config) != "segment":
        raise ValueError("segment_scale sets how the reader's segments are normalised; loss=sdnn_ctc "
                         "reads the string without segmenting it")
    if config.get("init"):
        init_config, _ = read_run_config(Path(str(config["init"])))
        if init_config.get("loss") != "isolated":
            raise ValueError(
                f"init={config['init']} is a loss={init_config.get('loss')} run; it must be loss=isolated"
            )
        theirs, ours = int(init_config.get("recognizer_width", 1)), int(config.get("recognizer_width", 1))
        if theirs != ours:
            raise ValueError(
                f"init={config['init']} has recognizer_width={theirs}, this run recognizer_width={ours}: "
                "give the same width"
            )
        if segment_scale(init_config) != segment_scale(config):
            raise ValueError(
                f"init={config['init']} has segment_scale={segment_scale(init_config)}, this run "
                f"segment_scale={segment_scale(config)}: give the same scale"
            )


def digit_images(config: dict[str, Any], data_dir: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """28 × 28 digits of ``split``: MNIST, or scikit-learn's 8 × 8 digits scaled into a 20 × 20
    box of a 28 × 28 field (``dataset=digits``, always available)."""
    data = load_dataset(str(config["dataset"]), split, data_dir=data_dir)
    images = data.images
    if images.shape[-1] != 28:
        images = F.pad(
            F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4)
        )
        images = (images / images.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1)
    return images, data.labels


def make_strings(config: dict[str, Any], data_dir: Any, split: str) -> DigitStrings:
    """Training strings (seeded by the run) or the fixed test strings."""
    images, labels = digit_images(config, data_dir, split)
    n = int(config["train_strings"] if split == "train" else config["test_strings"])
    seed = int(config["seed"]) if split == "train" else TEST_SEED
    return digit_strings(images, labels, n, string_config(config), seed=seed)


def grammar_of(config: dict[str, Any]):
    return amount_grammar() if config["mode"] == "amount" else digits_grammar()


def new_reader(config: dict[str, Any]) -> CheckReader:
    """A fresh segmentation reader: LeNet-5 (``recognizer_width`` times its maps) as its
    recognition transformer."""
    width = int(config.get("recognizer_width", 1))  # runs from before the key read as 1
    return CheckReader(LeNet5(num_classes=NUM_CLASSES, width=width), max_span=int(config["max_span"]),
                       scale=segment_scale(config))


def segment_scale(config: dict[str, Any]) -> str:
    """How segments (and the isolated digits beside them) are normalised: ``segment_scale``
    (runs from before the key: ``segment``, MNIST's per-segment box)."""
    return str(config.get("segment_scale", "segment"))


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    if config["loss"] == "sdnn_ctc":
        return SDNN(int(config["sdnn_width"]))
    return new_reader(config)


def load_model(run_dir: Path, config: dict[str, Any]) -> torch.nn.Module:
    checkpoint = Path(run_dir) / "model" / "last.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no trained model in {run_dir} (expected {checkpoint}; train with "
            f"`genoise train gtn-amounts loss={config['loss']}`)"
        )
    state = load_checkpoint(checkpoint)
    if state.get("kind") not in (READER_KIND, SDNN_KIND):
        raise ValueError(f"{checkpoint} holds a {state.get('kind')!r} checkpoint, not a string reader")
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.eval()


def initial_reader(run: Run, strings: DigitStrings, characters: Characters | None = None) -> CheckReader:
    """The isolated-character reader every global loss starts from: ``init=RUN_DIR``'s, or
    trained here in ``RUN_DIR/isolated`` (with ``characters`` beside the strings)."""
    config = run.config
    if config.get("init"):  # validate() checked that it is a loss=isolated run
        init_dir = Path(str(config["init"]))
        return load_model(init_dir, read_run_config(init_dir)[0]).train()
    return train_isolated(run, strings, "isolated", characters)


def character_stream(run: Run) -> Characters | None:
    """The isolated training digits every string update also learns from, at
    ``character_weight`` (``None`` at 0, the default: the paper's protocol), normalised like
    segments and distorted as the pre-training's (``pretrain_distortion``)."""
    config = run.config
    weight = float(config.get("character_weight", 0.0))  # runs from before the key had none
    if not weight:
        return None
    images, labels = digit_images(config, run.data_dir, "train")
    x = normalise_characters(images, scale=segment_scale(config))
    return Characters(x.to(run.device), labels.long().to(run.device), weight,
                      CHARACTER_BATCH, float(config["pretrain_distortion"]))


def train_isolated(run: Run, strings: DigitStrings, folder: str,
                   characters: Characters | None = None) -> CheckReader:
    """The isolated-segment stage of a fresh reader, in ``RUN_DIR/folder`` (``characters``: the
    isolated digits of :func:`character_stream`, loaded once per run for both string stages)."""
    config = run.config
    reader = new_reader(config).to(run.device)
    epochs = int(config.get("pretrain_epochs", 0))  # runs from before the key had none
    if epochs:
        images, labels = digit_images(config, run.data_dir, "train")
        pretrain_recognizer(
            reader,
            images.to(run.device),
            labels.to(run.device),
            epochs,
            distortion=float(config["pretrain_distortion"]),
            batch_size=PRETRAIN_BATCH,
            lr=float(config["pretrain_lr"]),
            seed=int(config["seed"]),
            run=run.subrun("pretrain"),
            progress=run.progress,
        )
    if config.get("freeze_features"):
        freeze_features(reader.recognizer)
    train_reader(
        reader,
        strings,
        "isolated",
        int(config["isolated_steps"]),
        rubbish_weight=float(config["rubbish_weight"]),
        characters=characters,
        batch_size=int(config["batch_size"]),
        lr=float(config["isolated_lr"]),
        schedule=str(config["isolated_schedule"]),
        seed=int(config["seed"]),
        run=run.subrun(folder),
        progress=run.progress,
    )
    return reader


def train(run: Run) -> dict[str, Any]:
    """Every ``gtn-amounts`` variant: train, then read the test strings and score them."""
    config, seed = run.config, int(run.config["seed"])
    validate(config)
    strings = make_strings(config, run.data_dir, "train")
    torch.manual_seed(seed)
    loss = str(config["loss"])
    start = time.process_time()
    common = dict(
        batch_size=int(config["batch_size"]), seed=seed, run=run.subrun("model"), progress=run.progress
    )
    if loss == "sdnn_ctc":
        train_sdnn(
            SDNN(int(config["sdnn_width"])).to(run.device),
            strings,
            int(config["sdnn_steps"]),
            lr=float(config["isolated_lr"]),
            **common,
        )
    elif loss == "isolated":
        train_isolated(run, strings, "model", character_stream(run))
    else:
        characters = character_stream(run)
        reader = initial_reader(run, strings, characters).to(run.device)
        if config.get("freeze_features"):
            freeze_features(reader.recognizer)
        train_reader(
            reader,
            strings,
            loss,
            int(config["steps"]),
            lr=float(config["lr"]),
            margin=float(config["margin"]),
            characters=characters,
            **common,
        )
    cpu_minutes = (time.process_time() - start) / 60
    where = {"data_dir": str(run.data_dir)} if run.data_dir else {}
    result = evaluate(run.dir, cpu_minutes=cpu_minutes, **where)
    print((run.dir / "evaluation.md").read_text(), end="")
    return {"row": loss, "cpu_minutes": cpu_minutes, **result}


EVALUATE_OPTIONS: OptionSpec = {
    "strings": ("test strings read (default: the run's test_strings)", count(1), "an integer >= 1"),
    "temperature": ("the check reader's confidence at temperature T: arc scores / T before the forward "
                    "scores (default 1: the posterior)", positive_number, "a number > 0"),
    "data_dir": ("data folder (default: the run's, else $GENOISE_DATA)", None, "a folder"),
    "experts": ("other gtn-amounts run folders (check readers or SDNNs) that read with this run's model "
                "as a product of experts: rows LOSS_experts, tables in RUN_DIR/experts+<names> "
                "(genoise.structured.experts)",
                lambda v: isinstance(v, list) and len(v) > 0, "a list of run folders such as [runs/sdnn]"),
}
# what the test strings are made of: a product's readers must have been trained on the same kind
SAME_STRINGS = ("dataset", "mode")


def score_rows(model: torch.nn.Module | list[torch.nn.Module], strings: DigitStrings, grammar: Any, row: str,
               temperature: float = 1.0) -> dict[str, dict]:
    from genoise.structured.evaluate import string_scores

    rows = {}
    for suffix, constraint in (("", None), ("_grammar", grammar)):
        reading = read_strings(model, strings, constraint, temperature=temperature)
        rows[row + suffix] = string_scores(
            reading.labels, reading.lengths, strings.labels, strings.lengths, reading.confidence
        )
    return rows


def score_table(rows: dict[str, dict]) -> str:
    lines = [
        "| row | grammar | string accuracy | character error | accepted & correct at ≤ 1 % error "
        "| rejected | CPU-min |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows.items():
        base = name.removesuffix("_grammar")
        title = ROW_TITLES.get(base, base)
        if base.endswith("_experts"):
            loss = base.removesuffix("_experts")
            title = f"{ROW_TITLES.get(loss, loss)}, × the other readers (product of experts)"
        minutes = "" if s.get("cpu_minutes") is None else f"{s['cpu_minutes']:.1f}"
        lines.append(
            f"| {title} | {'yes' if name.endswith('_grammar') else 'no'} | "
            f"{s['string_accuracy']:.3f} | {s['character_error_rate']:.3f} | "
            f"{s['accepted_correct']:.3f} | {s['rejected']:.3f} | {minutes} |"
        )
    return "\n".join(lines)


def evaluate(run_dir: str | Path, *, cpu_minutes: float | None = None, **options: Any) -> dict[str, Any]:
    """``genoise eval amounts RUN_DIR [strings=N] [temperature=T]``: read the fixed test strings
    without and with the grammar; write ``evaluation.md`` / ``.json`` and ``reading.png``."""
    check_options(options, EVALUATE_OPTIONS, "amounts evaluation")
    run_dir = Path(run_dir)
    config, _ = read_run_config(run_dir)
    config = {**config, "test_strings": int(options.get("strings", config["test_strings"]))}
    others = [Path(p) for p in options.get("experts") or []]
    temperature = float(options.get("temperature", 1.0))
    if others and temperature != 1.0:
        raise ValueError("temperature re-scores one check reader's graph; a product of readers has none")
    experts = [_expert(p, config) for p in others]  # checked before the strings are made
    strings = make_strings(config, options.get("data_dir", config.get("data_dir")), "test")
    model = load_model(run_dir, config)
    if experts:
        rows = score_rows([model, *experts], strings, grammar_of(config), f"{config['loss']}_experts")
        out_dir = experts_folder(run_dir, others)
        out_dir.mkdir(exist_ok=True)
    else:
        rows = score_rows(model, strings, grammar_of(config), str(config["loss"]), temperature)
        out_dir = run_dir
    for row in rows.values():
        row["cpu_minutes"] = cpu_minutes
    record = {"rows": rows, "strings": len(strings), "mode": config["mode"], "loss": config["loss"],
              "temperature": temperature,
              **({"experts": [str(run_dir), *map(str, others)]} if experts else {})}
    atomic_write_text(out_dir / "evaluation.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out_dir / "evaluation.md", score_table(rows) + "\n")
    if isinstance(model, CheckReader) and not experts:
        save_reading_figure(run_dir / "reading.png", model, strings, grammar_of(config))
    return rows


def product_rows(
    run_dir: str | Path, others: list[str | Path], data_dir: str | None = None
) -> dict[str, dict]:
    """The rows (``LOSS_experts``, ``…_grammar``) of ``run_dir``'s model read with the models of
    ``others`` as a product of experts: from their experts folder when it holds them, else
    evaluated now (``genoise eval amounts RUN_DIR experts=[…]``)."""
    run_dir, others = Path(run_dir), [Path(p) for p in others]
    cached = experts_folder(run_dir, others) / "evaluation.json"
    if not cached.is_file():
        return evaluate(run_dir, experts=[str(p) for p in others],
                        **({"data_dir": data_dir} if data_dir is not None else {}))
    return json.loads(cached.read_text())["rows"]


def experts_folder(run_dir: Path, others: list[Path]) -> Path:
    """Where a product's tables go, beside the run's own: ``RUN_DIR/experts+<other>+…`` (the
    other readers' folder names), one folder per product."""
    return run_dir / "+".join(["experts", *(Path(p).resolve().name for p in others)])


def _expert(run_dir: Path, config: dict[str, Any]) -> torch.nn.Module:
    """The trained model of another gtn-amounts run, for a product with the run whose
    ``config`` reads the test strings (same digits and mode, else one line saying which)."""
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"expert {run_dir} is not a run folder (no config.yaml)")
    theirs, _ = read_run_config(run_dir)
    differ = [k for k in SAME_STRINGS if theirs.get(k) != config.get(k)]
    if differ:
        raise ValueError(f"expert {run_dir} was trained on other strings ({', '.join(differ)}: "
                         f"{', '.join(f'{theirs.get(k)!r} vs {config.get(k)!r}' for k in differ)})")
    return load_model(run_dir, theirs)


def save_reading_figure(
    path: Path, reader: CheckReader, strings: DigitStrings, grammar: Any, index: int = 0
) -> None:
    import matplotlib.pyplot as plt

    from genoise.io import atomic_savefig
    from genoise.structured.figures import path_segments, reading_figure
    from genoise.structured.intersect import intersect
    from genoise.structured.semiring import viterbi

    one = strings[index : index + 1]
    width = int(one.widths[0])
    images = one.images[:, :, :width]
    with torch.no_grad():
        graph, segmented = reader(images, one.widths)
        composed = intersect(graph, grammar)
        best = viterbi(composed, missing="ignore")
    segment_of_arc = composed.arc_map // NUM_SYMBOLS  # arc m · NUM_SYMBOLS + v reads segment m as v
    labels = best.labels[0, : int(best.lengths[0])].tolist()
    figure = reading_figure(
        images[0],
        segmented.segs,
        0,
        path_segments(best.path[0], segment_of_arc),
        labels,
        title=f"read: {amount_text(best.labels[:1], best.lengths[:1])[0]}",
        truth=one.text(0),
    )
    atomic_savefig(figure, path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def demo(run: Run, full: bool) -> str:
    """A small reader: isolated training, a short discriminative-forward fine-tune, then one
    amount read through the grammar with its graph."""
    config = {
        "dataset": "mnist" if run.data_dir else "digits",
        "mode": "amount",
        "min_length": 3,
        "max_length": 8 if full else 5,
        "min_gap": -2,
        "max_gap": 6,
        "seed": 0,
        "train_strings": 6000 if full else 2000,
        "test_strings": 1000 if full else 100,
    }
    strings = make_strings(config, run.data_dir, "train")
    test = make_strings(config, run.data_dir, "test")
    torch.manual_seed(0)  # the same reader whichever sections ran before
    reader, rows = CheckReader(), {}
    # (loss, updates, batch of strings, learning rate, rubbish weight): the isolated stage (a short
    # one weights the rubbish segments, 80 % of them, by 0.3: unweighted, 250 updates sometimes
    # learn to call everything rubbish), then global training from its weights
    stages = (
        ("isolated", 2500 if full else 250, 16 if full else 8, 1e-3 if full else 2e-3, 1.0 if full else 0.3),
        ("discriminative_forward", 800 if full else 80, 16 if full else 8, 3e-4 if full else 1e-3, 1.0),
    )
    for loss, steps, batch_size, lr, rubbish_weight in stages:
        train_reader(
            reader.train(),
            strings,
            loss,
            steps,
            batch_size=batch_size,
            lr=lr,
            rubbish_weight=rubbish_weight,
            run=run.subrun(loss),
            progress=run.progress,
        )
        rows.update(score_rows(reader, test, amount_grammar(), loss))
    save_reading_figure(run.path("reading.png"), reader.eval(), test, amount_grammar())
    return "\n".join(
        [
            "## Check amounts read through a graph (structured prediction)",
            "",
            f"A LeNet-5 recognition transformer on the segments of synthetic check amounts "
            f"({len(strings)} training strings of {config['dataset']} digits, touching and overlapping), "
            "first trained on isolated segments, then globally with the discriminative forward loss "
            "through the interpretation graph; read by Viterbi with and without the check-amount grammar. "
            "Full table: "
            "`benchmarks/records/gtn_amounts.md` (`genoise train gtn-amounts loss=…`).",
            "",
            score_table(rows),
            "",
            "![a recognised amount and its segmentation graph](reading.png)",
        ]
    )
