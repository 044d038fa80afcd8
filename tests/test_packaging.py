"""Packaging: compatible ranges in pyproject.toml, the exact lock in constraints.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _requirements() -> list[Requirement]:
    project = _project()
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def test_dependencies_are_ranges_not_pins():
    for requirement in _requirements():
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), str(requirement)


def test_the_lock_pins_every_dependency_inside_its_range():
    lock = _lock()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in lock, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(lock[name], prereleases=True), (name, lock[name])
    assert lock["torch"] == "2.13.0"


def test_supported_pythons_include_3_11_to_3_13():
    spec = SpecifierSet(_project()["requires-python"])
    assert all(spec.contains(v) for v in ("3.11", "3.12", "3.13"))
