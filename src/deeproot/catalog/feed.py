"""Sources other than the crawl: a product feed (CSV, JSON lines, Parquet) as a pseudo-crawl.

`import_feed(files, mapping, source)` reads a feed a team is licensed to use (a partner feed, a
vendor export, another retailer), maps its columns onto the crawl's fields, checks every row, and
publishes the good rows into the crawl store as one complete partition
`products/crawl_id=<id>/part-0.parquet` with the crawler's schema, marker and manifest (the
manifest says `"source": <name>`, `"kind": "feed"`). `catalog build` then gives the feed the same
tables, history and tagging as a crawl.

Validation is per row and all-or-nothing per row: a row without an id, with an unknown category,
or with an unreadable price, rating, review count or sold-out value is skipped and reported with
its file and row number (`feed.csv:row 7 (line 8)`), never loaded in part. The partition appears
by one directory rename (the crawler's `publish`), so a failed import leaves nothing visible.
Importing the same files with the same mapping again changes nothing (the manifest keeps a digest).

A feed is a snapshot of the categories it holds: like a crawl, the newest source that covered a
category decides which products are listed in it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.errors import InputError, QualityGateError

REQUIRED = ("goods_no", "name", "brand", "ingredients")
OPTIONAL = ("price", "list_price", "rating", "reviews", "url", "image", "category", "sold_out")
FORMATS = ("csv", "jsonl", "parquet")
PRESETS = ("deeproot-csv",)
_EXT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_INT32_MAX = 2**31 - 1
_TRUE = {"true", "1", "yes", "y", "t", "품절", "sold out", "soldout"}
_FALSE = {"false", "0", "no", "n", "f", "", "판매중", "in stock"}


def parse_mapping(text: str) -> dict[str, str]:
    """`goods_no=id,name=title,…` -> {"goods_no": "id", …}; checks the field names."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise InputError(f"--map entry {part.strip()!r} is not field=column")
        if field not in REQUIRED + OPTIONAL:
            raise InputError(
                f"--map: unknown field {field!r}; fields: {', '.join(REQUIRED + OPTIONAL)}"
            )
        if field in out:
            raise InputError(f"--map names {field} twice")
        out[field] = column
    missing = [f for f in REQUIRED if f not in out]
    if missing:
        raise InputError(
            f"--map lacks {', '.join(missing)}; give at least "
            "goods_no=COL,name=COL,brand=COL,ingredients=COL"
        )
    return out


@dataclass(frozen=True)
class FeedReport:
    """What an import did. `status`: added (a new partition) or unchanged (already imported)."""

    crawl_id: str
    source: str
    status: str
    files: tuple[str, ...]
    rows_read: int
    records: int
    skipped_rows: tuple[str, ...]  # "file:row N (line L): reason"
    missing_ingredients: int
    categories: tuple[str, ...]
    partition: str | None
    manifest: str

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("files", "skipped_rows", "categories"):
            d[k] = list(d[k])
        return d

    def summary(self) -> str:
        if self.status == "unchanged":
            return f"feed {self.source}: already imported as {self.crawl_id}; nothing to do"
        return (
            f"feed {self.source}: {self.records:,} records from {self.rows_read:,} rows "
            f"({len(self.skipped_rows)} skipped, {self.missing_ingredients} without ingredients) "
            f"into {self.partition}"
        )


# --------------------------------------------------------------------------- reading


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt
    found = _EXT.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {path} from its extension; pass --format "
            f"{'|'.join(FORMATS)}"
        )
    return found


def _rows_csv(path: Path, columns: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 (byte {exc.start}: {exc.reason}); convert it, e.g. "
            f"iconv -f cp949 -t utf-8"
        ) from exc
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delim, strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        _check_columns(path, columns, header)
        n = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            n += 1
            label = f"{path.name}:row {n} (line {reader.line_num})"
            if len(row) != len(header):
                yield label, {"__error__": f"{len(row)} fields, the header has {len(header)}"}
                continue
            yield label, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise InputError(
            f"{path}: malformed CSV at line {reader.line_num} ({exc}); nothing was imported"
        ) from exc


