"""Pure parsing of Olive Young pages (listing, detail in both layouts, notice fragment) with parsel.

No I/O here: every function takes HTML text and returns a frozen value object, so the rules are
tested directly and shared by the spider and any other reader.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlparse, urlunparse

from parsel import Selector

INGREDIENT_LABEL = "화장품법에 따라 기재해야 하는 모든 성분"
_GOODS_RE = re.compile(r"[A-Z]\d{12}")
_NUM_RE = re.compile(r"\d[\d,]*")
# Body markers of the interstitial itself. Not "/cdn-cgi/challenge-platform/" alone: Cloudflare
# injects that script into ordinary pages too; and "잠시만 기다려 주세요" only counts in <title>,
# since loading layers of ordinary pages use the same words.
_CHALLENGE_MARKERS = (
    "Enable JavaScript and cookies to continue",
    "_cf_chl_opt",
    "challenge-error-text",
)
_CHALLENGE_TITLES = ("잠시만 기다려 주세요", "Just a moment")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_DELETED_MARKERS = ("상품을 찾을 수 없습니다", "error-page noProduct")


@dataclass(frozen=True)
class ListingCard:
    """One product card of a listing page, fields as the listing shows them."""

    goods_no: str
    href: str | None  # absolute detail link as on the page (tracking parameters included)
    brand: str
    name: str
    price_sale: int | None
    price_list: int | None
    rating: float | None
    review_count_text: str  # "(2,855)" or capped "(999+)"
    image_url: str | None

    def fingerprint(self) -> str:
        """A hash of the listing fields; a change means the product must be fetched again."""
        parts = (
            self.brand,
            self.name,
            self.price_sale,
            self.price_list,
            self.rating,
            self.review_count_text,
            self.image_url,
        )
        return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ListingPage:
    cards: tuple[ListingCard, ...]
    total: int | None  # from `p.cate_info_tx span`
    title: str | None  # the category title (`.titBox h1`)
    max_page_link: int | None  # highest `data-page-no` in `div.pageing`


@dataclass(frozen=True)
class DetailInfo:
    brand: str | None
    name: str | None
    price_sale: int | None
    price_list: int | None
    rating: float | None
    review_count: int | None
    image_url: str | None
    layout: str  # "legacy" or "2025"


@dataclass(frozen=True)
class Notice:
    """The ingredient row of a notice fragment: state "ok" (text), "missing" (no row), "empty"."""

    state: str
    text: str | None


def _int(text: str | None) -> int | None:
    if not text:
        return None
    m = _NUM_RE.search(text)
    return int(m.group(0).replace(",", "")) if m else None


def _float(text: str | None) -> float | None:
    if not text:
        return None
    m = re.search(r"\d+(?:\.\d+)?", text)
    return float(m.group(0)) if m else None


def _text(sel: Selector | None) -> str | None:
    if sel is None:
        return None
    t = "".join(sel.xpath(".//text()").getall()).strip()
    return t or None


def _first(sel: Selector, css: str) -> Selector | None:
    found = sel.css(css)
    return found[0] if found else None


def is_challenge(body: str, headers: dict[str, str] | None = None) -> bool:
    """True for a Cloudflare-style interstitial ("잠시만 기다려 주세요", "Enable JavaScript...")."""
    if headers and headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    head = body[:20000]
    title = _TITLE_RE.search(head)
    if title and any(t in title.group(1) for t in _CHALLENGE_TITLES):
        return True
    return any(m in head for m in _CHALLENGE_MARKERS)


def is_deleted(body: str) -> bool:
    """True for the page a removed product answers with (check only pages without product data)."""
    return any(m in body for m in _DELETED_MARKERS)


def goods_no_of(li: Selector) -> str | None:
    """goodsNo from `data-ref-goodsno`, else the href's goodsNo, else `criteo-goods` minus 3."""
    # Read the card's own (first) thumb link: on malformed pages later cards nest inside it.
    thumbs = li.css("a.prd_thumb")
    attrs = thumbs[0].attrib if thumbs else {}
    ref = attrs.get("data-ref-goodsno")
    if ref and _GOODS_RE.fullmatch(ref.strip()):
        return ref.strip()
    q = parse_qs(urlparse(attrs.get("href") or "").query).get("goodsNo")
    if q and _GOODS_RE.fullmatch(q[0]):
        return q[0]
    criteo = (li.attrib.get("criteo-goods") or "").strip()
    if len(criteo) > 3 and _GOODS_RE.fullmatch(criteo[:-3]):
        return criteo[:-3]
    return None


