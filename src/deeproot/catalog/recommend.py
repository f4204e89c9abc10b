"""Products for scalp types, per category (SPEC §6), from the catalog's `recommend_index`.

Per wanted category: products whose ingredients serve any of the wanted types (ingredient table
`seed` or `extended`), ranked `seed` (star rating, then review count, then goods_no) or `bayes`
(a Bayesian average, see docs/catalog.md), one product per brand unless `all_brands`, and a
goods_no shown in an earlier category is not shown again. 양호 (healthy) ranks all products of the
category. Sold-out products are left out unless asked for; `free_of` / `no_allergens` leave out
products carrying those flags (and products without a readable list); `prefer_functional` and
`prefer_allergen_free` rank the preferred products first. JSON form: schema
"deeproot.recommend/1" (`RecommendationSet.to_json`).
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.catalog import db, schema
from deeproot.catalog.schema import (
    DETAIL_COLUMNS,
    EVIDENCE_SQL,
    SHORTLIST_K,
    TAG_TABLES,
    type_mask,
)
from deeproot.errors import DataError, InputError
from deeproot.taxonomy import TABLE_TYPES

JSON_SCHEMA = "deeproot.recommend/1"
RANKINGS = ("seed", "bayes")


class Ranking(enum.StrEnum):
    """How products are ranked (`--ranking`)."""

    seed = "seed"
    bayes = "bayes"


class Table(enum.StrEnum):
    """Which ingredient table's tags are used (`--table`)."""

    seed = "seed"
    extended = "extended"


@dataclass(frozen=True)
class MatchedIngredient:
    type: str  # ingredient-table type (지성, 건성, 민감성, 비듬, 탈모, 지루성)
    token: str  # as written on the label
    canonical: str  # standard name


@dataclass(frozen=True)
class Pick:
    rank: int
    goods_no: str
    name: str | None
    brand: str | None
    rating: float | None
    review_count: int | None
    price_sale: int | None
    price_list: int | None
    currency: str | None
    image_url: str | None
    product_url: str | None
    score: float  # the ranking score: the rating (seed) or the Bayesian average (bayes)
    matched: tuple[MatchedIngredient, ...]
    sold_out: bool | None = None  # None: the source did not say
    flags: tuple[str, ...] = ()  # flag keys the ingredient list carries
    allergens: tuple[str, ...] = ()  # MFDS fragrance allergens in the list (standard names)
    free_of: tuple[str, ...] | None = None  # free-of families absent; None without a list
    functional_claim: str | None = None  # the notice's functional-cosmetic row, as written
    hair_loss_functional_claim: bool = False  # states the 탈모 증상 완화 functional claim
    cautions: tuple[str, ...] = ()  # e.g. ("allergen",) for the sensitive type


@dataclass(frozen=True)
class CategoryPicks:
    category: str  # taxonomy key
    category_ko: str
    picks: tuple[Pick, ...]
    n_fit: int  # products of the category tagged with any wanted type (all when healthy)
    n_total: int  # products of the category


@dataclass(frozen=True)
class RecommendationSet:
    types: tuple[str, ...]  # scalp-type keys asked for
    table_types: tuple[str, ...]  # ingredient-table types used (empty when healthy)
    table: str
    ranking: str
    top: int
    all_brands: bool
    categories: tuple[CategoryPicks, ...]
    include_sold_out: bool = False
    free_of: tuple[str, ...] = ()
    no_allergens: bool = False
    prefer_functional: bool = False
    prefer_allergen_free: bool = False

    def to_json(self) -> dict[str, Any]:
        """The documented `deeproot.recommend/1` object."""
        return {
            "schema": JSON_SCHEMA,
            "types": list(self.types),
            "types_ko": [taxonomy.scalp_type(t).ko for t in self.types],
            "table_types": list(self.table_types),
            "table": self.table,
            "ranking": self.ranking,
            "top": self.top,
            "all_brands": self.all_brands,
            "include_sold_out": self.include_sold_out,
            "free_of": list(self.free_of),
            "no_allergens": self.no_allergens,
            "prefer_functional": self.prefer_functional,
            "prefer_allergen_free": self.prefer_allergen_free,
            "categories": [
                {
                    "category": c.category,
                    "category_ko": c.category_ko,
                    "n_fit": c.n_fit,
                    "n_total": c.n_total,
                    "picks": [_pick_json(p) for p in c.picks],
                }
                for c in self.categories
            ],
        }


