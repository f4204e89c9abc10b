"""What changed between two complete crawls of the store (schema `deeproot.changes/1`).

Both crawls are read straight from their Parquet partitions (complete crawls only, found the way
`deeproot.catalog.store` finds them), never from the catalog's tables. DuckDB joins them on
goods_no and returns only the products whose fields differ, so a report over a million products
brings a few thousand rows into Python. Product fields come from the product's first record
(category, then listing rank); a product listed in two categories is one product.

Kinds, each a list in `changes` (see docs/refresh.md for every field):

- `new`: goods_no in the newer crawl only.
- `delisted`: in the older crawl only, in a category the newer crawl covered (a crawl of only
  `shampoo` does not delist the other categories).
- `sold_out` / `back_in_stock`: `sold_out` became true (from false, or from unknown when the
  older crawl predates the column) / became false from true.
- `price`: sale or list price changed (with the change in % of the old sale price).
- `ratings`: star rating or review count moved.
- `reformulated`: the ingredient text changed and the set of ingredients did: ingredients added and
  removed by MFDS standard name (tokens the engine does not know, as written), scalp types and
  flags gained and lost.
- `text_changed`: the text changed but no ingredient was added or removed (spacing, separators,
  spelling variants of one name, a new order), or a list appeared or disappeared.
- `rank`: recommendation positions that moved, per scalp type x category; only a refresh can
  compute these (it asks `recommend` before and after its catalog build), so a report made
  from the store alone says `null`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.errors import DataError, InputError

log = logging.getLogger(__name__)

JSON_SCHEMA = "deeproot.changes/1"
KINDS = (
    "new",
    "delisted",
    "sold_out",
    "back_in_stock",
    "price",
    "ratings",
    "reformulated",
    "text_changed",
    "rank",
)
RANK_NOTE = (
    "recommendation rank changes are only in refresh reports (deeproot refresh compares "
    "recommendations before and after its catalog build)"
)

# column -> DuckDB type of the fields compared; a column a crawl lacks reads as NULL
_FIELDS = (
    ("category", "VARCHAR"),
    ("listing_rank", "INTEGER"),
    ("brand", "VARCHAR"),
    ("name", "VARCHAR"),
    ("price_sale", "INTEGER"),
    ("price_list", "INTEGER"),
    ("currency", "VARCHAR"),
    ("rating", "DOUBLE"),
    ("review_count", "INTEGER"),
    ("sold_out", "BOOLEAN"),
    ("ingredients_text", "VARCHAR"),
    ("product_url", "VARCHAR"),
)
_COMPARED = (
    "brand",
    "name",
    "price_sale",
    "price_list",
    "rating",
    "review_count",
    "sold_out",
    "text",
)


@dataclass(frozen=True)
class CrawlRef:
    """One complete crawl of the store, as the report names it."""

    crawl_id: str
    crawled_at: str | None  # ISO time of its newest record (UTC)
    source: str  # "crawl", or "feed:<name>" for an imported feed
    products: int
    categories: tuple[str, ...]  # categories it covered
    files: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "crawl_id": self.crawl_id,
            "crawled_at": self.crawled_at,
            "source": self.source,
            "products": self.products,
            "categories": list(self.categories),
        }


@dataclass(frozen=True)
class ChangeReport:
    """Changes between two complete crawls; `to_json()` is the `deeproot.changes/1` object."""

    store: str
    before: CrawlRef | None  # None: the newer crawl is the first one
    after: CrawlRef
    changes: dict[str, list[dict[str, Any]] | None]  # kind -> entries (rank: None if unknown)
    notes: tuple[str, ...] = ()
    generated_at: str = ""
    refresh: dict[str, Any] | None = None  # what the refresh did (crawl, build), when one made it

    @property
    def empty(self) -> bool:
        """True when nothing at all changed."""
        return not any(self.changes.get(k) for k in KINDS)

    def counts(self) -> dict[str, int | None]:
        return {
            k: (None if self.changes.get(k) is None else len(self.changes[k] or [])) for k in KINDS
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": JSON_SCHEMA,
            "generated_at": self.generated_at,
            "store": self.store,
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json(),
            "summary": self.counts(),
            "changes": {k: self.changes.get(k) for k in KINDS},
            "notes": list(self.notes),
        }
        if self.refresh is not None:
            out["refresh"] = self.refresh
        return out

    def with_ranks(
        self, rank: list[dict[str, Any]] | None, refresh: dict[str, Any] | None
    ) -> ChangeReport:
        """A copy with the rank changes and the refresh's own summary filled in."""
        changes = dict(self.changes)
        changes["rank"] = rank
        notes = tuple(n for n in self.notes if n != RANK_NOTE)
        if rank is None:
            notes = (*notes, RANK_NOTE)
        return ChangeReport(
            self.store, self.before, self.after, changes, notes, self.generated_at, refresh
        )


