"""Ingredient engine: parse real 전성분 text, normalise to MFDS standard names, tag scalp types.

Public API: `parse`, `tag`, `Tagger`, `get_tagger`, the value objects in `model`, and the batch
reader in `batch`.
"""

from deeproot.ingredients.model import (
    Ingredient,
    IngredientMatch,
    ParsedList,
    TagResult,
    Token,
)
from deeproot.ingredients.parser import parse
from deeproot.ingredients.table import TABLES, load_table
from deeproot.ingredients.tagger import Tagger, check_text, get_tagger, tag

__all__ = [
    "TABLES",
    "Ingredient",
    "IngredientMatch",
    "ParsedList",
    "TagResult",
    "Tagger",
    "Token",
    "check_text",
    "get_tagger",
    "load_table",
    "parse",
    "tag",
]
