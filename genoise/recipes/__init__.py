"""The top layer: one module per capability (``genoise/recipes/<module>.py``) and the YAML
recipes beside it.

Every recipe module exposes the same names:

- ``train(run) -> dict`` (or ``train_<variant>``): the ``entry:`` of its YAML files;
- ``demo(run, full) -> str``: its ``genoise demo`` section (Markdown; links relative to
  ``run.dir``);
- ``evaluate(run_dir, **options) -> dict`` where the capability has a run-folder evaluator;
- optionally ``validate(config)``: checks across keys that the YAML's types and ranges
  cannot state, run by ``genoise train`` before anything is written.

A recipe file (``genoise/recipes/NAME.yaml``)::

    extends: _ssl                 # optional: inherit entry, config, keys, choices
    description: One line shown by `genoise recipes`.
    entry: genoise.recipes.ssl:train
    config:                       # defaults; every key may be overridden (key=value)
      epochs: 20
    keys:                         # every key documented; numeric keys have a range
      epochs: {help: passes over the training set, min: 1}
      lr: {help: peak learning rate, min: 0, exclusive_min: true}
      width: {help: channels of the first layer, min: 1, fixed: true}
      traffic_dir: {help: an existing data folder, type: str}   # a null default names its type
    choices:
      backbone: [conv, resnet18]

``extends`` merges ``config``, ``keys`` and ``choices`` key by key (the child wins);
``description`` and ``entry`` are inherited unless given; files whose name starts with
``_`` are bases, neither listed nor runnable. ``alias_of: OTHER`` makes a second name for
recipe ``OTHER``. ``fixed: true`` marks a key that defines the model or the data:
``genoise train --resume`` refuses to change it. Every recipe also takes the common keys
``seed``, ``device`` and ``data_dir``.

This module imports neither torch nor any capability, so ``genoise --help`` stays fast.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# section name -> recipe module (order = order of the demo report)
DEMO_SECTIONS: dict[str, str] = {
    "landscapes": "landscapes",
    "loss-table": "loss_table",
    "latent": "latent",
    "sparse-coding": "sparse_coding",
    "lista": "lista",
    "memn2n": "memory",
    "ssl": "ssl",
    "world": "world",
    "two-rooms": "jepa",
    "video": "video",
    "generative": "generative",
    "check-reader": "structured",
    "distributed": "distributed",
    "deploy": "deploy",
}
# sections that time themselves (batch-1 latency): `genoise demo --jobs N` runs them alone, last
DEMO_EXCLUSIVE: frozenset[str] = frozenset({"deploy"})
# `genoise eval KIND RUN_DIR`: kind -> (recipe module, preset options of its `evaluate`)
EVALUATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("ssl", {"kind": "linear"}),
    "knn": ("ssl", {"kind": "knn"}),
    "babi": ("memory", {}),
    "driving": ("world", {}),
    "planning": ("jepa", {}),
    "video": ("video", {}),
    "generative": ("generative", {}),
    "amounts": ("structured", {}),
}

COMMON_DEFAULTS: dict[str, Any] = {"seed": 0, "device": "auto", "data_dir": None}
COMMON_KEYS: dict[str, dict[str, Any]] = {
    "seed": {"help": "seed of every random choice (initialisation, data order, noise)", "min": 0},
    "device": {"help": "cpu, cuda, cuda:N or auto (CUDA when present)", "type": "str"},
    "data_dir": {"help": "folder holding the data sets (default: $GENOISE_DATA)", "type": "str",
                 "fixed": True},
}
TYPES = ("int", "float", "str", "bool", "list", "mapping")
_KEY_FIELDS = {"help", "min", "max", "exclusive_min", "exclusive_max", "fixed", "type"}


def recipe_module(name: str) -> Any:
    """Import ``genoise.recipes.<name>`` (a capability's top-layer module)."""
    return importlib.import_module(f"genoise.recipes.{name}")


@dataclass
class Recipe:
    """A resolved recipe: its entry point, default configuration and key documentation."""

    name: str
    description: str
    entry: str
    config: dict[str, Any]
    choices: dict[str, list[Any]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load_entry(self) -> Callable[..., Any]:
        module_name, _, attr = self.entry.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"recipe {self.name!r}: cannot load entry {self.entry!r} ({err})") from err

    def key_type(self, key: str) -> str:
        """``int``, ``float``, ``str``, ``bool``, ``list`` or ``mapping``."""
        declared = self.keys.get(key, {}).get("type")
        if declared is not None:
            return declared
        return _type_of(self.config.get(key))

    @property
    def fixed_keys(self) -> list[str]:
        """Keys that define the model or the data (refused as a change on ``--resume``)."""
        return [k for k in self.config if self.keys.get(k, {}).get("fixed")]

    def describe_key(self, key: str) -> str:
        """``meaning; type; range or choices; default`` for ``genoise recipes NAME``."""
        info = self.keys.get(key, {})
        parts = [info.get("help", "(undocumented)"), self.key_type(key)]
        if key in self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices[key])))
        elif "min" in info or "max" in info:
            parts.append(_range_text(info))
        if info.get("fixed"):
            parts.append("fixed on --resume")
        parts.append(f"default {self.config.get(key)!r}")
        return "; ".join(parts)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return "str"


