"""The KCA scalp-ingredient table: which standard names serve which scalp type.

A product gets a type when one of its ingredients is that type's canonical name, an alias, or a
family member (listed, or by `prefix:`/`suffix:` over standard names), and is not an exclude.
Matching is on whole ingredients, never on substrings, so 황 never matches 황색4호.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from deeproot.errors import InputError
from deeproot.ingredients.dictionary import key

TABLES = ("seed", "extended")
# Acylated amino acids (소듐코코일애플아미노산) are surfactants, not the amino acids a
# `suffix:아미노산` family means.
_ACYL = re.compile(
    r"(?:코코일|라우로일|미리스토일|팔미토일|스테아로일|올레오일|카프릴로일|운데실레노일)"
)


@dataclass(frozen=True)
class Entry:
    """One row of the table, for one scalp type."""

    type: str
    canonical: str
    kind: str  # single | family | drug
    aliases: frozenset[str]
    members: frozenset[str]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    excludes: frozenset[str]
    source: str  # seed | extension
    canonical_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical_key", key(self.canonical))


@dataclass(frozen=True)
class Hit:
    """A table entry an ingredient matched, and the way it matched."""

    type: str
    entry: str
    how: str  # canonical | alias | member | prefix | suffix


def _split(cell: str) -> list[str]:
    return [x.strip() for x in (cell or "").split("|") if x.strip()]


class Table:
    """The KCA table restricted to `seed` rows or `extended` (all rows)."""

    def __init__(self, entries: list[Entry], name: str):
        self.name = name
        self.entries = entries
        self.types = tuple(sorted({e.type for e in entries}))
        self._cache: dict[tuple[str | None, str], tuple[Hit, ...]] = {}
        # entries reachable from a name key, so a lookup reads a handful of rows, not all
        self._by_key: dict[str, set[int]] = {}
        for i, e in enumerate(entries):
            for k in (e.canonical_key, *e.aliases, *e.members):
                self._by_key.setdefault(k, set()).add(i)
        self._affixed = [i for i, e in enumerate(entries) if e.prefixes or e.suffixes]

    def match(self, canonical: str | None, written: str) -> tuple[Hit, ...]:
        """Entries matched by an ingredient with standard name `canonical` written as `written`."""
        cache_key = (canonical, written)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        wk = key(written)
        ck = None if canonical is None else key(canonical)
        names = {wk} if ck is None else {ck, wk}
        subject = wk if ck is None else ck
        candidates = set(self._affixed)
        for k in names:
            candidates |= self._by_key.get(k, set())
        hits: list[Hit] = []
        seen: set[tuple[str, str]] = set()
        for i in sorted(candidates):  # table order, as the evidence lists it
            e = self.entries[i]
            if names & e.excludes:
                continue
            how = None
            if ck is not None and ck == e.canonical_key:
                how = "alias" if wk in e.aliases else "canonical"
            elif wk in e.aliases:
                how = "alias"
            elif names & e.members:
                how = "member"
            elif any(subject.startswith(p) for p in e.prefixes):
                how = "prefix"
            elif any(subject.endswith(s) and subject != s for s in e.suffixes) and not _ACYL.search(
                subject
            ):
                how = "suffix"
            if how is not None and (e.type, e.canonical) not in seen:
                seen.add((e.type, e.canonical))
                hits.append(Hit(e.type, e.canonical, how))
        result = tuple(hits)
        self._cache[cache_key] = result
        return result


@cache
def load_table(name: str = "extended") -> Table:
    """The shipped KCA table: `seed` (the original rows) or `extended` (all rows)."""
    if name not in TABLES:
        raise InputError(f"unknown table {name!r}; valid: {', '.join(TABLES)}")
    entries: list[Entry] = []
    path = resources.files("deeproot.data").joinpath("kca_scalp_ingredients.csv")
    with path.open(encoding="utf-8-sig") as fh:
        for r in csv.DictReader(fh):
            if name == "seed" and r["source"] != "seed":
                continue
            members = _split(r["members"])
            entries.append(
                Entry(
                    type=r["scalp_type"],
                    canonical=r["canonical_ko"],
                    kind=r["kind"],
                    aliases=frozenset(key(a) for a in _split(r["aliases"])),
                    members=frozenset(key(m) for m in members if ":" not in m),
                    prefixes=tuple(key(m[7:]) for m in members if m.startswith("prefix:")),
                    suffixes=tuple(key(m[7:]) for m in members if m.startswith("suffix:")),
                    excludes=frozenset(key(x) for x in _split(r["excludes"])),
                    source=r["source"],
                )
            )
    return Table(entries, name)
