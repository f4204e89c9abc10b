"""What a build ingests: the current catalog's crawls, the plan (which crawls to add, which are
unchanged, which are refused and why), and one crawl's records into `crawl_records`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deeproot.catalog import db, schema, store
from deeproot.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedCrawl:
    crawl_id: str
    reason: str


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Source:
    """One crawl to ingest: a relation (SQL) with (some of) the crawler's columns."""

    crawl_id: str
    relation: str
    have: dict[str, str]
    source: str  # parquet | csv
    location: str
    fingerprint: str
    stat_signature: str | None = None
    started_at: datetime | None = None
    arrow: Any = None  # registered as `relation` while ingesting


def select_records(src: Source, dedupe: bool = True) -> str:
    """A SELECT producing `crawl_records` columns from a source with (some of) the crawler's.

    Types were checked before (store.check_schema), so CAST never meets a wrong type. Unrated
    products (rating 0 or missing) get NULL; carried-forward records get the crawl's start time.
    `dedupe`: keep one record per (goods_no, category), the best listing rank (a window over
    whole records: skip it when the source has no duplicates).
    """
    have = src.have
    start = (  # `ingest` fills started_at from the first fresh record when the manifest lacks it
        f"{_q(src.started_at.isoformat())}::TIMESTAMPTZ"
        if src.started_at is not None
        else "NULL::TIMESTAMPTZ"
    )
    exprs = []
    for name, typ in schema.RECORD_COLUMNS:
        if name == "crawl_id":
            exprs.append(f"{_q(src.crawl_id)} AS crawl_id")
        elif name == "text_hash":
            exprs.append("md5(_deeproot_text) AS text_hash")
        elif name not in have:
            exprs.append(f"NULL::{typ} AS {name}")
        elif name == "crawled_at":
            carried = "coalesce(carried, false)" if "carried" in have else "false"
            exprs.append(
                f"CASE WHEN {carried} THEN coalesce({start}, crawled_at::TIMESTAMPTZ) "
                "ELSE crawled_at::TIMESTAMPTZ END AS crawled_at"
            )
        elif name == "rating":
            exprs.append("CASE WHEN rating::DOUBLE > 0 THEN rating::DOUBLE END AS rating")
        elif name == "ingredients_text":
            exprs.append("_deeproot_text AS ingredients_text")
        else:
            exprs.append(f"CAST({name} AS {typ}) AS {name}")
    # the text trimmed once for both columns, and only when its first or last character is one
    # trim() removes (trimming every 500-byte text cost 1.7 s CPU per 1M records, twice)
    text = (
        "CASE WHEN trim(left(ingredients_text, 1)) <> '' AND trim(right(ingredients_text, 1)) "
        "<> '' THEN ingredients_text ELSE nullif(trim(ingredients_text), '') END"
        if "ingredients_text" in have else "NULL::VARCHAR"
    )
    sql = (
        f"SELECT {', '.join(exprs)} FROM (SELECT *, {text} AS _deeproot_text FROM {src.relation}) "
        "WHERE goods_no IS NOT NULL AND category IS NOT NULL"
    )
    if dedupe:
        sql += (
            " QUALIFY row_number() OVER (PARTITION BY goods_no, category "
            "ORDER BY listing_rank NULLS LAST) = 1"
        )
    return sql


def _has_duplicates(con: Any, src: Source) -> bool:
    """Whether a (goods_no, category) pair occurs twice (two narrow columns: cheap)."""
    n, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT (goods_no, category)) FROM {src.relation} "
        "WHERE goods_no IS NOT NULL AND category IS NOT NULL"
    ).fetchall()[0]
    return bool(n != distinct)


def ingest(con: Any, src: Source) -> int:
    """Add one crawl's records in a single transaction; returns the record count."""
    con.execute("BEGIN TRANSACTION")
    try:
        if src.arrow is not None:
            con.register(src.relation, src.arrow)
        dedupe = _has_duplicates(con, src)
        dated = src
        if src.started_at is None and "carried" in src.have:
            # no manifest start: the crawl's first fresh record dates the carried ones. Found
            # here on two narrow columns; a window over the insert would hold whole records
            # (texts) in memory (1M records: ingest 10.7 -> 6.2 s)
            first = con.execute(
                "SELECT min(crawled_at::TIMESTAMPTZ) FILTER (WHERE NOT coalesce(carried, false)) "
                f"FROM {src.relation}"
            ).fetchall()[0][0]
            if first is not None:
                dated = replace(src, started_at=first)
        con.execute(f"INSERT INTO crawl_records BY NAME {select_records(dated, dedupe)}")
        n, t = con.execute(
            "SELECT count(*), max(crawled_at) FROM crawl_records WHERE crawl_id = ?",
            [src.crawl_id],
        ).fetchall()[0]
        if n == 0:
            raise DataError(f"crawl {src.crawl_id} has no records with a goods_no and a category")
        con.execute(
            "INSERT INTO crawls (crawl_id, crawled_at, source, location, fingerprint, n_records, "
            "imported_at, started_at, stat_signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [src.crawl_id, t, src.source, src.location, src.fingerprint, n, _now(),
             src.started_at, src.stat_signature],
        )
        con.execute("COMMIT")
        return int(n)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        if src.arrow is not None:
            con.unregister(src.relation)


