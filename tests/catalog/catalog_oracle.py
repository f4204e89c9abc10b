"""An independent oracle for the catalog tests over the real DeepRoot crawl.

It reads the CSVs with the csv module and tags only unambiguous ingredients by exact token
comparison; it shares no code with `deeproot.catalog` or `deeproot.ingredients`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

FILES = {
    "shampoo": "shampoo",
    "rinse_conditioner": "rinse",
    "shampoo_bar_dry_shampoo": "bar",
    "hair_oil_serum": "hairoil",
    "hair_water": "hairwater",
    "scalp_tonic": "tonic",
    "scalp_pack_scaler": "scaler",
}
SALICYLIC = {"살리실릭애씨드", "살리실산", "살리실릭애시드", "살리실릭산"}
# Seed-table types whose entries are all single ingredients (no families), spelled as on labels.
MARKERS = {
    "지루성": SALICYLIC
    | {"케토코나졸", "시클로피록스", "시클로피록스올아민", "세르타코나졸", "스쿠알란"},
    "비듬": SALICYLIC
    | {
        "다이소듐라우레스설포석시네이트",
        "디소듐라우레스설포석시네이트",
        "케토코나졸",
        "황",
        "유황",
    },
}


@dataclass(frozen=True)
class Row:
    goods_no: str
    category: str
    brand: str
    rating: float
    reviews: int
    tokens: frozenset[str]
    text: str


def tokens(text: str) -> frozenset[str]:
    """Label tokens: split on , @ and newlines, drop (…) and [..] notes, *, spaces."""
    out = set()
    for raw in re.split(r"[,@\n]", text or ""):
        t = re.sub(r"\([^)]*\)|\[[^\]]*\]|\*", "", raw)
        t = re.sub(r"\s+", "", t)
        if t:
            out.add(t)
    return frozenset(out)


def read_rows(crawl_dir: Path) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    for cat, stem in FILES.items():
        path = crawl_dir / f"{stem}_ingredient_data2_add_type.csv"
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                g = re.search(r"goodsNo=([A-Z]\d{12})", r["product_link"]).group(1)
                rows.setdefault(
                    (g, cat),
                    Row(
                        g,
                        cat,
                        r["brand_name"].strip(),
                        float(r["star"] or 0),
                        int(float(r["review_count"] or 0)),
                        tokens(r["ingredient"]),
                        r["ingredient"],
                    ),
                )
    return list(rows.values())


def seed_order(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r.rating, -r.reviews, r.goods_no))


def one_per_brand(rows: list[Row]) -> list[Row]:
    seen, out = set(), []
    for r in rows:
        k = r.brand.lower() or r.goods_no
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out
