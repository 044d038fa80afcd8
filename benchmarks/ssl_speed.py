"""Speed of one SSL training step per method, relative to the same backbone + projector
trained with a plain MSE between two views (forward, backward, optimiser step), measured
interleaved in one run; augmentation time reported separately.

    python benchmarks/ssl_speed.py [--quick] [--dataset mnist|cifar10|digits]

Goal (issue 4): ratio ≤ 1.10 for every method. Writes benchmarks/results/ssl_speed.md
(ssl_speed_<methods>.md with ``--methods``).

A second reference separates what a method *is* from what its code adds: the same network
passes the method needs — forward/backward of backbone + projector on every view it uses
(multi-crop local views included) and, for MoCo and BYOL, the no-grad forward of the momentum
encoder on the two global views — with a plain quadratic loss instead of the method's. Its
ratio is the overhead of the loss, predictor, queue, prototypes or Sinkhorn over those passes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genoise.recipes import load_recipe
from genoise.ssl.augment import DATASET_PRESET, PRESETS, ViewAugment
from genoise.ssl.methods import METHODS, build_from_config

RESULTS = Path(__file__).parent / "results"
# The momentum (teacher) encoder of the methods that have one: (backbone, projector) attributes.
TEACHERS = {"moco": ("key_backbone", "key_projector"), "byol": ("target_backbone", "target_projector")}


def recipe_config(method: str, dataset: str) -> dict:
    """The defaults of recipe ``<method>-<dataset>`` (its YAML with the ``extends:`` chain)."""
    return load_recipe(f"{method}-{dataset}").config


def time_steps(step, repeats: int) -> list[tuple[float, float]]:
    """(wall s, CPU s of this process) of each of ``repeats`` calls. With one thread the CPU
    time is the work done, so it is robust to other processes sharing the cores; wall time
    is what a user waits."""
    out = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def bench_method(name: str, dataset: str, batch: int, repeats: int,
                 n_local: int | None = None) -> tuple[tuple[float, float], ...]:
    """(wall, CPU) medians of the method's step, of the plain-MSE step on two views and of the
    same network passes as the method with a plain quadratic loss."""
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

    by_size: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for v in views:
        by_size.setdefault(tuple(v.shape[1:]), []).append(v)
    groups = [torch.cat(g) for g in by_size.values()]
    teacher = [getattr(method, a) for a in TEACHERS.get(name, ())]

    def passes_step() -> None:  # the method's network passes, plain quadratic loss
        opt.zero_grad(set_to_none=True)
        loss = sum(method.project(g)[1].square().mean() for g in groups)
        if teacher:
            with torch.no_grad():
                teacher[1](teacher[0](torch.cat(views[:2])))
        loss.backward()
        opt.step()

    steps = (method_step, mse_step, passes_step)
    for step in steps:  # warm-up
        step()
    samples: list[list[tuple[float, float]]] = [[] for _ in steps]
    for _ in range(repeats):  # interleave so that machine load affects all alike
        for out, step in zip(samples, steps, strict=True):
            out += time_steps(step, 1)
    return tuple(medians(s) for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dataset", default="mnist", choices=["digits", "mnist", "cifar10"])
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=None,
                        help="time only these methods (default: all; the table then lists only them)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved steps per method")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats, batch = (5, 128) if args.quick else (15, 256)
    repeats = args.repeats or repeats
    rows = []
    chosen = args.methods or list(METHODS)
    runs = [(name, None) for name in chosen] + [(n, 0) for n in ("swav", "lejepa") if n in chosen]
    for name, n_local in runs:
        ours, base, same = bench_method(name, args.dataset, batch, repeats, n_local)
        label = name if n_local is None else f"{name} (2 views, no multi-crop)"
        rows.append((label, ours, base, same))
        print(f"{label}: CPU {1000 * ours[1]:.1f} ms vs {1000 * base[1]:.1f} ms ({ours[1] / base[1]:.2f}), "
              f"wall {1000 * ours[0]:.1f} vs {1000 * base[0]:.1f} ({ours[0] / base[0]:.2f}); same passes "
              f"{1000 * same[1]:.1f} ms CPU ({ours[1] / same[1]:.2f})", flush=True)
    aug_rows = []
    for dataset in ("digits", "mnist", "cifar10"):
        preset = PRESETS[DATASET_PRESET[dataset]]
        images = torch.rand(batch, preset.channels, preset.size, preset.size)
        for n_local in (0, 2):
            augment = ViewAugment(preset, n_local=n_local)
            g = torch.Generator().manual_seed(0)
            augment(images, g)
            seconds = time_steps(lambda a=augment, x=images, gen=g: a(x, gen), repeats)
            aug_rows.append((dataset, 2 + n_local, *medians(seconds)))
    lines = [f"## SSL step time ({args.dataset}, batch {batch}, ConvEncoder, recipe projectors, 1 thread, "
             f"median of {repeats} interleaved steps)", "",
             "| method | step CPU (ms) | backbone+projector with MSE, CPU (ms) | ratio (CPU) | goal ≤ 1.10 "
             "| step wall (ms) | MSE wall (ms) | ratio (wall) | the method's own network passes with "
             "a quadratic loss, CPU (ms) | step / those passes (CPU) |",
             "|---|---:|---:|---:|:---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {1000 * o[1]:.1f} | {1000 * b[1]:.1f} | {o[1] / b[1]:.2f} | "
              f"{'yes' if o[1] / b[1] <= 1.10 else 'no'} | "
              f"{1000 * o[0]:.1f} | {1000 * b[0]:.1f} | {o[0] / b[0]:.2f} | "
              f"{1000 * p[1]:.1f} | {o[1] / p[1]:.2f} |"
              for n, o, b, p in rows]
    lines += ["", f"### Augmentation time (batch {batch})", "", "| preset | views | CPU ms | wall ms |",
              "|---|---:|---:|---:|"]
    lines += [f"| {d} | {v} | {1000 * c:.1f} | {1000 * w:.1f} |" for d, v, w, c in aug_rows]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.methods is None else "_" + "_".join(args.methods)
    (RESULTS / f"ssl_speed{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
