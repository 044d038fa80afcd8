"""``genoise demo``: short versions of every capability's experiments, one section each,
written to ``runs/demo/<section>/`` and collected in ``runs/demo/report.md``.

A section is the ``demo(run, full) -> str`` of a recipe module (registered in
:data:`genoise.recipes.DEMO_SECTIONS`); it returns the Markdown of its part of the report,
with links relative to its own folder. Each section's Markdown is kept in
``<section>/section.md`` and the report is rebuilt from every section present, so
``genoise demo --only NAME`` updates that section and keeps the others. Links are rewritten
to point from the report into the section's folder, and a link to a file that does not
exist is an error (a section must not promise a picture it did not draw).

With ``jobs > 1`` the sections run ``jobs`` at a time in as many worker processes with
``cpus // jobs`` threads each (most sections train small models whose steps are bound by
per-operation overhead, not by threads, so two one-thread processes finish nearly twice as
fast as one two-thread process). A section's output goes to ``logs/NAME.log``; a section
that fails is named with the tail of its log, the others go on.
Sections in :data:`genoise.recipes.DEMO_EXCLUSIVE` (they time themselves) run alone, last,
in this process.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genoise.recipes import DEMO_EXCLUSIVE, DEMO_SECTIONS

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


class DemoSectionError(RuntimeError):
    """One or more sections run in their own process failed (their logs are named)."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_demo(out_dir: Path, *, only: Sequence[str] | None = None, full: bool = False,
             device: str = "cpu", data_dir: Path | None = None, progress: bool = True,
             jobs: int = 1) -> Path:
    """Run the chosen sections (all by default) and write ``report.md``; returns its path.
    ``jobs > 1``: that many sections at a time, each in its own process (module docstring)."""
    from genoise._checks import check_int
    from genoise.io import atomic_write_text
    from genoise.train.run import Run, resolve_device

    check_int("jobs", jobs)
    names = list(only) if only else list(DEMO_SECTIONS)
    unknown = [n for n in names if n not in DEMO_SECTIONS]
    if unknown:
        raise ValueError(f"unknown demo section(s) {', '.join(unknown)}; "
                         f"available: {', '.join(DEMO_SECTIONS)}")
    root = Run(out_dir, device=resolve_device(device), data_dir=data_dir, progress=progress)
    began = time.perf_counter()
    shared = [n for n in names if n not in DEMO_EXCLUSIVE]
    at_a_time = jobs if len(shared) > 1 else 1  # one section alone runs here, in this process
    if at_a_time > 1:
        _run_in_processes(shared, root.dir, jobs, full=full, device=device, data_dir=data_dir)
        names = [n for n in names if n in DEMO_EXCLUSIVE]
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
    print(f"[demo] {len(only or DEMO_SECTIONS)} section(s) in {time.perf_counter() - began:.0f}s wall "
          f"({at_a_time} at a time)", flush=True)
    return root.path("report.md")


def _init_worker(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy / scikit-learn BLAS too


def _run_section_in_worker(name: str, out_dir: Path, options: dict[str, Any]) -> float:
    """A worker process's task: one section, its output to ``logs/NAME.log``; its seconds."""
    import traceback

    log = out_dir / "logs" / f"{name}.log"
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as handle:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(handle.fileno(), 1), os.dup2(handle.fileno(), 2)
        try:
            start = time.perf_counter()
            run_demo(out_dir, only=[name], jobs=1, progress=False, **options)
            return time.perf_counter() - start
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def _run_in_processes(names: Sequence[str], out_dir: Path, jobs: int,
                      task: Callable[[str, Path, dict[str, Any]], float] = _run_section_in_worker,
                      **options: Any) -> None:
    """Run ``names`` in ``jobs`` worker processes, in order, with ``task(name, out_dir,
    options) -> seconds``; rebuild the report as each ends; raise naming every failure."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from genoise.io import atomic_write_text

    threads = max(1, available_cpus() // jobs)
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name in names:
        (logs / f"{name}.log").write_bytes(b"")
    print(f"[demo] {len(names)} sections, {jobs} at a time, {threads} thread(s) each; "
          f"their output in {logs}", flush=True)
    failed = []
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(task, name, out_dir, options): name for name in names}
        try:
            for future in as_completed(futures):
                name = futures[future]
                try:
                    seconds = future.result()
                except Exception as err:  # reported with its log; the others go on
                    failed.append(name)
                    tail = (logs / f"{name}.log").read_text(errors="replace").strip().splitlines()[-15:]
                    print(f"[demo] {name} FAILED ({type(err).__name__}):\n  " + "\n  ".join(tail),
                          flush=True)
                    continue
                print(f"[demo] {name} done in {seconds:.0f}s", flush=True)
                atomic_write_text(out_dir / "report.md", compose_report(out_dir, options["data_dir"]))
        except BaseException:  # interrupted: drop the queued sections; finished ones stay
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if failed:
        raise DemoSectionError(f"demo section(s) {', '.join(failed)} failed; their output is in "
                               + ", ".join(str(logs / f"{n}.log") for n in failed))


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
