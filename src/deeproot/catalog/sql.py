"""Read-only SQL over the catalog in a sandbox (`deeproot sql`, and the web API).

`run_query` is the one entry point. What it promises (docs/catalog.md, "SQL sandbox"):

- exactly one statement, and only a query (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE,
  EXPLAIN); anything else (INSERT, COPY, EXPORT, ATTACH, SET, PRAGMA, CALL, several statements)
  is refused before it runs;
- the catalog is attached read-only into an in-memory session whose external access is off
  (`enable_external_access=false`: no `read_csv`, `read_text`, `glob`, `COPY … TO`, `ATTACH`,
  no extension install or load) and whose configuration is then locked
  (`lock_configuration=true`: `SET max_expression_depth`, `SET enable_external_access` … fail);
- a timeout (a timer thread interrupts the connection) and a row cap (rows past it are not
  fetched; the result says it was truncated); memory is bounded.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot.catalog import db
from deeproot.errors import DataError, InputError

MAX_ROWS = 10_000
TIMEOUT_S = 30.0
MEMORY_LIMIT = "1GB"
_ALLOWED = ("SELECT", "EXPLAIN")


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False  # the query had more rows than the cap
    arrow: Any = None  # the same rows as a pyarrow Table (for Parquet output)


def _statement(con: Any, sql: str) -> None:
    """Refuse anything but exactly one query."""
    import duckdb

    try:
        stmts = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InputError(f"query failed: {db._first_line(exc)}") from exc
    if not stmts:
        raise InputError(
            'empty query; pass one SQL statement, e.g. "SELECT count(*) FROM products"'
        )
    if len(stmts) > 1:
        raise InputError(
            f"{len(stmts)} statements given; `deeproot sql` runs exactly one query at a time"
        )
    kind = stmts[0].type.name
    if kind not in _ALLOWED:
        raise InputError(
            f"only read-only queries run here (SELECT, WITH, DESCRIBE, EXPLAIN …), not {kind}; "
            "the catalog is never changed and nothing is read or written outside it"
        )


def _open(path: Path, memory_limit: str) -> Any:
    import duckdb

    if not path.is_file():
        raise DataError(f"no catalog database at {path}; {db.BUILD_HINT}")
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        },
    )
    try:
        con.execute(f"ATTACH '{db.sql_str(str(path))}' AS catalog (READ_ONLY)")
    except duckdb.Error as exc:
        con.close()
        raise DataError(
            f"cannot open the catalog {path} read-only: {db._first_line(exc)}; if it is damaged, "
            "move it away and run `deeproot catalog build` (from the crawls still in the store)"
        ) from exc
    con.execute("USE catalog")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{db.sql_str(memory_limit)}'")
    con.execute("SET max_expression_depth = 250")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(
    sql: str,
    *,
    db_path: str | os.PathLike[str] | None = None,
    params: dict[str, Any] | None = None,
    max_rows: int | None = MAX_ROWS,
    timeout_s: float | None = TIMEOUT_S,
    memory_limit: str = MEMORY_LIMIT,
) -> QueryResult:
    """Run one read-only query on the catalog in the sandbox.

    Args:
        sql: exactly one query; `$name` placeholders take their values from `params`.
        db_path: the catalog (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`); a missing file is a
            DataError saying how to build it.
        params: named parameters (`{"goods_no": "A000000202566"}`); values DuckDB casts as needed.
        max_rows: rows returned at most (None: all); `truncated` says whether there were more.
        timeout_s: the query is interrupted after this many seconds (None: no limit).
        memory_limit: DuckDB's memory limit for the query.

    Raises:
        InputError: not exactly one query, a refused statement, a failing query, a timeout.
    """
    import duckdb
    import pyarrow as pa

    if max_rows is not None and max_rows < 0:
        raise InputError(f"max_rows must be 0 or more, not {max_rows}")
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = _open(path, db.check_memory_limit(memory_limit))
    timer = None
    timed_out = threading.Event()
    try:
        _statement(con, sql)
        if timeout_s is not None:

            def stop() -> None:
                timed_out.set()
                con.interrupt()

            timer = threading.Timer(timeout_s, stop)
            timer.daemon = True
            timer.start()
        try:
            rel = con.sql(sql, params=params or None)
            if rel is None:
                return QueryResult((), (), ())
            columns = tuple(rel.columns)
            types = tuple(str(t) for t in rel.types)
            reader = rel.to_arrow_reader(min(max_rows or 10_000, 10_000) or 1)
            batches = []
            n = 0
            truncated = False
            for rb in reader:
                if max_rows is not None and n + rb.num_rows > max_rows:
                    batches.append(rb.slice(0, max_rows - n))
                    truncated = True
                    break
                batches.append(rb)
                n += rb.num_rows
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except (duckdb.Error, KeyboardInterrupt) as exc:
            if timed_out.is_set():
                raise InputError(
                    f"query stopped after {timeout_s:g} s (the time limit); narrow it or add a "
                    "LIMIT"
                ) from None
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise InputError(f"query failed: {db._first_line(exc)}") from exc
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
    cols = [c.to_pylist() for c in table.columns]
    rows = tuple(zip(*cols, strict=True)) if cols else ()
    return QueryResult(columns, types, rows, truncated, table)


def query(
    sql: str, db_path: str | os.PathLike[str] | None = None, *, limit: int | None = None
) -> QueryResult:
    """`run_query` with no row cap unless `limit` (kept for existing callers)."""
    return run_query(sql, db_path=db_path, max_rows=limit, timeout_s=None)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str | None


@dataclass(frozen=True)
class Relation:
    """A table or view of the catalog, with its comment and columns."""

    schema: str  # main (stored and serving tables) or analyst (views for analysts)
    name: str
    kind: str  # table | view
    comment: str | None
    columns: tuple[Column, ...]


def describe(db_path: str | os.PathLike[str] | None = None) -> list[Relation]:
    """Every table and view of the catalog with its columns and their comments."""
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = _open(path, MEMORY_LIMIT)
    try:
        rels = con.execute(
            "SELECT schema_name, table_name, 'table', comment FROM duckdb_tables() "
            "WHERE database_name = 'catalog' AND NOT temporary "
            "UNION ALL SELECT schema_name, view_name, 'view', comment FROM duckdb_views() "
            "WHERE database_name = 'catalog' AND NOT internal AND NOT temporary "
            "ORDER BY schema_name = 'main', schema_name, 3, table_name"
        ).fetchall()
        cols: dict[tuple[str, str], list[Column]] = {}
        for s, t, c, typ, com in con.execute(
            "SELECT schema_name, table_name, column_name, data_type, comment "
            "FROM duckdb_columns() WHERE database_name = 'catalog' "
            "ORDER BY schema_name, table_name, column_index"
        ).fetchall():
            cols.setdefault((s, t), []).append(Column(c, typ, com or None))
    finally:
        con.close()
    return [
        Relation(s, t, k, com or None, tuple(cols.get((s, t), ()))) for s, t, k, com in rels
    ]
