"""The data folder of the benchmark scripts: ``--data-dir`` if given, else ``$GENOISE_DATA``,
else ``../shared/data`` beside the checkout when it exists (else ``None``: the loaders then
fall back to scikit-learn's digits where they can, or say which folder they need)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from genoise.data.paths import resolve_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HELP = "data folder (default: $GENOISE_DATA, else ../shared/data beside the checkout)"


def data_dir(given: str | Path | None = None) -> Path | None:
    """``given``, else ``$GENOISE_DATA``, else the shared folder if present, else ``None``."""
    return resolve_data_dir(given) or (SHARED if SHARED.is_dir() else None)


def recipe_defaults(name: str) -> dict[str, Any]:
    """The ``config:`` defaults of ``genoise/recipes/NAME.yaml``, read as a data file (the
    YAML is the one home of a recipe's defaults; benchmarks do not import genoise.recipes).
    Recipes that use ``extends:`` are not supported here."""
    data = yaml.safe_load((ROOT / "genoise" / "recipes" / f"{name}.yaml").read_text(encoding="utf-8"))
    if "extends" in data:
        raise ValueError(f"recipe {name!r} extends another one; read it with genoise.recipes instead")
    return dict(data["config"])
