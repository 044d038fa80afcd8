"""Speed of one SSL training step per method, relative to the same backbone + projector
trained with a plain MSE between two views (forward, backward, optimiser step), measured
interleaved in one run; augmentation time reported separately.

    python benchmarks/ssl_speed.py [--quick] [--dataset mnist|cifar10|digits]

Goal (issue 4): ratio ≤ 1.10 for every method. Writes benchmarks/results/ssl_speed.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from genoise.ssl.augment import DATASET_PRESET, PRESETS, ViewAugment
from genoise.ssl.methods import METHODS
from genoise.ssl.recipes import build_from_config

RESULTS = Path(__file__).parent / "results"
RECIPES = Path(__file__).parents[1] / "genoise" / "recipes"


def recipe_config(method: str, dataset: str) -> dict:
    return yaml.safe_load((RECIPES / f"{method}-{dataset}.yaml").read_text())["config"]


def time_steps(step, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        out.append(time.perf_counter() - start)
    return out


def bench_method(name: str, dataset: str, batch: int, repeats: int,
                 n_local: int | None = None) -> tuple[float, float]:
    cfg = {**recipe_config(name, dataset), "backbone": "conv"}
    if n_local is not None:
        cfg["n_local"] = n_local
    preset = PRESETS[DATASET_PRESET[dataset]]
    images = torch.rand(batch, preset.channels, preset.size, preset.size)
    torch.manual_seed(0)
    method, augment = build_from_config(cfg, images)
    method.prepare(images)
    views = augment(images, torch.Generator().manual_seed(0))
    index = torch.arange(batch)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    counter = [0]

    def method_step() -> None:
        opt.zero_grad(set_to_none=True)
        method(views, index=index).loss.backward()
        opt.step()
        counter[0] += 1
        method.update(counter[0], 1000)

    def mse_step() -> None:  # same backbone + projector, two views, plain MSE
        opt.zero_grad(set_to_none=True)
        _, z = method.project(torch.cat(views[:2]))
        F.mse_loss(z[:batch], z[batch:]).backward()
        opt.step()

    for step in (method_step, mse_step):  # warm-up
        step()
    ours, base = [], []
    for _ in range(repeats):  # interleave so that machine load affects both alike
        ours += time_steps(method_step, 1)
        base += time_steps(mse_step, 1)
    return statistics.median(ours), statistics.median(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dataset", default="mnist", choices=["digits", "mnist", "cifar10"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats, batch = (5, 128) if args.quick else (15, 256)
    rows = []
    runs = [(name, None) for name in METHODS] + [("swav", 0), ("lejepa", 0)]
    for name, n_local in runs:
        ours, base = bench_method(name, args.dataset, batch, repeats, n_local)
        label = name if n_local is None else f"{name} (2 views, no multi-crop)"
        rows.append((label, ours, base))
        print(f"{label}: {1000 * ours:.1f} ms vs {1000 * base:.1f} ms ({ours / base:.2f})", flush=True)
    aug_rows = []
    for dataset in ("digits", "mnist", "cifar10"):
        preset = PRESETS[DATASET_PRESET[dataset]]
        images = torch.rand(batch, preset.channels, preset.size, preset.size)
        for n_local in (0, 2):
            augment = ViewAugment(preset, n_local=n_local)
            g = torch.Generator().manual_seed(0)
            augment(images, g)
            seconds = time_steps(lambda a=augment, x=images, gen=g: a(x, gen), repeats)
            aug_rows.append((dataset, 2 + n_local, statistics.median(seconds)))
    lines = [f"## SSL step time ({args.dataset}, batch {batch}, ConvEncoder, recipe projectors, 1 thread, "
             f"median of {repeats} interleaved steps)", "",
             "| method | step (ms) | backbone+projector with MSE (ms) | ratio | goal ≤ 1.10 |",
             "|---|---:|---:|---:|:---:|"]
    lines += [f"| {n} | {1000 * o:.1f} | {1000 * b:.1f} | {o / b:.2f} | {'yes' if o / b <= 1.10 else 'no'} |"
              for n, o, b in rows]
    lines += ["", f"### Augmentation time (batch {batch})", "", "| preset | views | ms |", "|---|---:|---:|"]
    lines += [f"| {d} | {v} | {1000 * t:.1f} |" for d, v, t in aug_rows]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ssl_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
