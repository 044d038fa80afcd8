"""The arguments the ``genoise`` command was called with, for run folders to record.

:func:`genoise.cli.main` may be called in-process (by a benchmark sweeping a recipe, by the
tests) with arguments other than the process's ``sys.argv``; run folders must record the
command that made them, not the host script's. Torch-free, so the CLI can import it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

_ARGV: ContextVar[tuple[str, ...] | None] = ContextVar("genoise_argv", default=None)


@contextmanager
def invoked_as(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, :func:`invocation` is ``argv`` (nested calls restore the outer one)."""
    token = _ARGV.set(tuple(argv))
    try:
        yield
    finally:
        _ARGV.reset(token)


def invocation() -> tuple[str, ...]:
    """The arguments after ``genoise`` of the call being run: those given to
    :func:`invoked_as`, else the process's ``sys.argv[1:]``."""
    argv = _ARGV.get()
    return tuple(sys.argv[1:]) if argv is None else argv
