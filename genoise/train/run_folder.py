"""The rules of a run folder (``runs/<name>/``): one writer, nothing lost, nothing mixed.

- A run folder has one writer at a time: :class:`RunLock` holds an exclusive ``flock`` on
  the folder itself; a second writer fails at once with the holder named (pid, command,
  start time, read from ``.lock``). The kernel drops the lock when the holder dies.
- A run name is one path component: ``--name ../x`` or an absolute path cannot write
  outside ``--runs-dir`` (:func:`run_path`).
- An existing run is never replaced silently: training into it needs ``--resume`` (continue)
  or ``--overwrite`` (destroy, explicitly) — :func:`check_reuse`.
- Temporary files of writes that were killed (``kill -9`` during an atomic write) are
  removed when the folder is next opened by its writer (:func:`remove_stale_temporaries`).
- ``config.yaml`` records what the run really used (:func:`provenance`).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from genoise._invocation import invocation

LOCK_INFO = ".lock"
CONFIG_NAME = "config.yaml"
# genoise.io.atomic_write's temporary files: ".<target name>.<random>.tmp"
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


def run_path(runs_dir: str | os.PathLike, name: str) -> Path:
    """``runs_dir / name`` after checking that ``name`` is a plain folder name."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"--name {name!r} must be a plain folder name (no '/', not '.' or '..'); "
                         "use --runs-dir to choose where run folders go")
    if name.startswith("."):
        raise ValueError(f"--name {name!r} must not start with '.' (hidden names are reserved)")
    path = Path(runs_dir) / name
    if path.resolve().parent != Path(runs_dir).resolve():
        raise ValueError(f"--name {name!r} resolves outside --runs-dir {str(runs_dir)!r}")
    return path


def is_used(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds anything besides its lock file."""
    return run_dir.is_dir() and any(p.name != LOCK_INFO for p in run_dir.iterdir())


def check_reuse(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to train into an existing run without ``--resume`` or ``--overwrite``, and a
    ``--resume`` with nothing to resume."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    if resume and not is_used(run_dir):
        raise ValueError(f"--resume: no run at {run_dir} to continue (drop --resume to start it)")
    if not resume and not overwrite and is_used(run_dir):
        raise ValueError(f"run folder {run_dir} already exists: add --resume to continue it, "
                         "--name NEW for a new run, or --overwrite to replace it")


class RunLock:
    """Exclusive ownership of a run folder for the lifetime of this object (a context manager).

    ``flock`` on the folder's own descriptor, so nothing is written before the lock is held;
    the holder's pid, command and start time go to ``.lock`` once it is."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(f"run folder {self.run_dir} is in use by another writer "
                             f"({self.holder() or 'holder unknown'}); wait for it or use --name") from None
        self._fd = fd
        return self

    def holder(self) -> str:
        try:
            return (self.run_dir / LOCK_INFO).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    def write_holder(self) -> None:
        from genoise.io import atomic_write_text

        atomic_write_text(self.run_dir / LOCK_INFO, f"pid {os.getpid()}, `{_command()}`, since {now()}\n")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            (self.run_dir / LOCK_INFO).unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files that killed atomic writes left in ``run_dir`` (call it
    only while holding the folder's :class:`RunLock`); returns what was removed."""
    removed = []
    for path in run_dir.rglob(".*.tmp"):
        if path.is_file() and _TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def clear(run_dir: Path) -> None:
    """Remove everything in ``run_dir`` but its lock (``--overwrite``)."""
    for path in run_dir.iterdir():
        if path.name == LOCK_INFO:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _command() -> str:
    return shlex.join(["genoise", *invocation()])


def git_commit() -> str | None:
    """The commit of the genoise source tree when it is a git checkout (else None)."""
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return f"{commit}{' (modified)' if dirty.stdout.strip() else ''}" if commit else None


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What a measurement depends on beyond the code: the CPU, the instruction set torch's
    kernels dispatch to (``torch.backends.cpu.get_cpu_capability()``: AVX2, AVX512, …), the
    cores and torch's threads. Training is bit-for-bit deterministic on one machine, not
    across CPUs: the vectorised kernels (ATen's and oneDNN's) sum in an order that depends on
    the instruction set, so the same command gives other numbers on another CPU
    (docs/training.md, "Same command, another machine")."""
    import torch

    return {"cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def provenance(*, recipe: str, device: Any, data_dir: Path | None) -> dict[str, Any]:
    """What a run records about itself in ``config.yaml`` (its ``run:`` section)."""
    import platform

    import torch

    import genoise

    return {"recipe": recipe, "command": _command(), "started": now(), "status": "running",
            "device": str(device), "data_dir": str(data_dir.resolve()) if data_dir is not None else None,
            "data_read": [], "genoise": genoise.__version__, "git_commit": git_commit(),
            "torch": str(torch.__version__), "python": platform.python_version(), "machine": machine()}


def read_run_config(run_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """The configuration and the ``run:`` section (:func:`provenance`) of a run's
    ``config.yaml``. Raises ``FileNotFoundError`` when it is absent and a one-line
    ``ValueError`` when it is not a YAML mapping."""
    path = Path(run_dir) / CONFIG_NAME
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (not a genoise run folder)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not readable YAML ({type(err).__name__})") from err
    if not isinstance(saved, dict):
        raise ValueError(f"{path} does not hold a configuration mapping")
    info = saved.pop("run", None) or {}
    return saved, info


def write_run_config(run_dir: str | os.PathLike, config: dict[str, Any],
                     info: dict[str, Any]) -> Path:
    """Write ``config.yaml`` atomically: the configuration, then the ``run:`` section."""
    from genoise.io import atomic_write_text
    from genoise.train.run import _plain

    return atomic_write_text(Path(run_dir) / CONFIG_NAME,
                             yaml.safe_dump(_plain({**config, "run": info}), sort_keys=False))
