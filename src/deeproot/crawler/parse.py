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
# since loading layers of ordinary pages use the same words. The whole body is searched: a real
# challenge page carries its markers after 40 KB of inline script.
_CHALLENGE_MARKERS = (
    "Enable JavaScript and cookies to continue",
    "_cf_chl_opt",
    "challenge-error-text",
)
_CHALLENGE_TITLES = ("잠시만 기다려 주세요", "Just a moment")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
# Akamai's block page: a 403 whose body says "Access Denied" and carries a "Reference #" id.
_AKAMAI_RE = re.compile(r"Access Denied", re.I)
_AKAMAI_REF_RE = re.compile(r"Reference\s*#\s*[0-9a-f.]+", re.I)
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
    sold_out: bool = False

    @property
    def review_capped(self) -> bool:
        """True for the capped `(999+)`: the exact count needs the review-stats JSON."""
        return "+" in self.review_count_text

    @property
    def review_count(self) -> int | None:
        """The exact review count the card shows, None when capped or absent."""
        if self.review_capped:
            return None
        return _int(self.review_count_text)

    def fingerprint(self) -> str:
        """A hash of the listing fields; a change means the product must be fetched again."""
        parts: tuple[object, ...] = (
            self.brand,
            self.name,
            self.price_sale,
            self.price_list,
            self.rating,
            self.review_count_text,
            self.image_url,
        )
        if self.sold_out:  # appended only when set: hashes of in-stock cards stay as before
            parts += ("sold_out",)
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
    sold_out: bool | None = None  # None: the page shows no stock state we recognise


@dataclass(frozen=True)
class Notice:
    """The ingredient row of a notice fragment: state "ok" (text), "missing" (no row), "empty".

    `functional_claim`: the 기능성 화장품 식품의약품안전처 심사필 row as written, None without one.
    """

    state: str
    text: str | None
    functional_claim: str | None = None


@dataclass(frozen=True)
class ReviewStats:
    """Rating and exact review count from the mobile review-stats JSON."""

    rating: float | None
    review_count: int | None


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
    """True for a Cloudflare-style interstitial ("잠시만 기다려 주세요", "Enable JavaScript...").

    The `cf-mitigated` header (any value: Cloudflare sends it only on mitigated answers) or a
    marker anywhere in the body; the title only from `<title>`.
    """
    if headers and headers.get("cf-mitigated", "").strip():
        return True
    title = _TITLE_RE.search(body)
    if title and any(t in title.group(1) for t in _CHALLENGE_TITLES):
        return True
    return any(m in body for m in _CHALLENGE_MARKERS)


def is_blocked(status: int, body: str) -> bool:
    """True for an Akamai-style block: HTTP 403 whose body says "Access Denied" / "Reference #"."""
    return status == 403 and bool(_AKAMAI_RE.search(body) or _AKAMAI_REF_RE.search(body))


def stop_reason(status: int, body: str, headers: dict[str, str] | None = None) -> str | None:
    """ "challenge", "blocked" or None: whether an answer means the site is stopping us."""
    if is_challenge(body, headers):
        return "challenge"
    if is_blocked(status, body):
        return "blocked"
    return None


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


# Sold-out state. Saved listing pages show `<span class="status_flag soldout">일시품절</span>`
# in the card's thumb link (research notes §2.1). The 2025 detail page's marker is not
# documented, so the detail check below is our invention and deliberately tolerant: any class
# containing "soldout" or "sold-out" (any case), or a button saying 일시품절/품절.
_SOLDOUT_CLASS = (
    "contains(translate(@class, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-_', 'abcdefghijklmnopqrstuvwxyz'), "
    "'soldout')"
)


_CARD = "li[@criteo-goods]"


class _Own:
    """Lookups inside one listing card that ignore cards nested in it (malformed pages leave
    tags unclosed, so every later card ends up inside the previous one)."""

    def __init__(self, li: Selector) -> None:
        self.li = li
        self.depth = li.xpath(f"count(ancestor-or-self::{_CARD})").get()

    def _mine(self, found: list[Selector]) -> list[Selector]:
        return [f for f in found if f.xpath(f"count(ancestor::{_CARD})").get() == self.depth]

    def css(self, css: str) -> list[Selector]:
        return self._mine(list(self.li.css(css)))

    def xpath(self, xp: str) -> list[Selector]:
        return self._mine(list(self.li.xpath(xp)))

    def first(self, css: str) -> Selector | None:
        found = self.css(css)
        return found[0] if found else None

    def attr(self, css: str, name: str) -> str | None:
        el = self.first(css)
        return el.attrib.get(name) if el is not None else None


