"""Import a benchmark script (``benchmarks/NAME.py``) as a module, as the script itself runs:
with ``benchmarks/`` on the import path for its ``_cells`` / ``_records`` helpers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))
