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


_READS: list[str] = []


def record_read(source: str) -> None:
    """Note that a data file (or a bundled set, e.g. ``"sklearn digits"``) was read, so that
    a run can record in ``config.yaml`` which data it really used (see :func:`data_reads`)."""
    if source not in _READS:
        _READS.append(source)


def data_reads(clear: bool = False) -> list[str]:
    """The sources recorded by :func:`record_read` in this process, in order of first read."""
    reads = list(_READS)
    if clear:
        _READS.clear()
    return reads
