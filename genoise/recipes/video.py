"""Recipe of video prediction (``genoise train video-mmnist loss=…``), its evaluator
(``genoise eval video RUN_DIR``) and its ``genoise demo`` section.

``train``: a predictor trained on Moving-MNIST sequences drawn on the fly from the MNIST
training digits (``model/last.pt``, a resumable :class:`~genoise.train.Trainer`), then scored
on the fixed test set (from the MNIST test digits; its SHA-256 is recorded) beside the
"copy last frame" and "mean frame" baselines: ``evaluation.md`` / ``evaluation.json``,
``prediction.png`` and ``rollout.gif``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genoise.data import load_digits, load_mnist
from genoise.data.moving_mnist import MovingMNIST, MovingMNISTConfig, checksum, fixed_sequences
from genoise.io import atomic_write_text
from genoise.recipes import OptionSpec, check_options, count, load_recipe
from genoise.train.run import Run
from genoise.train.run_folder import read_run_config
from genoise.train.seed import derive_seed
from genoise.video.evaluate import blank_frame, copy_last, latent_information, mean_frame, model_predict
from genoise.video.evaluate import evaluate as score_predictions
from genoise.video.figures import comparison_figure, save_rollout_gif
from genoise.video.latent import LatentVideoPredictor
from genoise.video.train import ROW_NAMES, VideoLoss, build_predictor, load_predictor, train_predictor

TABLE_METRICS = ("psnr", "ssim", "sharpness", "mse", "mae")


def model_name(config: dict[str, Any]) -> str:
    if config["model"] == "auto":
        return "latent" if config["loss"] == "latent" else "multiscale"
    return str(config["model"])


def video_loss(config: dict[str, Any]) -> VideoLoss:
    keys = ("p", "alpha", "gdl_weight", "adv_weight", "beta", "latent_dropout")
    return VideoLoss(loss=str(config["loss"]), reduction=str(config.get("reduction", "mean")),
                     **{k: float(config[k]) for k in keys})


def dfn_latent(config: dict[str, Any]) -> bool:
    """The latent-variable predictor on the dynamic filter network (``backbone=dfn``)."""
    return model_name(config) == "latent" and config.get("backbone", "multiscale") == "dfn"


def model_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    name = model_name(config)
    common = {k: int(config[k]) for k in ("image_size", "context", "horizon")}
    dfn = {"width": int(config["width"]), "hidden": int(config["hidden"]),
           "window": int(config.get("window", 3))}  # runs from before the key read 3
    prior = str(config.get("prior", "fixed"))  # runs from before the key had the fixed prior
    if dfn_latent(config):
        return {**common, **dfn, "backbone": "dfn", "latent": int(config["latent"]),
                "latent_map": bool(config.get("latent_map", False)), "prior": prior}
    if name in ("multiscale", "latent"):
        extra = {"scales": int(config["scales"]), "width": int(config["width"])}
        if name == "latent":
            extra.update(latent=int(config["latent"]), prior=prior)
        return {**common, **extra}
    if name == "simvp":
        return {**common, "spatial": int(config["width"]), "temporal": int(config["hidden"])}
    if name == "dfn":
        return {**common, **dfn}
    return {**common, "hidden": (int(config["hidden"]), int(config["hidden"]))}


def data_config(config: dict[str, Any], length: int | None = None) -> MovingMNISTConfig:
    return MovingMNISTConfig(
        length=int(length if length is not None else int(config["context"]) + int(config["horizon"])),
        image_size=int(config["image_size"]),
        num_digits=int(config["num_digits"]),
        stochastic=bool(config["stochastic"]),
    )


def validate(config: dict[str, Any]) -> None:
    """Cross-key checks, before anything is written."""
    loss, name = video_loss(config), model_name(config)
    if (loss.loss == "latent") != (name == "latent"):
        raise ValueError(f"loss={loss.loss} and model={config['model']} do not go together "
                         "(loss=latent needs model=latent or auto, and model=latent needs loss=latent)")
    if bool(config.get("latent_map", False)) and not dfn_latent(config):
        raise ValueError("latent_map=true needs model=latent backbone=dfn (a map of z for the dynamic "
                         "filter network)")
    if str(config.get("prior", "fixed")) != "fixed" and name != "latent":
        raise ValueError(f"prior={config['prior']} needs model=latent (loss=latent): only the "
                         "latent-variable predictor has a prior")
    if name in ("multiscale", "latent") and int(config["horizon"]) != 1 and loss.adversarial:
        raise ValueError("the adversarial losses are implemented for horizon=1 (the paper's 4 -> 1)")
    data_config(config)
    build_predictor(name, **model_kwargs(config))  # constructor checks (sizes, scales)


def load_digit_pool(config: dict[str, Any], data_dir: Path | str | None, split: str) -> Tensor:
    """(N, 28, 28) digits of ``split``: MNIST's, or scikit-learn's 8 × 8 digits up-sampled."""
    if config["dataset"] == "mnist":
        return load_mnist(data_dir, split).images
    small = load_digits(split).images
    return torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)


def test_set(config: dict[str, Any], test_digits: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    length = int(config["context"]) + steps
    return fixed_sequences(test_digits, data_config(config, length),
                           int(config["test_sequences"]), "test")


def score_rows(model: nn.Module, config: dict[str, Any], train_digits: Tensor, test_digits: Tensor, *,
               samples: int | None = None,
               seed: int = 0) -> dict[str, Any]:
    """The trained model's row (and best-of-k for a latent model) and the two baselines."""
    steps, context = int(config["eval_steps"]), int(config["context"])
    frames, masks = test_set(config, test_digits, steps)
    train_pool = MovingMNIST(train_digits, data_config(config, 1))
    mean_image = train_pool.sample(2000, torch.Generator().manual_seed(derive_seed(seed, 3)))[0].mean((0, 1))
    row = ROW_NAMES[str(config["loss"])]
    generator = torch.Generator().manual_seed(derive_seed(seed, 4))
    rows = {row: score_predictions(model_predict(model, generator), frames, masks, context, steps)}
    k = int(samples if samples is not None else config["samples"])
    latent: dict[str, float] = {}
    if isinstance(model, LatentVideoPredictor):
        if k > 1:
            rows[f"{row}_best_of_{k}"] = score_predictions(model_predict(model, generator), frames, masks,
                                                           context, steps, samples=k)
        if frames.shape[1] >= context + model.horizon:
            latent = latent_information(model, frames)
    rows["copy_last"] = score_predictions(copy_last, frames, masks, context, steps)
    rows["mean_frame"] = score_predictions(mean_frame(mean_image), frames, masks, context, steps)
    rows["blank_frame"] = score_predictions(blank_frame, frames, masks, context, steps)
    return {"rows": rows, "test_sequences": int(frames.shape[0]), "test_sha256": checksum(frames),
            "steps": steps, "context": context, **({"latent": latent} if latent else {})}


