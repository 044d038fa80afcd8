"""Where real data sets live: ``data_dir=`` / ``--data-dir`` first, then the
``GENOISE_DATA`` environment variable. Nothing is ever downloaded."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data folder given explicitly, else ``$GENOISE_DATA``, else ``None``.

    An explicitly given folder that does not exist is an error (a typo should not
    silently fall back to another data set)."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get("GENOISE_DATA") or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir not in (None, "") else "GENOISE_DATA"
        raise ValueError(f"{source} points to {str(path)!r}, which is not a folder")
    return path


def require_file(path: Path, what: str) -> Path:
    """Raise ``FileNotFoundError`` naming ``path`` and what it should hold."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    return path
