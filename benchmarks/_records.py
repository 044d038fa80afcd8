"""A benchmark's record: its table as Markdown and its rows (with the command, the date and the
commit of the code that measured them) as JSON, side by side under ``benchmarks/records/``, each
written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genoise.io import atomic_write_text
from genoise.train.run_folder import git_commit, machine


def write_records(folder: str | Path, stem: str, text: str, payload: dict[str, Any], *,
                  indent: int = 1) -> Path:
    """``folder/stem.md`` (``text``) and ``folder/stem.json`` (``payload``, plus ``"commit"``: the
    source tree's git commit, marked "(modified)" when tracked files differ from it, so a record
    that no longer regenerates bit for bit can be traced to the code that wrote it, and
    ``"machine"``: the CPU and the instruction set its kernels used, since the same code gives
    other numbers on another CPU); returns the folder. A payload that names its own commit or
    machine keeps it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "commit": payload.get("commit", git_commit()),
               "machine": payload.get("machine", machine())}
    atomic_write_text(folder / f"{stem}.md", text)
    atomic_write_text(folder / f"{stem}.json", json.dumps(payload, indent=indent, default=str) + "\n")
    return folder
