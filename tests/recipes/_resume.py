"""The resume contract of every recipe: a run stopped after step K (``--stop-after K``) and
continued with ``--resume`` ends with exactly the files of an uninterrupted run.

Each ``tests/recipes/test_resume_<capability>.py`` defines
``CASES = {recipe: (overrides, stop_after)}`` and calls :func:`assert_resume_bit_for_bit`;
``test_every_recipe.py`` checks that every shipped recipe has a case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genoise.cli import main


def _train(tmp_path: Path, recipe: str, overrides: list[str], name: str, *flags: str) -> int:
    return main(["train", recipe, *overrides, "--runs-dir", str(tmp_path), "--name", name,
                 "--no-progress", *flags])


def checkpoints(run_dir: Path) -> dict[str, Any]:
    """Every ``*.pt`` file under ``run_dir`` (relative path -> loaded object)."""
    return {str(p.relative_to(run_dir)): torch.load(p, map_location="cpu", weights_only=False)
            for p in sorted(run_dir.rglob("*.pt"))}


def assert_identical(a: Any, b: Any, where: str = "") -> None:
    """Tensors ``torch.equal`` (same dtype), arrays equal, containers recursively, the rest ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and np.array_equal(a, b), f"{where}: arrays differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} " \
                                                          f"vs {sorted(map(str, b))}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_resume_bit_for_bit(tmp_path: Path, recipe: str, overrides: list[str], stop_after: int) -> None:
    """Run ``recipe`` uninterrupted, and stopped after ``stop_after`` steps then resumed;
    every checkpoint of the two run folders must be identical."""
    assert _train(tmp_path, recipe, overrides, "full") == 0
    assert _train(tmp_path, recipe, overrides, "cut", "--stop-after", str(stop_after)) == 0
    cut = tmp_path / "cut"
    assert not (cut / "summary.json").exists(), f"{recipe} finished before step {stop_after}: no stop"
    assert list(cut.rglob("*.pt")), f"{recipe} wrote no checkpoint before stopping"
    assert _train(tmp_path, recipe, overrides, "cut", "--resume") == 0
    assert (cut / "summary.json").exists()
    full, resumed = checkpoints(tmp_path / "full"), checkpoints(cut)
    assert any(Path(name).name == "last.pt" for name in full), f"{recipe} wrote no last.pt"
    assert set(full) == set(resumed), f"checkpoint files differ: {sorted(full)} vs {sorted(resumed)}"
    for name in full:
        assert_identical(full[name], resumed[name], f"{recipe}:{name}")
