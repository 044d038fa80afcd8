"""Recipes: YAML files shipped in ``genoise/recipes/`` that name an entry point and its
default configuration. ``genoise train RECIPE key=value …`` overrides the defaults;
an unknown key or a value of the wrong type/choice is refused with a message naming
the key and what is allowed.

A recipe file::

    description: One line shown by `genoise recipes`.
    entry: genoise.latent.recipes:pca        # callable(run: Run) -> dict of final metrics
    config:                                  # defaults; every key may be overridden
      dataset: mnist
      n_components: 64
    choices:                                 # optional: allowed values per key
      dataset: [mnist, digits]

Every recipe also accepts the common keys ``seed``, ``device``, ``data_dir``.

A file holding only ``alias_of: OTHER`` is another name for recipe ``OTHER`` (same entry,
defaults and choices; runs are named after the name used).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

COMMON_DEFAULTS: dict[str, Any] = {"seed": 0, "device": "auto", "data_dir": None}


@dataclass
class Recipe:
    name: str
    description: str
    entry: str
    config: dict[str, Any]
    choices: dict[str, list[Any]] = field(default_factory=dict)

    def load_entry(self) -> Callable[..., Any]:
        module_name, _, attr = self.entry.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"recipe {self.name!r}: cannot load entry {self.entry!r} ({err})") from err


def _recipe_files() -> dict[str, Any]:
    folder = resources.files("genoise") / "recipes"
    return {p.name[: -len(".yaml")]: p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_recipes() -> list[Recipe]:
    """Every shipped recipe, sorted by name."""
    return [load_recipe(name) for name in sorted(_recipe_files())]


def load_recipe(name: str) -> Recipe:
    """Load a shipped recipe by name, or a YAML file by path."""
    if name.endswith((".yaml", ".yml")) and os.path.exists(name):
        text, rname = Path(name).read_text(), Path(name).stem
    else:
        files = _recipe_files()
        if name not in files:
            raise ValueError(f"unknown recipe {name!r}; available: {', '.join(sorted(files))}")
        text, rname = files[name].read_text(), name
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {rname!r} is not valid YAML: {err}") from err
    if "alias_of" in data:
        target = str(data["alias_of"])
        if target == rname or target not in _recipe_files():
            raise ValueError(f"recipe {rname!r} is an alias of {target!r}, which is not a recipe")
        recipe = load_recipe(target)
        return Recipe(rname, f"{recipe.description} (alias of {target})", recipe.entry, recipe.config,
                      recipe.choices)
    for key in ("entry", "config"):
        if key not in data:
            raise ValueError(f"recipe {rname!r} has no {key!r} field")
    config = {**COMMON_DEFAULTS, **(data["config"] or {})}
    return Recipe(rname, data.get("description", ""), data["entry"], config, data.get("choices") or {})


def _coerce(key: str, raw: str, default: Any) -> Any:
    """Parse ``raw`` with YAML and check it against the type of the default."""
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as err:
        raise ValueError(f"{key}={raw!r} is not a valid value ({err})") from err
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {raw!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {raw!r}")
    elif isinstance(default, float):
        if isinstance(value, str):  # YAML 1.1 reads "1e-2" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {raw!r}")
        value = float(value)
    elif isinstance(default, str):
        value = raw
    elif isinstance(default, list):
        if not isinstance(value, list):
            value = [value]
    return value


def resolve_config(recipe: Recipe, overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to the recipe's defaults, validating each one."""
    config = dict(recipe.config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        if key not in config:
            raise ValueError(f"unknown key {key!r} for recipe {recipe.name!r}; "
                             f"allowed keys: {', '.join(sorted(config))}")
        config[key] = _coerce(key, raw, recipe.config[key])
    for key, allowed in recipe.choices.items():
        if key in config and config[key] not in allowed:
            raise ValueError(f"{key}={config[key]!r} is not allowed for recipe {recipe.name!r}; "
                             f"allowed values: {', '.join(map(str, allowed))}")
    return config
