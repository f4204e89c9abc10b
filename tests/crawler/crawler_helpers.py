"""Helpers for the crawler tests: expected records computed from SiteProducts, CLI runs, reads.

Expected records come from the SiteProducts directly (listing position, the first entry of a
goodsNo for the detail fields, the notice variant's text), not from the crawler's parsers.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deeproot.cli.main import main
from deeproot.crawler.testsite import SiteProduct
from deeproot.crawler.testsite.render import listing_image
from deeproot.taxonomy import category

SITE = "https://www.oliveyoung.co.kr"
SMALL_CATS = ("scalp_tonic", "scalp_pack_scaler")
SKIP = ("crawled_at", "crawl_id", "listing_hash", "ingredients_at")


def expected_text(p: SiteProduct) -> str | None:
    t = p.ingredients_text
    if t is None:
        return None
    if p.dd_variant == "br":
        return t.replace(", ", "\n").strip()
    if p.dd_variant == "options":
        return f"1. {p.brand} 본품 : {t}\n\n2. {p.brand} 리필 : {t}".strip()
    return t.strip()


def card_has_rating(rank: int) -> bool:
    """The imitation's cards at rank % 17 == 8 carry an empty star width (`width:%`)."""
    return rank % 17 != 8


def expected_records(
    products: list[SiteProduct],
    *,
    drop: set[str] = frozenset(),
    cats: tuple[str, ...] | None = None,
    details: str | None = None,
) -> dict[tuple[str, str], dict]:
    """(goods_no, category) -> the record a correct crawl stores (minus times and ids).

    Product-level listing fields come from the product's card in the first crawled category
    (`cats` order, default the order categories first appear in `products`); ingredients, the
    functional claim and the review stats from the site's product pages, which show the first
    entry of a goodsNo. `details`: the detail layout when every detail page is fetched.
    """
    first: dict[str, SiteProduct] = {}
    for p in products:
        first.setdefault(p.goods_no, p)
    order = list(cats) if cats else list(dict.fromkeys(p.category for p in products))
    rank: dict[str, int] = {}
    entries: list[tuple[SiteProduct, int]] = []
    for p in products:
        rank[p.category] = rank.get(p.category, 0) + 1
        entries.append((p, rank[p.category]))
    primary: dict[str, tuple[SiteProduct, int]] = {}
    for p, r in entries:
        if p.category not in order:
            continue
        cur = primary.get(p.goods_no)
        if cur is None or (order.index(p.category), r) < (order.index(cur[0].category), cur[1]):
            primary[p.goods_no] = (p, r)
    out: dict[tuple[str, str], dict] = {}
    for p, r in entries:
        key = (p.goods_no, p.category)
        if key in out or p.goods_no in drop or p.category not in order:
            continue
        d = first[p.goods_no]
        c, crank = primary[p.goods_no]
        exact = c.review_count <= 999 and card_has_rating(crank)
        rec = {
            "goods_no": p.goods_no,
            "category": p.category,
            "disp_cat_no": category(p.category).disp_cat_no,
            "brand": c.brand,
            "name": c.name,
            "price_sale": c.price_sale,
            "price_list": c.price_list,
            "currency": "KRW",
            "rating": c.rating if exact else d.rating,
            "review_count": c.review_count if exact else d.review_count,
            "image_url": listing_image(c.image_url),
            "product_url": f"{SITE}/store/goods/getGoodsDetail.do?goodsNo={p.goods_no}",
            "ingredients_text": expected_text(d),
            "has_ingredients": d.ingredients_text is not None,
            "listing_rank": r,
            "carried": False,
            "carried_from": None,
            "source_layout": "listing",
            "sold_out": c.sold_out,
            "functional_claim": d.functional_claim,
            "review_source": "listing" if exact else "stats",
        }
        if details:
            rec |= {
                "brand": d.brand,
                "name": d.name,
                "price_sale": d.price_sale,
                "price_list": d.price_list,
                "rating": d.rating,
                "review_count": d.review_count,
                "image_url": d.image_url,
                "source_layout": details,
                "sold_out": d.sold_out,
                "review_source": "detail",
            }
        out[key] = rec
    return out


def partitions(out: Path) -> list[Path]:
    return sorted((out / "products").glob("crawl_id=*/part-0.parquet"))


def read_records(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def comparable(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Records keyed like expected_records, without per-crawl fields; asserts no duplicates."""
    out = {}
    for r in rows:
        key = (r["goods_no"], r["category"])
        assert key not in out, f"duplicate record {key}"
        out[key] = {k: v for k, v in r.items() if k not in SKIP}
    return out


def crawl(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run the real `deeproot crawl` CLI in-process (the crawl itself runs in a worker process)."""
    capsys.readouterr()
    rc = main(["crawl", "--delay", "0", "--backoff", "0.05", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def with_changes(products: list[SiteProduct], every: int) -> tuple[list[SiteProduct], set[str]]:
    """Products with the sale price of every `every`-th goodsNo lowered by 1,000 won."""
    goods = sorted({p.goods_no for p in products})
    changed = set(goods[::every])
    return [
        replace(p, price_sale=p.price_sale - 1000) if p.goods_no in changed else p for p in products
    ], changed


def require_browser() -> str:
    chromium = os.environ.get("DEEPROOT_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        if os.environ.get("DEEPROOT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DEEPROOT_REQUIRE_BROWSER=1 but Chromium is missing at {chromium}")
        pytest.skip(f"Chromium not installed at {chromium} (apt-get install chromium)")
    return chromium