def _pick_json(p: Pick) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in p.__dict__.items():
        if k == "matched":
            d[k] = [m.__dict__.copy() for m in v]
        elif isinstance(v, tuple):
            d[k] = list(v)
        else:
            d[k] = v
    return d


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int, int], Any]] = {}


def _connection(path: Path) -> Any:
    """A cached read-only connection, reopened when the database file changes."""
    key = str(path.resolve()) if path.exists() else str(path)
    if not path.is_file():
        db.connect_read(path)  # raises the "how to build it" error
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # a build swaps in a new file (new inode)
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == stamp:
            return _cursor(hit[1])
        if hit:
            hit[1].close()
        con = db.connect_read(path)
        version = schema.stored_version(con)
        if version != schema.SCHEMA_VERSION:
            con.close()
            if version is None:
                raise DataError(f"{path} is not a built deeproot catalog; {db.BUILD_HINT}")
            raise DataError(
                f"{path} holds a catalog of schema version {version}, this deeproot reads "
                f"version {schema.SCHEMA_VERSION}; rebuild it with `deeproot catalog build`"
            )
        if not con.execute("SELECT count(*) FROM products").fetchall()[0][0]:
            con.close()
            raise DataError(f"the catalog {path} holds no products; {db.BUILD_HINT}")
        _cache[key] = (stamp, con)
        return _cursor(con)


def _cursor(con: Any) -> Any:
    """A cursor of the cached connection, on the attached catalog (USE is per cursor)."""
    cur = con.cursor()
    cur.execute("USE catalog")
    return cur


def close_connections() -> None:
    """Close cached read-only connections (lets another process write the database)."""
    with _lock:
        for _, con in _cache.values():
            con.close()
        _cache.clear()