def source_fingerprint(rows: Sequence[tuple[str, str | None]]) -> str:
    """What the derived tables are computed from: the schema and every crawl's files."""
    h = hashlib.sha256(f"schema {schema.SCHEMA_VERSION}\n".encode())
    for crawl_id, fp in sorted(rows, key=lambda r: r[0]):
        h.update(f"{crawl_id}\0{fp}\n".encode())
    return h.hexdigest()[:32]


@dataclass
class Current:
    """What the catalog file holds now."""

    exists: bool = False
    version: str | None = None
    crawls: dict[str, tuple[str | None, str | None, Any]] = field(default_factory=dict)
    source_fp: str | None = None
    has_wal: bool = False

    def up_to_date(self) -> bool:
        return (
            self.exists
            and self.version == schema.SCHEMA_VERSION
            and self.source_fp is not None
            and self.source_fp
            == source_fingerprint([(c, v[0]) for c, v in self.crawls.items()])
        )


def current(path: Path) -> Current:
    if not path.is_file():
        return Current()
    con = db.connect_read(path)
    try:
        version = schema.stored_version(con)
        schema.check_version(version, path)
        cols = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'crawls' "
                "AND schema_name = 'main'"
            ).fetchall()
        }
        crawls: dict[str, tuple[str | None, str | None, Any]] = {}
        if cols:
            sig = "stat_signature" if "stat_signature" in cols else "NULL"
            for cid, fp, s, at in con.execute(
                f"SELECT crawl_id, fingerprint, {sig}, imported_at FROM crawls"
            ).fetchall():
                # before schema 3 the fingerprint was only sizes and mtimes: not a content hash
                crawls[cid] = (fp if version == schema.SCHEMA_VERSION else None, s, at)
        src_fp = schema.meta_value(con, "source_fingerprint")
    finally:
        con.close()
    wal = path.with_name(path.name + ".wal").exists()
    return Current(True, version, crawls, src_fp, wal)


def plan(
    crawls: Sequence[store.StoreCrawl], cur: Current
) -> tuple[list[Source], dict[str, tuple[str, str | None]], list[str], list[SkippedCrawl]]:
    """Which crawls to add, which unchanged ones need their fingerprints refreshed, which are
    unchanged, and which are skipped (incomplete, bad schema, or changed after ingest)."""
    sources: list[Source] = []
    adopt: dict[str, tuple[str, str | None]] = {}
    unchanged: list[str] = []
    skipped: list[SkippedCrawl] = []
    for c in crawls:
        if not c.complete:
            skipped.append(SkippedCrawl(c.crawl_id, c.reason))
            log.info("crawl %s skipped: %s", c.crawl_id, c.reason)
            continue
        sig = c.stat_signature()
        known = cur.crawls.get(c.crawl_id)
        if known is not None:
            fp_known, sig_known, imported = known
            if sig_known is not None and sig == sig_known and fp_known is not None:
                unchanged.append(c.crawl_id)
                continue
            fp = c.fingerprint()
            if fp_known is None or fp == fp_known:
                unchanged.append(c.crawl_id)
                adopt[c.crawl_id] = (fp, sig)
                continue
            when = f"{imported:%Y-%m-%d %H:%M} UTC" if imported else "earlier"
            reason = (
                f"its files changed after it was ingested ({when}); history is append-only, so "
                "the catalog keeps the records it ingested then (restore the files, or crawl "
                "again under a new crawl id)"
            )
            skipped.append(SkippedCrawl(c.crawl_id, reason))
            log.warning("crawl %s refused: %s", c.crawl_id, reason)
            continue
        problem = store.check_schema(c.files, schema.RECORD_COLUMNS, schema.REQUIRED_SOURCE_COLUMNS)
        if problem:
            skipped.append(SkippedCrawl(c.crawl_id, problem))
            log.info("crawl %s skipped: %s", c.crawl_id, problem)
            continue
        import pyarrow.parquet as pq

        have: dict[str, str] = {}
        for f in c.files:
            for name in pq.read_schema(f).names:
                have[name] = dict(schema.RECORD_COLUMNS).get(name, "")
        flist = "[" + ", ".join(_q(str(f)) for f in c.files) + "]"
        sources.append(
            Source(
                crawl_id=c.crawl_id,
                relation=f"read_parquet({flist}, union_by_name=true, hive_partitioning=false)",
                have={k: v for k, v in have.items() if v},
                source="parquet",
                location=str(c.directory),
                fingerprint=c.fingerprint(),
                stat_signature=sig,
                started_at=c.started_at,
            )
        )
    return sources, adopt, unchanged, skipped
