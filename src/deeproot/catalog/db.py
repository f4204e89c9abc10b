"""Where the catalog lives and how it is opened (writable for builds, read-only for queries)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError

DB_NAME = "catalog.duckdb"
# The DuckDB storage format catalog files are written in, so that every client of the documented
# range opens them (docs/catalog.md: DuckDB 1.4.4 and newer, tested with the DuckDB CLI 1.4.4).
# Without it the file follows whatever duckdb pip resolved, which older clients refuse.
STORAGE_VERSION = "v1.4.0"
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


def connect_new(db_path: str | os.PathLike[str], *, memory_limit: str = "2GB") -> Any:
    """Create a new catalog file in the declared storage version, for a build to fill.

    Bounded memory, a spill folder beside it, UTC session time zone.
    """
    import duckdb

    path = Path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    try:
        con = duckdb.connect(
            str(path), config={"storage_compatibility_version": STORAGE_VERSION}
        )
    except duckdb.Error as exc:
        raise DataError(f"cannot create {path}: {_first_line(exc)}") from exc
    return _configure(con, path, memory_limit)


def connect_write_copy(db_path: str | os.PathLike[str], *, memory_limit: str = "2GB") -> Any:
    """Open a build's private copy of the catalog for writing (same settings as connect_new)."""
    import duckdb

    path = Path(db_path)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise DataError(f"cannot open {path} for writing: {_first_line(exc)}") from exc
    return _configure(con, path, memory_limit)


def check_db_path(path: Path) -> None:
    """A catalog path must be a regular file or not exist yet."""
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"cannot access the catalog {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"the catalog path {path} is not a regular file; give a file path")


_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def check_memory_limit(value: str) -> str:
    """A DuckDB memory limit such as `2GB` or `512MiB` (anything else is an InputError)."""
    if not _MEMORY.match(value.strip()):
        raise InputError(f"--memory-limit {value!r} is not a size; use e.g. 2GB or 512MiB")
    return value.strip()


def _configure(con: Any, path: Path, memory_limit: str) -> Any:
    tmp = path.parent / (path.name + ".tmp")
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute(f"SET temp_directory='{sql_str(str(tmp))}'")
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET enable_progress_bar=false")  # library code never prints
    con.execute("SET TimeZone='UTC'")
    return con


def connect_read(db_path: str | os.PathLike[str]) -> Any:
    """Open the catalog read-only; a missing file raises a DataError saying how to build it."""
    import duckdb

    path = Path(db_path)
    if not path.is_file():
        raise DataError(f"no catalog database at {path}; {BUILD_HINT}")
    # Attached into a private in-memory session, not `duckdb.connect(path)`: duckdb's per-process
    # instance cache would hand out the *old* file after a build swapped in a new one for as long
    # as any connection to the old one is open.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{sql_str(str(path))}' AS catalog (READ_ONLY)")
    except duckdb.Error as exc:
        con.close()
        raise DataError(
            f"cannot open the catalog {path} read-only: {_first_line(exc)}; if it is damaged, "
            "move it away and run `deeproot catalog build` (from the crawls still in the store)"
        ) from exc
    con.execute("USE catalog")
    con.execute("SET TimeZone='UTC'")
    return con


def sql_str(value: str) -> str:
    """A SQL string literal's body (quotes doubled)."""
    return value.replace("'", "''")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
