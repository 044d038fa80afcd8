"""Crash-safe file output: every file a run writes is written to a temporary file in
the same folder and renamed over the target, so an interrupted write never leaves a
truncated checkpoint, metrics file or plot behind (``os.replace`` is atomic on POSIX)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` — a temporary file name beside ``path`` for a
    writer that needs a path (an exporter, a converter); once the block succeeds the file is
    fsynced and renamed to ``path``, on any failure it is removed: ``path`` is either the old
    file or the complete new one. Folders created for ``path`` are removed again on failure
    when they are still empty."""
    path = Path(path)
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        for folder in created:  # deepest first; a folder something else wrote into stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync, then rename."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically (temp file + rename)."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (the checksum a data manifest records for each shard)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(path: str | os.PathLike, expected_format: str) -> dict[str, Any]:
    """Read an existing JSON data manifest whose ``format`` must be ``expected_format``;
    unreadable JSON or another format is a one-line ``ValueError`` naming the file (a missing
    file is the caller's to report: it knows what the folder should have been)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"corrupt manifest {path}: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path} has format {got!r}, expected {expected_format!r}")
    return manifest


def atomic_savefig(figure: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically; the format is taken from the suffix."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, **kwargs))


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


class MetricsWriter:
    """Append one JSON object per line to ``metrics.jsonl`` (and, optionally, scalars to
    TensorBoard). Each line is written with a single ``write`` + flush, so a crash loses
    at most the line being written, never earlier ones."""

    def __init__(self, run_dir: str | os.PathLike, *, tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def write(self, record: Mapping[str, Any], *, step: int | None = None) -> None:
        """Append ``record`` (with ``step`` when given) as one JSON line."""
        row = {"step": step} if step is not None else {}
        row.update({k: _jsonable(v) for k, v in record.items()})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
        if self._tb is not None and step is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, step)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (used on resume, so that steps redone after a
        crash are not logged twice)."""
        if not self.path.exists():
            return
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            if row.get("step") is None or row["step"] <= step:
                rows.append(line)
        atomic_write_text(self.path, "".join(r + "\n" for r in rows))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``metrics.jsonl`` file, skipping a torn final line."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 10.0) -> Path:
    """Write RGB frames as an animated GIF (atomically)."""
    import imageio.v3 as iio

    if len(frames) == 0:
        raise ValueError("save_gif needs at least one frame")
    data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return atomic_write(path, lambda handle: handle.write(data))