def evaluation_table(record: dict[str, Any]) -> str:
    lines = [
        f"Fixed test set: {record['test_sequences']} sequences, SHA-256 {record['test_sha256'][:16]}…; "
        f"{record['context']} frames in, {record['steps']} predicted (recursively). "
        "Moving = pixels covered by a digit in the last input frame or any frame up to the target.",
        "",
        "| row | step | PSNR moving | PSNR | SSIM moving | SSIM | sharpness moving | sharpness | MSE | MAE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scores in record["rows"].items():
        for t in range(record["steps"]):
            cols = [scores[k][t] for k in ("moving_psnr", "psnr", "moving_ssim", "ssim", "moving_sharpness",
                                           "sharpness", "mse", "mae")]
            lines.append(f"| {name} | {t + 1} | " + " | ".join(f"{c:.3f}" if abs(c) < 10 else f"{c:.2f}"
                                                             for c in cols) + " |")
    if "latent" in record:  # a latent-variable model: what its z carries (nats per sequence)
        kl = record["latent"]
        lines += ["", f"Latent z on the test set: KL(q(z | x, y) ‖ p(z | x)) = {kl['kl_prior']:.3f} nats "
                  f"(what a draw from the prior misses), KL(q ‖ N(0, I)) = {kl['kl_standard']:.3f} nats "
                  "(what the posterior says about the future)."]
    return "\n".join(lines) + "\n"


def write_figures(run_dir: Path, model: nn.Module, config: dict[str, Any], test_digits: Tensor,
                  seed: int = 0) -> None:
    """``prediction.png`` (one test sequence) and ``rollout.gif`` (a longer recursive roll-out)."""
    import matplotlib.pyplot as plt

    steps, context = max(2, int(config["eval_steps"])), int(config["context"])
    frames, _ = test_set({**config, "test_sequences": 1}, test_digits, max(steps, 10))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        long = model_predict(model, generator)(frames[:, :context], frames.shape[1] - context)[0]
    name = ROW_NAMES[str(config["loss"])]
    last = frames[0, context - 1 : context].expand(steps, -1, -1, -1)
    figure = comparison_figure(frames[0, :context], frames[0, context : context + steps],
                               {name: long[:steps], "copy last": last})
    figure.savefig(run_dir / "prediction.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    save_rollout_gif(frames[0, :context], frames[0, context:], {name: long}, run_dir / "rollout.gif")


def _write_evaluation(run_dir: Path, record: dict[str, Any]) -> str:
    table = evaluation_table(record)
    atomic_write_text(run_dir / "evaluation.md", table)
    atomic_write_text(run_dir / "evaluation.json", json.dumps(record, indent=1) + "\n")
    return table


def train(run: Run) -> dict[str, Any]:
    """``video-mmnist``: train one predictor, score it on the fixed test set."""
    config, seed = run.config, int(run.config["seed"])
    validate(config)
    name = model_name(config)
    train_digits = load_digit_pool(config, run.data_dir, "train")
    test_digits = load_digit_pool(config, run.data_dir, "test")
    pool = MovingMNIST(train_digits, data_config(config))
    torch.manual_seed(seed)
    model = build_predictor(name, **model_kwargs(config)).to(run.device)
    metrics = train_predictor(model, name, pool, int(config["steps"]), loss=video_loss(config),
                              batch_size=int(config["batch_size"]), lr=float(config["lr"]),
                              discriminator_width=int(config["discriminator_width"]), seed=seed,
                              run=run.subrun("model"))
    model = model.cpu().eval()
    record = {**score_rows(model, config, pool.digits, test_digits, seed=seed), "loss": config["loss"],
              "model": name}
    _write_evaluation(run.dir, record)
    write_figures(run.dir, model, config, test_digits, seed)
    row = ROW_NAMES[str(config["loss"])]
    return {"train_loss": float(metrics.get("loss", float("nan"))),
            **{f"{row}_{k}": record["rows"][row][k][0] for k in ("psnr", "moving_psnr", "ssim", "sharpness")}}


EVALUATE_OPTIONS: OptionSpec = {
    "test_sequences": ("sequences of the fixed test set (default: the run's)", count(1), "an integer >= 1"),
    "samples": ("draws of z for best-of-k (default: the run's)", count(1), "an integer >= 1"),
    "eval_steps": ("predicted frames scored (default: the run's)", count(1), "an integer >= 1"),
    "seed": ("seed of the latent draws (default: the run's)", None, "an integer >= 0"),
    "data_dir": ("data folder (default: the run's, else $GENOISE_DATA)", None, "a folder"),
}


def evaluate(run_dir: str | Path, **options: Any) -> dict[str, Any]:
    """``genoise eval video RUN_DIR [test_sequences=N] [samples=k] [eval_steps=S] [seed=S]``:
    reload the run's predictor and score it again (``evaluation.md`` / ``.json``)."""
    check_options(options, EVALUATE_OPTIONS, "video evaluation")
    run_dir = Path(run_dir)
    config, _ = read_run_config(run_dir)
    checkpoint = run_dir / "model" / "last.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no trained predictor in {run_dir} (expected {checkpoint}; "
                                "train with `genoise train video-mmnist`)")
    config.update({k: options[k] for k in ("test_sequences", "samples", "eval_steps") if k in options})
    data_dir = options.get("data_dir", config.get("data_dir"))
    model, _ = load_predictor(checkpoint)
    digits = {split: load_digit_pool(config, data_dir, split) for split in ("train", "test")}
    record = {**score_rows(model, config, digits["train"], digits["test"],
                           seed=int(options.get("seed", config["seed"]))),
              "loss": config["loss"], "model": model_name(config)}
    table = _write_evaluation(run_dir, record)
    return {"table": table, **record}



def demo_overrides(full: bool) -> dict[str, Any]:
    """About 30 s here (``full``: the recipe's defaults, about 4 CPU-minutes)."""
    return {} if full else {"steps": 100, "test_sequences": 100}


def demo(run: Run, full: bool) -> str:
    """A multi-scale generator trained with ℓ1 + GDL on stochastic Moving MNIST, its figure."""
    config = dict(load_recipe("video-mmnist").config)
    config.update(seed=0, device="cpu", loss="gdl", **demo_overrides(full))
    if run.data_dir is None or not any((Path(run.data_dir) / "mnist").glob("*idx3-ubyte*")):
        config["dataset"] = "digits"
    run.config = {**config, "data_dir": str(run.data_dir) if run.data_dir else None}
    train(run)
    record = json.loads((run.dir / "evaluation.json").read_text())
    gdl, copy = record["rows"]["gdl_l1"], record["rows"]["copy_last"]
    return "\n".join([
        "## Video prediction beyond mean squared error (Moving MNIST)",
        "",
        f"Mathieu, Couprie & LeCun's multi-scale generator trained for {config['steps']} steps with ℓ1 + "
        f"the gradient difference loss on stochastic Moving MNIST ({config['dataset']} digits), 4 frames in, "
        "the next one out, the second recursively. The full comparison of the losses is "
        "`python benchmarks/video_prediction.py`.",
        "",
        "PSNR on moving pixels, 1st / 2nd frame: "
        f"{gdl['moving_psnr'][0]:.1f} / {gdl['moving_psnr'][1]:.1f} dB "
        f"(copy last frame: {copy['moving_psnr'][0]:.1f} / {copy['moving_psnr'][1]:.1f}).",
        "",
        "![prediction](prediction.png)",
        "",
        "[GIF of a recursive roll-out](rollout.gif) (truth left, prediction right)",
        "",
    ])
