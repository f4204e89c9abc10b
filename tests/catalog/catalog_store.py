"""Helpers that write crawl stores in the crawler's layout (docs/crawler.md): partitions
`products/crawl_id=<id>/part-0.parquet` with a `_SUCCESS` marker, manifests `crawls/<id>.json`.
Written here, not through deeproot.crawler.storage, so the catalog is checked against the layout
itself (and short crawl ids keep the tests readable)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# products/1 as the crawler writes it, plus the nullable columns added since (sold_out from the
# listing card, functional_claim from the notice)
PRODUCT_SCHEMA = pa.schema(
    [
        ("crawl_id", pa.string()),
        ("crawled_at", pa.timestamp("us", tz="UTC")),
        ("goods_no", pa.string()),
        ("category", pa.string()),
        ("disp_cat_no", pa.string()),
        ("brand", pa.string()),
        ("name", pa.string()),
        ("price_sale", pa.int32()),
        ("price_list", pa.int32()),
        ("currency", pa.string()),
        ("rating", pa.float64()),
        ("review_count", pa.int32()),
        ("image_url", pa.string()),
        ("product_url", pa.string()),
        ("ingredients_text", pa.string()),
        ("has_ingredients", pa.bool_()),
        ("listing_rank", pa.int32()),
        ("carried", pa.bool_()),
        ("carried_from", pa.string()),
        ("source_layout", pa.string()),
        ("listing_hash", pa.string()),
        ("sold_out", pa.bool_()),
        ("functional_claim", pa.string()),
    ]
)
SUCCESS_MARKER = "_SUCCESS"


def partition_dir(out: Path, crawl_id: str) -> Path:
    return out / "products" / f"crawl_id={crawl_id}"


def manifest_path(out: Path, crawl_id: str) -> Path:
    return out / "crawls" / f"{crawl_id}.json"

T1 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
T2 = datetime(2026, 2, 5, 3, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
OLD = "정제수, 소듐라우레스설페이트, 카페인, 향료"
NEW = "정제수, 소듐라우레스설페이트, 카페인, 살리실릭애씨드, 향료"


def rec(
    crawl_id, at, goods_no, category, *, price, reviews, text, rank=1, brand="브랜드A",
    sold_out=None, claim=None, rating=4.5,
):
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
        "rating": rating,
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
        "sold_out": sold_out,
        "functional_claim": claim,
    }


def write_crawl(
    out: Path,
    crawl_id: str,
    rows: list[dict],
    *,
    status="complete",
    marker=True,
    manifest=True,
    schema=PRODUCT_SCHEMA,
    started_at=None,
) -> Path:
    part = partition_dir(out, crawl_id)
    part.mkdir(parents=True)
    path = part / "part-0.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    if marker:
        (part / SUCCESS_MARKER).write_text("")
    if manifest:
        (out / "crawls").mkdir(exist_ok=True)
        doc = {"crawl_id": crawl_id, "status": status}
        if started_at is not None:
            doc["started_at"] = started_at.isoformat()
        manifest_path(out, crawl_id).write_text(json.dumps(doc), encoding="utf-8")
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
