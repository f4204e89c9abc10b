"""Build or refresh the catalog: ingest crawls, tag new texts, recompute derived tables.

A build never changes the catalog file in place. It writes a new file beside it
(`.catalog.duckdb.building-<pid>`), starting from a copy of the current catalog (or, from an older
schema, from its stored tables carried forward by column name), ingests the new crawls (one
transaction each), tags their new ingredient texts (one transaction for the four result tables),
recomputes every derived table in one transaction that also records the source fingerprint, then
checkpoints and renames the new file onto the catalog. So:

- a build killed at any point leaves the previous catalog exactly as it was, and the next build
  redoes the work (derived state is never stale: it only ever exists next to the sources it was
  computed from); the dead build's file is swept at the next start;
- open readers keep their snapshot (the old file) and never block the build;
- history is append-only: a crawl already ingested whose files changed since is refused and
  reported, never re-ingested over its old records.

One lock per store: the build holds `deeproot.lock.StoreLock` on the crawl store (the crawler takes
the same) and on the catalog's folder when that is elsewhere. What to ingest is planned in
`ingest`; the file mechanics (private copy, sweep, swap, locks) live in `swap`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from deeproot.catalog import csv_import, db, schema, store, swap, tagging
from deeproot.catalog.ingest import (
    Current,
    SkippedCrawl,
    Source,
    current,
    ingest,
    plan,
    source_fingerprint,
)
from deeproot.errors import DataError, InputError

__all__ = ["BUILD_SCHEMA", "BuildReport", "SkippedCrawl", "build", "import_csv"]

log = logging.getLogger(__name__)

BUILD_SCHEMA = "deeproot.build/1"


@dataclass(frozen=True)
class BuildReport:
    """What a build or import did (JSON: schema `deeproot.build/1`)."""

    db_path: str
    added: tuple[str, ...] = ()  # crawl ids ingested now
    replaced: tuple[str, ...] = ()  # always empty: history is append-only (kept for readers)
    unchanged: tuple[str, ...] = ()  # already in the catalog
    skipped: tuple[SkippedCrawl, ...] = ()  # incomplete, unreadable, or changed after ingest
    skipped_rows: tuple[str, ...] = field(default=())  # CSV rows without a goodsNo
    texts_tagged: int = 0
    n_crawls: int = 0
    n_records: int = 0
    n_products: int = 0
    n_listed: int = 0
    seconds: float = 0.0
    written: bool = False  # a new catalog file was swapped in

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schema": BUILD_SCHEMA} | dict(self.__dict__)
        d["skipped"] = [{"crawl_id": s.crawl_id, "reason": s.reason} for s in self.skipped]
        for k in ("added", "replaced", "unchanged", "skipped_rows"):
            d[k] = list(d[k])
        return d


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _Stats(TypedDict):
    texts_tagged: int
    n_crawls: int
    n_records: int
    n_products: int
    n_listed: int


def _carry_forward(con: Any, old: Path, cur: Current, retag: bool) -> None:
    """Copy the stored tables of an older catalog into the new one, by column name."""
    con.execute(f"ATTACH {_q(str(old))} AS old_catalog (READ_ONLY)")
    try:
        have = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old_catalog' "
                "AND schema_name = 'main'"
            ).fetchall()
        }
        same = cur.version == schema.SCHEMA_VERSION
        tables = schema.STORED_TABLES if same and not retag else ("crawls", "crawl_records")
        for t in tables:
            if t in have:
                con.execute(f"INSERT INTO main.{t} BY NAME SELECT * FROM old_catalog.main.{t}")
        if not same:  # schema 2: fingerprints were stat-based, unrated products were 0.0
            con.execute("UPDATE crawls SET fingerprint = NULL")
            con.execute("UPDATE crawl_records SET rating = NULL WHERE rating <= 0")
    finally:
        con.execute("DETACH old_catalog")


def _start_file(tmp: Path, path: Path, cur: Current, retag: bool, memory_limit: str) -> Any:
    """The new catalog file: a byte copy of the current one when it has this schema (fast),
    else a new file the stored tables are carried into."""
    if cur.exists and cur.version == schema.SCHEMA_VERSION and not cur.has_wal:
        shutil.copyfile(path, tmp)
        con = db.connect_write_copy(tmp, memory_limit=memory_limit)
        schema.create_stored(con)  # columns added within this schema version
        if retag:
            con.execute("BEGIN TRANSACTION")
            for t in schema.TAG_RESULT_TABLES:
                con.execute(f"DELETE FROM {t}")
            con.execute("DROP TABLE IF EXISTS text_flag_summary")  # sums up the old tags
            con.execute("COMMIT")
        return con
    con = db.connect_new(tmp, memory_limit=memory_limit)
    schema.create_stored(con)
    if cur.exists:
        _carry_forward(con, path, cur, retag)
    return con


def _derive(con: Any, progress: tagging.Progress | None) -> None:
    """Every derived table and the source fingerprint, in one transaction."""
    if progress:
        progress("derive", 0, 1)
    rows = con.execute("SELECT crawl_id, fingerprint FROM crawls").fetchall()
    con.execute("BEGIN TRANSACTION")
    try:
        schema.create_derived(con)
        con.execute("DELETE FROM catalog_meta")
        con.execute(
            "INSERT INTO catalog_meta VALUES ('schema_version', ?), ('built_at', ?), "
            "('source_fingerprint', ?), ('storage_version', ?)",
            [schema.SCHEMA_VERSION, _now().isoformat(), source_fingerprint(rows),
             db.STORAGE_VERSION],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if progress:
        progress("derive", 1, 1)


def _stats(con: Any, tagged: int) -> _Stats:
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


def _write(
    path: Path,
    cur: Current,
    sources: Sequence[Source],
    adopt: dict[str, tuple[str, str | None]],
    *,
    retag: bool,
    memory_limit: str,
    workers: int | None,
    progress: tagging.Progress | None,
) -> tuple[_Stats, list[str], list[SkippedCrawl]]:
    """Write the new catalog file and swap it in; returns stats, added ids, skipped sources."""
    swap.sweep_dead_builds(path)
    tmp = swap.building_name(path, os.getpid())
    swap.remove_build_files(tmp)
    con = None
    added: list[str] = []
    skipped: list[SkippedCrawl] = []
    caught: tuple[type[BaseException], ...] = (DataError, *_duck_errors())
    try:
        con = _start_file(tmp, path, cur, retag, memory_limit)
        for cid, (fp, sig) in adopt.items():
            con.execute(
                "UPDATE crawls SET fingerprint = ?, stat_signature = ? WHERE crawl_id = ?",
                [fp, sig, cid],
            )
        for i, src in enumerate(sources):
            if progress:
                progress("ingest", i, len(sources))
            try:
                ingest(con, src)
            except caught as exc:
                first = db._first_line(exc)
                reason = first if isinstance(exc, DataError) else f"unreadable Parquet: {first}"
                skipped.append(SkippedCrawl(src.crawl_id, reason))
                log.info("crawl %s skipped: %s", src.crawl_id, reason)
                continue
            added.append(src.crawl_id)
        if progress:
            progress("ingest", len(sources), len(sources))
        n_crawls = con.execute("SELECT count(*) FROM crawls").fetchall()[0][0]
        if not n_crawls:
            raise _Empty(skipped)
        # a catalog of this schema has every text of its older crawls tagged: only the crawls
        # added now can bring new ones (no scan of the whole history for them)
        complete = cur.exists and cur.version == schema.SCHEMA_VERSION and not retag
        tagged = tagging.tag_new_texts(
            con, progress, workers=workers, crawl_ids=added if complete else None,
            memory_limit=memory_limit,
        )
        _derive(con, progress)
        stats = _stats(con, tagged)
        con.execute("CHECKPOINT")
        con.close()
        con = None
        swap.swap(tmp, path)
        return stats, added, skipped
    finally:
        if con is not None:
            con.close()
        swap.remove_build_files(tmp)


class _Empty(Exception):
    def __init__(self, skipped: list[SkippedCrawl]):
        self.skipped = skipped


def _duck_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.Error,)


def _no_crawl_error(store_path: Path, skipped: Sequence[SkippedCrawl]) -> InputError:
    if not skipped:
        return InputError(
            f"no crawls in the store {store_path}; run `deeproot crawl --out {store_path}` first"
        )
    why = "; ".join(f"{s.crawl_id}: {s.reason}" for s in skipped[:3])
    more = f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return InputError(
        f"no complete crawl to build from in {store_path}: {len(skipped)} skipped ({why}{more}); "
        f"run `deeproot crawl --out {store_path}` (or --resume) until one completes"
    )


def build(
    store_dir: str | os.PathLike[str] | None = None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    retag: bool = False,
    memory_limit: str = "1GB",
    workers: int | None = None,
    progress: tagging.Progress | None = None,
    wait: float | None = None,
) -> BuildReport:
    """Build or refresh the catalog from every complete crawl in the Parquet store.

    Args:
        store_dir: the crawler's output folder (None: the data dir).
        db_path: the database (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`).
        retag: tag every ingredient text again (after the ingredient engine changed).
        memory_limit: DuckDB's memory limit; beyond it DuckDB spills to `<db>.tmp/`.
        workers: tagging processes (None: one per CPU for big jobs).
        progress: called with (stage, done, total) for stages ingest, tag, derive.
        wait: seconds to wait for the store's lock (None: fail at once if it is taken).

    Raises:
        InputError: no store, or no complete crawl to build from (an empty catalog is an error).
        LockedError: a crawl or another build holds the store's lock.
    """
    t0 = time.perf_counter()
    memory_limit = db.check_memory_limit(memory_limit)
    store_path = Path(store_dir) if store_dir is not None else db.default_store_dir()
    path = Path(db_path) if db_path is not None else db.default_db_path()
    store.discover(store_path)  # a missing store is an error before any lock file is made
    db.check_db_path(path)
    with swap.locks([store_path, path.parent], "catalog build", wait):
        crawls = store.discover(store_path)
        cur = current(path)
        sources, adopt, unchanged, skipped = plan(crawls, cur)
        if not sources and not retag and cur.up_to_date():
            return BuildReport(
                db_path=str(path),
                unchanged=tuple(unchanged),
                skipped=tuple(skipped),
                seconds=round(time.perf_counter() - t0, 3),
                **_read_stats(path),
            )
        if not sources and not cur.crawls:
            raise _no_crawl_error(store_path, skipped)
        try:
            stats, added, bad = _write(
                path, cur, sources, adopt, retag=retag, memory_limit=memory_limit,
                workers=workers, progress=progress,
            )
        except _Empty as exc:
            raise _no_crawl_error(store_path, [*skipped, *exc.skipped]) from None
    return BuildReport(
        db_path=str(path),
        added=tuple(added),
        unchanged=tuple(unchanged),
        skipped=tuple(skipped + bad),
        seconds=round(time.perf_counter() - t0, 3),
        written=True,
        **stats,
    )


def _read_stats(path: Path) -> _Stats:
    con = db.connect_read(path)
    try:
        return _stats(con, 0)
    finally:
        con.close()


def import_csv(
    paths: Sequence[str | os.PathLike[str]],
    db_path: str | os.PathLike[str] | None = None,
    *,
    crawled_at: datetime | None = None,
    workers: int | None = None,
    progress: tagging.Progress | None = None,
    wait: float | None = None,
) -> BuildReport:
    """Import original DeepRoot crawl CSVs as one pseudo-crawl, then refresh derived tables."""
    import pyarrow as pa

    t0 = time.perf_counter()
    batch = csv_import.read_csvs(list(paths), crawled_at=crawled_at)
    path = Path(db_path) if db_path is not None else db.default_db_path()
    db.check_db_path(path)
    with swap.locks([path.parent], "catalog import-csv", wait):
        cur = current(path)
        fp = batch.crawl_id.removeprefix("csv-")
        if batch.crawl_id in cur.crawls and cur.up_to_date():
            return BuildReport(
                db_path=str(path),
                unchanged=(batch.crawl_id,),
                skipped_rows=batch.skipped_rows,
                seconds=round(time.perf_counter() - t0, 3),
                **_read_stats(path),
            )
        sources: list[Source] = []
        if batch.crawl_id not in cur.crawls:
            if not batch.records:
                raise InputError(
                    f"no rows with a goodsNo in {', '.join(batch.files)}; nothing to import"
                )
            types = dict(schema.RECORD_COLUMNS)
            rows = [dict(r, crawled_at=batch.crawled_at) for r in batch.records]
            have = {c: types[c] for c in rows[0] if c in types}
            sources.append(
                Source(
                    crawl_id=batch.crawl_id,
                    relation="csv_batch",
                    have=have,
                    source="csv",
                    location="; ".join(batch.files),
                    fingerprint=fp,
                    arrow=pa.Table.from_pylist(rows),
                )
            )
        try:
            stats, added, bad = _write(
                path, cur, sources, {}, retag=False, memory_limit="1GB", workers=workers,
                progress=progress,
            )
        except _Empty as exc:
            raise DataError(exc.skipped[0].reason if exc.skipped else "nothing imported") from None
        if bad:
            raise DataError(f"cannot import {', '.join(batch.files)}: {bad[0].reason}")
    return BuildReport(
        db_path=str(path),
        added=tuple(added),
        unchanged=(batch.crawl_id,) if not added else (),
        skipped_rows=batch.skipped_rows,
        seconds=round(time.perf_counter() - t0, 3),
        written=True,
        **stats,
    )