def _rating_from_style(style: str | None) -> float | None:
    m = re.search(r"width\s*:\s*(\d+(?:\.\d+)?)\s*%", style or "")
    return round(float(m.group(1)) / 20, 1) if m else None


def parse_listing(html: str, page_url: str = "") -> ListingPage:
    """Cards, total count, title and paging of a `getMCategoryList.do` page."""
    sel = Selector(text=html)
    cards: list[ListingCard] = []
    # Cards by their criteo attribute anywhere under the list: on pages with unclosed tags the
    # rows nest inside each other, and `ul > li` would miss them.
    lis = sel.css("ul.cate_prd_list li[criteo-goods]") or sel.css("ul.cate_prd_list > li")
    for li in lis:
        goods = goods_no_of(li)
        if goods is None:
            continue
        info = _first(li, "div[class~=prd_info]") or li
        href = (_first(info, "a.prd_thumb") or info).attrib.get("href")
        if href and not href.startswith(("http://", "https://", "/")):
            href = None
        point = _first(info, ".review_point")
        count_text = ""
        if point is not None:
            tail = [t.strip() for t in point.xpath("following-sibling::text()").getall()]
            count_text = next((t for t in tail if t), "")
        img = (
            info.css("a.prd_thumb img::attr(src)").get()
            or info.css("a.prd_thumb img::attr(data-original)").get()
        )
        sale = _int(_text(_first(info, ".prd_price .tx_cur .tx_num")))
        org = _int(_text(_first(info, ".prd_price .tx_org .tx_num")))
        cards.append(
            ListingCard(
                goods_no=goods,
                href=urljoin(page_url, href) if href else None,
                brand=_text(_first(info, ".tx_brand")) or "",
                name=_text(_first(info, ".tx_name")) or "",
                price_sale=sale,
                price_list=org if org is not None else sale,
                rating=_rating_from_style(info.css(".review_point .point::attr(style)").get()),
                review_count_text=count_text,
                image_url=img.strip() if img else None,
            )
        )
    total = _int(sel.css("p.cate_info_tx span::text").get())
    title = _text(_first(sel, ".titBox h1"))
    pages = [int(p) for p in sel.css("div.pageing a::attr(data-page-no)").getall() if p.isdigit()]
    return ListingPage(tuple(cards), total, title, max(pages) if pages else None)


def _meta(sel: Selector, prop: str) -> str | None:
    v = sel.css(f'meta[property="eg:{prop}"]::attr(content)').get()
    return v.strip() if v and v.strip() else None


def _cls(name: str) -> str:
    """A selector for a CSS-module class by its stable prefix (never the hash)."""
    return f'[class*="{name}__"]'


def parse_detail(html: str) -> DetailInfo | None:
    """Product fields of a detail page in the legacy or the 2025 layout; None if neither."""
    sel = Selector(text=html)
    if sel.css("#Contents .prd_detail_box, #repReview, #mainImg"):
        rep = _first(sel, "#repReview")
        lst = _int(_text(_first(sel, ".price .price-1 strike")))
        sale = _int(_text(_first(sel, ".price .price-2 strong")))
        sale = sale if sale is not None else _int(_meta(sel, "salePrice"))
        lst = lst if lst is not None else _int(_meta(sel, "originalPrice"))
        img = sel.css("#mainImg::attr(src)").get() or _meta(sel, "itemImage")
        return DetailInfo(
            brand=_text(_first(sel, "p.prd_brand")) or _meta(sel, "brandName"),
            name=_text(_first(sel, "p.prd_name")) or _meta(sel, "itemName"),
            price_sale=sale,
            price_list=lst if lst is not None else sale,
            rating=_float(_text(_first(rep, "b"))) if rep is not None else None,
            review_count=_int(_text(_first(rep, "em"))) if rep is not None else None,
            image_url=img.strip() if img else None,
            layout="legacy",
        )
    if sel.css(f"{_cls('GoodsDetailInfo_container')}, {_cls('page_product-details-wrapper')}"):
        name = _text(_first(sel, f"{_cls('GoodsDetailInfo_title-area')} h3")) or _text(
            _first(sel, f"{_cls('GoodsDetailInfo_title-area')} h1")
        )
        sale = _int(_text(_first(sel, f"{_cls('GoodsDetailInfo_price-sale')} strong")))
        lst = _int(_text(_first(sel, _cls("GoodsDetailInfo_price-original"))))
        img = sel.css(f"{_cls('GoodsDetailImage_main-image')} img::attr(src)").get()
        return DetailInfo(
            brand=_text(_first(sel, _cls("GoodsDetailInfo_brand-name"))),
            name=name,
            price_sale=sale,
            price_list=lst if lst is not None else sale,
            rating=_float(_text(_first(sel, _cls("ReviewArea_rating-star")))),
            review_count=_int(_text(_first(sel, f"{_cls('ReviewArea_btn-review')} em"))),
            image_url=img.strip() if img else None,
            layout="2025",
        )
    return None


