"""Every `sql` block of docs/catalog.md runs on the real crawl and on a two-crawl store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from catalog_store import make_two_crawls

from deeproot.catalog import sql
from deeproot.catalog.build import build

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_five_queries_documented():
    assert len(QUERIES) == 5


@pytest.mark.parametrize("i", range(5))
def test_doc_query_runs_on_real_data(real_db, i):
    res = sql.query(QUERIES[i], real_db)
    assert res.columns
    if i != 3:  # one crawl: no formula changes yet
        assert res.rows


def test_doc_queries_on_two_crawls(tmp_path):
    db = tmp_path / "c.duckdb"
    build(make_two_crawls(tmp_path / "store"), db)
    trend = sql.query(QUERIES[0].replace("A000000202566", "A000000000001"), db)
    assert [r[2] for r in trend.rows] == [10000, 9000]
    changes = sql.query(QUERIES[3], db)
    assert changes.columns == (
        "goods_no",
        "name",
        "previous_crawl_id",
        "crawl_id",
        "added",
        "removed",
    )
    assert changes.rows == (
        ("A000000000001", "브랜드A A000000000001", "c1", "c2", ["살리실릭애씨드"], []),
    )
