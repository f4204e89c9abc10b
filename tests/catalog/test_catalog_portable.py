"""The catalog file opens in the oldest DuckDB client of the documented range: the DuckDB CLI
1.4.4 (PyPI package `duckdb-cli`, pinned in the dev group), run as a separate program."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from catalog_store import make_two_crawls

from deeproot.catalog.build import build

CLI_VERSION = "1.4.4"


@pytest.fixture(scope="module")
def duckdb_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI binary, copied out and made executable (the wheel installs it without +x)."""
    try:
        dist = importlib.metadata.distribution("duckdb-cli")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            "the DuckDB CLI package is missing; install the dev group "
            f"(pip install duckdb-cli=={CLI_VERSION}) to test the catalog file's portability"
        )
    assert dist.version == CLI_VERSION, f"duckdb-cli {dist.version}, the test pins {CLI_VERSION}"
    binary = next(
        (Path(str(dist.locate_file(f))) for f in dist.files or [] if Path(str(f)).name == "duckdb"),
        None,
    )
    if binary is None or not binary.is_file():
        pytest.fail(f"duckdb-cli {dist.version} is installed but its duckdb binary is not found")
    exe = tmp_path_factory.mktemp("cli") / "duckdb"
    shutil.copyfile(binary, exe)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def cli(exe: Path, db: Path, sql: str) -> str:
    proc = subprocess.run(
        [str(exe), "-readonly", "-csv", str(db), "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(exe.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_duckdb_cli_opens_the_catalog_and_reads_every_view(duckdb_cli, tmp_path):
    assert CLI_VERSION in subprocess.run(
        [str(duckdb_cli), "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    db = tmp_path / "c.duckdb"
    store = make_two_crawls(tmp_path / "store")
    build(store, db)
    assert cli(duckdb_cli, db, "SELECT count(*) AS n FROM products") == "n\n4\n"
    views = cli(
        duckdb_cli,
        db,
        "SELECT schema_name || '.' || view_name AS v FROM duckdb_views() "
        "WHERE NOT internal AND database_name = current_database() ORDER BY 1",
    ).splitlines()[1:]
    assert "analyst.reformulations" in views and "main.product_history" in views
    for v in views:  # every view binds in the old client (functions, lambdas, structs)
        cli(duckdb_cli, db, f"SELECT * FROM {v} LIMIT 1")
    assert cli(
        duckdb_cli, db,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'products' "
        "AND column_name = 'rating'",
    ) == "comment\nAverage star rating 1-5; NULL when unrated (never 0.0).\n"
    assert cli(
        duckdb_cli, db,
        "SET TimeZone = 'UTC'; SELECT crawl_id, crawled_at FROM product_history "
        "WHERE goods_no = 'A000000000001' ORDER BY crawled_at",
    ) == "crawl_id,crawled_at\nc1,2026-01-05 03:00:00+00\nc2,2026-02-05 03:00:00+00\n"
    # a rebuild (a byte copy of the file, then changes) stays readable too
    (store / "products" / "crawl_id=c2" / "part-0.parquet").touch()
    build(store, db, retag=True)
    assert cli(duckdb_cli, db, "SELECT count(*) AS n FROM texts") == "n\n2\n"
