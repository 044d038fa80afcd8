"""``genoise demo``: short versions of every capability's experiments, one section each,
written to ``runs/demo/<section>/`` and collected in ``runs/demo/report.md``.

A section is a function ``section(run: Run, full: bool) -> str`` returning the markdown
of its part of the report (tables, links to its PNGs). ``full=True`` is the longer
setting (``genoise demo --full``). Register a section by adding it to ``SECTIONS``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path

from genoise.io import atomic_write_text
from genoise.train.run import Run

# name -> "module:function"; order = order in the report.
SECTIONS: dict[str, str] = {
    "landscapes": "genoise.experiments.landscapes:demo_section",
    "loss-table": "genoise.experiments.loss_table:demo_section",
    "latent": "genoise.latent.recipes_classical:demo_section",
    "sparse-coding": "genoise.latent.recipes_sparse:demo_sparse_coding",
    "lista": "genoise.latent.recipes_sparse:demo_lista",
    "memn2n": "genoise.memory.recipes:demo_section",
    "ssl": "genoise.ssl.recipes:demo_section",
    "world": "genoise.world.demo:demo_section",
}


def run_demo(out_dir: Path, *, only: Sequence[str] | None = None, full: bool = False,
             device: str = "cpu", data_dir: Path | None = None, progress: bool = True) -> Path:
    """Run the chosen sections (all by default) and write ``report.md``; returns its path."""
    names = list(only) if only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown demo section(s) {', '.join(unknown)}; "
                         f"available: {', '.join(SECTIONS)}")
    from genoise.train.run import resolve_device

    root = Run(out_dir, device=resolve_device(device), data_dir=data_dir, progress=progress)
    parts = ["# genoise demo report\n",
             f"Data folder: `{data_dir}`" if data_dir else
             "Data folder: none (GENOISE_DATA unset) — sections fall back to scikit-learn's digits",
             ""]
    timings = []
    for name in names:
        module_name, _, attr = SECTIONS[name].partition(":")
        section = getattr(importlib.import_module(module_name), attr)
        start = time.perf_counter()
        print(f"[demo] {name} …", flush=True)
        text = section(root.subrun(name), full)
        seconds = time.perf_counter() - start
        timings.append((name, seconds))
        print(f"[demo] {name} done in {seconds:.0f}s", flush=True)
        parts.append(text.rstrip() + "\n")
        # Rewrite the report after every section: an interrupted demo keeps what it did.
        atomic_write_text(root.path("report.md"), "\n".join(parts) + _timing_table(timings))
    return root.path("report.md")


def _timing_table(timings: list[tuple[str, float]]) -> str:
    rows = "\n".join(f"| {n} | {s:.0f} |" for n, s in timings)
    total = sum(s for _, s in timings)
    return f"\n## Timing\n\n| section | seconds |\n|---|---:|\n{rows}\n| **total** | {total:.0f} |\n"
