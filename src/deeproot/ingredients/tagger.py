"""Tagging: a raw ingredient list -> recognised ingredients -> scalp types with evidence."""

from __future__ import annotations

import re

from deeproot.errors import InputError
from deeproot.ingredients.dictionary import Dictionary, fold, key, load_dictionary
from deeproot.ingredients.flags import FlagIndex, load_flag_index
from deeproot.ingredients.model import (
    FlagMatch,
    Ingredient,
    IngredientMatch,
    ParsedList,
    TagResult,
    Token,
)
from deeproot.ingredients.parser import (
    MAX_TEXT_CHARS,
    joins_with_next,
    parse,
    piece_known,
    piece_tokens,
    simple_pieces,
    strip_controls,
)
from deeproot.ingredients.table import Table, load_table

_HANGUL = re.compile(r"[가-힣]")
_FUZZY_TABLE_SCORE = (
    95.0  # a fuzzy match that decides a scalp type needs more than one that doesn't
)
# Parsed lists, shared by every Tagger (parsing does not depend on the table). Bounded: a catalog
# build tags each distinct text once, so a big cache would only hold memory.
_PARSE_CACHE_MAX = 2_000  # both tables of a text, and lists repeated across a batch
_PARSED: dict[str, ParsedList] = {}
_PIECE_CACHE_MAX = 500_000


def check_text(text: str | None) -> None:
    """Raise InputError for text that cannot be an ingredient list (too long, wrong script)."""
    if text is None:
        return
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"ingredient text is {len(text):,} characters, over the {MAX_TEXT_CHARS:,} limit; "
            "pass one product's 전성분 list"
        )
    stripped = text.strip()
    if stripped and not _HANGUL.search(stripped) and re.search(r"[^\W\d_]", stripped):
        raise InputError(
            "no Korean ingredient names in the text; deeproot reads Korean 전성분 lists "
            "(MFDS standard names such as 정제수, 글리세린)"
        )


