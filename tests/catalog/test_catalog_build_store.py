"""Building from the crawler's Parquet store: history across crawls, idempotence, bad crawls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from catalog_store import NEW, OLD, T1, T2, T3, make_two_crawls, partition_dir, rec, write_crawl

from deeproot.catalog.build import build
from deeproot.catalog.recommend import recommend


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_two_crawls(tmp_path / "store")


def q(db: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_history_across_two_crawls(store: Path, tmp_path: Path):
    db = tmp_path / "c.duckdb"
    rep = build(store, db)
    assert (rep.added, rep.skipped, rep.n_crawls, rep.n_records) == (("c1", "c2"), (), 2, 7)
    assert rep.texts_tagged == 2 and (rep.n_products, rep.n_listed) == (4, 3)
    assert q(
        db,
        "SELECT crawl_id, crawled_at, price_sale, review_count FROM product_history "
        "WHERE goods_no = 'A000000000001' ORDER BY crawled_at",
    ) == [
        ("c1", T1, 10000, 10),
        ("c2", T2, 9000, 30),
    ]
    assert q(
        db,
        "SELECT goods_no, price_sale, categories, listed, last_crawl_id, n_crawls "
        "FROM products ORDER BY goods_no",
    ) == [
        ("A000000000001", 9000, ["shampoo"], True, "c2", 2),
        # c2 did not crawl scalp_tonic at all, so c1's tonic listing still stands
        ("A000000000002", 20000, ["shampoo", "scalp_tonic"], True, "c2", 2),
        ("A000000000003", 5000, [], False, "c1", 1),  # gone from hair_water in c2
        ("A000000000004", 7000, ["hair_water"], True, "c2", 1),
    ]
    assert q(
        db,
        "SELECT goods_no, category, crawl_id FROM product_categories "
        "WHERE category = 'scalp_tonic'",
    ) == [("A000000000002", "scalp_tonic", "c1")]
    assert q(db, "SELECT goods_no, previous_crawl_id, crawl_id FROM formula_changes") == [
        ("A000000000001", "c1", "c2")
    ]
    assert q(
        db,
        "SELECT goods_no, table_name, type, evidence FROM product_types "
        "WHERE goods_no = 'A000000000001' AND table_name = 'seed' ORDER BY type",
    ) == [
        ("A000000000001", "seed", t, e)
        for t, e in [
            ("민감성", ["살리실릭애씨드"]),
            ("비듬", ["살리실릭애씨드"]),
            ("지루성", ["살리실릭애씨드"]),
            ("지성", ["살리실릭애씨드"]),
            ("탈모", ["카페인"]),
        ]
    ]
    assert q(
        db,
        "SELECT position, token, canonical FROM product_ingredients "
        "WHERE goods_no = 'A000000000004' ORDER BY position",
    )[2:4] == [(2, "카페인", "카페인"), (3, "살리실릭애씨드", "살리실릭애씨드")]
    res = recommend(db, types=["탈모성"], categories=["shampoo", "hair_water"])
    shampoo, water = res.categories
    assert [(p.goods_no, p.price_sale, p.price_list, p.currency) for p in shampoo.picks] == [
        ("A000000000001", 9000, 10000, "KRW")
    ]
    assert (shampoo.n_fit, shampoo.n_total, water.n_fit, water.n_total) == (1, 2, 1, 1)
    assert [(m.type, m.token) for m in shampoo.picks[0].matched] == [("탈모", "카페인")]


def test_rebuild_is_idempotent_and_keeps_history(store: Path, tmp_path: Path):
    db = tmp_path / "c.duckdb"
    build(store, db)
    before = q(db, "SELECT * FROM product_history ORDER BY ALL")
    again = build(store, db)
    assert (again.added, again.unchanged, again.texts_tagged) == ((), ("c1", "c2"), 0)
    assert q(db, "SELECT * FROM product_history ORDER BY ALL") == before
    # a crawl removed from the store keeps its history; a new one adds to it
    import shutil

    shutil.rmtree(partition_dir(store, "c1"))
    write_crawl(
        store, "c3", [rec("c3", T3, "A000000000001", "shampoo", price=8500, reviews=40, text=NEW)]
    )
    third = build(store, db)
    assert (third.added, third.unchanged, third.n_crawls) == (("c3",), ("c2",), 3)
    assert q(
        db,
        "SELECT crawl_id, price_sale FROM product_history "
        "WHERE goods_no = 'A000000000001' ORDER BY crawled_at",
    ) == [("c1", 10000), ("c2", 9000), ("c3", 8500)]
    assert q(db, "SELECT count(*) FROM texts") == [(2,)]


def test_incomplete_and_corrupt_crawls_are_skipped(store: Path, tmp_path: Path):
    write_crawl(
        store,
        "c3-running",
        [rec("c3-running", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)],
        manifest=False,
    )
    write_crawl(
        store,
        "c4-failed",
        [rec("c4-failed", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)],
        status="failed",
    )
    write_crawl(
        store,
        "c5-nomarker",
        [rec("c5-nomarker", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)],
        marker=False,
    )
    bad = write_crawl(
        store,
        "c6-corrupt",
        [rec("c6-corrupt", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)],
    )
    data = bad.read_bytes()
    bad.write_bytes(data[:40] + b"\x00garbage\xff" * 20 + data[-60:])
    nodate = write_crawl(
        store,
        "c7-nodate",
        [rec("c7-nodate", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)],
    )
    pq.write_table(pq.read_table(nodate).drop_columns(["crawled_at"]), nodate)
    db = tmp_path / "c.duckdb"
    rep = build(store, db)
    assert rep.added == ("c1", "c2")
    reasons = {s.crawl_id: s.reason for s in rep.skipped}
    assert reasons["c3-running"] == "no manifest (crawl running or interrupted)"
    assert reasons["c4-failed"] == "manifest status is 'failed', not complete"
    assert reasons["c5-nomarker"] == "no _SUCCESS marker in its partition"
    assert reasons["c6-corrupt"].startswith("unreadable Parquet: ")
    assert reasons["c7-nodate"] == "missing column(s) crawled_at"
    assert q(db, "SELECT count(*) FROM crawl_records WHERE goods_no = 'A000000000009'") == [(0,)]
    assert rep.n_products == 4


def test_missing_store_is_one_line_error(tmp_path: Path):
    from deeproot.errors import InputError

    with pytest.raises(InputError, match=r"no crawl store at .*nope; run `deeproot crawl --out"):
        build(tmp_path / "nope", tmp_path / "c.duckdb")


def test_csv_import_and_crawls_share_one_catalog(crawl_dir: Path, tmp_path: Path):
    from deeproot.catalog.build import import_csv

    db = tmp_path / "c.duckdb"
    import_csv([crawl_dir / "tonic_ingredient_data2_add_type.csv"], db)
    goods = q(db, "SELECT goods_no, rating, review_count FROM products ORDER BY goods_no LIMIT 1")
    g, rating, reviews = goods[0]
    out = tmp_path / "store"
    write_crawl(
        out, "c9", [rec("c9", T3, g, "scalp_tonic", price=15000, reviews=reviews + 7, text=NEW)]
    )
    rep = build(out, db)
    assert (rep.added, rep.n_crawls) == (("c9",), 2)
    # the CSV pseudo-crawl is dated 2024-11-07, so the 2026 crawl is the latest state
    assert q(
        db,
        "SELECT crawl_id LIKE 'csv-%', crawled_at, price_sale, review_count "
        "FROM product_history WHERE goods_no = ? ORDER BY crawled_at",
        [g],
    ) == [
        (True, datetime(2024, 11, 7, tzinfo=UTC), None, reviews),
        (False, T3, 15000, reviews + 7),
    ]
    assert q(
        db, "SELECT price_sale, review_count, last_crawl_id FROM products WHERE goods_no = ?", [g]
    ) == [(15000, reviews + 7, "c9")]
    # the crawl covered scalp_tonic with one product: the tonic listing is now that crawl's
    assert q(db, "SELECT count(*) FROM product_categories WHERE category = 'scalp_tonic'") == [(1,)]
    assert q(db, "SELECT count(*) FILTER (WHERE listed), count(*) FROM products") == [(1, 64)]


def test_a_product_listed_twice_in_one_category_keeps_its_best_rank(tmp_path: Path):
    """Ingest skips the dedupe window when a crawl has no duplicates; with one it still keeps
    a single record per (goods_no, category), the best listing rank."""
    store, db = tmp_path / "store", tmp_path / "c.duckdb"
    write_crawl(
        store,
        "c1",
        [
            rec("c1", T1, "A000000000001", "shampoo", price=900, reviews=1, text=OLD, rank=7),
            rec("c1", T1, "A000000000001", "shampoo", price=800, reviews=1, text=OLD, rank=2),
            rec("c1", T1, "A000000000001", "scalp_tonic", price=700, reviews=1, text=OLD, rank=5),
        ],
    )
    build(store, db)
    assert q(
        db, "SELECT category, listing_rank, price_sale FROM crawl_records ORDER BY category"
    ) == [("scalp_tonic", 5, 700), ("shampoo", 2, 800)]


def test_an_incremental_build_tags_the_new_crawls_texts_and_retag_tags_all(
    store: Path, tmp_path: Path
):
    """New texts are looked for only in the crawls a build adds (older ones are all tagged in a
    catalog of this schema); --retag still tags every text of every crawl."""
    import shutil

    db = tmp_path / "c.duckdb"
    shutil.move(partition_dir(store, "c2"), tmp_path / "c2")
    assert build(store, db).texts_tagged == 1  # c1: OLD
    shutil.move(tmp_path / "c2", partition_dir(store, "c2"))
    rep = build(store, db)
    assert (rep.added, rep.texts_tagged) == (("c2",), 1)  # c2 brings NEW; OLD is known
    assert q(db, "SELECT count(*) FROM texts") == [(2,)]
    assert q(
        db,
        "SELECT count(*) FROM products p WHERE p.text_hash IS NOT NULL "
        "AND p.text_hash NOT IN (SELECT text_hash FROM texts)",
    ) == [(0,)]
    # the flag summary is kept per text like the tags: one row per text after the increment
    summary = "SELECT text_hash, flags, allergens, flag_mask, listed_ok FROM text_flag_summary"
    rows = q(db, summary + " ORDER BY text_hash")
    assert len(rows) == 2 and {r[0] for r in rows} == {r[0] for r in q(db, "SELECT * FROM texts")}
    assert all("sulfate_surfactant" in r[1] for r in rows)  # 소듐라우레스설페이트 in both
    import duckdb

    con = duckdb.connect(str(db))  # a stale summary (as if the flag table had changed) ...
    con.execute("UPDATE text_flag_summary SET flags = ['stale']")
    con.close()
    (store / "products" / "crawl_id=c2" / "part-0.parquet").touch()
    assert build(store, db, retag=True).texts_tagged == 2
    assert q(db, "SELECT count(*) FROM texts") == [(2,)]
    assert q(db, summary + " ORDER BY text_hash") == rows  # ... is redone by a retag


def test_carried_records_without_a_manifest_start_get_the_first_fresh_record_time(tmp_path: Path):
    """No started_at in the manifest: the crawl's earliest fresh record dates its carried ones;
    the crawls table keeps started_at NULL (unknown)."""
    from datetime import timedelta

    store, db = tmp_path / "store", tmp_path / "c.duckdb"
    t_fresh = T2 + timedelta(minutes=5)
    write_crawl(store, "c2", [
        rec("c2", t_fresh + timedelta(minutes=30), "A000000000001", "shampoo", price=1,
            reviews=1, text=OLD),
        rec("c2", t_fresh, "A000000000002", "shampoo", price=1, reviews=1, text=OLD),
        rec("c2", T1, "A000000000003", "shampoo", price=1, reviews=1, text=NEW)
        | {"carried": True},
    ])
    build(store, db)
    assert q(db, "SELECT crawled_at FROM crawl_records WHERE goods_no = 'A000000000003'") == [
        (t_fresh,)]
    assert q(db, "SELECT started_at FROM crawls") == [(None,)]


def test_texts_are_stored_trimmed_and_hashed_as_trimmed(tmp_path: Path):
    """Leading/trailing spaces (ASCII and the ideographic space) are trimmed before hashing, so
    the same list written with stray spaces is one text; blank texts are NULL. Tabs and line
    breaks are kept, as DuckDB's trim() keeps them."""
    import hashlib

    store, db = tmp_path / "store", tmp_path / "c.duckdb"
    texts = {
        "A000000000001": OLD,
        "A000000000002": f"  {OLD} ",
        "A000000000003": f"\u3000{OLD}\u3000",
        "A000000000004": "   ",
        "A000000000005": f"\t{NEW}",
    }
    write_crawl(store, "c1", [
        rec("c1", T1, g, "shampoo", price=1, reviews=1, text=t) for g, t in texts.items()
    ])
    build(store, db)
    got = dict((g, (t, h)) for g, t, h in q(
        db, "SELECT goods_no, ingredients_text, text_hash FROM crawl_records"))
    md5 = hashlib.md5(OLD.encode()).hexdigest()
    assert got["A000000000001"] == got["A000000000002"] == got["A000000000003"] == (OLD, md5)
    assert got["A000000000004"] == (None, None)
    assert got["A000000000005"] == (f"\t{NEW}", hashlib.md5(f"\t{NEW}".encode()).hexdigest())
