"""Where the catalog lives and how it is opened (writable for builds, read-only for queries)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError

DB_NAME = "catalog.duckdb"
BUILD_HINT = (
    "build it with `deeproot catalog build` (from a crawl store) or "
    "`deeproot catalog import-csv FILE...` (from the original DeepRoot CSVs)"
)


def data_dir() -> Path:
    """The runtime data folder: $DEEPROOT_DATA_DIR, else ./deeproot-data."""
    return Path(os.environ.get("DEEPROOT_DATA_DIR") or "deeproot-data")


def default_db_path() -> Path:
    """`<data dir>/catalog.duckdb`."""
    return data_dir() / DB_NAME


def default_store_dir() -> Path:
    """The crawler's output folder (it holds `products/crawl_id=…/`): the data dir itself."""
    return data_dir()


def connect_write(db_path: str | os.PathLike[str], *, memory_limit: str = "2GB") -> Any:
    """Open (creating) the catalog for writing, with bounded memory and a spill folder."""
    import duckdb

    path = Path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    from deeproot.catalog.recommend import close_connections

    close_connections()  # this process's cached read-only handles would block the writer
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise DataError(
            f"cannot open {path} for writing (is it open in another program?): {_first_line(exc)}"
        ) from exc
    tmp = path.parent / (path.name + ".tmp")
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute(f"SET temp_directory='{_sql_str(str(tmp))}'")
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET enable_progress_bar=false")  # library code never prints
    return con


def connect_read(db_path: str | os.PathLike[str]) -> Any:
    """Open the catalog read-only; a missing file raises a DataError saying how to build it."""
    import duckdb

    path = Path(db_path)
    if not path.is_file():
        raise DataError(f"no catalog database at {path}; {BUILD_HINT}")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"cannot open the catalog {path} read-only: {_first_line(exc)}") from exc


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
