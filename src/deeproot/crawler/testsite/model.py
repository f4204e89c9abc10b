"""Value objects of the offline Olive Young imitation: products shown on it and fault rules."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from deeproot.errors import DataError
from deeproot.taxonomy import category

DD_VARIANTS = ("plain", "br", "options")


@dataclass(frozen=True)
class SiteProduct:
    """One product as one category of the imitation site lists it.

    `ingredients_text` None means the notice has no ingredient row (non-cosmetics). `dd_variant`
    says how the notice renders the text: "plain" (as is), "br" (", " and newlines become
    `<br>`), "options" (two numbered options separated by `<br><br>`).
    """

    goods_no: str
    category: str
    brand: str
    name: str
    price_sale: int
    price_list: int
    rating: float
    review_count: int
    image_url: str
    ingredients_text: str | None
    dd_variant: str = "plain"


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of the site for requests that match `path` (substring) and `goods_no`/`page`.

    Kinds: "429" (with Retry-After), "503", "timeout" (answer after `seconds`), "empty" (200 with an
    empty body), "challenge" (403 Cloudflare interstitial), "malformed" (closing tags dropped),
    "deleted" (the product-not-found page). `times` None: every matching request; otherwise the
    first `times` matching requests only.
    """

    kind: str
    path: str = ""
    goods_no: str | None = None
    page: int | None = None
    times: int | None = 1
    retry_after: int | None = 1
    seconds: float = 2.0


@dataclass(frozen=True)
class Faults:
    """All faults of one serving of the site."""

    rules: tuple[Fault, ...] = ()
    robots_txt: str | None = None  # None: allow everything
    challenge_after: int | None = None  # every request after the first N gets the challenge
    js_listing: bool = False  # listing cards rendered by JavaScript only
    latency: float = 0.0  # seconds added to every answer


def _h(goods_no: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{goods_no}".encode()).hexdigest(), 16)


def synth_prices(goods_no: str) -> tuple[int, int]:
    """Deterministic (sale, list) prices in KRW; the DeepRoot CSVs carry no prices."""
    h = _h(goods_no, "price")
    list_price = 8000 + (h % 330) * 100
    if (h // 1000) % 10 < 4:
        pct = 10 + (h // 10000) % 41
        return (list_price * (100 - pct) // 1000) * 10, list_price
    return list_price, list_price


def dd_variant_for(goods_no: str) -> str:
    """Deterministic notice variant: 70% plain, 15% `<br>` lines, 15% numbered options."""
    r = _h(goods_no, "dd") % 20
    return "plain" if r < 14 else "br" if r < 17 else "options"


def _cat_from_link(link: str) -> tuple[str, str]:
    q = parse_qs(urlparse(link).query)
    try:
        return q["goodsNo"][0], category(q["dispCatNo"][0]).key
    except KeyError as exc:
        raise DataError(f"product link without goodsNo/dispCatNo: {link[:80]}") from exc


def load_deeproot_csvs(csv_dir: str | Path) -> list[SiteProduct]:
    """SiteProducts from the original DeepRoot crawl CSVs (UTF-8 with BOM, any column order).

    goodsNo and category come from each row's product link; prices are synthesized.
    """
    paths = sorted(Path(csv_dir).glob("*_ingredient_data2_add_type.csv"))
    if not paths:
        raise DataError(f"no *_ingredient_data2_add_type.csv files in {csv_dir}")
    out: list[SiteProduct] = []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                goods_no, cat = _cat_from_link(row["product_link"])
                sale, lst = synth_prices(goods_no)
                text = row["ingredient"]
                out.append(
                    SiteProduct(
                        goods_no=goods_no,
                        category=cat,
                        brand=row["brand_name"],
                        name=row["product_name"],
                        price_sale=sale,
                        price_list=lst,
                        rating=round(float(row["star"] or 0), 1),
                        review_count=int(float(row["review_count"] or 0)),
                        image_url=row["img_link"],
                        ingredients_text=text if text.strip() else None,
                        dd_variant=dd_variant_for(goods_no),
                    )
                )
    return out


def by_category(products: Iterable[SiteProduct]) -> dict[str, list[SiteProduct]]:
    """Products grouped by category key, in input (= listing) order."""
    out: dict[str, list[SiteProduct]] = {}
    for p in products:
        out.setdefault(p.category, []).append(p)
    return out


def first_by_goods(products: Iterable[SiteProduct]) -> Iterator[SiteProduct]:
    """The first SiteProduct of each goodsNo: the one its detail page and notice show."""
    seen: set[str] = set()
    for p in products:
        if p.goods_no not in seen:
            seen.add(p.goods_no)
            yield p
