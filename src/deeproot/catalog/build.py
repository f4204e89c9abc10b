"""Build or refresh the catalog: ingest crawls, tag new texts, recompute derived tables.

Every crawl ever ingested stays in `crawl_records` (a crawl later deleted from the store keeps
its history); a crawl already ingested with the same files is skipped, one whose files changed is
replaced. Each crawl is ingested in its own transaction, so a corrupt Parquet file skips that crawl
(reported) and the rest builds. Reading is DuckDB over the Parquet files; no pandas round trip.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from deeproot.catalog import csv_import, db, schema, store, tagging
from deeproot.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedCrawl:
    crawl_id: str
    reason: str


@dataclass(frozen=True)
class BuildReport:
    """What a build or import did."""

    db_path: str
    added: tuple[str, ...] = ()  # crawl ids ingested now
    replaced: tuple[str, ...] = ()  # re-ingested because their files changed
    unchanged: tuple[str, ...] = ()  # already in the catalog
    skipped: tuple[SkippedCrawl, ...] = ()  # incomplete or unreadable
    skipped_rows: tuple[str, ...] = field(default=())  # CSV rows without a goodsNo
    texts_tagged: int = 0
    n_crawls: int = 0
    n_records: int = 0
    n_products: int = 0
    n_listed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["skipped"] = [{"crawl_id": s.crawl_id, "reason": s.reason} for s in self.skipped]
        for k in ("added", "replaced", "unchanged", "skipped_rows"):
            d[k] = list(d[k])
        return d


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _source_columns(con: Any, files: Sequence[Path]) -> dict[str, str]:
    flist = "[" + ", ".join(_q(str(f)) for f in files) + "]"
    rows = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({flist}, union_by_name=true, hive_partitioning=false)"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _select_records(source: str, have: dict[str, str], crawl_id: str) -> str:
    """A SELECT producing `crawl_records` columns from a source with (some of) the crawler's."""
    exprs = []
    for name, typ in schema.RECORD_COLUMNS:
        if name == "crawl_id":
            exprs.append(f"{_q(crawl_id)} AS crawl_id")
        elif name == "text_hash":
            exprs.append("md5(nullif(trim(ingredients_text), '')) AS text_hash")
        elif name not in have:
            exprs.append(f"NULL::{typ} AS {name}")
        elif name == "crawled_at" and "TIME ZONE" in have[name].upper():
            exprs.append("(crawled_at AT TIME ZONE 'UTC')::TIMESTAMP AS crawled_at")
        elif name == "ingredients_text":
            exprs.append("nullif(trim(ingredients_text), '') AS ingredients_text")
        else:
            exprs.append(f"TRY_CAST({name} AS {typ}) AS {name}")
    return (
        f"SELECT {', '.join(exprs)} FROM {source} "
        "WHERE goods_no IS NOT NULL AND category IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY goods_no, category "
        "ORDER BY listing_rank NULLS LAST) = 1"
    )


