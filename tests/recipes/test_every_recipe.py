"""Every shipped recipe has a resume case (``tests/recipes/test_resume_*.py``)."""

from __future__ import annotations

import importlib
from pathlib import Path

from genoise.recipes import list_recipes


def test_every_shipped_recipe_has_a_resume_case():
    covered: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("test_resume_*.py")):
        covered |= set(importlib.import_module(f"tests.recipes.{path.stem}").CASES)
    missing = sorted(r.name for r in list_recipes() if r.name not in covered)
    assert not missing, f"recipes without a resume case: {', '.join(missing)}"
