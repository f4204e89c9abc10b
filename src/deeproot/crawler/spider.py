"""The Scrapy side: the product spider, the politeness/retry middleware and the checkpoint pipeline.

Imported only inside the crawl worker process (`deeproot.crawler._worker`), never by the CLI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TextIO
from urllib.parse import urlparse

import scrapy
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro

from deeproot.crawler.config import DETAIL_PATH, LISTING_PATH, NOTICE_PATH, CategoryConfig
from deeproot.crawler.parse import (
    DetailInfo,
    ListingCard,
    Notice,
    canonical,
    is_challenge,
    is_deleted,
    parse_detail,
    parse_listing,
    parse_notice,
    rebase,
    strip_tracking,
)
from deeproot.crawler.settings import CrawlSettings

log = logging.getLogger(__name__)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 522, 524}


@dataclass
class CrawlState:
    """Shared by spider, middleware and pipeline of one worker run; reported at the end."""

    settings: CrawlSettings
    events: TextIO
    checkpoint: TextIO
    done: set[tuple[str, str]]  # (goods_no, category) already in the checkpoint (resume)
    prev: dict[tuple[str, str], dict[str, Any]]  # last complete crawl's records (incremental)
    prev_crawl_id: str | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deleted: list[dict[str, str]] = field(default_factory=list)
    totals: dict[str, int | None] = field(default_factory=dict)
    stop: dict[str, str] | None = None
    written: int = 0

    def emit(self, event: str, **data: Any) -> None:
        self.events.write(json.dumps({"event": event, **data}, ensure_ascii=False) + "\n")
        self.events.flush()

    def error(self, kind: str, url: str, message: str, **extra: Any) -> None:
        self.errors.append({"kind": kind, "url": url, "message": message, **extra})
        self.emit("error", kind=kind, url=url, message=message, **extra)


@dataclass
class _Entry:
    card: ListingCard
    cat: CategoryConfig
    rank: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ProductSpider(scrapy.Spider):
    """listing pages -> detail page -> notice fragment, one record per (product, category)."""

    name = "deeproot"

    def __init__(self, state: CrawlState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.s = state.settings
        # Offsite filtering follows the host actually crawled (a fixed domain would drop every
        # request to a mirror or to 127.0.0.1).
        self.allowed_domains = [urlparse(self.s.base_url).hostname or ""]
        self.seen: set[tuple[str, str]] = set()
        self.pending: dict[str, list[_Entry]] = {}
        self.fetched: dict[str, tuple[DetailInfo, Notice, str]] = {}
        self.first_goods: dict[tuple[str, int], tuple[str, ...]] = {}

    def _url(self, path: str, query: str = "") -> str:
        return rebase(
            f"{self.s.site_url}{path}" + (f"?{query}" if query else ""),
            self.s.site_url,
            self.s.base_url,
        )

    def _listing_request(self, cat: CategoryConfig, page: int) -> scrapy.Request:
        q = (
            f"dispCatNo={cat.disp_cat_no}&fltDispCatNo=&prdSort=01&pageIdx={page}"
            f"&rowsPerPage={self.s.rows_per_page}&searchTypeSort=btn_thumb"
        )
        meta = {"kind": "listing", "cat": cat.key, "page": page, "playwright": self.s.browser}
        return scrapy.Request(
            self._url(LISTING_PATH, q), callback=self.parse_listing, errback=self.failed, meta=meta
        )

    async def start(self):  # noqa: ANN201 - async generator of requests
        for cat in self.s.categories:
            yield self._listing_request(cat, 1)

    def _cat(self, key: str) -> CategoryConfig:
        return next(c for c in self.s.categories if c.key == key)

    def parse_listing(self, response: scrapy.http.Response):  # noqa: ANN201
        cat, page = self._cat(response.meta["cat"]), response.meta["page"]
        listing = parse_listing(response.text, response.url)
        rows = self.s.rows_per_page
        if page == 1:
            self.state.totals[cat.key] = listing.total
            self.state.emit("listing", category=cat.key, total=listing.total)
            if not listing.cards and listing.total is None:
                self.state.error(
                    "category",
                    response.url,
                    f"code {cat.disp_cat_no} did not answer with a "
                    "product listing; the code may have changed (see --config)",
                    category=cat.key,
                )
                return
            if listing.title and listing.title != cat.name:
                self.state.warnings.append(
                    f"category {cat.key}: listing title {listing.title!r} differs from the "
                    f"configured name {cat.name!r}; check the code in the config"
                )
            if listing.total and not listing.cards:
                self.state.error(
                    "listing",
                    response.url,
                    f"the listing announces {listing.total} products but "
                    "has no product cards (rendered by JavaScript? try --browser)",
                    category=cat.key,
                )
                return
        goods = tuple(c.goods_no for c in listing.cards[:5])
        if page > 1 and goods and goods == self.first_goods.get((cat.key, page - 1)):
            self.state.warnings.append(f"{cat.key}: page {page} repeats page {page - 1}; stopped")
            return
        self.first_goods[(cat.key, page)] = goods
        for i, card in enumerate(listing.cards):
            yield from self._card(card, cat, (page - 1) * rows + i + 1)
        if listing.total is not None:
            pages = -(-listing.total // rows)
        else:
            pages = max(listing.max_page_link or page, page + (len(listing.cards) == rows))
        if listing.cards and page < pages and (self.s.max_pages is None or page < self.s.max_pages):
            yield self._listing_request(cat, page + 1)

    def _card(self, card: ListingCard, cat: CategoryConfig, rank: int):  # noqa: ANN202
        key = (card.goods_no, cat.key)
        if key in self.seen:
            return
        self.seen.add(key)
        if key in self.state.done:
            return
        prev = self.state.prev.get(key)
        if self.s.incremental and prev and prev["listing_hash"] == card.fingerprint():
            rec = dict(prev)
            rec.update(
                listing_rank=rank,
                carried=True,
                carried_from=prev.get("carried_from") or prev["crawl_id"],
            )
            rec["crawled_at"] = _ts_str(prev["crawled_at"])
            rec.pop("crawl_id", None)
            yield rec
            return
        entry = _Entry(card, cat, rank)
        if card.goods_no in self.fetched:
            yield self._record(entry, *self.fetched[card.goods_no])
            return
        if card.goods_no in self.pending:
            self.pending[card.goods_no].append(entry)
            return
        self.pending[card.goods_no] = [entry]
        href = card.href if card.href and "goodsNo=" in card.href else None
        url = (
            rebase(strip_tracking(href), self.s.site_url, self.s.base_url)
            if href
            else self._url(DETAIL_PATH, f"goodsNo={card.goods_no}")
        )
        yield scrapy.Request(
            url,
            callback=self.parse_detail,
            errback=self.failed,
            meta={"kind": "detail", "goods": card.goods_no, "playwright": self.s.browser},
        )

    def _drop(self, goods: str) -> list[_Entry]:
        return self.pending.pop(goods, [])

    def parse_detail(self, response: scrapy.http.Response):  # noqa: ANN201
        goods = response.meta["goods"]
        info = parse_detail(response.text)
        if (info is None or info.name is None) and is_deleted(response.text):
            for e in self._drop(goods):
                self.state.deleted.append({"goods_no": goods, "category": e.cat.key})
            self.state.emit("deleted", goods_no=goods)
            return
        if info is None or info.name is None:
            cats = [e.cat.key for e in self._drop(goods)]
            self.state.error(
                "detail",
                response.url,
                "detail page has no product fields",
                goods_no=goods,
                categories=cats,
            )
            return
        yield scrapy.FormRequest(
            self._url(NOTICE_PATH),
            formdata={"goodsNo": goods, "itemNo": "001", "pkgGoodsYn": "N"},
            headers={"X-Requested-With": "XMLHttpRequest", "Referer": response.url},
            callback=self.parse_notice,
            errback=self.failed,
            meta={"kind": "notice", "goods": goods, "info": info, "detail_url": response.url},
        )

    def parse_notice(self, response: scrapy.http.Response):  # noqa: ANN201
        goods, info = response.meta["goods"], response.meta["info"]
        notice = parse_notice(response.text)
        if notice.state == "empty":
            cats = [e.cat.key for e in self._drop(goods)]
            self.state.error(
                "notice",
                response.url,
                f"ingredient notice stayed empty after {self.s.retries} retries (throttled)",
                goods_no=goods,
                categories=cats,
            )
            return
        self.fetched[goods] = (info, notice, response.meta["detail_url"])
        for e in self._drop(goods):
            yield self._record(e, info, notice, response.meta["detail_url"])

    def _record(self, e: _Entry, info: DetailInfo, notice: Notice, detail_url: str) -> dict:
        c = e.card

        def pick(a: Any, b: Any) -> Any:
            return a if a is not None else b

        return {
            "crawled_at": _now(),
            "goods_no": c.goods_no,
            "category": e.cat.key,
            "disp_cat_no": e.cat.disp_cat_no,
            "brand": pick(info.brand, c.brand),
            "name": pick(info.name, c.name),
            "price_sale": pick(info.price_sale, c.price_sale),
            "price_list": pick(info.price_list, c.price_list),
            "currency": "KRW",
            "rating": pick(info.rating, c.rating),
            "review_count": info.review_count,
            "image_url": pick(info.image_url, c.image_url),
            "product_url": canonical(detail_url, self.s.site_url, self.s.base_url),
            "ingredients_text": notice.text,
            "has_ingredients": notice.state == "ok",
            "listing_rank": e.rank,
            "carried": False,
            "carried_from": None,
            "source_layout": info.layout,
            "listing_hash": c.fingerprint(),
        }

    def failed(self, failure: Any) -> None:
        request = failure.request
        kind = request.meta.get("kind", "request")
        resp = getattr(failure.value, "response", None)
        retries = request.meta.get("retry_times", 0)
        why = f"HTTP {resp.status}" if resp is not None else type(failure.value).__name__
        why += f" after {retries} retries"
        if isinstance(failure.value, IgnoreRequest) and resp is None:
            why = str(failure.value) or "ignored"
        extra: dict[str, Any] = {}
        if "goods" in request.meta:
            extra["goods_no"] = request.meta["goods"]
            extra["categories"] = [e.cat.key for e in self._drop(request.meta["goods"])]
        if "cat" in request.meta:
            extra["category"] = request.meta["cat"]
        self.state.error(kind, request.url, why, **extra)


def _ts_str(v: Any) -> str:
    return v.isoformat() if isinstance(v, datetime) else str(v)


def _retry_after(value: bytes | None) -> float | None:
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, (parsedate_to_datetime(text) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class PolitenessMiddleware:
    """Stop on challenge pages; retries with backoff honouring Retry-After.

    Throttle signals: HTTP 429/5xx and a notice fragment that comes back empty with HTTP 200
    (the site's disguised throttling). Every retry also holds back all following requests until
    the wait is over, so the host gets a real pause.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.state: CrawlState = crawler.spider_state
        self.s = self.state.settings
        self.resume_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Any) -> PolitenessMiddleware:
        return cls(crawler)

    async def process_request(self, request: scrapy.Request) -> None:
        wait = self.resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _stop(self, reason: str, **info: str) -> None:
        if self.state.stop is None:
            self.state.stop = {"reason": reason, **info}
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))

    def _retry(self, request: scrapy.Request, reason: str, wait: float | None) -> Any:
        n = request.meta.get("retry_times", 0)
        wait = self.s.backoff * 2**n if wait is None else wait
        if wait > self.s.max_retry_after:
            self._stop("throttled", url=request.url, message=f"asked to wait {wait:.0f} s")
            raise IgnoreRequest(f"asked to wait {wait:.0f} s")
        new = get_retry_request(
            request, spider=self.crawler.spider, reason=reason, max_retry_times=self.s.retries
        )
        if new is not None:
            self.resume_at = max(self.resume_at, time.monotonic() + wait)
            self.state.emit("retry", url=request.url, reason=reason, wait=wait)
        return new

    def process_response(self, request: scrapy.Request, response: Any) -> Any:
        headers = {k.decode().lower(): v[0].decode("latin-1") for k, v in response.headers.items()}
        body = response.text if hasattr(response, "text") else ""
        if is_challenge(body, headers):
            self._stop("challenge", url=request.url)
            raise IgnoreRequest("challenge page")
        reason = None
        if response.status in RETRY_STATUSES:
            reason = f"HTTP {response.status}"
        elif (
            request.meta.get("kind") == "notice"
            and response.status == 200
            and parse_notice(body).state == "empty"
        ):
            reason = "empty notice"
        if reason is None:
            return response
        new = self._retry(request, reason, _retry_after(response.headers.get("Retry-After")))
        return new if new is not None else response

    def process_exception(self, request: scrapy.Request, exception: Exception) -> Any:
        if isinstance(exception, IgnoreRequest):
            return None
        return self._retry(request, type(exception).__name__, None)


class CheckpointPipeline:
    """Appends each record to the crawl's checkpoint (JSON lines), flushed, before anything else."""

    def __init__(self, crawler: Any) -> None:
        self.state: CrawlState = crawler.spider_state

    @classmethod
    def from_crawler(cls, crawler: Any) -> CheckpointPipeline:
        return cls(crawler)

    def process_item(self, item: dict) -> dict:
        st = self.state
        st.checkpoint.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        st.checkpoint.flush()
        st.written += 1
        st.emit("record", category=item["category"], carried=item["carried"], n=st.written)
        return item