def _ingest(con: Any, crawl_id: str, select_sql: str, meta: dict[str, Any]) -> int:
    """Replace one crawl's records in a single transaction; returns the record count."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM crawl_records WHERE crawl_id = ?", [crawl_id])
        con.execute("DELETE FROM crawls WHERE crawl_id = ?", [crawl_id])
        con.execute(f"INSERT INTO crawl_records {select_sql}")
        n, t = con.execute(
            "SELECT count(*), max(crawled_at) FROM crawl_records WHERE crawl_id = ?", [crawl_id]
        ).fetchall()[0]
        if n == 0:
            raise DataError(f"crawl {crawl_id} has no records with a goods_no and a category")
        con.execute(
            "INSERT INTO crawls VALUES (?, ?, ?, ?, ?, ?, ?)",
            [crawl_id, t, meta["source"], meta["location"], meta["fingerprint"], n, _now()],
        )
        con.execute("COMMIT")
        return n
    except Exception:
        con.execute("ROLLBACK")
        raise


class _Stats(TypedDict):
    texts_tagged: int
    n_crawls: int
    n_records: int
    n_products: int
    n_listed: int


def _finish(
    con: Any,
    progress: tagging.Progress | None,
    workers: int | None,
    db_path: Path,
    changed: bool,
) -> _Stats:
    """Tag new texts, then recompute the derived tables unless nothing at all changed."""
    tagged = tagging.tag_new_texts(con, progress, workers=workers, scratch_dir=db_path.parent)
    built = (
        schema.stored_version(con) == schema.SCHEMA_VERSION
        and con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'recommend_shortlist'"
        ).fetchall()[0][0]
    )
    if changed or tagged or not built:
        if progress:
            progress("derive", 0, 1)
        con.execute("BEGIN TRANSACTION")
        schema.create_derived(con)
        con.execute("DELETE FROM catalog_meta")
        con.execute(
            "INSERT INTO catalog_meta VALUES ('schema_version', ?), ('built_at', ?)",
            [schema.SCHEMA_VERSION, _now().isoformat()],
        )
        con.execute("COMMIT")
        if progress:
            progress("derive", 1, 1)
    n_crawls, n_records = con.execute(
        "SELECT count(*), coalesce(sum(n_records), 0) FROM crawls"
    ).fetchall()[0]
    n_products, n_listed = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE listed) FROM products"
    ).fetchall()[0]
    return _Stats(
        texts_tagged=tagged,
        n_crawls=n_crawls,
        n_records=int(n_records),
        n_products=n_products,
        n_listed=n_listed,
    )


def _duck_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.Error, DataError)


def build(
    store_dir: str | os.PathLike[str] | None = None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    retag: bool = False,
    memory_limit: str = "2GB",
    workers: int | None = None,
    progress: tagging.Progress | None = None,
) -> BuildReport:
    """Build or refresh the catalog from every complete crawl in the Parquet store.

    Args:
        store_dir: the crawler's output folder (None: the data dir).
        db_path: the database (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`).
        retag: tag every ingredient text again (after the ingredient engine changed).
        memory_limit: DuckDB's memory limit; beyond it DuckDB spills to `<db>.tmp/`.
        workers: tagging processes (None: one per CPU for big jobs).
        progress: called with (stage, done, total) for stages ingest, tag, derive.
    """
    t0 = time.perf_counter()
    store_path = Path(store_dir) if store_dir is not None else db.default_store_dir()
    path = Path(db_path) if db_path is not None else db.default_db_path()
    crawls = store.discover(store_path)
    con = db.connect_write(path, memory_limit=memory_limit)
    try:
        schema.create_stored(con, path)
        if retag:
            for t in ("texts", "text_ingredients", "text_matches"):
                con.execute(f"DELETE FROM {t}")
        known = dict(con.execute("SELECT crawl_id, fingerprint FROM crawls").fetchall())
        added: list[str] = []
        replaced: list[str] = []
        unchanged: list[str] = []
        skipped: list[SkippedCrawl] = []
        for i, c in enumerate(crawls):
            if progress:
                progress("ingest", i, len(crawls))
            if not c.complete:
                skipped.append(SkippedCrawl(c.crawl_id, c.reason))
                log.info("crawl %s skipped: %s", c.crawl_id, c.reason)
                continue
            fp = c.fingerprint()
            if known.get(c.crawl_id) == fp:
                unchanged.append(c.crawl_id)
                continue
            try:
                flist = "[" + ", ".join(_q(str(f)) for f in c.files) + "]"
                source = f"read_parquet({flist}, union_by_name=true, hive_partitioning=false)"
                have = _source_columns(con, c.files)
                missing = [m for m in schema.REQUIRED_SOURCE_COLUMNS if m not in have]
                if missing:
                    raise DataError(f"missing column(s) {', '.join(missing)}")
                _ingest(
                    con,
                    c.crawl_id,
                    _select_records(source, have, c.crawl_id),
                    {"source": "parquet", "location": str(c.directory), "fingerprint": fp},
                )
            except _duck_errors() as exc:
                first = (str(exc).strip().splitlines() or ["?"])[0]
                reason = first if isinstance(exc, DataError) else f"unreadable Parquet: {first}"
                skipped.append(SkippedCrawl(c.crawl_id, reason))
                log.info("crawl %s skipped: %s", c.crawl_id, reason)
                continue
            (replaced if c.crawl_id in known else added).append(c.crawl_id)
        if progress:
            progress("ingest", len(crawls), len(crawls))
        stats = _finish(con, progress, workers, path, bool(added or replaced or retag))
    finally:
        con.close()
    return BuildReport(
        db_path=str(path),
        added=tuple(added),
        replaced=tuple(replaced),
        unchanged=tuple(unchanged),
        skipped=tuple(skipped),
        seconds=round(time.perf_counter() - t0, 3),
        **stats,
    )


def import_csv(
    paths: Sequence[str | os.PathLike[str]],
    db_path: str | os.PathLike[str] | None = None,
    *,
    crawled_at: datetime | None = None,
    workers: int | None = None,
    progress: tagging.Progress | None = None,
) -> BuildReport:
    """Import original DeepRoot crawl CSVs as one pseudo-crawl, then refresh derived tables."""
    import pyarrow as pa

    t0 = time.perf_counter()
    batch = csv_import.read_csvs(list(paths), crawled_at=crawled_at)
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = db.connect_write(path)
    try:
        schema.create_stored(con, path)
        known = dict(con.execute("SELECT crawl_id, fingerprint FROM crawls").fetchall())
        fp = batch.crawl_id.removeprefix("csv-")
        added: list[str] = []
        unchanged: list[str] = []
        if known.get(batch.crawl_id) == fp:
            unchanged.append(batch.crawl_id)
        else:
            cols = [n for n, _ in schema.RECORD_COLUMNS if n not in ("crawl_id", "text_hash")]
            types = dict(schema.RECORD_COLUMNS)
            rows = [dict(r, crawled_at=batch.crawled_at) for r in batch.records]
            arrow = pa.Table.from_pylist(rows)
            con.register("csv_batch", arrow)
            have = {c: types[c] for c in cols}
            _ingest(
                con,
                batch.crawl_id,
                _select_records("csv_batch", have, batch.crawl_id),
                {"source": "csv", "location": "; ".join(batch.files), "fingerprint": fp},
            )
            con.unregister("csv_batch")
            added.append(batch.crawl_id)
        stats = _finish(con, progress, workers, path, bool(added))
    finally:
        con.close()
    return BuildReport(
        db_path=str(path),
        added=tuple(added),
        unchanged=tuple(unchanged),
        skipped_rows=batch.skipped_rows,
        seconds=round(time.perf_counter() - t0, 3),
        **stats,
    )
