"""Training the check reader and the SDNN with the :class:`~genoise.train.Trainer` (resumable,
logged): isolated-character training of the recognition transformer, global string-level
training through the graphs (LeCun et al. 1998, Section VI), and CTC training of the SDNN.

The paper's protocol, kept here: the recogniser is first trained on isolated characters
(segments the heuristic segmenter cut correctly, plus "rubbish" segments, or the characters
alone with ``rubbish_weight=0``), then the whole reader is trained *globally* on strings,
starting from those weights, with a graph loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_positive
from genoise.data.digit_strings import NUM_SYMBOLS, DigitStrings
from genoise.structured.experts import read_with_experts
from genoise.structured.graph import Graph
from genoise.structured.losses import GRAPH_LOSSES, graph_loss
from genoise.structured.reader import RUBBISH, CheckReader, Reading, decode
from genoise.structured.sdnn import SDNN, frame_lengths, sdnn_decode
from genoise.structured.segment_images import normalise_characters
from genoise.train import Trainer
from genoise.train.run import Run

READER_LOSSES = ("isolated", *GRAPH_LOSSES)
SCHEDULES = ("constant", "cosine")
READER_KIND = "genoise.check_reader"
SDNN_KIND = "genoise.sdnn"


def string_tensors(strings: DigitStrings) -> tuple[Tensor, ...]:
    """The Trainer's data: images, widths, labels, lengths and the pixel owners (int8)."""
    return (strings.images, strings.widths, strings.labels, strings.lengths, strings.owner.to(torch.int8))


@dataclass(frozen=True)
class Characters:
    """Isolated characters kept beside a string stage: ``images`` (n, 1, 28, 28) normalised
    like segments (:func:`~genoise.structured.segment_images.normalise_characters`), their
    digit classes ``labels`` (n,), and how they enter each update: ``weight`` × the mean
    cross-entropy of ``batch`` of them drawn at random (with replacement, from the Trainer's
    generator), each distorted by :func:`distort` at ``distortion`` (0: none)."""

    images: Tensor
    labels: Tensor
    weight: float
    batch: int = 64
    distortion: float = 0.0

    def __post_init__(self) -> None:
        check_positive("character_weight", self.weight, allow_zero=True)
        check_positive("character batch", self.batch)
        if self.labels.ndim != 1 or self.labels.shape[0] != self.images.shape[0] or not len(self.labels):
            raise ValueError(f"characters: labels must be ({self.images.shape[0]},) and not empty, "
                             f"got {tuple(self.labels.shape)}")
        object.__setattr__(self, "_step", CharacterStep(self.distortion))  # checks the distortion

    def loss(self, reader: CheckReader, rng: torch.Generator) -> Tensor:
        """The mean cross-entropy of one random batch of the characters (unweighted): the
        pre-training's :class:`CharacterStep` on a batch drawn with ``rng``."""
        index = torch.randint(0, self.labels.shape[0], (self.batch,), generator=rng, device=rng.device)
        index = index.to(self.images.device)
        return self._step(reader, (self.images[index], self.labels[index]), rng)


