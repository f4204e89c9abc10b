"""Products for scalp types, per category (SPEC §6), from the catalog's `recommend_index`.

Per wanted category: products whose ingredients serve any of the wanted types (ingredient table
`seed` or `extended`), ranked `seed` (star rating, then review count, then goods_no) or `bayes`
(a Bayesian average, see docs/catalog.md), one product per brand unless `all_brands`, and a
goods_no shown in an earlier category is not shown again. 양호 (healthy) ranks all products of the
category. JSON form: schema "deeproot.recommend/1" (`RecommendationSet.to_json`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.catalog import db
from deeproot.catalog.schema import TAG_TABLES, type_mask
from deeproot.errors import DataError, InputError

JSON_SCHEMA = "deeproot.recommend/1"
RANKINGS = ("seed", "bayes")
_ORDER = {
    "seed": "rating DESC, review_count DESC, goods_no",
    "bayes": "score_bayes DESC, review_count DESC, goods_no",
}


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
            "categories": [
                {
                    "category": c.category,
                    "category_ko": c.category_ko,
                    "n_fit": c.n_fit,
                    "n_total": c.n_total,
                    "picks": [
                        {k: v for k, v in p.__dict__.items() if k != "matched"}
                        | {"matched": [m.__dict__.copy() for m in p.matched]}
                        for p in c.picks
                    ],
                }
                for c in self.categories
            ],
        }


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], Any]] = {}


def _connection(path: Path) -> Any:
    """A cached read-only connection, reopened when the database file changes."""
    key = str(path.resolve()) if path.exists() else str(path)
    if not path.is_file():
        db.connect_read(path)  # raises the "how to build it" error
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == stamp:
            return hit[1].cursor()
        if hit:
            hit[1].close()
        con = db.connect_read(path)
        try:
            con.execute("SELECT 1 FROM recommend_index LIMIT 0")
        except Exception as exc:
            con.close()
            raise DataError(f"{path} is not a built deeproot catalog; {db.BUILD_HINT}") from exc
        _cache[key] = (stamp, con)
        return con.cursor()


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


def recommend(
    db_path: str | os.PathLike[str] | None,
    *,
    types: Sequence[str],
    categories: Sequence[str] | None = None,
    top: int = 3,
    ranking: str = "seed",
    all_brands: bool = False,
    table: str = "extended",
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
    """
    if ranking not in RANKINGS:
        raise InputError(f"unknown ranking {ranking!r}; valid: {', '.join(RANKINGS)}")
    if table not in TAG_TABLES:
        raise InputError(f"unknown ingredient table {table!r}; valid: {', '.join(TAG_TABLES)}")
    if top < 1:
        raise InputError(f"--top must be at least 1, not {top}")
    keys, table_types = _resolve_types(types)
    cats = [taxonomy.category(c) for c in categories] if categories else list(taxonomy.CATEGORIES)
    cats = list({c.key: c for c in cats}.values())
    path = Path(db_path) if db_path is not None else db.default_db_path()
    cur = _connection(path)
    mask = type_mask(table_types)
    fit = f"(mask_{table} & {mask}) <> 0" if table_types else "TRUE"
    dedupe = (
        ""
        if all_brands
        else (f"QUALIFY row_number() OVER (PARTITION BY brand_key ORDER BY {_ORDER[ranking]}) = 1")
    )
    shown: list[str] = []
    out = []
    try:
        for cat in cats:
            n_total, n_fit = cur.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {fit}) FROM recommend_index "
                "WHERE category = ?",
                [cat.key],
            ).fetchall()[0]
            rows = cur.execute(
                f"SELECT goods_no, rating, score_bayes FROM recommend_index "
                f"WHERE category = ? AND {fit} AND NOT list_contains(?, goods_no) "
                f"{dedupe} ORDER BY {_ORDER[ranking]} LIMIT ?",
                [cat.key, shown, top],
            ).fetchall()
            picks = _details(cur, rows, table, table_types, ranking)
            shown.extend(p.goods_no for p in picks)
            out.append(CategoryPicks(cat.key, cat.ko, picks, n_fit, n_total))
    finally:
        cur.close()
    return RecommendationSet(keys, table_types, table, ranking, top, all_brands, tuple(out))


def _details(
    cur: Any, rows: list[tuple], table: str, table_types: tuple[str, ...], ranking: str
) -> tuple[Pick, ...]:
    if not rows:
        return ()
    ids = [r[0] for r in rows]
    info = {
        r[0]: r
        for r in cur.execute(
            "SELECT goods_no, name, brand, rating, review_count, price_sale, price_list, currency, "
            "image_url, product_url, text_hash FROM products WHERE list_contains(?, goods_no)",
            [ids],
        ).fetchall()
    }
    matched: dict[str, list[MatchedIngredient]] = {}
    hashes = [info[g][10] for g in ids if info[g][10]]
    if table_types and hashes:
        found = cur.execute(
            "SELECT text_hash, type, token, canonical, min(position) FROM text_matches "
            "WHERE table_name = ? AND list_contains(?, type) AND list_contains(?, text_hash) "
            "GROUP BY ALL",
            [table, list(table_types), hashes],
        ).fetchall()
        order = {t: i for i, t in enumerate(table_types)}
        found.sort(key=lambda r: (order[r[1]], r[4] if r[4] is not None else 1 << 30, r[2]))
        for h, typ, token, canonical, _ in found:
            matched.setdefault(h, []).append(MatchedIngredient(typ, token, canonical))
    picks = []
    for rank, (g, rating, bayes) in enumerate(rows, 1):
        _, name, brand, rt, rc, ps, pl, cur_, img, url, h = info[g]
        score = float(bayes if ranking == "bayes" else rating)
        picks.append(
            Pick(
                rank,
                g,
                name,
                brand,
                rt,
                rc,
                ps,
                pl,
                cur_,
                img,
                url,
                round(score, 4),
                tuple(matched.get(h, ())),
            )
        )
    return tuple(picks)