def _dd_text(dd: Selector) -> str:
    """A `dd`'s text verbatim: `<br>` becomes a newline, tags dropped, entities decoded."""
    raw = dd.get()
    inner = re.sub(r"^<dd[^>]*>|</dd>\s*$", "", raw.strip(), flags=re.S)
    inner = re.sub(r"<br\s*/?>", "\n", inner, flags=re.I)
    inner = re.sub(r"<[^>]+>", "", inner)
    return unescape(inner).strip()


def parse_notice(html: str) -> Notice:
    """The ingredient row of a `getGoodsArtcAjax.do` fragment (or a notice table, 2025 layout)."""
    sel = Selector(text=html or "<html></html>")
    dls = sel.css("dl.detail_info_list")
    rows = sel.css("table tr")
    if not dls and not rows:
        return Notice("empty", None)
    for dl in dls:
        for dt in dl.css("dt"):
            if re.sub(r"\s+", "", _text(dt) or "") == INGREDIENT_LABEL.replace(" ", ""):
                dd = dt.xpath("following-sibling::dd[1]")
                text = _dd_text(dd[0]) if dd else ""
                return Notice("ok" if text else "missing", text or None)
    for tr in rows:
        if re.sub(r"\s+", "", _text(_first(tr, "th")) or "") == INGREDIENT_LABEL.replace(" ", ""):
            td = _first(tr, "td")
            text = _dd_text(td) if td is not None else ""
            return Notice("ok" if text else "missing", text or None)
    if not any(dl.css("dt") for dl in dls) and not rows:
        return Notice("empty", None)
    return Notice("missing", None)


_KEEP_PARAMS = ("goodsNo",)


def strip_tracking(url: str) -> str:
    """The URL with only identifying parameters (goodsNo) kept: no dispCatNo, t_*, trackingCd."""
    u = urlparse(url)
    q = parse_qs(u.query)
    kept = [(k, q[k][0]) for k in _KEEP_PARAMS if k in q]
    return urlunparse(u._replace(query=urlencode(kept), fragment=""))


def rebase(url: str, site_url: str, base_url: str) -> str:
    """`url` on the site's host (or relative) moved to `base_url`; other hosts left alone."""
    u, s, b = urlparse(url), urlparse(site_url), urlparse(base_url)
    if u.netloc and u.netloc != s.netloc and u.netloc != b.netloc:
        return url
    path = u.path
    prefix = b.path.rstrip("/")
    if prefix and not path.startswith(prefix + "/"):
        path = prefix + path
    return urlunparse(u._replace(scheme=b.scheme, netloc=b.netloc, path=path))


def canonical(url: str, site_url: str, base_url: str) -> str:
    """The public product URL on the real site for a URL fetched from `base_url`."""
    u, b, s = urlparse(url), urlparse(base_url), urlparse(site_url)
    prefix = b.path.rstrip("/")
    path = u.path[len(prefix) :] if prefix and u.path.startswith(prefix + "/") else u.path
    return strip_tracking(urlunparse(u._replace(scheme=s.scheme, netloc=s.netloc, path=path)))
