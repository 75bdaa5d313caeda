"""Workload recipes: TOML files in recipes/, parsed into frozen dataclasses."""

from lab.recipes.model import Recipe
from lab.recipes.parse import RecipeError, find, list_shipped, load, parse

__all__ = ["Recipe", "RecipeError", "find", "list_shipped", "load", "parse"]
