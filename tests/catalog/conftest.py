"""Fixtures for the catalog tests: the real DeepRoot crawl imported once, and the oracle's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_oracle import Row, read_rows


@pytest.fixture(scope="session")
def real_rows(crawl_dir: Path) -> list[Row]:
    return read_rows(crawl_dir)


@pytest.fixture(scope="session")
def real_db(crawl_dir: Path, real_rows, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deeproot.catalog.build import import_csv

    db = tmp_path_factory.mktemp("catalog") / "catalog.duckdb"
    rep = import_csv([crawl_dir], db)
    assert rep.added and rep.n_records == len(real_rows)
    return db