def card_sold_out(li: Selector) -> bool:
    """True when a listing card is marked sold out (`.status_flag.soldout` or 품절 flag text)."""
    own = _Own(li)
    if own.xpath(f".//*[{_SOLDOUT_CLASS}]"):
        return True
    return any("품절" in (_text(t) or "") for t in own.css(".status_flag"))


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
        own = _Own(li)
        href = own.attr("a.prd_thumb", "href")
        if href and not href.startswith(("http://", "https://", "/")):
            href = None
        point = own.first(".review_point")
        count_text = ""
        if point is not None:
            tail = [t.strip() for t in point.xpath("following-sibling::text()").getall()]
            count_text = next((t for t in tail if t), "")
        img = own.attr("a.prd_thumb img", "src") or own.attr("a.prd_thumb img", "data-original")
        sale = _int(_text(own.first(".prd_price .tx_cur .tx_num")))
        org = _int(_text(own.first(".prd_price .tx_org .tx_num")))
        cards.append(
            ListingCard(
                goods_no=goods,
                href=urljoin(page_url, href) if href else None,
                brand=_text(own.first(".tx_brand")) or "",
                name=_text(own.first(".tx_name")) or "",
                price_sale=sale,
                price_list=org if org is not None else sale,
                rating=_rating_from_style(own.attr(".review_point .point", "style")),
                review_count_text=count_text,
                image_url=img.strip() if img else None,
                sold_out=card_sold_out(li),
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


def _detail_sold_out(sel: Selector) -> bool:
    """Our tolerant guess at a detail page's sold-out marker (see the note above card_sold_out)."""
    if sel.xpath(f"//*[self::button or self::a or self::span or self::div][{_SOLDOUT_CLASS}]"):
        return True
    return any(t.strip() in ("일시품절", "품절") for t in sel.xpath("//button//text()").getall())


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
            sold_out=_detail_sold_out(sel),
        )
    if sel.css('div[class*="page_product-details-wrapper"], [class*="GoodsDetailInfo_goods-info"]'):
        # The real 2025 markup (issue 14's table): CSS-module classes, matched by prefix only.
        name = _text(_first(sel, '[class*="GoodsDetailInfo_title-area"] h3')) or _text(
            _first(sel, '[class*="GoodsDetailInfo_title-area"] h1')
        )
        sale = _int(_text(_first(sel, 'span[class*="GoodsDetailInfo_price__"] > span')))
        lst = _int(_text(_first(sel, '[class*="GoodsDetailInfo_price-before"]')))
        img = (
            sel.css('[class*="GoodsDetailCarousel_visual-container"] img::attr(src)').get()
            or sel.css('meta[property="og:image"]::attr(content)').get()
        )
        count_btn = _first(
            sel,
            'div[class*="ReviewArea_review-count"] button[class*="ReviewArea_btn-review"]',
        )
        return DetailInfo(
            brand=_text(_first(sel, 'a[class*="TopUtils_btn-brand"]')),
            name=name,
            price_sale=sale,
            price_list=lst if lst is not None else sale,
            rating=_float(_text(_first(sel, _cls("ReviewArea_rating-star")))),
            review_count=_int(_text(count_btn)),
            image_url=img.strip() if img else None,
            layout="2025",
            sold_out=_detail_sold_out(sel),
        )
    return None


def _dd_text(dd: Selector) -> str:
    """A `dd`'s text verbatim: `<br>` becomes a newline, tags dropped, entities decoded."""
    raw = dd.get()
    inner = re.sub(r"^<dd[^>]*>|</dd>\s*$", "", raw.strip(), flags=re.S)
    inner = re.sub(r"<br\s*/?>", "\n", inner, flags=re.I)
    inner = re.sub(r"<[^>]+>", "", inner)
    return unescape(inner).strip()


def _label(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


def _is_claim_label(label: str) -> bool:
    # 기능성 화장품 식품의약품안전처 심사필 여부 (also written 유무): match the stable words only
    return "기능성" in label and "심사필" in label


def parse_notice(html: str) -> Notice:
    """The ingredient row of a `getGoodsArtcAjax.do` fragment (or a notice table, 2025 layout).

    Also the functional-cosmetic row (기능성 화장품 … 심사필 여부) as written, when present.
    """
    sel = Selector(text=html or "<html></html>")
    dls = sel.css("dl.detail_info_list")
    rows = sel.css("table tr")
    if not dls and not rows:
        return Notice("empty", None)
    pairs: list[tuple[str, Selector | None]] = []
    for dl in dls:
        for dt in dl.css("dt"):
            dd = dt.xpath("following-sibling::dd[1]")
            pairs.append((_label(_text(dt)), dd[0] if dd else None))
    for tr in rows:
        pairs.append((_label(_text(_first(tr, "th"))), _first(tr, "td")))
    if not pairs:
        return Notice("empty", None)
    want = _label(INGREDIENT_LABEL)
    text: str | None = None
    found = False
    claim: str | None = None
    for label, value in pairs:
        if label == want and not found:
            found = True
            text = (_dd_text(value) if value is not None else "") or None
        elif _is_claim_label(label) and claim is None and value is not None:
            claim = _dd_text(value) or None
    if found and text:
        return Notice("ok", text, claim)
    return Notice("missing", None, claim)


def parse_review_stats(body: str) -> ReviewStats | None:
    """`data.reviewCount` and `data.ratingDistribution.averageRating` of the review-stats JSON.

    None when the body is not that JSON (an HTML error page, a challenge, a changed API).
    """
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None

    def num(v: object) -> float | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v.replace(",", ""))
            except ValueError:
                return None
        return None

    count = num(data.get("reviewCount"))
    dist = data.get("ratingDistribution")
    rating = num(dist.get("averageRating")) if isinstance(dist, dict) else None
    if count is None:
        return None
    return ReviewStats(
        rating=round(rating, 1) if rating is not None else None, review_count=int(count)
    )


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
