"""A benchmark's record: its table as Markdown and its rows (with the command and the date)
as JSON, side by side under ``benchmarks/records/``, each written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genoise.io import atomic_write_text


def write_records(folder: str | Path, stem: str, text: str, payload: dict[str, Any]) -> Path:
    """``folder/stem.md`` (``text``) and ``folder/stem.json`` (``payload``); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{stem}.md", text)
    atomic_write_text(folder / f"{stem}.json", json.dumps(payload, indent=1) + "\n")
    return folder