def _resolve_types(types: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not types:
        raise InputError(
            "no scalp type given; pass --type, or --survey-type / --concern for the survey rule"
        )
    keys = list(dict.fromkeys(taxonomy.scalp_type(t).key for t in types))
    order = [t.key for t in taxonomy.SCALP_TYPES]
    keys.sort(key=order.index)
    filtering = [k for k in keys if k != "healthy"]
    table_types = tuple(
        dict.fromkeys(t for k in filtering if (t := taxonomy.scalp_type(k).table_type))
    )
    return tuple(keys), table_types


def _check_flags(free_of: Sequence[str]) -> tuple[str, ...]:
    valid = schema.free_of_keys()
    out = []
    for f in free_of:
        key = f.strip().lower().replace("-", "_")
        if key.endswith("_free"):
            key = key[: -len("_free")]
        if key not in valid:
            raise InputError(f"unknown free-of family {f!r}; valid: {', '.join(valid)}")
        out.append(key)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class _Filter:
    """What leaves a product out, and what ranks it first."""

    include_sold_out: bool
    bad_mask: int  # flags that leave a product out
    need_list: bool  # a product without a readable list cannot be shown free of anything
    prefer: str | None  # SQL over recommend_index/shortlist columns; preferred products first

    def accepts(self, sold_out: bool, flags: int, has_list: bool) -> bool:
        if sold_out and not self.include_sold_out:
            return False
        if self.need_list and not has_list:
            return False
        return not (flags & self.bad_mask)

    def sql(self) -> str:
        parts = ["TRUE"]
        if not self.include_sold_out:
            parts.append("NOT sold_out")
        if self.need_list:
            parts.append("has_list")
        if self.bad_mask:
            parts.append(f"(flag_mask & {self.bad_mask}) = 0")
        return " AND ".join(parts)


def recommend(
    db_path: str | os.PathLike[str] | None,
    *,
    types: Sequence[str],
    categories: Sequence[str] | None = None,
    top: int = 3,
    ranking: str = "seed",
    all_brands: bool = False,
    table: str = "extended",
    free_of: Sequence[str] = (),
    no_allergens: bool = False,
    include_sold_out: bool = False,
    prefer_functional: bool = False,
    prefer_allergen_free: bool = False,
) -> RecommendationSet:
    """The top products per category for scalp types.

    Args:
        db_path: the catalog database (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`).
        types: scalp types by key or Korean label (`oily`, `지성`, `탈모성`, `healthy` …);
            healthy alone ranks every product; with other types it adds nothing.
        categories: category keys or labels; None or empty means all seven, in taxonomy order.
        top: products per category.
        ranking: `seed` (rating, review count) or `bayes` (Bayesian average).
        all_brands: keep several products of one brand.
        table: ingredient table whose tags are used, `seed` or `extended`.
        free_of: free-of families (`sulfate_surfactant`, `silicone`, …): leave out products
            whose list carries any of them, and products without a readable list.
        no_allergens: leave out products with an MFDS fragrance allergen (and without a list).
        include_sold_out: show sold-out products too (marked); by default they are left out.
        prefer_functional: rank products that state the 탈모 증상 완화 functional claim first
            (used by diagnose for the hair-loss symptom); a product that only contains a
            functional active is not preferred.
        prefer_allergen_free: rank products with a readable list and no fragrance allergen
            first (for 민감성 sensitive scalps, whose picks always show their allergens).

    Raises:
        InputError: an unknown type, category, ranking, table or family (listing the valid ones).
        DataError: no catalog at `db_path` (saying how to build one), or an empty catalog.
    """
    ranking, table = str(ranking), str(table)
    if ranking not in RANKINGS:
        raise InputError(f"unknown ranking {ranking!r}; valid: {', '.join(RANKINGS)}")
    if table not in TAG_TABLES:
        raise InputError(f"unknown ingredient table {table!r}; valid: {', '.join(TAG_TABLES)}")
    if top < 1:
        raise InputError(f"--top must be at least 1, not {top}")
    families = _check_flags(free_of)
    keys, table_types = _resolve_types(types)
    cats = [taxonomy.category(c) for c in categories] if categories else list(taxonomy.CATEGORIES)
    cats = list({c.key: c for c in cats}.values())
    bad = families + (("allergen",) if no_allergens else ())
    allergen_bit = schema.flag_mask(["allergen"])
    prefer = []
    if prefer_functional:
        prefer.append("hair_loss_claim")
    if prefer_allergen_free:
        prefer.append(f"(has_list AND (flag_mask & {allergen_bit}) = 0)")
    filt = _Filter(
        include_sold_out=include_sold_out,
        bad_mask=schema.flag_mask(bad),
        need_list=bool(bad),
        prefer=" AND ".join(prefer) or None,
    )
    path = Path(db_path) if db_path is not None else db.default_db_path()
    cur = _connection(path)
    try:
        chosen, counts = _choose(
            cur, [c.key for c in cats], table, table_types, ranking, top, all_brands, filt
        )
    finally:
        cur.close()
    order = {t: i for i, t in enumerate(table_types)}
    sensitive = "sensitive" in keys
    out = []
    for cat in cats:
        picks = []
        for rank, (score, d) in enumerate(chosen[cat.key], 1):
            ev = [e for e in (d[_EV] or []) if e["type"] in order]
            ev.sort(key=lambda e: order[e["type"]])  # stable: label order within a type
            matched = tuple(MatchedIngredient(e["type"], e["token"], e["canonical"]) for e in ev)
            g, name, brand, rating, reviews, sale, listp, currency, image, url = d[:10]
            sold, flags, allergens, free, claim, hair_claim = d[10:16]
            picks.append(
                Pick(
                    rank,
                    g,
                    name,
                    brand,
                    rating,
                    reviews,
                    sale,
                    listp,
                    currency,
                    image,
                    url,
                    round(float(score), 4),
                    matched,
                    sold_out=sold,
                    flags=tuple(flags or ()),
                    allergens=tuple(allergens or ()),
                    free_of=tuple(free) if free is not None else None,
                    functional_claim=claim,
                    hair_loss_functional_claim=bool(hair_claim),
                    cautions=("allergen",) if sensitive and allergens else (),
                )
            )
        n_total, n_fit = counts.get(cat.key, (0, 0))
        out.append(CategoryPicks(cat.key, cat.ko, tuple(picks), n_fit, n_total))
    return RecommendationSet(
        keys, table_types, table, ranking, top, all_brands, tuple(out),
        include_sold_out=include_sold_out, free_of=families, no_allergens=no_allergens,
        prefer_functional=prefer_functional, prefer_allergen_free=prefer_allergen_free,
    )


# DETAIL_COLUMNS (goods_no … hair_loss_functional_claim), then the evidence list of the table.
_DETAIL = ", ".join(DETAIL_COLUMNS)
_EV = len(DETAIL_COLUMNS)
# what the walk reads of a ranked product, after (rank, goods_no, brand_key, score)
_ATTRS = "is_sold_out IS TRUE, flag_mask, has_list"


def _choose(
    cur: Any,
    cats: list[str],
    table: str,
    table_types: tuple[str, ...],
    ranking: str,
    top: int,
    all_brands: bool,
    filt: _Filter,
) -> tuple[dict[str, list[tuple[float, tuple]]], dict[str, tuple[int, int]]]:
    """Per category, the chosen (score, detail row) pairs, and (n_total, n_fit).

    Reads the precomputed shortlists (the top SHORTLIST_K per type and category, with the
    details to show). The union of the wanted types' lists cut at position L, sorted by rank,
    is exact for its first L entries (each of them is within the first L of its own list).
    A short prefix is read first, then the whole shortlist; only when brand de-duplication, the
    filters and the cross-category exclusion use that up does it scan `recommend_index`, as it
    does at once when a preference reorders the ranking.
    """
    mask = type_mask(table_types)
    bits = [1 << TABLE_TYPES.index(t) for t in table_types]
    counts_by_mask: dict[tuple[str, int], tuple[int, int]] = {
        (c, m): (nt, nf)
        for c, m, nt, nf in cur.execute(
            f"SELECT category, mask, n_total, n_fit_{table} FROM fit_counts "
            "WHERE list_contains(?, mask) AND list_contains(?, category)",
            [[mask, *bits], cats],
        ).fetchall()
    }
    counts = {
        c: (nt, nf if table_types else nt)
        for (c, m), (nt, nf) in counts_by_mask.items()
        if m == mask
    }
    score = "score_bayes" if ranking == "bayes" else "coalesce(rating, 0.0)"
    if table_types:
        where, params = "table_name = ? AND list_contains(?, type)", [table, list(table_types)]
    else:
        where, params = "table_name = '*' AND type = '*'", []
    shown: set[str] = set()
    slow: set[str] = set()  # chosen by the slow path, so possibly not in the shortlist
    picked: dict[str, list[tuple]] = {}
    first = min(SHORTLIST_K, max(16, 4 * top))  # most answers need only a short prefix
    lists: dict[int, dict[str, list[tuple]]] = {}

    def ranked(c: str, limit: int) -> tuple[list[tuple], bool]:
        if limit not in lists:
            lists[limit] = _shortlist(cur, where, [*params, cats], ranking, score, limit)
        per_list = [counts_by_mask.get((c, b), (0, 0))[1] for b in bits]
        truncated = any(n > limit for n in per_list or [counts.get(c, (0, 0))[0]])
        merged = lists[limit].get(c, [])
        return (merged[:limit] if truncated else merged), truncated

    for c in cats:
        if filt.prefer is None:
            for limit in dict.fromkeys((first, SHORTLIST_K)):
                items, truncated = ranked(c, limit)
                picks = _walk(items, top, all_brands, shown, filt)
                if len(picks) == top or not truncated:
                    break
            else:
                picks = _scan(cur, c, table, mask, ranking, top, all_brands, shown, filt)
                slow.update(p[1] for p in picks)
        else:
            picks = _scan(cur, c, table, mask, ranking, top, all_brands, shown, filt)
            slow.update(p[1] for p in picks)
        shown.update(p[1] for p in picks)
        picked[c] = picks
    # details only for the few products chosen (evidence lists are costly to fetch): the
    # shortlist holds them for its own products, the slow path looks them up
    details: dict[str, tuple] = {}
    if shown - slow:
        for d in cur.execute(
            f"SELECT DISTINCT ON (goods_no) {_DETAIL}, ev_{table} FROM recommend_shortlist "
            "WHERE table_name IN (?, '*') AND list_contains(?, goods_no)",  # 3x less than IN
            [table, sorted(shown - slow)],
        ).fetchall():
            details[d[0]] = d
    if slow:
        details.update(_details_slow(cur, sorted(slow), table))
    chosen = {c: [(p[3], details[p[1]]) for p in picks] for c, picks in picked.items()}
    return chosen, counts


def _shortlist(
    cur: Any, where: str, params: list, ranking: str, score: str, limit: int
) -> dict[str, list[tuple]]:
    """Per category, the union of the wanted lists' first `limit` entries, in rank order."""
    rows = cur.execute(
        f"SELECT category, {ranking}_rank, goods_no, brand_key, {score}, {_ATTRS} "
        f"FROM recommend_shortlist WHERE {where} AND list_contains(?, category) "
        f"AND pos_{ranking} <= {int(limit)} ORDER BY category, {ranking}_rank",
        params,
    ).fetchall()
    by_cat: dict[str, list[tuple]] = {}
    for c, *item in rows:
        lst = by_cat.setdefault(c, [])
        if not lst or lst[-1][0] != item[0]:  # one product can sit in several types' lists
            lst.append(tuple(item))
    return by_cat


def _walk(
    ranked: list[tuple], top: int, all_brands: bool, shown: set[str], filt: _Filter
) -> list[tuple]:
    """The first `top` items (rank, goods_no, brand_key, score, sold_out, flag_mask, has_list)
    not shown yet and not filtered out, one per brand."""
    brands: set[str] = set()
    picks = []
    for item in ranked:
        g, b = item[1], item[2]
        if g in shown or (not all_brands and b in brands):
            continue
        if not filt.accepts(item[4], item[5], item[6]):
            continue
        brands.add(b)
        picks.append(item)
        if len(picks) == top:
            break
    return picks


def _scan(
    cur: Any,
    cat: str,
    table: str,
    mask: int,
    ranking: str,
    top: int,
    all_brands: bool,
    shown: set[str],
    filt: _Filter,
) -> list[tuple]:
    """The slow path: walk `recommend_index` in (preference, rank) order, fetching more until
    enough."""
    fit = f"(mask_{table} & {mask}) <> 0" if mask else "TRUE"
    rank_col, score = f"{ranking}_rank", "score_bayes" if ranking == "bayes" else "rating"
    order = f"({filt.prefer}) DESC, {rank_col}" if filt.prefer else rank_col
    limit = 4 * SHORTLIST_K
    while True:
        rows = cur.execute(
            f"SELECT {rank_col}, goods_no, brand_key, {score}, sold_out, flag_mask, has_list "
            f"FROM recommend_index WHERE category = ? AND {fit} AND {filt.sql()} "
            f"ORDER BY {order} LIMIT ?",
            [cat, limit],
        ).fetchall()
        picks = _walk(rows, top, all_brands, shown, filt)
        if len(picks) == top or len(rows) < limit:
            break
        limit *= 4
    return picks


def _details_slow(cur: Any, goods: list[str], table: str) -> dict[str, tuple]:
    """Details and evidence of products outside the shortlist (scans; the rare path)."""
    rows = cur.execute(
        f"""WITH p AS (SELECT {_DETAIL}, text_hash FROM products
                       WHERE goods_no IN (SELECT unnest(?))),
        ev AS ({EVIDENCE_SQL.replace("{source}", "p")})
        SELECT {", ".join(f"p.{c}" for c in DETAIL_COLUMNS)}, ev.ev FROM p
        LEFT JOIN ev ON ev.text_hash = p.text_hash AND ev.table_name = ?""",
        [goods, table],
    ).fetchall()
    return {r[0]: r for r in rows}