# --------------------------------------------------------------------------- crawls of the store


def _manifest(store: Path, crawl_id: str, path: Path | None) -> dict[str, Any]:
    p = path or store / "crawls" / f"{crawl_id}.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _covered(manifest: dict[str, Any]) -> tuple[str, ...] | None:
    """Category keys a crawl set out to cover, from its manifest; None when it does not say."""
    cats = (manifest.get("settings") or {}).get("categories")
    if not isinstance(cats, list) or not cats:
        cats = manifest.get("categories_covered")
        if not isinstance(cats, list) or not cats:
            return None
    keys = [c.get("key") if isinstance(c, dict) else c for c in cats]
    return tuple(k for k in keys if isinstance(k, str)) or None


def complete_crawls(
    store: str | os.PathLike[str],
) -> list[tuple[str, Path | None, tuple[Path, ...]]]:
    """(crawl_id, manifest, files) of every complete crawl, oldest first (ids sort by time)."""
    from deeproot.catalog.store import discover

    crawls = [c for c in discover(Path(store)) if c.complete]
    return [
        (c.crawl_id, c.manifest, tuple(c.files)) for c in sorted(crawls, key=lambda c: c.crawl_id)
    ]


def _parse_since(since: str) -> datetime | None:
    """A DATE or date-time (UTC when no zone is given), or None when `since` is not a date."""
    try:
        when = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _started(crawl_id: str) -> datetime | None:
    try:
        return datetime.strptime(crawl_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def pick_crawls(
    crawls: Sequence[tuple[str, Path | None, tuple[Path, ...]]],
    since: str | None,
    until: str | None = None,
) -> tuple[int | None, int]:
    """Indexes of (before, after) in `crawls`.

    after: `until` (a crawl id) or the newest. before: `since` as a crawl id; `since` as a date
    is the newest crawl older than `after` that started before that moment (a date alone means
    its midnight UTC);
    no `since`: the crawl just before `after`.
    """
    ids = [c[0] for c in crawls]
    if not ids:
        raise InputError(
            "no complete crawl in the store; run `deeproot crawl` or `deeproot refresh` first"
        )
    if until is None:
        after = len(ids) - 1
    elif until in ids:
        after = ids.index(until)
    else:
        raise InputError(f"no complete crawl {until!r} in the store; complete crawls: {_few(ids)}")
    if since is None:
        return (after - 1 if after > 0 else None), after
    if since in ids:
        before = ids.index(since)
    else:
        when = _parse_since(since)
        if when is None and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", since):
            raise InputError(
                f"--since {since}: no complete crawl with that id in the store (it is running, "
                f"stopped or failed, or was removed); complete crawls: {_few(ids)}"
            )
        if when is None:
            raise InputError(
                f"--since {since!r} is neither a complete crawl id nor a date (YYYY-MM-DD or ISO "
                f"date-time); complete crawls: {_few(ids)}"
            )
        earlier = [
            i for i, cid in enumerate(ids[:after]) if (t := _started(cid)) is not None and t < when
        ]
        if not earlier:
            raise InputError(
                f"no complete crawl started before {since}; the oldest is {ids[0]}: pass a later "
                "date or a crawl id"
            )
        before = earlier[-1]
    if before >= after:
        raise InputError(
            f"--since {since} names crawl {ids[before]}, which is not older than {ids[after]}"
        )
    return before, after


def _few(ids: list[str]) -> str:
    return ", ".join(ids[-5:]) + (f" (and {len(ids) - 5} older)" if len(ids) > 5 else "")


# --------------------------------------------------------------------------- reading and joining


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_FIRST = "struct_pack(c := category, r := coalesce(listing_rank, 2147483647))"
_ROW = (
    "goods_no",
    "brand",
    "name",
    "price_sale",
    "price_list",
    "currency",
    "rating",
    "review_count",
    "sold_out",
    "text",
    "product_url",
    "categories",
)


@dataclass
class _Crawl:
    """One crawl inside the comparison's DuckDB connection."""

    name: str  # temp table: goods_no, h (a hash of the compared fields of its first record)
    source: str  # read_parquet(...) over its files, with the compared fields cast
    products: int = 0
    categories: tuple[str, ...] = ()


def _load(con: Any, name: str, files: tuple[Path, ...]) -> _Crawl:
    """One row per goods_no with a hash of its compared fields, read from the crawl's files.

    Only the hash of each product's first record (category, then listing rank) is kept: the
    fields themselves are read again for the few products whose hash changed. At 1M products
    this keeps the comparison within a few hundred MB.
    """
    flist = "[" + ", ".join(_q(str(f)) for f in files) + "]"
    raw = f"read_parquet({flist}, union_by_name=true, hive_partitioning=false)"
    have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()}
    if "goods_no" not in have:
        raise DataError(f"crawl files {files[0].parent} have no goods_no column")
    exprs = [
        f"TRY_CAST({c} AS {t}) AS {c}" if c in have else f"NULL::{t} AS {c}" for c, t in _FIELDS
    ]
    src = (
        f"(SELECT CAST(goods_no AS VARCHAR) AS goods_no, {', '.join(exprs)} FROM {raw} "
        "WHERE goods_no IS NOT NULL)"
    )
    # the raw text is hashed (trim() would double the cost of the scan): a text that differs
    # only in outer whitespace is fetched and then found equal by `_diff_rows`
    compared = ", ".join(c if c != "text" else "ingredients_text" for c in _COMPARED)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT goods_no, x.h, x.th FROM (
            SELECT goods_no,
                   arg_min(struct_pack(h := hash({compared}),
                                       th := hash(ingredients_text)),
                           {_FIRST}) AS x
            FROM {src} GROUP BY goods_no)"""
    )
    (n,) = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
    cats = [r[0] for r in con.execute(f"SELECT DISTINCT category FROM {src}").fetchall()]
    return _Crawl(name, src, int(n), tuple(c for c in cats if c))


def _details(con: Any, crawl: _Crawl, goods: list[str]) -> dict[str, dict[str, Any]]:
    """The fields of a few products (of their first record); `text` is the text's hash (the
    texts themselves are read only where the hashes differ: that column is most of a crawl)."""
    if not goods:
        return {}
    fields = ", ".join(f"{c} := {c}" for c in _ROW if c not in ("goods_no", "text", "categories"))
    rows = con.execute(
        f"""SELECT s.goods_no, arg_min(struct_pack({fields}), {_FIRST}) AS v,
                   list(DISTINCT s.category) AS categories, any_value(t.th)
            FROM {crawl.source} s JOIN {crawl.name} t USING (goods_no)
            WHERE s.goods_no IN (SELECT unnest(?)) GROUP BY s.goods_no""",
        [goods],
    ).fetchall()
    return {g: {"goods_no": g, **v, "text": th, "categories": cats} for g, v, cats, th in rows}


def _texts(con: Any, crawl: _Crawl, goods: list[str]) -> dict[str, str | None]:
    """The ingredient text of each product (of its first record), for a few goods_no."""
    rows = con.execute(
        f"""SELECT goods_no, arg_min(nullif(trim(ingredients_text), ''), {_FIRST})
            FROM {crawl.source} WHERE goods_no IN (SELECT unnest(?)) GROUP BY goods_no""",
        [goods],
    ).fetchall()
    return dict(rows)


def _diff_rows(
    con: Any, old: _Crawl, new: _Crawl
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """(before, after) of every product that is new, gone, or has a compared field changed."""
    goods = [
        r[0]
        for r in con.execute(
            f"""SELECT coalesce(o.goods_no, n.goods_no) AS g
            FROM {old.name} o FULL OUTER JOIN {new.name} n ON o.goods_no = n.goods_no
            WHERE o.h IS DISTINCT FROM n.h ORDER BY g"""
        ).fetchall()
    ]
    before, after = _details(con, old, goods), _details(con, new, goods)
    pairs = [(before.get(g), after.get(g)) for g in goods]
    edited = [
        g for g, (o, n) in zip(goods, pairs, strict=True) if o and n and o["text"] != n["text"]
    ]
    if edited:
        olds, news = _texts(con, old, edited), _texts(con, new, edited)
        for g in edited:
            before[g]["text"], after[g]["text"] = olds.get(g), news.get(g)
    # a guard: the hashes cover exactly the compared fields, so this drops nothing unless the
    # hash of one product's fields is computed differently in the two crawls (a type change)
    return [
        (o, n) for o, n in pairs if o is None or n is None or any(o[c] != n[c] for c in _COMPARED)
    ]


def _meta(
    crawl: _Crawl, crawl_id: str, manifest: dict[str, Any], files: tuple[Path, ...]
) -> CrawlRef:
    covered = _covered(manifest) or crawl.categories
    source = manifest.get("source")
    crawled_at = (
        manifest.get("finished_at") or manifest.get("crawled_at") or manifest.get("started_at")
    )
    return CrawlRef(
        crawl_id=crawl_id,
        crawled_at=str(crawled_at) if crawled_at else None,
        source=f"feed:{source}" if source and source != "crawl" else "crawl",
        products=crawl.products,
        categories=_taxonomy_order(covered),
        files=files,
    )


def _taxonomy_order(keys: Iterable[str]) -> tuple[str, ...]:
    order = {c.key: i for i, c in enumerate(taxonomy.CATEGORIES)}
    return tuple(sorted(set(keys), key=lambda k: (order.get(k, 99), k)))


# --------------------------------------------------------------------------- classifying


def _ident(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "goods_no": p["goods_no"],
        "brand": p["brand"],
        "name": p["name"],
        "categories": list(_taxonomy_order(p["categories"] or ())),
    }


class _Ingredients:
    """Tags each distinct text once; the sets a reformulation is judged on."""

    def __init__(self) -> None:
        from deeproot.ingredients import get_tagger

        self.tagger = get_tagger("extended")
        self.cache: dict[str, dict[str, Any] | None] = {}

    def of(self, text: str | None) -> dict[str, Any] | None:
        """{"known", "unknown", "order", "types", "flags"}; None for no list or a placeholder."""
        if text is None:
            return None
        if text in self.cache:
            return self.cache[text]
        try:
            res = self.tagger.tag(text)
        except InputError as exc:
            log.warning("ingredient text not tagged: %s", exc)
            res = None
        if res is None or res.placeholder or not res.ingredients:
            found = None
        else:
            known = [i.canonical for i in res.ingredients if i.canonical]
            unknown = [i.token.name for i in res.ingredients if not i.canonical]
            found = {
                "known": set(known),
                "unknown": set(unknown),
                "order": [i.canonical or i.token.name for i in res.ingredients],
                "types": set(res.types),
                "flags": set(getattr(res, "flag_keys", ()) or ()),
            }
        self.cache[text] = found
        return found


def _text_change(
    o: dict[str, Any], n: dict[str, Any], ing: _Ingredients
) -> tuple[str, dict[str, Any]] | None:
    """("reformulated" | "text_changed", entry), or None when the text did not change."""
    if o["text"] == n["text"]:
        return None
    a, b = ing.of(o["text"]), ing.of(n["text"])
    if a is None or b is None:
        if a is None and b is None:
            how = "edited"  # placeholder or unreadable both times: wording only
        else:
            how = "appeared" if a is None else "disappeared"
        return "text_changed", _ident(n) | {"change": how}
    entry = _ident(n) | {
        "added": sorted(b["known"] - a["known"]),
        "removed": sorted(a["known"] - b["known"]),
        "added_unrecognised": sorted(b["unknown"] - a["unknown"]),
        "removed_unrecognised": sorted(a["unknown"] - b["unknown"]),
        "types_gained": sorted(b["types"] - a["types"]),
        "types_lost": sorted(a["types"] - b["types"]),
        "flags_gained": sorted(b["flags"] - a["flags"]),
        "flags_lost": sorted(a["flags"] - b["flags"]),
    }
    if any(entry[k] for k in ("added", "removed", "added_unrecognised", "removed_unrecognised")):
        return "reformulated", entry
    how = "reordered" if a["order"] != b["order"] else "edited"
    return "text_changed", _ident(n) | {"change": how}


def _pct(old: int | None, new: int | None) -> float | None:
    if old in (None, 0) or new is None:
        return None
    return round((new - old) * 100.0 / old, 1)


def _classify(
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]], covered: set[str]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS if k != "rank"}
    ing: _Ingredients | None = None
    for o, n in pairs:
        if o is None:
            assert n is not None
            out["new"].append(
                _ident(n)
                | {
                    "price_sale": n["price_sale"],
                    "currency": n["currency"],
                    "sold_out": n["sold_out"],
                    "product_url": n["product_url"],
                }
            )
            continue
        if n is None:
            if covered & set(o["categories"] or ()):
                out["delisted"].append(_ident(o) | {"product_url": o["product_url"]})
            continue
        if n["sold_out"] is True and o["sold_out"] is not True:
            out["sold_out"].append(_ident(n) | {"sold_out_before": o["sold_out"]})
        elif n["sold_out"] is False and o["sold_out"] is True:
            out["back_in_stock"].append(_ident(n))
        if (o["price_sale"], o["price_list"]) != (n["price_sale"], n["price_list"]) and (
            n["price_sale"] is not None or n["price_list"] is not None
        ):
            delta = (
                None
                if o["price_sale"] is None or n["price_sale"] is None
                else n["price_sale"] - o["price_sale"]
            )
            out["price"].append(
                _ident(n)
                | {
                    "currency": n["currency"],
                    "price_before": o["price_sale"],
                    "price_after": n["price_sale"],
                    "delta": delta,
                    "pct": _pct(o["price_sale"], n["price_sale"]),
                    "list_price_before": o["price_list"],
                    "list_price_after": n["price_list"],
                }
            )
        if (o["rating"], o["review_count"]) != (n["rating"], n["review_count"]) and (
            n["rating"] is not None or n["review_count"] is not None
        ):
            out["ratings"].append(
                _ident(n)
                | {
                    "rating_before": o["rating"],
                    "rating_after": n["rating"],
                    "rating_delta": None
                    if o["rating"] is None or n["rating"] is None
                    else round(n["rating"] - o["rating"], 2),
                    "reviews_before": o["review_count"],
                    "reviews_after": n["review_count"],
                    "reviews_delta": None
                    if o["review_count"] is None or n["review_count"] is None
                    else n["review_count"] - o["review_count"],
                }
            )
        if o["text"] != n["text"]:
            ing = ing or _Ingredients()
            found = _text_change(o, n, ing)
            if found:
                out[found[0]].append(found[1])
    return out


# --------------------------------------------------------------------------- entry point


def compare(
    store: str | os.PathLike[str] | None = None,
    *,
    since: str | None = None,
    until: str | None = None,
) -> ChangeReport:
    """Changes between two complete crawls of the store.

    Args:
        store: the crawl store (the data dir holding `products/`; None: the data dir).
        since: the older crawl: a crawl id, or a date (the newest crawl started before it);
            None: the crawl just before the newer one.
        until: the newer crawl's id (None: the newest complete crawl).

    Raises:
        InputError: no complete crawl, or `since`/`until` naming none.
    """
    import duckdb

    from deeproot.catalog.db import default_store_dir

    root = Path(store) if store is not None else default_store_dir()
    crawls = complete_crawls(root)
    bi, ai = pick_crawls(crawls, since, until)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar=false")
        a_id, a_man, a_files = crawls[ai]
        new = _load(con, "new", a_files)
        after = _meta(new, a_id, _manifest(root, a_id, a_man), a_files)
        before = None
        if bi is not None:
            b_id, b_man, b_files = crawls[bi]
            old = _load(con, "old", b_files)
            before = _meta(old, b_id, _manifest(root, b_id, b_man), b_files)
        else:
            con.execute("CREATE TEMP TABLE old AS SELECT * FROM new LIMIT 0")
            old = _Crawl("old", f"(SELECT * FROM {new.source} LIMIT 0)")
        pairs = _diff_rows(con, old, new)
    finally:
        con.close()
    notes = [RANK_NOTE]
    if before is None:
        notes.insert(0, f"{after.crawl_id} is the first complete crawl: every product is new")
    if before is not None and before.source != after.source:
        notes.insert(
            0, f"the two crawls come from different sources ({before.source}, {after.source})"
        )
    changes: dict[str, list[dict[str, Any]] | None] = dict(_classify(pairs, set(after.categories)))
    changes["rank"] = None
    return ChangeReport(
        store=str(root),
        before=before,
        after=after,
        changes=changes,
        notes=tuple(notes),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A stored `deeproot.changes/1` report (as written by a refresh)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the change report {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != JSON_SCHEMA:
        raise DataError(f"{path} is not a {JSON_SCHEMA} report")
    return data
