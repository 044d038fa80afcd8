"""The data folder of the benchmark scripts: ``--data-dir`` if given, else ``$GENOISE_DATA``,
else ``../shared/data`` beside the checkout when it exists (else ``None``: the loaders then
fall back to scikit-learn's digits where they can, or say which folder they need)."""

from __future__ import annotations

from pathlib import Path

from genoise.data.paths import resolve_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HELP = "data folder (default: $GENOISE_DATA, else ../shared/data beside the checkout)"


def data_dir(given: str | Path | None = None) -> Path | None:
    """``given``, else ``$GENOISE_DATA``, else the shared folder if present, else ``None``."""
    return resolve_data_dir(given) or (SHARED if SHARED.is_dir() else None)

