"""Value objects passed between parsing, normalising and tagging."""

from __future__ import annotations

from dataclasses import dataclass, field

# How a token was recognised as an MFDS standard name.
#   exact     the token is a standard name
#   synonym   an MFDS synonym / old name of a standard name
#   variant   a spelling variant (메칠/메틸, 애시드/애씨드, 니아신/나이아신, 디/다이, spacing, case)
#   segmented cut out of a space-only or unseparated run by dictionary segmentation
#   fuzzy     rapidfuzz match above a safe score and length bound (always reported)
#   unknown   not recognised; kept as written
HOW_VALUES = ("exact", "synonym", "variant", "segmented", "fuzzy", "unknown")


@dataclass(frozen=True)
class Token:
    """One ingredient as written on the label, decorations split off."""

    text: str  # the original text of the token, decorations included
    name: str  # the ingredient name with decorations removed, whitespace collapsed
    attrs: tuple[str, ...] = ()  # decorations: "0.2%", "10,000ppm", "덱스판테놀", "향료"
    group: str | None = None  # option-group label ("타입A", "1. 복숭아향"), None for a single list
    position: int = 0  # 0-based position in the whole list
    segmented: bool = False  # produced by dictionary segmentation of an unseparated run


@dataclass(frozen=True)
class ParsedList:
    """A raw 전성분 string split into tokens."""

    raw: str | None
    placeholder: bool  # "상세페이지 참고" and friends: the seller gave no list
    tokens: tuple[Token, ...] = ()
    groups: tuple[str, ...] = ()  # option-group labels in order; empty for a single list

    @property
    def empty(self) -> bool:
        return not self.tokens


@dataclass(frozen=True)
class Ingredient:
    """A token with its MFDS standard name, when it has one."""

    token: Token
    canonical: str | None  # MFDS standard name; None when unknown
    how: str  # one of HOW_VALUES
    score: float = 100.0  # fuzzy score; 100 for exact ways


@dataclass(frozen=True)
class IngredientMatch:
    """Evidence that a product serves a scalp type: which token matched which table entry."""

    type: str  # ingredient-table type: 지성, 건성, 민감성, 비듬, 탈모, 지루성
    token: str  # the token as written on the label
    canonical: str  # the token's MFDS standard name
    entry: str  # the table entry (canonical_ko of the KCA row) that it matched
    how: str  # canonical | alias | member | prefix | suffix, plus "+fuzzy"/"+segmented" when so


@dataclass(frozen=True)
class FlagMatch:
    """Evidence that a list carries a flag (`deeproot.ingredients.flags.FLAGS`): which token,
    read as which MFDS standard name, matched which flag-table entry."""

    flag: str  # a key of deeproot.ingredients.flags.FLAGS
    token: str  # the token as written on the label
    canonical: str  # the token's MFDS standard name
    entry: str  # the flag-table entry it matched (a curated name, or the rule that admitted it)
    source: str  # the legal or documented source of the flag list
    how: str  # name | rule, plus "+fuzzy"/"+segmented"/"+synonym"/"+variant" when so

    def record(self) -> dict:
        return {
            "flag": self.flag,
            "token": self.token,
            "canonical": self.canonical,
            "entry": self.entry,
            "source": self.source,
            "how": self.how,
        }


@dataclass(frozen=True)
class TagResult:
    """Everything known about one ingredient list after tagging."""

    types: tuple[str, ...]  # sorted ingredient-table types
    matches: tuple[IngredientMatch, ...]
    placeholder: bool
    ingredients: tuple[Ingredient, ...] = field(default=())
    groups: tuple[str, ...] = ()
    flags: tuple[FlagMatch, ...] = ()

    @property
    def flag_keys(self) -> tuple[str, ...]:
        """Sorted unique flag keys the list carries."""
        return tuple(sorted({f.flag for f in self.flags}))

    @property
    def n_ingredients(self) -> int:
        return len(self.ingredients)

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(i.token.name for i in self.ingredients if i.canonical is None)

    def record(self, row: int | None = None) -> dict:
        """The JSON-ready record the CLI and the batch writers emit."""
        rec: dict = {} if row is None else {"row": row}
        rec.update(
            types=list(self.types),
            matches=[
                {
                    "type": m.type,
                    "token": m.token,
                    "canonical": m.canonical,
                    "entry": m.entry,
                    "how": m.how,
                }
                for m in self.matches
            ],
            placeholder=self.placeholder,
            n_ingredients=self.n_ingredients,
            unknown=list(self.unknown),
            flags=[f.record() for f in self.flags],
        )
        return rec