class ReaderStep:
    """``step_fn`` of the Trainer for a :class:`CheckReader` and one loss of
    :data:`READER_LOSSES` (``isolated``: cross-entropy of every segment against its class,
    the rubbish class weighted ``rubbish_weight`` — most segments are rubbish, about 80 %).

    ``rubbish_weight=0`` leaves the rubbish segments out: the recogniser is trained on the
    correctly cut characters only, the paper's "isolated characters" without the costly
    labelling of every wrong segment; rejecting the wrong ones is then left to global
    training (a batch without a character segment gives a zero loss).

    ``characters`` (:class:`Characters`, weight > 0) adds their cross-entropy to every
    update, L = L_strings + w · CE(isolated characters): the string stages then train the
    recogniser without letting it stop being a classifier of whole digits (multi-task
    training: the pre-training's data stay in the loss, rehearsed). Without it the string
    stages keep the recogniser's accuracy but spoil how it ranks its own errors; with it the
    recogniser leaves them better than it entered (docs/structured.md)."""

    def __init__(self, loss: str, margin: float = 1.0, rubbish_weight: float = 1.0,
                 characters: Characters | None = None) -> None:
        self.loss, self.margin = check_choice("loss", loss, READER_LOSSES), float(margin)
        self.rubbish_weight = check_positive("rubbish_weight", rubbish_weight, allow_zero=True)
        self.characters = characters if characters is not None and characters.weight > 0 else None

    def __call__(
        self, reader: CheckReader, batch: tuple[Tensor, ...], rng: torch.Generator
    ) -> dict[str, Tensor]:
        out = self._strings(reader, batch)
        if self.characters is not None:
            characters = self.characters.loss(reader, rng)
            out = {**out, "loss": out["loss"] + self.characters.weight * characters,
                   "characters": characters.detach()}
        return out

    def _strings(self, reader: CheckReader, batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        images, widths, labels, lengths, owner = batch
        if self.loss == "isolated":
            segmented = reader.segment(images, widths)
            classes = reader.segment_classes(segmented, owner.long(), labels)
            rubbish = (classes == RUBBISH).float().mean()
            crops = segmented.crops
            if self.rubbish_weight == 0:  # weight 0: the rubbish crops need not be scored at all
                keep = classes != RUBBISH
                crops, classes = crops[keep], classes[keep]
            scores = reader.recognizer(crops)
            weight = torch.ones(scores.shape[1], dtype=scores.dtype, device=scores.device)
            weight[RUBBISH] = self.rubbish_weight
            loss = F.cross_entropy(scores, classes, weight=weight) if len(classes) else scores.sum() * 0
            return {"loss": loss, "rubbish": rubbish}
        graph, _ = reader(images, widths)
        result = graph_loss(
            self.loss, graph, labels, lengths, num_labels=NUM_SYMBOLS, margin=self.margin, missing="ignore"
        )
        count = result.valid.sum()
        return {"loss": result.loss.sum() / count.clamp_min(1), "reachable": result.valid.float().mean()}


def ctc_step(model: SDNN, batch: tuple[Tensor, ...], rng: torch.Generator) -> Tensor:
    """``step_fn`` of the SDNN: ``nn.CTCLoss`` (mean over the batch of per-label losses)."""
    images, widths, labels, lengths = batch[:4]
    log_probs = model(images)
    targets = labels.clamp_min(0) + 1
    return F.ctc_loss(log_probs, targets, frame_lengths(widths, log_probs.shape[0]), lengths)


@dataclass(frozen=True)
class TrainOptions:
    """What every training stage here shares: Adam at ``lr`` on batches of ``batch_size``
    strings, the learning-rate ``schedule`` (``constant``, or ``cosine``: lr·½(1 + cos(πt/T))
    over the stage's T updates, down to 0), the seed, the run folder (resumable; ``None``: in
    memory), progress and logging."""

    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "constant"
    seed: int = 0
    run: Run | None = None
    progress: bool | None = None
    log_every: int = 50
    checkpoint_every: int | None = 500


def _train(
    model: nn.Module,
    step: Callable,
    data: tuple[Tensor, ...],
    steps: int,
    kind: str,
    desc: str,
    options: TrainOptions,
    grad_clip: float | None = 10.0,
) -> dict[str, Any]:
    """The Trainer of every stage: Adam (and the schedule) on ``data`` (tensors of N samples)."""
    check_int("steps", steps)
    check_choice("schedule", options.schedule, SCHEDULES)
    run = options.run
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        if options.schedule == "cosine"
        else None
    )
    trainer = Trainer(
        model,
        optimizer,
        step,
        data,
        run=run,
        max_steps=steps,
        scheduler=scheduler,
        batch_size=min(options.batch_size, data[0].shape[0]),
        seed=options.seed,
        log_every=options.log_every,
        checkpoint_every=options.checkpoint_every,
        progress=options.progress,
        desc=desc,
        kind=kind,
        grad_clip=grad_clip,
        config=run.config if run is not None else None,
    )
    return trainer.fit(resume=bool(run and run.resume))