class Tagger:
    """Parses, normalises and tags ingredient lists against one KCA table, with caches.

    One Tagger per process is the intended use: the dictionary, the table and the per-token and
    per-text caches are shared by every call.
    """

    def __init__(self, table: str = "extended", *, fuzzy: bool = True, flags: bool = True):
        self.table: Table = load_table(table)
        self.dictionary: Dictionary = load_dictionary()
        self.fuzzy = fuzzy
        self.flag_index: FlagIndex | None = load_flag_index() if flags else None
        self._flag_cache: dict[tuple[str, str | None, str], tuple[FlagMatch, ...]] = {}
        self._norm: dict[str, tuple[str | None, str, float]] = {}
        self._pieces: dict[str, tuple] = {}

    # -- normalising ---------------------------------------------------------------------------

    def normalize(self, token: Token) -> Ingredient:
        """The token with its MFDS standard name, or unknown."""
        canonical, how, score = self._normalize_name(token.name)
        if token.segmented and canonical is not None and how != "fuzzy":
            how = "segmented"
        return Ingredient(token=token, canonical=canonical, how=how, score=score)

    def _normalize_name(self, name: str) -> tuple[str | None, str, float]:
        hit = self._norm.get(name)
        if hit is not None:
            return hit
        found = self.dictionary.lookup(name)
        if found is not None:
            result: tuple[str | None, str, float] = (found.canonical, found.how, found.score)
        elif self.fuzzy:
            fz = self.dictionary.fuzzy(name)
            result = (None, "unknown", 0.0)
            if fz is not None and self._fuzzy_is_safe(name, fz.canonical, fz.score):
                result = (fz.canonical, "fuzzy", fz.score)
        else:
            result = (None, "unknown", 0.0)
        if len(self._norm) >= _PIECE_CACHE_MAX:
            self._norm.clear()
        self._norm[name] = result
        return result

    def _fuzzy_is_safe(self, name: str, canonical: str, score: float) -> bool:
        """A fuzzy match may not land on a table ingredient unless it is very close, and never
        when the written name is as close to one of that entry's excludes."""
        from rapidfuzz import fuzz
        from rapidfuzz.distance import Levenshtein

        hits = self.table.match(canonical, canonical)
        if not hits:
            return True
        k = key(name)
        one_typo = len(k) >= 6 and Levenshtein.distance(fold(k), fold(key(canonical))) <= 1
        if score < _FUZZY_TABLE_SCORE and not one_typo:
            return False
        for entry in self.table.entries:
            if any(h.entry == entry.canonical and h.type == entry.type for h in hits):
                if any(
                    fuzz.ratio(k, ex) >= score - 1 or Levenshtein.distance(k, ex) <= 1
                    for ex in entry.excludes
                ):
                    return False
        return True

    # -- tagging -------------------------------------------------------------------------------

    def parse(self, text: str | None) -> ParsedList:
        """Parse with a bounded cache shared by all Taggers (a catalog tags each text with both
        tables; real catalogs repeat the same lists)."""
        if text is None:
            return parse(None, self.dictionary)
        hit = _PARSED.get(text)
        if hit is None:
            hit = parse(text, self.dictionary)
            if len(_PARSED) >= _PARSE_CACHE_MAX:
                _PARSED.clear()
            _PARSED[text] = hit
        return hit

    def tag(self, text: str | None) -> TagResult:
        """Tag one raw ingredient list.

        Raises:
            InputError: text over the size limit or in another script.
        """
        check_text(text)
        if text:
            text = strip_controls(text)
        fast = self._fast(text) if text else None
        if fast is not None:
            ingredients, found, found_flags = fast
            groups: tuple[str, ...] = ()
            placeholder = False
        else:
            parsed = self.parse(text)
            ingredients = tuple(self.normalize(t) for t in parsed.tokens)
            found = [m for ing in ingredients for m in self._matches(ing)]
            found_flags = (
                [f for ing in ingredients for f in self._cached_flags(ing)]
                if self.flag_index is not None
                else []
            )
            groups, placeholder = parsed.groups, parsed.placeholder
        matches: list[IngredientMatch] = []
        seen: set[tuple[str, str, str]] = set()
        for m in found:
            sig = (m.type, m.entry, m.canonical)
            if sig not in seen:
                seen.add(sig)
                matches.append(m)
        return TagResult(
            types=tuple(sorted({m.type for m in matches})),
            matches=tuple(matches),
            placeholder=placeholder,
            ingredients=ingredients,
            groups=groups,
            flags=_unique_flags(found_flags) if found_flags else (),
        )

    def _cached_flags(self, ing: Ingredient) -> tuple[FlagMatch, ...]:
        ck = (ing.token.text, ing.canonical, ing.how)
        found = self._flag_cache.get(ck)
        if found is None:
            found = self._ingredient_flags(ing)
            if len(self._flag_cache) >= _PIECE_CACHE_MAX:
                self._flag_cache.clear()
            self._flag_cache[ck] = found
        return found

    def _ingredient_flags(self, ing: Ingredient) -> tuple[FlagMatch, ...]:
        """Flags of one ingredient: its standard name, else its written name (a bare CI
        number), plus a decoration that names an ingredient (판테놀(덱스판테놀))."""
        index = self.flag_index
        assert index is not None
        out: list[FlagMatch] = []
        if ing.canonical is not None:
            for h in index.match(ing.canonical):
                how = h.how if ing.how == "exact" else f"{h.how}+{ing.how}"
                out.append(FlagMatch(h.flag, ing.token.text, ing.canonical, h.entry, h.source, how))
        else:
            for h in index.match_written(ing.token.name):
                out.append(
                    FlagMatch(h.flag, ing.token.text, ing.token.name, h.entry, h.source, h.how)
                )
        for attr in ing.token.attrs:
            found = self.dictionary.lookup(attr)
            if found is None or found.canonical == ing.canonical:
                hits = () if found is not None else index.match_written(attr)
                canonical = attr
            else:
                hits = index.match(found.canonical)
                canonical = found.canonical
            for h in hits:
                if any(f.flag == h.flag for f in out):
                    continue  # 청색1호(CI 42090): the name already says it
                out.append(
                    FlagMatch(h.flag, ing.token.text, canonical, h.entry, h.source, f"{h.how}+attr")
                )
        return tuple(out)

    def _matches(self, ing: Ingredient) -> tuple[IngredientMatch, ...]:
        out = []
        for h in self.table.match(ing.canonical, ing.token.name):
            how = f"{h.how}+{ing.how}" if ing.how in ("fuzzy", "segmented") else h.how
            out.append(
                IngredientMatch(
                    type=h.type,
                    token=ing.token.text,
                    canonical=ing.canonical or ing.token.name,
                    entry=h.entry,
                    how=how,
                )
            )
        return tuple(out)

    def _fast(
        self, text: str
    ) -> tuple[tuple[Ingredient, ...], list[IngredientMatch], list[FlagMatch]] | None:
        """Ingredients and matches of a plain comma list from per-piece caches; None -> parser.

        Gives exactly what the full parser gives (tests check this on every real row), at a
        fraction of the cost: real catalogs repeat the same few thousand pieces.
        """
        pieces = simple_pieces(text)
        if pieces is None:
            return None
        cache = self._pieces
        out: list[Ingredient] = []
        found: list[IngredientMatch] = []
        found_flags: list[FlagMatch] = []
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            entry = cache.get(piece)
            if entry is None:
                entry = self._piece(piece)
            known, ms, placed, fl = entry
            pos = len(out)
            ings = placed[pos] if pos < len(placed) else None
            if ings is None:
                ings = self._place(entry, pos)
            if not known and i < last and joins_with_next(piece, pieces[i + 1], self.dictionary):
                return None  # a wrapped name: the parser joins it
            out.extend(ings)
            if ms:
                found.extend(ms)
            if fl:
                found_flags.extend(fl)
        return tuple(out), found, found_flags

    def _piece(
        self, piece: str, store: bool = True
    ) -> tuple[bool, tuple[IngredientMatch, ...], list, tuple[FlagMatch, ...]]:
        """Cache entry of one piece: known?, its matches, its ingredients by start position,
        its flags. `store=False`: computed, not kept (a caller with its own cache)."""
        toks = piece_tokens(piece, self.dictionary)
        ings = tuple(self.normalize(t) for t in toks)
        ms = tuple(m for i in ings for m in self._matches(i))
        fl: tuple[FlagMatch, ...] = ()
        if self.flag_index is not None:
            fl = tuple(f for i in ings for f in self._ingredient_flags(i))
        entry = (piece_known(piece, self.dictionary), ms, [ings], fl)
        if not store:
            return entry
        if len(self._pieces) >= _PIECE_CACHE_MAX:
            self._pieces.clear()
        self._pieces[piece] = entry
        return entry

    @staticmethod
    def _place(entry: tuple, pos: int) -> tuple[Ingredient, ...]:
        """The piece's ingredients with positions from `pos` (made once per position)."""
        placed: list = entry[2]
        ings = placed[0]
        positioned = tuple(
            Ingredient(
                Token(i.token.text, i.token.name, i.token.attrs, None, pos + k, i.token.segmented),
                i.canonical,
                i.how,
                i.score,
            )
            for k, i in enumerate(ings)
        )
        if pos >= len(placed):
            placed.extend([None] * (pos + 1 - len(placed)))
        placed[pos] = positioned
        return positioned


def _unique_flags(found: list[FlagMatch]) -> tuple[FlagMatch, ...]:
    """Flag evidence, one per (flag, entry, standard name), in list order."""
    out: list[FlagMatch] = []
    seen: set[tuple[str, str, str]] = set()
    for f in found:
        sig = (f.flag, f.entry, f.canonical)
        if sig not in seen:
            seen.add(sig)
            out.append(f)
    return tuple(out)


_TAGGERS: dict[str, Tagger] = {}


def get_tagger(table: str = "extended") -> Tagger:
    """The process-wide Tagger for a table."""
    tagger = _TAGGERS.get(table)
    if tagger is None:
        tagger = _TAGGERS[table] = Tagger(table)
    return tagger


def tag(text: str | None, table: str = "extended") -> TagResult:
    """Tag one raw ingredient list with the process-wide Tagger."""
    return get_tagger(table).tag(text)
