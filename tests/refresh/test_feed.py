"""`deeproot.catalog.feed.import_feed`: a licensed feed as a pseudo-crawl of the store."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from deeproot.catalog.feed import import_feed, parse_mapping
from deeproot.cli.refresh import catalog_import
from deeproot.crawler.storage import PRODUCT_SCHEMA, is_complete
from deeproot.errors import InputError, QualityGateError
from deeproot.refresh.changes import compare

MAP = "goods_no=sku,name=title,brand=maker,ingredients=inci,price=price,rating=stars,reviews=n"
WHEN = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TONIC = "정제수, 에탄올, 살리실릭애씨드, 판테놀, 멘톨"
SHAMPOO = "정제수, 소듐라우레스설페이트, 코카미도프로필베타인, 징크피리치온, 향료"
HEADER = "sku,title,maker,inci,price,stars,n,cat\n"
ROWS = [
    f'P-1,두피 토닉,브랜드A,"{TONIC}","28,000원",4.7,"1,204",scalp_tonic\n',
    f',이름만,브랜드B,"{TONIC}",1000,4.0,3,scalp_tonic\n',  # no id
    f'P-2,샴푸,브랜드B,"{SHAMPOO}",abc,4.1,10,shampoo\n',  # unreadable price
    f'P-3,샴푸 리필,브랜드C,"{SHAMPOO}",15900,4.9,77,샴푸\n',  # Korean category label
    f'P-1,두피 토닉 중복,브랜드A,"{TONIC}",1,1,1,scalp_tonic\n',  # duplicate
    f'P-4,로션,브랜드D,"{TONIC}",100,4.0,1,lotion\n',  # unknown category
    f'P-5,두피 토닉 2,브랜드E,"{TONIC}",,,,scalp_tonic\n',  # optional fields empty
]
MAPPING = parse_mapping(MAP + ",category=cat")


def _csv(path: Path, rows: list[str] = ROWS) -> Path:
    path.write_text(HEADER + "".join(rows), encoding="utf-8-sig")
    return path


def _records(store: Path, crawl_id: str) -> list[dict]:
    t = pq.read_table(store / "products" / f"crawl_id={crawl_id}" / "part-0.parquet")
    return t.to_pylist()


def test_csv_rows_checked_one_by_one(tmp_path):
    store = tmp_path / "data"
    rep = import_feed(
        [_csv(tmp_path / "feed.csv")], MAPPING, "partner", store=store, crawled_at=WHEN
    )
    assert rep.status == "added" and rep.records == 3 and rep.rows_read == 7
    assert rep.skipped_rows == (
        "feed.csv:row 2 (line 3): no id in column sku",
        "feed.csv:row 3 (line 4): unreadable price 'abc'",
        "feed.csv:row 5 (line 6): duplicate of feed.csv:row 1 (line 2)",
        "feed.csv:row 6 (line 7): unknown category 'lotion'",
    )
    assert is_complete(store, rep.crawl_id)
    man = json.loads((store / "crawls" / f"{rep.crawl_id}.json").read_text())
    assert (man["status"], man["kind"], man["source"]) == ("complete", "feed", "partner")
    assert man["categories_covered"] == ["shampoo", "scalp_tonic"]
    rows = {r["goods_no"]: r for r in _records(store, rep.crawl_id)}
    assert sorted(rows) == ["P-1", "P-3", "P-5"]
    p1 = rows["P-1"]
    assert (p1["price_sale"], p1["price_list"], p1["rating"], p1["review_count"]) == (
        28000,
        28000,
        4.7,
        1204,
    )
    assert (p1["category"], p1["listing_rank"], p1["currency"]) == ("scalp_tonic", 1, "KRW")
    assert p1["ingredients_text"] == TONIC and p1["has_ingredients"] is True
    assert p1["source_layout"] == "feed:partner" and p1["carried"] is False
    assert p1["crawled_at"] == WHEN and p1["listing_hash"].startswith("feed:")
    assert rows["P-3"]["category"] == "shampoo" and rows["P-5"]["listing_rank"] == 2
    assert (rows["P-5"]["price_sale"], rows["P-5"]["rating"]) == (None, None)
    assert (
        pq.read_schema(store / "products" / f"crawl_id={rep.crawl_id}" / "part-0.parquet").names
        == PRODUCT_SCHEMA.names
    )
    # the same files again change nothing
    again = import_feed([tmp_path / "feed.csv"], MAPPING, "partner", store=store)
    assert (again.status, again.crawl_id) == ("unchanged", rep.crawl_id)
    assert len(list((store / "products").iterdir())) == 1


def test_jsonl_and_parquet_load_like_csv(tmp_path):
    good = [ROWS[0], ROWS[3], ROWS[6]]
    rows = []
    for line in good:
        rows.append(dict(zip(HEADER.strip().split(","), next(csv.reader([line])), strict=True)))
    (tmp_path / "f.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n[1]\n",
        encoding="utf-8",
    )
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "f.parquet")
    got = {}
    for name in ("f.csv", "f.jsonl", "f.parquet"):
        if name == "f.csv":
            _csv(tmp_path / name, good)
        store = tmp_path / name.replace(".", "_")
        rep = import_feed([tmp_path / name], MAPPING, "x", store=store, crawled_at=WHEN)
        got[name] = [
            {k: v for k, v in r.items() if k not in ("crawl_id",)}
            for r in _records(store, rep.crawl_id)
        ]
        if name == "f.jsonl":
            assert rep.skipped_rows == ("f.jsonl:row 4 (line 5): not a JSON object",)
    assert got["f.csv"] == got["f.jsonl"] == got["f.parquet"]
    assert len(got["f.csv"]) == 3


def test_bad_feeds_write_nothing(tmp_path):
    store = tmp_path / "data"
    feed = _csv(tmp_path / "feed.csv")
    with pytest.raises(InputError, match=r"feed.csv has no column\(s\) upc named in --map"):
        import_feed(
            [feed], parse_mapping(MAP.replace("sku", "upc") + ",category=cat"), "s", store=store
        )
    with pytest.raises(InputError, match="--map lacks ingredients"):
        parse_mapping("goods_no=a,name=b,brand=c")
    with pytest.raises(InputError, match="unknown field 'colour'"):
        parse_mapping(MAP + ",colour=c")
    with pytest.raises(InputError, match="map category=COLUMN or pass --category KEY"):
        import_feed([feed], parse_mapping(MAP), "s", store=store)
    bad = _csv(tmp_path / "bad.csv", [ROWS[1], ROWS[2]])
    with pytest.raises(
        InputError,
        match=r"no importable rows in bad.csv; first problem: "
        r"bad.csv:row 1 \(line 2\): no id in column sku",
    ):
        import_feed([bad], MAPPING, "s", store=store)
    empty = _csv(tmp_path / "noingr.csv", [ROWS[0].replace(TONIC, ""), ROWS[3]])
    with pytest.raises(QualityGateError, match="50.0% of the feed's products have no ingredients"):
        import_feed([empty], MAPPING, "s", store=store)
    quote = tmp_path / "quote.csv"
    quote.write_text(HEADER + 'P-1,"unclosed,b,c,1,1,1,shampoo\n', encoding="utf-8")
    with pytest.raises(InputError, match="malformed CSV"):
        import_feed([quote], MAPPING, "s", store=store)
    cp949 = tmp_path / "cp949.csv"
    cp949.write_bytes((HEADER + ROWS[0]).encode("cp949"))
    with pytest.raises(InputError, match="is not UTF-8"):
        import_feed([cp949], MAPPING, "s", store=store)
    assert not (store / "products").exists() or not any((store / "products").iterdir())


def test_feed_changes_and_sold_out(tmp_path):
    """Two imports of a feed give a change report like two crawls (sold_out included)."""
    store = tmp_path / "data"
    m = parse_mapping(MAP + ",sold_out=so")
    head = "sku,title,maker,inci,price,stars,n,so\n"
    a = tmp_path / "a.csv"
    a.write_text(
        head + f'P-1,토닉,A,"{TONIC}",1000,4.5,10,false\nP-2,샴푸,B,"{SHAMPOO}",2000,4.0,5,true\n',
        encoding="utf-8",
    )
    b = tmp_path / "b.csv"
    b.write_text(
        head + f'P-1,토닉,A,"{TONIC}",1100,4.5,10,true\n'
        f'P-2,샴푸,B,"{SHAMPOO.replace("징크피리치온, ", "")}",2000,4.0,5,false\n',
        encoding="utf-8",
    )
    import_feed([a], m, "p", store=store, category="scalp_tonic")
    import_feed([b], m, "p", store=store, category="scalp_tonic")
    ch = compare(store).changes
    assert [(e["goods_no"], e["sold_out_before"]) for e in ch["sold_out"]] == [("P-1", False)]
    assert [e["goods_no"] for e in ch["back_in_stock"]] == ["P-2"]
    assert [(e["goods_no"], e["pct"]) for e in ch["price"]] == [("P-1", 10.0)]
    [r] = ch["reformulated"]
    assert (r["goods_no"], r["removed"], r["added"]) == ("P-2", ["징크피리치온"], [])
    assert "비듬" in r["types_lost"]


def test_catalog_import_command(tmp_path):
    app = typer.Typer()
    app.command("import")(catalog_import)
    app.command("noop")(lambda: None)  # a group, so "import" is a subcommand
    feed = _csv(tmp_path / "feed.csv")
    data = tmp_path / "data"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "import",
            str(feed),
            "--map",
            MAP + ",category=cat",
            "--source",
            "partner",
            "--data",
            str(data),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "feed partner: 3 records from 7 rows (4 skipped, 0 without ingredients)" in res.stdout
    assert "catalog " in res.stdout and "3 products" in res.stdout
    from deeproot.catalog.recommend import close_connections, recommend

    picks = recommend(data / "catalog.duckdb", types=["oily"], categories=["scalp_tonic"])
    close_connections()
    assert [p.goods_no for p in picks.categories[0].picks] == ["P-1", "P-5"]
    res = runner.invoke(app, ["import", str(feed), "--map", "goods_no=sku", "--data", str(data)])
    assert isinstance(res.exception, InputError)
    assert "--map lacks name, brand, ingredients" in str(res.exception)


def test_deeproot_csv_preset(crawl_dir, tmp_path):
    """The original DeepRoot CSVs are one preset of the feed import: 1,051 records, dated
    2024-11-07 (their crawl id too, so later crawls sort after them)."""
    store = tmp_path / "data"
    rep = import_feed([crawl_dir], None, "deeproot-csv-2024", store=store, preset="deeproot-csv")
    assert rep.status == "added" and rep.records == 1051 and rep.skipped_rows == ()
    assert rep.crawl_id.startswith("20241107T000000Z-")
    rows = _records(store, rep.crawl_id)
    assert len({(r["goods_no"], r["category"]) for r in rows}) == 1051
    assert {r["currency"] for r in rows} == {"KRW"} and {r["price_sale"] for r in rows} == {None}
    assert sum(not r["has_ingredients"] for r in rows) == 26  # the CSV rows with no list
    with pytest.raises(InputError, match="--preset deeproot-csv reads its own columns"):
        import_feed([crawl_dir], MAPPING, "x", store=store, preset="deeproot-csv")
    again = import_feed([crawl_dir], None, "deeproot-csv-2024", store=store, preset="deeproot-csv")
    assert again.status == "unchanged"


def test_a_crawl_of_fewer_categories_delists_nothing_elsewhere(tmp_path):
    store = tmp_path / "data"
    m = parse_mapping(MAP + ",category=cat")
    both = _csv(tmp_path / "both.csv", [ROWS[0], ROWS[3], ROWS[6]])  # tonic P-1, P-5; shampoo P-3
    tonic_only = _csv(tmp_path / "tonic.csv", [ROWS[0]])  # P-5 gone from tonic
    import_feed([both], m, "p", store=store)
    import_feed([tonic_only], m, "p", store=store)
    rep = compare(store)
    assert rep.after.categories == ("scalp_tonic",)
    assert [e["goods_no"] for e in rep.changes["delisted"]] == ["P-5"]  # not shampoo's P-3
