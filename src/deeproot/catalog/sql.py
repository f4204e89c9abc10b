"""Read-only SQL over the catalog for analysts (`deeproot sql`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot.catalog import db
from deeproot.errors import InputError

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def query(
    sql: str, db_path: str | os.PathLike[str] | None = None, *, limit: int | None = None
) -> QueryResult:
    """Run one query on the catalog opened read-only; writes fail with an InputError."""
    import duckdb

    if not sql.strip():
        raise InputError('empty query; pass a SQL statement, e.g. "SELECT count(*) FROM products"')
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = db.connect_read(path)
    try:
        try:
            cur = con.execute(sql)
            if cur.description is None:
                return QueryResult((), (), ())
            columns = tuple(d[0] for d in cur.description)
            types = tuple(str(d[1]) for d in cur.description)
            rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
        except duckdb.Error as exc:  # DuckDB may report errors at execute or at fetch
            msg = db._first_line(exc)
            if "read-only" in msg.lower() or "read only" in msg.lower():
                raise InputError(
                    f"the catalog is opened read-only; `deeproot sql` cannot change it ({msg})"
                ) from exc
            raise InputError(f"query failed: {msg}") from exc
        return QueryResult(columns, types, tuple(tuple(r) for r in rows))
    finally:
        con.close()


def _plain(value: Any) -> Any:
    import datetime as dt
    import decimal

    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def to_records(result: QueryResult) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts."""
    return [dict(zip(result.columns, (_plain(v) for v in row), strict=True)) for row in result.rows]


def to_csv(result: QueryResult) -> str:
    """RFC 4180 CSV with a header; lists and structs as JSON."""
    import csv
    import io
    import json

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(result.columns)
    for row in result.rows:
        w.writerow(
            ""
            if v is None
            else json.dumps(_plain(v), ensure_ascii=False)
            if isinstance(v, list | tuple | dict)
            else _plain(v)
            for v in row
        )
    return buf.getvalue()
