"""``genoise demo``: short versions of every capability's experiments, one section each,
written to ``runs/demo/<section>/`` and collected in ``runs/demo/report.md``.

A section is the ``demo(run, full) -> str`` of a recipe module (registered in
:data:`genoise.recipes.DEMO_SECTIONS`); it returns the Markdown of its part of the report,
with links relative to its own folder. Each section's Markdown is kept in
``<section>/section.md`` and the report is rebuilt from every section present, so
``genoise demo --only NAME`` updates that section and keeps the others. Links are rewritten
to point from the report into the section's folder, and a link to a file that does not
exist is an error (a section must not promise a picture it did not draw).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genoise.recipes import DEMO_SECTIONS

SECTION_FILE = "section.md"
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def _section_function(name: str) -> Callable[[Any, bool], str]:
    from genoise.recipes import recipe_module

    return recipe_module(DEMO_SECTIONS[name]).demo


def relink(markdown: str, section_dir: Path, report_dir: Path) -> str:
    """Rewrite the relative links of a section's Markdown (relative to ``section_dir``) so
    they resolve from ``report_dir``; refuse a link to a missing file."""
    def fix(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z]+:", target) or target.startswith(("#", "/")):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = section_dir / path
        if not resolved.exists():
            raise ValueError(f"demo section {section_dir.name!r} links {target!r}, which it did not write")
        relative = resolved.resolve().relative_to(report_dir.resolve()).as_posix()
        return f"{match.group(1)}{relative}{'#' + anchor if anchor else ''}{match.group(3)}"

    return _LINK.sub(fix, markdown)


def run_demo(out_dir: Path, *, only: Sequence[str] | None = None, full: bool = False,
             device: str = "cpu", data_dir: Path | None = None, progress: bool = True) -> Path:
    """Run the chosen sections (all by default) and write ``report.md``; returns its path."""
    from genoise.io import atomic_write_text
    from genoise.train.run import Run, resolve_device

    names = list(only) if only else list(DEMO_SECTIONS)
    unknown = [n for n in names if n not in DEMO_SECTIONS]
    if unknown:
        raise ValueError(f"unknown demo section(s) {', '.join(unknown)}; "
                         f"available: {', '.join(DEMO_SECTIONS)}")
    root = Run(out_dir, device=resolve_device(device), data_dir=data_dir, progress=progress)
    for name in names:
        section = _section_function(name)
        start = time.perf_counter()
        print(f"[demo] {name} …", flush=True)
        run = root.subrun(name)
        text = section(run, full).rstrip() + "\n"
        seconds = time.perf_counter() - start
        print(f"[demo] {name} done in {seconds:.0f}s", flush=True)
        text = relink(text, run.dir, root.dir)
        atomic_write_text(run.path(SECTION_FILE), f"<!-- seconds: {seconds:.1f} -->\n{text}")
        # Rebuild the report after every section: an interrupted demo keeps what it did.
        atomic_write_text(root.path("report.md"), compose_report(root.dir, data_dir))
    return root.path("report.md")


def compose_report(out_dir: Path, data_dir: Path | None) -> str:
    """``report.md`` from every section present in ``out_dir``, in the registry's order."""
    parts = ["# genoise demo report\n",
             f"Data folder: `{data_dir}`" if data_dir else
             "Data folder: none (GENOISE_DATA unset) — sections use scikit-learn's digits", ""]
    timings = []
    for name in DEMO_SECTIONS:
        path = out_dir / name / SECTION_FILE
        if not path.is_file():
            continue
        first, _, body = path.read_text(encoding="utf-8").partition("\n")
        match = re.match(r"<!-- seconds: ([0-9.]+) -->", first)
        timings.append((name, float(match.group(1)) if match else float("nan")))
        parts.append(body.rstrip() + "\n")
    rows = "\n".join(f"| {n} | {s:.0f} |" for n, s in timings)
    total = sum(s for _, s in timings)
    return "\n".join(parts) + (f"\n## Timing\n\n| section | seconds |\n|---|---:|\n{rows}\n"
                               f"| **total** | {total:.0f} |\n")