def _range_text(info: Mapping[str, Any]) -> str:
    low = ("> " if info.get("exclusive_min") else ">= ") + str(info["min"]) if "min" in info else ""
    high = ("< " if info.get("exclusive_max") else "<= ") + str(info["max"]) if "max" in info else ""
    return " and ".join(p for p in (low, high) if p)


def _recipe_files() -> dict[str, Any]:
    folder = resources.files("genoise") / "recipes"
    return {p.name[: -len(".yaml")]: p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_recipes() -> list[Recipe]:
    """Every shipped recipe (bases excluded), sorted by name."""
    return [load_recipe(name) for name in sorted(_recipe_files()) if not name.startswith("_")]


def _read(name: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {name!r} is not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise ValueError(f"recipe {name!r} must be a YAML mapping, got {type(data).__name__}")
    for section in ("config", "keys", "choices"):
        if not isinstance(data.get(section) or {}, dict):
            raise ValueError(f"recipe {name!r}: {section!r} must be a mapping")
    return data


def _merged(name: str, files: Mapping[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw data of shipped recipe ``name`` with its ``extends`` chain applied."""
    if name in seen:
        raise ValueError(f"recipe {name!r}: 'extends' cycle {' -> '.join((*seen, name))}")
    data = _read(name, files[name].read_text())
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data
    if str(parent_name) not in files:
        raise ValueError(f"recipe {name!r} extends {parent_name!r}, which is not a recipe")
    parent = _merged(str(parent_name), files, (*seen, name))
    merged = {**parent, **{k: v for k, v in data.items() if k not in ("config", "keys", "choices")}}
    for section in ("config", "keys", "choices"):
        merged[section] = {**(parent.get(section) or {}), **(data.get(section) or {})}
    return merged


def load_recipe(name: str) -> Recipe:
    """Load a shipped recipe by name, or a YAML file by path (which may extend a shipped one)."""
    files = _recipe_files()
    if name.endswith((".yaml", ".yml")) and os.path.exists(name):
        rname = Path(name).stem
        data = _read(rname, Path(name).read_text())
        if "extends" in data:
            files = {**files, rname: Path(name)}
            data = _merged(rname, files)
    else:
        if name not in files or name.startswith("_"):
            shown = sorted(n for n in files if not n.startswith("_"))
            raise ValueError(f"unknown recipe {name!r}; available: {', '.join(shown)}")
        rname = name
        data = _merged(name, files)
    if "alias_of" in data:
        target = str(data["alias_of"])
        if target == rname or target not in files or target.startswith("_"):
            raise ValueError(f"recipe {rname!r} is an alias of {target!r}, which is not a recipe")
        recipe = load_recipe(target)
        return Recipe(rname, f"{recipe.description} (alias of {target})", recipe.entry, recipe.config,
                      recipe.choices, recipe.keys)
    for key in ("entry", "config"):
        if key not in data:
            raise ValueError(f"recipe {rname!r} has no {key!r} field")
    config = {**COMMON_DEFAULTS, **(data["config"] or {})}
    keys = {**COMMON_KEYS, **(data.get("keys") or {})}
    _check_keys(rname, config, keys)
    return Recipe(rname, data.get("description", ""), data["entry"], config, data.get("choices") or {},
                  keys)


def _check_keys(name: str, config: Mapping[str, Any], keys: Mapping[str, Any]) -> None:
    for key, info in keys.items():
        if not isinstance(info, Mapping):
            raise ValueError(f"recipe {name!r}: keys.{key} must be a mapping (help, min, max, …)")
        unknown = set(info) - _KEY_FIELDS
        if unknown:
            raise ValueError(f"recipe {name!r}: keys.{key} has unknown field(s) {sorted(unknown)}; "
                             f"allowed: {sorted(_KEY_FIELDS)}")
        if "type" in info and info["type"] not in TYPES:
            raise ValueError(f"recipe {name!r}: keys.{key}.type must be one of {', '.join(TYPES)}")


# ---------------------------------------------------------------------- overrides
def _coerce(key: str, raw: str, kind: str) -> Any:
    """Parse ``raw`` with YAML and check it against the key's type."""
    if raw == "":
        raise ValueError(f"{key}= needs a value (write {key}=null to unset it)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"{key}={raw!r} is not a valid value ({str(err).splitlines()[0]})") from err
    if value is None:
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {raw!r}")
    elif kind == "int":
        if isinstance(value, float) and value.is_integer() and "." not in raw and "e" not in raw.lower():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {raw!r}")
    elif kind == "float":
        if isinstance(value, str):  # YAML 1.1 reads "1e-2" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {raw!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {raw!r}")
    elif kind == "str":
        value = raw
    elif kind == "list":
        if isinstance(value, Mapping):
            raise ValueError(f"{key} must be a list, got the mapping {raw!r}")
        if not isinstance(value, list):
            value = [value]
    elif kind == "mapping" and not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a mapping such as {key}={{name: value}}, got {raw!r}")
    return value


def check_value(recipe: Recipe, key: str, value: Any) -> None:
    """Refuse ``value`` for ``key`` when out of range or not among the choices."""
    if key in recipe.choices and value not in recipe.choices[key]:
        raise ValueError(f"{key}={value!r} is not allowed for recipe {recipe.name!r}; "
                         f"allowed values: {', '.join(map(str, recipe.choices[key]))}")
    info = recipe.keys.get(key, {})
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = info.get("min"), info.get("max")
    bad_low = low is not None and (value <= low if info.get("exclusive_min") else value < low)
    bad_high = high is not None and (value >= high if info.get("exclusive_max") else value > high)
    if bad_low or bad_high:
        raise ValueError(f"{key}={value!r} is out of range for recipe {recipe.name!r}: "
                         f"must be {_range_text(info)}")


def apply_overrides(recipe: Recipe, base: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``base`` with ``key=value`` overrides applied, each parsed and validated."""
    config = dict(base)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        if key not in recipe.config:
            raise ValueError(f"unknown key {key!r} for recipe {recipe.name!r}; "
                             f"allowed keys: {', '.join(sorted(recipe.config))}")
        config[key] = _coerce(key, raw, recipe.key_type(key))
    for key, value in config.items():
        check_value(recipe, key, value)
    return config


def resolve_config(recipe: Recipe, overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to the recipe's defaults, validating each one."""
    return apply_overrides(recipe, recipe.config, overrides)


# ---------------------------------------------------------------------- `genoise eval` options

# option -> (meaning, check of a value or None when the recipe's own validation checks it,
#            what a valid value is)
OptionSpec = Mapping[str, tuple[str, Callable[[Any], bool] | None, str]]


def count(low: int) -> Callable[[Any], bool]:
    """A check for an evaluator option: an int (not a bool) >= ``low``."""

    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    return check


def positive_number(value: Any) -> bool:
    """A check for an evaluator option: a finite int or float (not a bool) > 0."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            and value != float("inf"))


def check_options(options: Mapping[str, Any], allowed: OptionSpec, what: str) -> dict[str, Any]:
    """Refuse an unknown option of ``genoise eval`` (for the ``what``) or a value of the wrong
    type/range with one line; return the options as a dict."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for the {what}; "
                         f"allowed: {', '.join(allowed)}")
    for key, value in options.items():
        _, check, valid = allowed[key]
        if check is not None and not check(value):
            raise ValueError(f"option {key}={value!r} must be {valid}")
    return dict(options)
