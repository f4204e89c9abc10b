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
TREND, BRANDS, COMMON, REFORMULATIONS, UNKNOWN, FLAGS, SULFATE_FREE = range(7)


def test_seven_queries_documented():
    assert len(QUERIES) == 7


@pytest.mark.parametrize("i", range(7))
def test_doc_query_runs_on_real_data(real_db, i):
    res = sql.query(QUERIES[i], real_db)
    assert res.columns
    if i != REFORMULATIONS:  # one crawl: no formula changes yet
        assert res.rows


def test_flag_queries_on_real_data(real_db):
    rows = sql.query(QUERIES[FLAGS], real_db).rows
    per = {(c, f): (n, total) for c, f, n, total, _ in rows}
    assert len(rows) == 7 * 8  # every category x every flag, zeros included
    assert 0 < per[("shampoo", "sulfate_surfactant")][0] < per[("shampoo", "sulfate_surfactant")][1]
    brands = sql.query(QUERIES[SULFATE_FREE], real_db)
    assert brands.columns == ("brand", "n_products") and all(n >= 3 for _, n in brands.rows)
    for brand, n in brands.rows[:3]:
        res = sql.run_query(
            "SELECT count(*) FILTER (WHERE list_contains(flags, 'sulfate_surfactant')), count(*) "
            "FROM products WHERE listed AND brand = $b AND free_of IS NOT NULL",
            db_path=real_db,
            params={"b": brand},
        )
        assert res.rows == ((0, n),)


def test_doc_queries_on_two_crawls(tmp_path):
    db = tmp_path / "c.duckdb"
    build(make_two_crawls(tmp_path / "store"), db)
    trend = sql.query(QUERIES[TREND].replace("A000000202566", "A000000000001"), db)
    assert [r[2] for r in trend.rows] == [10000, 9000]
    changes = sql.query(QUERIES[REFORMULATIONS], db)
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
