"""Helpers that write crawl stores in the crawler's layout (deeproot.crawler.storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deeproot.crawler import storage

T1 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
T2 = datetime(2026, 2, 5, 3, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
OLD = "정제수, 소듐라우레스설페이트, 카페인, 향료"
NEW = "정제수, 소듐라우레스설페이트, 카페인, 살리실릭애씨드, 향료"


def rec(crawl_id, at, goods_no, category, *, price, reviews, text, rank=1, brand="브랜드A"):
    return {
        "crawl_id": crawl_id,
        "crawled_at": at,
        "goods_no": goods_no,
        "category": category,
        "disp_cat_no": "1000001000400080001",
        "brand": brand,
        "name": f"{brand} {goods_no}",
        "price_sale": price,
        "price_list": price + 1000,
        "currency": "KRW",
        "rating": 4.5,
        "review_count": reviews,
        "image_url": f"https://img.example/{goods_no}.jpg",
        "product_url": f"https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo={goods_no}",
        "ingredients_text": text,
        "has_ingredients": text is not None,
        "listing_rank": rank,
        "carried": False,
        "carried_from": None,
        "source_layout": "legacy",
        "listing_hash": "h",
    }


def write_crawl(
    out: Path, crawl_id: str, rows: list[dict], *, status="complete", marker=True, manifest=True
) -> Path:
    part = storage.partition_dir(out, crawl_id)
    part.mkdir(parents=True)
    path = part / "part-0.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=storage.PRODUCT_SCHEMA), path)
    if marker:
        (part / storage.SUCCESS_MARKER).write_text("")
    if manifest:
        storage.crawls_dir(out).mkdir(exist_ok=True)
        storage.manifest_path(out, crawl_id).write_text(
            json.dumps({"crawl_id": crawl_id, "status": status}), encoding="utf-8"
        )
    return path


def make_two_crawls(out: Path) -> Path:
    """c1 (Jan): 3 products; c2 (Feb): one repriced with a new formula, one gone, one new."""
    write_crawl(
        out,
        "c1",
        [
            rec("c1", T1, "A000000000001", "shampoo", price=10000, reviews=10, text=OLD),
            rec(
                "c1",
                T1,
                "A000000000002",
                "shampoo",
                price=20000,
                reviews=5,
                text=None,
                rank=2,
                brand="브랜드B",
            ),
            rec(
                "c1",
                T1,
                "A000000000002",
                "scalp_tonic",
                price=20000,
                reviews=5,
                text=None,
                brand="브랜드B",
            ),
            rec("c1", T1, "A000000000003", "hair_water", price=5000, reviews=1, text=OLD),
        ],
    )
    write_crawl(
        out,
        "c2",
        [
            rec("c2", T2, "A000000000001", "shampoo", price=9000, reviews=30, text=NEW),
            rec(
                "c2",
                T2,
                "A000000000002",
                "shampoo",
                price=20000,
                reviews=6,
                text=None,
                rank=2,
                brand="브랜드B",
            ),
            rec("c2", T2, "A000000000004", "hair_water", price=7000, reviews=2, text=NEW),
        ],
    )
    return out
