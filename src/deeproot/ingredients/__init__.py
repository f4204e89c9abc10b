"""Ingredient engine: parse real 전성분 text, normalise to MFDS standard names, tag scalp types.

Public API: `parse`, `tag`, `Tagger`, `get_tagger`, the value objects in `model`, and the batch
reader in `batch`.
"""

from deeproot.ingredients.flags import (
    FLAG_LABELS,
    FLAG_SOURCES,
    FLAGS,
    FREE_OF,
    functional_claims,
)
from deeproot.ingredients.model import (
    FlagMatch,
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
    "FLAGS",
    "FLAG_LABELS",
    "FLAG_SOURCES",
    "FREE_OF",
    "TABLES",
    "FlagMatch",
    "Ingredient",
    "IngredientMatch",
    "ParsedList",
    "TagResult",
    "Tagger",
    "Token",
    "check_text",
    "functional_claims",
    "get_tagger",
    "load_table",
    "parse",
    "tag",
]
