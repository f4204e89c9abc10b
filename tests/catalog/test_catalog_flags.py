"""Sold-out products, ingredient flags and the functional claim in the catalog and in recommend;
NULL for unrated products, a crawl's start time on carried records, ingredient-level
reformulations (issues 10, 11, 14)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from catalog_store import T1, T2, rec, write_crawl

from deeproot.catalog.build import build
from deeproot.catalog.recommend import recommend
from deeproot.cli.main import main
from deeproot.errors import InputError

CLAIM = "탈모 증상 완화에 도움을 주는 기능성 화장품"
TEXTS = {
    "P1": "정제수, 소듐라우레스설페이트, 리모넨, 카페인",  # sulfate + allergen
    "P2": "정제수, 코카미도프로필베타인, 덱스판테놀, 카페인",  # functional active, no claim
    "P3": "정제수, 코카미도프로필베타인, 카페인, 판테놀",  # states the claim
    "P4": "정제수, 코카미도프로필베타인, 카페인, 향료",  # sold out
}


def goods(p: str) -> str:
    return f"A00000000010{p[1]}"


@pytest.fixture(scope="module")
def flagged(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flags")
    store = out / "store"

    def r(crawl, at, p, rating, **kw):
        return rec(crawl, at, goods(p), "shampoo", price=10000, reviews=10, text=TEXTS.get(p),
                   brand=f"브랜드{p}", rating=rating, **kw)

    write_crawl(store, "c1", [
        r("c1", T1, "P1", 4.8),
        r("c1", T1, "P2", 4.7),
        r("c1", T1, "P3", 4.0, claim=CLAIM),
        r("c1", T1, "P4", 4.9),
        # a plain-text-only change follows in c2
        rec("c1", T1, "A000000000106", "hair_water", price=1, reviews=0, rating=0.0,
            text="정제수, 글리세린, 향료", brand="브랜드P6"),
    ])
    started = T2 - timedelta(hours=1)
    write_crawl(store, "c2", [
        r("c2", T2, "P1", 4.8, sold_out=False),
        r("c2", T2, "P2", 4.7, sold_out=False, claim="해당없음"),
        r("c2", T2, "P3", 4.0, sold_out=False, claim=CLAIM),
        r("c2", T2, "P4", 4.9, sold_out=True),
        rec("c2", T1, "A000000000106", "hair_water", price=1, reviews=0, rating=0.0,
            text="정제수,글리세린,향료", brand="브랜드P6") | {"carried": True},
    ], started_at=started)
    db = out / "c.duckdb"
    build(store, db)
    return db


def q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_products_carry_flags_claims_and_stock(flagged):
    rows = q(
        flagged,
        "SELECT goods_no, sold_out, flags, allergens, free_of, functional_claim, "
        "hair_loss_functional_claim, rating FROM products ORDER BY goods_no",
    )
    free_all = ["sulfate_surfactant", "silicone", "paraben", "mineral_oil", "synthetic_colour",
                "fragrance"]
    assert rows == [
        (goods("P1"), False, ["allergen", "sulfate_surfactant"], ["리모넨"],
         [f for f in free_all if f != "sulfate_surfactant"], None, False, 4.8),
        (goods("P2"), False, ["hair_loss_functional"], [], free_all, "해당없음", False, 4.7),
        (goods("P3"), False, [], [], free_all, CLAIM, True, 4.0),
        (goods("P4"), True, ["fragrance"], [], free_all[:-1], None, False, 4.9),
        ("A000000000106", None, ["fragrance"], [], free_all[:-1], None, False, None),
    ]
    assert q(
        flagged,
        "SELECT goods_no, flag, evidence FROM product_flags WHERE goods_no = 'A000000000101' "
        "ORDER BY flag",
    ) == [
        (goods("P1"), "allergen", ["리모넨"]),
        (goods("P1"), "sulfate_surfactant", ["소듐라우레스설페이트"]),
    ]
    # the sold-out flag is kept with history (NULL where the crawl did not say)
    assert q(
        flagged,
        "SELECT crawl_id, sold_out FROM product_history WHERE goods_no = 'A000000000104' "
        "ORDER BY crawled_at",
    ) == [("c1", None), ("c2", True)]


def test_carried_records_get_the_crawl_start_and_text_only_changes_are_not_reformulations(
    flagged,
):
    (when,) = q(
        flagged,
        "SELECT crawled_at FROM product_history WHERE goods_no = 'A000000000106' "
        "AND crawl_id = 'c2'",
    )[0]
    assert when == T2 - timedelta(hours=1)  # the manifest's started_at, not c1's time
    assert q(flagged, "SELECT goods_no FROM formula_changes") == [("A000000000106",)]
    assert q(flagged, "SELECT count(*) FROM analyst.reformulations") == [(0,)]


def picks(res) -> list[str]:
    return [p.goods_no for p in res.categories[0].picks]


def test_recommend_filters(flagged):
    base = dict(types=["탈모성"], categories=["shampoo"], top=5)
    assert picks(recommend(flagged, **base)) == [goods("P1"), goods("P2"), goods("P3")]
    with_sold = recommend(flagged, **base, include_sold_out=True)
    assert picks(with_sold) == [goods("P4"), goods("P1"), goods("P2"), goods("P3")]
    assert with_sold.categories[0].picks[0].sold_out is True
    assert picks(recommend(flagged, **base, free_of=["sulfate_surfactant"])) == [
        goods("P2"), goods("P3")
    ]
    assert picks(recommend(flagged, **base, no_allergens=True)) == [goods("P2"), goods("P3")]
    assert picks(recommend(flagged, **base, free_of=["fragrance"], include_sold_out=True)) == [
        goods("P1"), goods("P2"), goods("P3")
    ]
    # the claim ranks first; a functional active without the claim is not "functional"
    pref = recommend(flagged, **base, prefer_functional=True)
    assert picks(pref) == [goods("P3"), goods("P1"), goods("P2")]
    p3, p1, p2 = pref.categories[0].picks
    assert (p3.hair_loss_functional_claim, p2.hair_loss_functional_claim) == (True, False)
    assert "hair_loss_functional" in p2.flags
    with pytest.raises(InputError, match="unknown free-of family 'soap'; valid: sulfate_surf"):
        recommend(flagged, **base, free_of=["soap"])


def test_sensitive_scalps_see_allergens_as_a_caution(flagged):
    res = recommend(flagged, types=["민감성", "탈모성"], categories=["shampoo"], top=5)
    by = {p.goods_no: p for p in res.categories[0].picks}
    assert by[goods("P1")].cautions == ("allergen",) and by[goods("P1")].allergens == ("리모넨",)
    assert all(p.cautions == () for g, p in by.items() if g != goods("P1"))
    plain = recommend(flagged, types=["탈모성"], categories=["shampoo"], top=5)
    assert all(p.cautions == () for p in plain.categories[0].picks)  # only for 민감성
    pref = recommend(flagged, types=["민감성", "탈모성"], categories=["shampoo"], top=5,
                     prefer_allergen_free=True)
    assert picks(pref)[-1] == goods("P1")


def test_cli_marks_sold_out_allergens_and_badges(capsys, flagged, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code = main(["recommend", "--type", "민감성", "--type", "탈모성", "--category", "shampoo",
                 "--top", "5", "--include-sold-out", "--db", str(flagged)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    p4 = next(i for i, line in enumerate(lines) if "브랜드P4" in line)
    assert lines[p4].endswith("[품절 sold out]")
    assert "     caution: 알레르기 유발 향료 성분 리모넨" in lines
    assert "     기능성: 탈모 증상 완화 (hair-loss functional cosmetic)" in lines
    assert any(line.startswith("     free of: sulfate surfactant, silicone") for line in lines)
    code = main(["recommend", "--type", "탈모성", "--category", "shampoo", "--free-of",
                 "sulfate_surfactant,silicone", "--no-allergens", "--json", "--db", str(flagged)])
    doc = json.loads(capsys.readouterr().out)
    assert (doc["free_of"], doc["no_allergens"]) == (["sulfate_surfactant", "silicone"], True)
    assert [p["goods_no"] for p in doc["categories"][0]["picks"]] == [goods("P2"), goods("P3")]
    assert doc["categories"][0]["picks"][0]["allergens"] == []


def test_empty_catalog_is_an_error(tmp_path, flagged):
    import shutil

    db = tmp_path / "c.duckdb"
    shutil.copy(flagged, db)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM products")
    con.close()
    with pytest.raises(Exception, match=r"holds no products; build it with"):
        recommend(db, types=["oily"])
