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
    `<br>`), "options" (two numbered options separated by `<br><br>`). `sold_out` marks the card
    (and the detail page) sold out; `functional_claim` is the notice's 기능성 화장품 심사필 row
    (None: the notice has no such row).
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
    sold_out: bool = False
    functional_claim: str | None = None


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of the site for requests that match `path` (substring) and `goods_no`/`page`.

    Kinds: "429" (with Retry-After), "503", "404", "timeout" (answer after `seconds`), "empty" (200
    with an empty body), "challenge" (403 Cloudflare interstitial), "challenge_late" (the same page
    with its markers after 40 KB of script, status 200, no header), "akamai" (403 "Access Denied"),
    "malformed" (closing tags dropped), "deleted" (the product-not-found page), "offsite" (a 302 to
    another host), "bomb" (1 MB of gzip that inflates to 1 GiB). `times` None: every matching
    request; otherwise the first `times` matching requests only.
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
    robots_status: int = 200  # e.g. 500: robots.txt answers a server error
    robots_delay: float = 0.0  # seconds before robots.txt answers (a timeout)
    challenge_after: int | None = None  # every request after the first N gets the challenge
    blocked_after: int | None = None  # every request after the first N gets a bare 403
    # plain HTTP clients (no `Sec-Fetch-Mode` header, which browsers send) get the challenge
    challenge_non_browser: bool = False
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


def sold_out_for(goods_no: str) -> bool:
    """Deterministic sold-out state for the CSV-made site: about 1 goodsNo in 13."""
    return _h(goods_no, "soldout") % 13 == 0


# MFDS functional-cosmetic ingredients for hair-loss relief
# (덱스판테놀, 비오틴, 엘-멘톨, 징크피리치온); the imitation claims the function for
# products that list one of them.
_HAIR_LOSS_ACTIVES = ("덱스판테놀", "비오틴", "엘-멘톨", "징크피리치온")
HAIR_LOSS_CLAIM = "탈모 증상의 완화에 도움을 주는 기능성 화장품"


def functional_claim_for(goods_no: str, text: str | None) -> str | None:
    """The notice's functional-cosmetic row: a 탈모 claim, "해당사항 없음", or no row (None)."""
    if text and any(a in text for a in _HAIR_LOSS_ACTIVES):
        return HAIR_LOSS_CLAIM
    return "해당사항 없음" if _h(goods_no, "claim") % 2 else None


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
                        sold_out=sold_out_for(goods_no),
                        functional_claim=functional_claim_for(goods_no, text),
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
