"""Moved to :mod:`genoise.recipes` (the top layer's home); kept as an alias until every
caller imports from there."""

from genoise.recipes import COMMON_DEFAULTS, Recipe, list_recipes, load_recipe, resolve_config

__all__ = ["COMMON_DEFAULTS", "Recipe", "list_recipes", "load_recipe", "resolve_config"]