def train_reader(
    reader: CheckReader,
    strings: DigitStrings,
    loss: str,
    steps: int,
    *,
    margin: float = 1.0,
    rubbish_weight: float = 1.0,
    characters: Characters | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Adam on the recognition transformer for ``steps`` batches of strings with ``loss``
    (``margin``, ``rubbish_weight``, ``characters``: :class:`ReaderStep`'s; ``options``: the
    fields of :class:`TrainOptions`); returns the Trainer's last metrics."""
    return _train(
        reader,
        ReaderStep(loss, margin, rubbish_weight, characters),
        string_tensors(strings),
        steps,
        READER_KIND,
        f"reader {loss}",
        TrainOptions(**options),
    )


def distort(images: Tensor, rng: torch.Generator, strength: float = 1.0) -> Tensor:
    """Random planar affine distortions of (B, 1, H, W) images, one per image (LeCun et al.
    1998, Section III-C, on the training digits of LeNet-5: "translations, scaling, squeezing
    (simultaneous horizontal compression and vertical elongation, or the reverse) and horizontal
    shearing"). At ``strength`` 1: shifts up to ±2 px, scale ×[0.9, 1.1], squeeze
    ×[0.9, 1.1] (x by s, y by 1/s), horizontal shear ±0.15; bilinear, zero padding."""
    b, _, h, w = images.shape
    u = torch.rand(b, 5, generator=rng, device=rng.device).to(images) * 2 - 1  # U[−1, 1]
    scale = 1 + 0.1 * strength * u[:, 0]
    squeeze = 1 + 0.1 * strength * u[:, 1]
    shear = 0.15 * strength * u[:, 2]
    theta = images.new_zeros(b, 2, 3)  # output → input coordinates, normalised to [−1, 1]
    theta[:, 0, 0] = 1 / (scale * squeeze)
    theta[:, 0, 1] = shear
    theta[:, 1, 1] = squeeze / scale
    theta[:, 0, 2] = 2 * strength * u[:, 3] * 2 / w
    theta[:, 1, 2] = 2 * strength * u[:, 4] * 2 / h
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class CharacterStep:
    """``step_fn`` of the pre-training stage: cross-entropy of the recogniser's 12 scores
    against the digit class of isolated, normalised characters, each randomly distorted
    (:func:`distort`) when ``distortion`` > 0."""

    def __init__(self, distortion: float = 0.0) -> None:
        self.distortion = check_positive("distortion", distortion, allow_zero=True)

    def __call__(self, reader: CheckReader, batch: tuple[Tensor, ...], rng: torch.Generator) -> Tensor:
        images, labels = batch
        if self.distortion:
            images = distort(images, rng, self.distortion)
        return F.cross_entropy(reader.recognizer(images), labels)


def freeze_features(recognizer: nn.Module) -> nn.Module:
    """Keep a LeNet-5's feature extractor fixed: every parameter but F6's and the output
    layer's stops taking gradients (``requires_grad=False``), so the string stages that
    follow train only the last two layers on top of the pre-trained C1–C5. Returns it."""
    heads = ("f6.", "output.")
    if not any(name.startswith(heads) for name, _ in recognizer.named_parameters()):
        raise ValueError("freeze_features needs a LeNet-5 recogniser (layers f6 and output)")
    for name, parameter in recognizer.named_parameters():
        if not name.startswith(heads):
            parameter.requires_grad_(False)
    return recognizer


def pretrain_recognizer(
    reader: CheckReader, images: Tensor, labels: Tensor, epochs: int, *, distortion: float = 0.0,
    **options: Any,
) -> dict[str, Any]:
    """Adam on the recognition transformer alone for ``epochs`` passes over isolated digit
    images (n, 28, 28) with classes ``labels`` (n,) in 0–9, each normalised like a segment at the
    reader's ``scale`` (:func:`~genoise.structured.segment_images.normalise_characters`) and, when
    ``distortion`` > 0, distorted afresh at every pass (:func:`distort`): the paper's
    recogniser is trained on isolated characters before it meets a segmentation graph (LeCun
    et al. 1998, Section V). ``options``: the fields of :class:`TrainOptions`."""
    check_int("epochs", epochs)
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be ({images.shape[0]},) to match images, got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
        low, high = int(labels.min()), int(labels.max())
        raise ValueError(f"labels must be digits 0-9, got values in [{low}, {high}]")
    opts = TrainOptions(**options)
    x = normalise_characters(images, scale=reader.scale)
    steps = epochs * max(1, x.shape[0] // opts.batch_size)
    data = (x, labels.long())
    desc = "recogniser on isolated characters"
    return _train(reader, CharacterStep(distortion), data, steps, READER_KIND, desc, opts, grad_clip=None)


def train_sdnn(model: SDNN, strings: DigitStrings, steps: int, **options: Any) -> dict[str, Any]:
    """Adam on the SDNN with the CTC loss for ``steps`` batches of strings (``options``: the
    fields of :class:`TrainOptions`)."""
    data, opts = string_tensors(strings), TrainOptions(**options)
    return _train(model, ctc_step, data, steps, SDNN_KIND, "sdnn ctc", opts)


def _concat(readings: list[Reading]) -> Reading:
    width = max(r.labels.shape[1] for r in readings)
    labels = torch.cat([F.pad(r.labels, (0, width - r.labels.shape[1]), value=-1) for r in readings])
    return Reading(
        labels, torch.cat([r.lengths for r in readings]), torch.cat([r.confidence for r in readings])
    )


@torch.no_grad()
def read_strings(
    model: nn.Module | Sequence[nn.Module], strings: DigitStrings, grammar: Graph | None = None,
    batch_size: int = 100, temperature: float = 1.0,
) -> Reading:
    """The reading and confidence of every string by a :class:`CheckReader` or an :class:`SDNN`
    (``temperature``: the check reader's, :func:`~genoise.structured.reader.decode`), or by a
    product of several (a list of them: :mod:`~genoise.structured.experts`)."""
    models = list(model) if isinstance(model, Sequence) else [model]
    if temperature != 1.0 and (len(models) > 1 or isinstance(models[0], SDNN)):
        raise ValueError("temperature re-scores one check reader's graph; the SDNN's confidence and a "
                         "product of readers have none")
    for m in models:
        m.eval()
    device = next(models[0].parameters()).device
    readings = []
    for lo in range(0, len(strings), batch_size):  # batches of strings, each vectorised
        part = strings[lo : lo + batch_size]
        width = int(part.widths.max())
        images, widths = part.images[:, :, :width].to(device), part.widths.to(device)
        if len(models) > 1:
            readings.append(read_with_experts(models, images, widths, grammar))
        elif isinstance(models[0], SDNN):
            log_probs = models[0](images)
            readings.append(sdnn_decode(log_probs, frame_lengths(widths, log_probs.shape[0]), grammar))
        else:
            graph, _ = models[0](images, widths)
            readings.append(decode(graph, grammar, temperature))
    reading = _concat(readings)
    return Reading(reading.labels.cpu(), reading.lengths.cpu(), reading.confidence.cpu())