def _rows_jsonl(path: Path, columns: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    seen: set[str] = set()
    n = 0
    with path.open(encoding="utf-8-sig") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} is not UTF-8 text ({exc.reason})") from exc
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        label = f"{path.name}:row {n} (line {i})"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield label, {"__error__": f"not JSON ({exc.msg})"}
            continue
        if not isinstance(obj, dict):
            yield label, {"__error__": "not a JSON object"}
            continue
        seen.update(obj)
        yield label, obj
    if n:
        _check_columns(path, columns, sorted(seen))


def _rows_parquet(path: Path, columns: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from exc
    _check_columns(path, columns, pf.schema_arrow.names)
    n = 0
    for batch in pf.iter_batches(batch_size=10_000, columns=sorted(columns)):
        for row in batch.to_pylist():
            n += 1
            yield f"{path.name}:row {n}", row


def _check_columns(path: Path, wanted: set[str], have: Sequence[str]) -> None:
    missing = sorted(wanted - set(have))
    if missing:
        raise InputError(
            f"{path} has no column(s) {', '.join(missing)} named in --map; its columns: "
            f"{', '.join(list(have)[:30])}"
        )


# --------------------------------------------------------------------------- values


class _Bad(ValueError):
    """A cell that cannot be read; the row is skipped with this message."""


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


def _int(v: Any, what: str) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        raise _Bad(f"unreadable {what} {v!r}")
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if not v.is_integer():
            raise _Bad(f"unreadable {what} {v!r} (not a whole number)")
        n = int(v)
    else:
        s = str(v).strip()
        for junk in (",", "원", "₩", "KRW", "krw", " "):
            s = s.replace(junk, "")
        if not s:
            return None
        if not re.fullmatch(r"\d+(\.0+)?", s):
            raise _Bad(f"unreadable {what} {str(v)[:40]!r}")
        n = int(float(s))
    if n < 0 or n > _INT32_MAX:
        raise _Bad(f"{what} {n} out of range")
    return n


def _rating(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        r = float(str(v).strip()) if not isinstance(v, int | float) else float(v)
    except ValueError:
        raise _Bad(f"unreadable rating {str(v)[:40]!r}") from None
    if math.isnan(r):
        return None
    if not 0.0 <= r <= 5.0:
        raise _Bad(f"rating {r} outside 0-5")
    return r


def _bool(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise _Bad(f"unreadable sold_out {str(v)[:40]!r} (use true/false)")


def _record(
    raw: dict[str, Any], m: Mapping[str, str], fixed_category: taxonomy.Category | None
) -> dict[str, Any]:
    """The crawl fields of one feed row; raises _Bad for a row that must be skipped."""
    if "__error__" in raw:
        raise _Bad(raw["__error__"])

    def get(field: str) -> Any:
        return raw.get(m[field]) if field in m else None

    gv = get("goods_no")
    if isinstance(gv, float) and gv.is_integer():
        gv = int(gv)
    goods = _text(gv)
    if goods is None:
        raise _Bad(f"no id in column {m['goods_no']}")
    if not _ID.fullmatch(goods):
        raise _Bad(f"id {goods[:40]!r} is not 1-64 letters, digits or ._:-")
    if "category" in m:
        label = _text(get("category"))
        if label is None:
            if fixed_category is None:
                raise _Bad(f"no category in column {m['category']}")
            cat = fixed_category
        else:
            try:
                cat = taxonomy.category(label)
            except InputError:
                raise _Bad(f"unknown category {label[:40]!r}") from None
    else:
        assert fixed_category is not None
        cat = fixed_category
    price = _int(get("price"), "price")
    list_price = _int(get("list_price"), "list price")
    ingredients = _text(get("ingredients"))
    return {
        "goods_no": goods,
        "category": cat.key,
        "disp_cat_no": cat.disp_cat_no,
        "brand": _text(get("brand")),
        "name": _text(get("name")),
        "price_sale": price,
        "price_list": list_price if list_price is not None else price,
        "rating": _rating(get("rating")),
        "review_count": _int(get("reviews"), "review count"),
        "image_url": _text(get("image")),
        "product_url": _text(get("url")) or "",
        "ingredients_text": ingredients,
        "has_ingredients": ingredients is not None,
        "sold_out": _bool(get("sold_out")) if "sold_out" in m else None,
    }


# --------------------------------------------------------------------------- importing


def _digest(files: list[Path], m: Mapping[str, str], source: str, category: str | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([source, sorted(m.items()), category]).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _already(store: Path, digest: str) -> dict[str, Any] | None:
    from deeproot.crawler import storage

    for man in storage.manifests(store):
        if man.get("feed_digest") == digest and storage.is_complete(store, man["crawl_id"]):
            return man
    return None


def _listing_hash(rec: dict[str, Any]) -> str:
    # never equal to a crawl's listing hash, so an incremental crawl after a feed refetches
    # everything instead of carrying feed data forward as if the site had shown it
    keys = ("brand", "name", "price_sale", "price_list", "rating", "review_count", "image_url")
    body = json.dumps([rec[k] for k in keys], ensure_ascii=False, default=str)
    return "feed:" + hashlib.sha1(body.encode()).hexdigest()[:16]


def _next_id(store: Path, when: datetime | None) -> str:
    """A new crawl id, unused in the store. Ids order the crawls by time: a feed taken at
    `when` gets that time; without one (now) the id sorts after every crawl of the store."""
    import os
    import time

    from deeproot.crawler import storage

    ids = {m["crawl_id"] for m in storage.manifests(store)}
    ids |= {d.name.split("=", 1)[1] for d in storage.products_dir(store).glob("crawl_id=*")}
    last = max(ids, default="")
    while True:
        if when is not None:
            crawl_id = when.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex()
            if crawl_id not in ids:
                return crawl_id
        else:
            crawl_id = storage.new_crawl_id()
            if crawl_id > last:
                return crawl_id
            time.sleep(0.1)  # ids carry the second: a same-second id may sort before the last


@dataclass
class _Rows:
    """What reading a feed gave: good records, skipped rows, rows read."""

    records: list[dict[str, Any]]
    skipped: list[str]
    read: int


def _read_mapped(
    paths: list[Path], formats: list[str], m: Mapping[str, str], fixed: taxonomy.Category | None
) -> _Rows:
    readers = {"csv": _rows_csv, "jsonl": _rows_jsonl, "parquet": _rows_parquet}
    out = _Rows([], [], 0)
    first: dict[tuple[str, str], str] = {}
    for p, f in zip(paths, formats, strict=True):
        for label, raw in readers[f](p, set(m.values())):
            out.read += 1
            try:
                rec = _record(raw, m, fixed)
            except _Bad as exc:
                out.skipped.append(f"{label}: {exc}")
                continue
            key = (rec["goods_no"], rec["category"])
            if key in first:
                out.skipped.append(f"{label}: duplicate of {first[key]}")
                continue
            first[key] = label
            out.records.append(rec)
    return out


def _read_deeproot_csv(paths: list[Path]) -> _Rows:
    """The `deeproot-csv` preset: the original DeepRoot crawl CSVs (deeproot.catalog.csv_import:
    goodsNo and category from each product link, no prices)."""
    from deeproot.catalog.csv_import import read_csvs

    batch = read_csvs(paths)
    keep = (
        "goods_no",
        "category",
        "disp_cat_no",
        "brand",
        "name",
        "price_sale",
        "price_list",
        "rating",
        "review_count",
        "image_url",
        "product_url",
        "ingredients_text",
        "has_ingredients",
    )
    records = [{k: r.get(k) for k in keep} | {"sold_out": None} for r in batch.records]
    return _Rows(records, list(batch.skipped_rows), len(records) + len(batch.skipped_rows))


def import_feed(
    files: Sequence[str | os.PathLike[str]],
    mapping: Mapping[str, str] | None,
    source: str,
    *,
    store: str | os.PathLike[str] | None = None,
    category: str | None = None,
    fmt: str | None = None,
    preset: str | None = None,
    crawled_at: datetime | None = None,
    currency: str = "KRW",
    max_missing_ingredients: float = 0.2,
    endpoint: str | None = None,
) -> FeedReport:
    """Load feed files into the crawl store as one complete pseudo-crawl partition.

    Args:
        files: CSV (UTF-8, header row), JSON lines (one object per line) or Parquet files.
        mapping: field -> column (see `parse_mapping`): goods_no, name, brand, ingredients
            required; price, list_price, rating, reviews, url, image, category, sold_out
            optional. None with a preset.
        source: the feed's name (letters, digits, ._-), recorded in the manifest and in each
            row's `source_layout` (`feed:<source>`).
        store: the crawl store (None: the data dir).
        category: the category of rows without one (a key or Korean label).
        fmt: csv, jsonl or parquet (None: by extension).
        preset: `deeproot-csv`: the original DeepRoot crawl CSVs (files or folders), no mapping;
            dated 2024-11-07 unless `crawled_at` says otherwise.
        crawled_at: when the feed's data was taken (None: now); naive means UTC. It dates the
            records and the pseudo-crawl's id, which orders it among the store's crawls.
        currency: currency of the prices.
        max_missing_ingredients: quality gate, as for a crawl.
        endpoint: S3-compatible endpoint when `store` is an `s3://` URL (deeproot.lake): the
            feed is imported into the URL's local staging folder and published from there
            (data files, `_SUCCESS`, manifest last).

    Raises:
        InputError: bad mapping, file, column, category or source; no importable row.
        QualityGateError: too many products without ingredients (nothing is written).
        LockedError: a crawl or build holds the store.
    """
    from deeproot import lake
    from deeproot.catalog.db import default_store_dir

    if store is not None and lake.is_url(store):
        lk = lake.open_lake(str(store), endpoint)
        lk.check()
        with lk.lock("deeproot catalog import"):
            lk.push_pending()
            lk.pull(lk.stage)
            rep = import_feed(
                files, mapping, source, store=lk.stage, category=category, fmt=fmt,
                preset=preset, crawled_at=crawled_at, currency=currency,
                max_missing_ingredients=max_missing_ingredients,
            )
            if rep.status == "added":
                lake.publish_staged(lk, rep.crawl_id)
        return rep
    if not _SOURCE.fullmatch(source or ""):
        raise InputError(f"--source {source!r}: use 1-40 letters, digits or ._-")
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    m = dict(mapping or {})
    fixed = taxonomy.category(category) if category else None
    if preset is None:
        for f in REQUIRED:
            if f not in m:
                raise InputError(f"--map lacks {f}")
        if fixed is None and "category" not in m:
            raise InputError("the feed has no category: map category=COLUMN or pass --category KEY")
    elif m:
        raise InputError(f"--preset {preset} reads its own columns; drop --map")
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("no feed files given")
    for p in paths:
        if not (p.is_file() or (preset is not None and p.is_dir())):
            raise InputError(f"no such file: {p}")
    if preset is None:
        formats = [_format_of(p, fmt) for p in paths]
    elif preset == "deeproot-csv":
        from deeproot.catalog.csv_import import ORIGINAL_CRAWL_DATE, expand_paths

        paths = expand_paths(paths)
        crawled_at = crawled_at or ORIGINAL_CRAWL_DATE
    root = Path(store) if store is not None else default_store_dir()
    when = crawled_at.replace(tzinfo=UTC) if crawled_at and not crawled_at.tzinfo else crawled_at
    digest = _digest(paths, m, f"{preset or ''}:{source}", fixed.key if fixed else None)
    done = _already(root, digest) if root.is_dir() else None
    if done is not None:
        return _unchanged(root, done, source, paths)
    rows = _read_deeproot_csv(paths) if preset else _read_mapped(paths, formats, m, fixed)
    if not rows.records:
        why = f"; first problem: {rows.skipped[0]}" if rows.skipped else ""
        raise InputError(f"no importable rows in {', '.join(p.name for p in paths)}{why}")
    missing = sum(1 for r in rows.records if not r["has_ingredients"])
    if missing / len(rows.records) > max_missing_ingredients:
        raise QualityGateError(
            f"{missing / len(rows.records):.1%} of the feed's products have no ingredients "
            f"(limit {max_missing_ingredients:.0%}); check the ingredients= column. Nothing was "
            "imported"
        )
    return _publish(root, rows, when, currency, source, digest, paths, m, preset)


def _unchanged(root: Path, done: dict[str, Any], source: str, paths: list[Path]) -> FeedReport:
    from deeproot.crawler import storage

    return FeedReport(
        done["crawl_id"],
        source,
        "unchanged",
        tuple(map(str, paths)),
        done.get("rows_read", 0),
        done.get("records", 0),
        (),
        done.get("missing_ingredients", 0),
        tuple(done.get("categories_covered", ())),
        None,
        str(storage.manifest_path(root, done["crawl_id"])),
    )


def _publish(
    root: Path,
    rows: _Rows,
    when: datetime | None,
    currency: str,
    source: str,
    digest: str,
    paths: list[Path],
    m: Mapping[str, str],
    preset: str | None,
) -> FeedReport:
    """Complete the records, write the partition (one rename) and then its manifest."""
    from deeproot.crawler import storage
    from deeproot.lock import StoreLock

    taken = when or datetime.now(UTC)
    ranks: dict[str, int] = {}
    for rec in rows.records:
        ranks[rec["category"]] = ranks.get(rec["category"], 0) + 1
        rec.update(
            crawled_at=taken,
            currency=currency,
            listing_rank=ranks[rec["category"]],
            carried=False,
            carried_from=None,
            source_layout=f"feed:{source}",
            ingredients_at=taken,  # stored where the crawler's schema has the column
        )
        rec["listing_hash"] = _listing_hash(rec)
    order = {c.key: i for i, c in enumerate(taxonomy.CATEGORIES)}
    cats = tuple(sorted(ranks, key=order.__getitem__))
    missing = sum(1 for r in rows.records if not r["has_ingredients"])
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the store {root}: {exc.strerror}") from exc
    with StoreLock(root, f"deeproot catalog import ({source})"):
        crawl_id = _next_id(root, when)
        for r in rows.records:
            r["crawl_id"] = crawl_id
        storage.crawls_dir(root).mkdir(parents=True, exist_ok=True)
        part = storage.publish(root, crawl_id, rows.records)
        now = datetime.now(UTC).isoformat()
        manifest = {
            "crawl_id": crawl_id,
            "status": "complete",
            "kind": "feed",
            "source": source,
            "preset": preset,
            "started_at": taken.isoformat(),  # when the data was taken, like a crawl's start
            "finished_at": taken.isoformat(),
            "imported_at": now,
            "crawled_at": taken.isoformat(),
            "files": [str(p) for p in paths],
            "mapping": dict(m),
            "feed_digest": digest,
            "rows_read": rows.read,
            "records": len(rows.records),
            "missing_ingredients": missing,
            "skipped_rows": rows.skipped[:1000],
            "n_skipped": len(rows.skipped),
            "categories_covered": list(cats),
            "previous_crawl_id": None,
        }
        storage.write_json_atomic(storage.manifest_path(root, crawl_id), manifest)
    return FeedReport(
        crawl_id,
        source,
        "added",
        tuple(map(str, paths)),
        rows.read,
        len(rows.records),
        tuple(rows.skipped),
        missing,
        cats,
        str(part),
        str(storage.manifest_path(root, crawl_id)),
    )
