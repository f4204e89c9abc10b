"""The Scrapy side: the product spider, the politeness/retry middleware and the checkpoint pipeline.

Imported only inside the crawl worker process (`deeproot.crawler._worker`), never by the CLI.

Fewest requests for complete records (issue 14): every listing page first (so the number of
products is known before any product request), then per product the ingredient notice, the
review-stats JSON only when the card's count is capped `(999+)` or the card lacks rating/count,
and the detail page only when a field is still missing, when the stats failed, or with --details.
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

from deeproot.crawler.config import (
    DETAIL_PATH,
    LISTING_PATH,
    NOTICE_PATH,
    STATS_HOST,
    CategoryConfig,
    stats_path,
)
from deeproot.crawler.parse import (
    DetailInfo,
    ListingCard,
    Notice,
    ReviewStats,
    is_deleted,
    parse_detail,
    parse_listing,
    parse_notice,
    parse_review_stats,
    rebase,
    stop_reason,
)
from deeproot.crawler.robots import Robots
from deeproot.crawler.settings import CrawlSettings

log = logging.getLogger(__name__)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 522, 524}
LISTING_PRIORITY = 100  # listings before products: the total is known before product requests
BLOCK_AFTER_403 = 3  # this many 403 answers in a row are a block, not bad luck


@dataclass
class CrawlState:
    """Shared by spider, middleware and pipeline of one worker run; reported at the end."""

    settings: CrawlSettings
    events: TextIO
    checkpoint: TextIO
    done: set[tuple[str, str]]  # (goods_no, category) already in the checkpoint (resume)
    prev: dict[tuple[str, str], dict[str, Any]]  # last complete crawl's records (incremental)
    prev_crawl_id: str | None
    robots: dict[str, Robots] | None = None  # netloc -> rules fetched by the parent (None: ignored)
    recheck: frozenset[str] = frozenset()  # goodsNo whose notice is due for a re-read
    browser: bool = False  # requests go through Chromium
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deleted: list[dict[str, str]] = field(default_factory=list)
    totals: dict[str, int | None] = field(default_factory=dict)
    seen: dict[str, list[str]] = field(default_factory=dict)  # category -> goodsNo listed
    requests: dict[str, int] = field(default_factory=dict)  # kind -> requests sent
    recheck_requests: int = 0
    robots_forbidden: int = 0
    responses: int = 0  # answers received (any status): 0 means the site was never reached
    stop: dict[str, str] | None = None
    written: int = 0
    parent_gone: bool = False

    def emit(self, event: str, **data: Any) -> None:
        if self.parent_gone:
            return
        try:
            self.events.write(json.dumps({"event": event, **data}, ensure_ascii=False) + "\n")
            self.events.flush()
        except (BrokenPipeError, OSError):
            # the parent is gone (killed): stop quietly, the checkpoint keeps what was done
            self.parent_gone = True

    def error(self, kind: str, url: str, message: str, **extra: Any) -> None:
        self.errors.append({"kind": kind, "url": url, "message": message, **extra})
        self.emit("error", kind=kind, url=url, message=message, **extra)


@dataclass
class _Entry:
    card: ListingCard
    cat: CategoryConfig
    rank: int


@dataclass
class _Job:
    """One goodsNo being fetched, with every listing entry that waits for it."""

    goods: str
    entries: list[_Entry]
    recheck: bool = False
    prev: dict[str, Any] | None = None
    notice: Notice | None = None
    notice_at: str | None = None
    stats: ReviewStats | None = None
    stats_failed: bool = False
    info: DetailInfo | None = None
    detail_tried: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ProductSpider(scrapy.Spider):
    """listings -> per product: notice, review stats when needed, detail when needed."""

    name = "deeproot"

    def __init__(self, state: CrawlState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.s = state.settings
        # Offsite filtering follows the hosts actually crawled (a fixed domain would drop every
        # request to a mirror or to 127.0.0.1); live, the review stats come from the mobile host.
        hosts = {urlparse(self.s.base_url).hostname or ""}
        if self.s.base_url == self.s.site_url:
            hosts.add(urlparse(STATS_HOST).hostname or "")
        self.allowed_domains = sorted(hosts)
        self.order = {c.key: i for i, c in enumerate(self.s.categories)}
        self.seen: set[tuple[str, str]] = set()
        self.jobs: dict[str, _Job] = {}
        self.finished: dict[str, _Job] = {}
        self.first_goods: dict[tuple[str, int], tuple[str, ...]] = {}
        self.listings_pending = 0
        self.planned = False
        self.carried = 0

    # ---------------------------------------------------------------- URLs and requests

    def _url(self, path: str, query: str = "") -> str:
        return rebase(
            f"{self.s.site_url}{path}" + (f"?{query}" if query else ""),
            self.s.site_url,
            self.s.base_url,
        )

    def _stats_url(self, goods: str) -> str:
        if self.s.base_url == self.s.site_url:
            return f"{STATS_HOST}{stats_path(goods)}"
        return f"{self.s.base_url}{stats_path(goods)}"

    def _listing_request(self, cat: CategoryConfig, page: int) -> scrapy.Request:
        q = (
            f"dispCatNo={cat.disp_cat_no}&fltDispCatNo=&prdSort=01&pageIdx={page}"
            f"&rowsPerPage={self.s.rows_per_page}&searchTypeSort=btn_thumb"
        )
        self.listings_pending += 1
        return scrapy.Request(
            self._url(LISTING_PATH, q),
            callback=self.parse_listing,
            errback=self.failed,
            priority=LISTING_PRIORITY,
            meta={"kind": "listing", "cat": cat.key, "page": page},
        )

    async def start(self):  # noqa: ANN201 - async generator of requests
        for cat in self.s.categories:
            yield self._listing_request(cat, 1)

    def _cat(self, key: str) -> CategoryConfig:
        return next(c for c in self.s.categories if c.key == key)

    def _listing_done(self) -> None:
        self.listings_pending -= 1
        if self.listings_pending == 0 and not self.planned:
            self.planned = True
            self.state.emit(
                "planned",
                products=len(self.seen),
                to_fetch=sum(len(j.entries) for j in self.jobs.values()),
                carried=self.carried,
                resumed=sum(1 for k in self.seen if k in self.state.done),
                goods=len(self.jobs),
            )

    # ---------------------------------------------------------------- listings

    def parse_listing(self, response: scrapy.http.Response):  # noqa: ANN201
        try:
            yield from self._parse_listing(response)
        finally:
            self._listing_done()

    def _parse_listing(self, response: scrapy.http.Response):  # noqa: ANN202
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
        if listing.total and not listing.cards and page == 1:
            if self.s.browser_mode == "auto" and not self.state.browser:
                # the page needs JavaScript: the parent restarts this crawl in Chromium
                self._stop("needs_js", response.url)
                return
            self.state.error(
                "listing",
                response.url,
                f"the listing announces {listing.total} products but "
                "has no product cards (rendered by JavaScript? try --browser always)",
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
        self.state.seen.setdefault(cat.key, []).append(card.goods_no)
        if key in self.state.done:
            return
        prev = self.state.prev.get(key)
        unchanged = bool(prev and prev.get("listing_hash") == card.fingerprint())
        recheck = unchanged and card.goods_no in self.state.recheck
        if self.s.incremental and prev and unchanged and not recheck:
            rec = dict(prev)
            rec.update(
                listing_rank=rank,
                carried=True,
                carried_from=prev.get("carried_from") or prev["crawl_id"],
                sold_out=card.sold_out,  # read from this listing (older crawls lack it)
            )
            rec["crawled_at"] = _ts_str(prev["crawled_at"])
            if rec.get("ingredients_at") is not None:
                rec["ingredients_at"] = _ts_str(rec["ingredients_at"])
            rec.pop("crawl_id", None)
            self.carried += 1
            yield rec
            return
        entry = _Entry(card, cat, rank)
        if card.goods_no in self.finished:
            yield self._record(entry, self.finished[card.goods_no])
            return
        job = self.jobs.get(card.goods_no)
        if job is not None:
            job.entries.append(entry)
            return
        job = _Job(card.goods_no, [entry], recheck=recheck, prev=prev if recheck else None)
        self.jobs[card.goods_no] = job
        yield self._notice_request(job)

    # ---------------------------------------------------------------- one product

    def _notice_request(self, job: _Job) -> scrapy.Request:
        return scrapy.FormRequest(
            self._url(NOTICE_PATH),
            formdata={"goodsNo": job.goods, "itemNo": "001", "pkgGoodsYn": "N"},
            headers={"X-Requested-With": "XMLHttpRequest"},
            callback=self.parse_notice,
            errback=self.failed,
            meta={"kind": "notice", "goods": job.goods, "recheck": job.recheck},
        )

    def _primary(self, job: _Job) -> ListingCard:
        """The card product-level fields come from: the first category (config order), best rank."""
        return min(job.entries, key=lambda e: (self.order.get(e.cat.key, 99), e.rank)).card

    def _needs_stats(self, job: _Job) -> bool:
        if job.stats is not None or job.stats_failed or job.info is not None or self.s.details:
            return False
        card = self._primary(job)
        if card.rating is not None and card.review_count is not None:
            return False
        if job.prev is not None and job.prev.get("review_count") is not None:
            return False  # a recheck of an unchanged card: the exact values are still right
        return True

    def _needs_detail(self, job: _Job) -> bool:
        if job.info is not None or job.detail_tried:
            return False
        if self.s.details or job.stats_failed:
            return True
        return self._card_incomplete(job)

    def _card_incomplete(self, job: _Job) -> bool:
        card = self._primary(job)
        return not (card.brand and card.name and card.price_sale is not None and card.image_url)

    def _advance(self, job: _Job):  # noqa: ANN202
        """The next request this product needs, or its records once it has everything."""
        if self._needs_stats(job):
            yield scrapy.Request(
                self._stats_url(job.goods),
                callback=self.parse_stats,
                errback=self.failed,
                headers={"Accept": "application/json"},
                meta={"kind": "stats", "goods": job.goods, "recheck": job.recheck},
            )
            return
        if self._needs_detail(job):
            job.detail_tried = True
            yield scrapy.Request(
                self._url(DETAIL_PATH, f"goodsNo={job.goods}"),
                callback=self.parse_detail,
                errback=self.failed,
                meta={"kind": "detail", "goods": job.goods, "recheck": job.recheck},
            )
            return
        self.jobs.pop(job.goods, None)
        self.finished[job.goods] = job
        for e in job.entries:
            yield self._record(e, job)

    def parse_notice(self, response: scrapy.http.Response):  # noqa: ANN201
        job = self.jobs.get(response.meta["goods"])
        if job is None:
            return
        notice = parse_notice(response.text)
        if notice.state == "empty":
            # still empty after the retries: a deleted product, or the site's disguised
            # throttling. One look at the detail page tells which.
            if not job.detail_tried:
                job.detail_tried = True
                yield scrapy.Request(
                    self._url(DETAIL_PATH, f"goodsNo={job.goods}"),
                    callback=self.parse_detail,
                    errback=self.failed,
                    meta={"kind": "detail", "goods": job.goods, "after_empty": True},
                )
                return
            self._fail_job(job, "notice", response.url, "ingredient notice stayed empty")
            return
        job.notice, job.notice_at = notice, _now()
        yield from self._advance(job)

    def parse_stats(self, response: scrapy.http.Response):  # noqa: ANN201
        job = self.jobs.get(response.meta["goods"])
        if job is None:
            return
        stats = parse_review_stats(_json_text(response.text))
        if stats is None:
            job.stats_failed = True
            self.state.warnings.append(
                f"{job.goods}: review stats did not answer JSON ({response.url}); "
                "read the detail page instead"
            )
        else:
            job.stats = stats
        yield from self._advance(job)

    def parse_detail(self, response: scrapy.http.Response):  # noqa: ANN201
        job = self.jobs.get(response.meta["goods"])
        if job is None:
            return
        info = parse_detail(response.text)
        if (info is None or info.name is None) and is_deleted(response.text):
            self.jobs.pop(job.goods, None)
            for e in job.entries:
                self.state.deleted.append({"goods_no": job.goods, "category": e.cat.key})
            self.state.emit("deleted", goods_no=job.goods, n=len(job.entries))
            return
        if response.meta.get("after_empty"):
            self._fail_job(
                job,
                "notice",
                self._url(NOTICE_PATH),
                f"ingredient notice stayed empty after {self.s.retries} retries (throttled)",
            )
            return
        if info is None or info.name is None:
            if job.stats_failed and job.notice is not None:
                self._fail_job(job, "detail", response.url, "detail page has no product fields")
                return
            self.state.warnings.append(f"{job.goods}: detail page has no product fields")
        else:
            job.info = info
        yield from self._advance(job)

    def _fail_job(self, job: _Job, kind: str, url: str, message: str) -> None:
        self.jobs.pop(job.goods, None)
        self.state.error(
            kind, url, message, goods_no=job.goods, categories=[e.cat.key for e in job.entries]
        )

    def _record(self, e: _Entry, job: _Job) -> dict:
        card, info, stats, notice = self._primary(job), job.info, job.stats, job.notice
        assert notice is not None

        def pick(detail: Any, listing: Any) -> Any:
            return detail if detail is not None else listing

        rating, count, source = card.rating, card.review_count, "listing"
        if job.prev is not None and (rating is None or count is None):
            rating = pick(rating, job.prev.get("rating"))
            count = pick(count, job.prev.get("review_count"))
            source = job.prev.get("review_source") or "detail"
        if stats is not None:
            rating, count, source = pick(stats.rating, rating), stats.review_count, "stats"
        if info is not None and info.review_count is not None:
            rating, count, source = pick(info.rating, rating), info.review_count, "detail"
        sold_out = card.sold_out
        if info is not None and info.sold_out is not None:
            sold_out = info.sold_out
        return {
            "crawled_at": _now(),
            "goods_no": card.goods_no,
            "category": e.cat.key,
            "disp_cat_no": e.cat.disp_cat_no,
            "brand": pick(info and info.brand, card.brand or None),
            "name": pick(info and info.name, card.name or None),
            "price_sale": pick(info and info.price_sale, card.price_sale),
            "price_list": pick(info and info.price_list, card.price_list),
            "currency": "KRW",
            "rating": rating,
            "review_count": count,
            "image_url": pick(info and info.image_url, card.image_url),
            "product_url": f"{self.s.site_url}{DETAIL_PATH}?goodsNo={card.goods_no}",
            "ingredients_text": notice.text,
            "has_ingredients": notice.state == "ok",
            "listing_rank": e.rank,
            "carried": False,
            "carried_from": None,
            "source_layout": info.layout if info is not None else "listing",
            "listing_hash": e.card.fingerprint(),
            "sold_out": sold_out,
            "functional_claim": notice.functional_claim,
            "review_source": source if count is not None else None,
            "ingredients_at": job.notice_at,
            "rechecked": job.recheck,
        }

    def failed(self, failure: Any):  # noqa: ANN201 - errbacks may yield requests and records
        request = failure.request
        kind = request.meta.get("kind", "request")
        if self.state.stop is not None:  # stopping: what is left stays for --resume
            if kind == "listing":
                self._listing_done()
            return
        resp = getattr(failure.value, "response", None)
        retries = request.meta.get("retry_times", 0)
        why = f"HTTP {resp.status}" if resp is not None else type(failure.value).__name__
        why += f" after {retries} retries"
        if isinstance(failure.value, IgnoreRequest) and resp is None:
            why = (str(failure.value) or "ignored")[:300]
        if kind == "listing":
            self._listing_done()
            self.state.error(kind, request.url, why, category=request.meta.get("cat"))
            return
        job = self.jobs.get(request.meta.get("goods", ""))
        if job is None:
            return
        if self.state.stop is None and kind == "stats":
            job.stats_failed = True
            self.state.warnings.append(f"{job.goods}: review stats failed ({why}); detail instead")
            yield from self._advance(job)
            return
        if (
            self.state.stop is None
            and kind == "detail"
            and job.notice is not None
            and not job.stats_failed
            and not self._card_incomplete(job)
        ):
            # the detail page was only asked for (--details): the card's values stand
            self.state.warnings.append(f"{job.goods}: detail page failed ({why})")
            yield from self._advance(job)
            return
        self._fail_job(job, kind, request.url, why)

    def _stop(self, reason: str, url: str, message: str = "") -> None:
        stop_crawl(self.crawler, self.state, reason, url, message)


def stop_crawl(crawler: Any, state: CrawlState, reason: str, url: str, message: str = "") -> None:
    """Record why the crawl stops (first reason wins) and close the spider."""
    if state.stop is None:
        state.stop = {"reason": reason, "url": url, "message": message}
        deferred_from_coro(crawler.engine.close_spider_async(reason=reason))


def _json_text(body: str) -> str:
    """A JSON body as text; Chromium shows JSON inside `<pre>` of an HTML page."""
    s = body.lstrip()
    if s.startswith("<"):
        from parsel import Selector

        pre = Selector(text=body).css("pre::text").getall()
        return "".join(pre) if pre else body
    return body


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
    """robots.txt, stops on challenge and block pages, retries with backoff and Retry-After.

    Throttle signals: HTTP 429/5xx and a notice fragment that comes back empty with HTTP 200
    (the site's disguised throttling). Every retry also holds back all following requests until
    the wait is over, so the host gets a real pause. A 429 that outlasts the retries, a challenge
    (anywhere in the body, or the `cf-mitigated` header), an Akamai "Access Denied" 403, or
    several 403 in a row stop the crawl: carrying on would only hammer a site that said no.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.state: CrawlState = crawler.spider_state
        self.s = self.state.settings
        self.resume_at = 0.0
        self.forbidden_run = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> PolitenessMiddleware:
        return cls(crawler)

    async def process_request(self, request: scrapy.Request) -> None:
        if self.state.stop is not None:
            raise IgnoreRequest("the crawl is stopping")
        book = self.state.robots
        robots = book.get(urlparse(request.url).netloc) if book is not None else None
        if robots is not None:
            decision = robots.check(request.url)
            if not decision.allowed:
                self.state.robots_forbidden += 1
                raise IgnoreRequest(f"disallowed by robots.txt ({decision.why})")
        if self.state.browser:
            request.meta["playwright"] = True
        wait = self.resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        kind = request.meta.get("kind", "other")
        self.state.requests[kind] = self.state.requests.get(kind, 0) + 1
        if request.meta.get("recheck"):
            self.state.recheck_requests += 1

    def _stop(self, reason: str, url: str, message: str = "") -> None:
        stop_crawl(self.crawler, self.state, reason, url, message)

    def _retry(self, request: scrapy.Request, reason: str, wait: float | None) -> Any:
        n = request.meta.get("retry_times", 0)
        wait = self.s.backoff * 2**n if wait is None else wait
        if wait > self.s.max_retry_after:
            self._stop("throttled", request.url, f"asked to wait {wait:.0f} s")
            raise IgnoreRequest(f"asked to wait {wait:.0f} s")
        new = get_retry_request(
            request, spider=self.crawler.spider, reason=reason, max_retry_times=self.s.retries
        )
        if new is not None:
            self.resume_at = max(self.resume_at, time.monotonic() + wait)
            self.state.emit("retry", url=request.url, reason=reason, wait=wait)
        elif reason == "HTTP 429":
            self._stop("throttled", request.url, f"still HTTP 429 after {self.s.retries} retries")
            raise IgnoreRequest("rate limited")
        return new

    def process_response(self, request: scrapy.Request, response: Any) -> Any:
        self.state.responses += 1
        headers = {k.decode().lower(): v[0].decode("latin-1") for k, v in response.headers.items()}
        body = response.text if hasattr(response, "text") else ""
        why = stop_reason(response.status, body, headers)
        if why is not None:
            self._stop(why, request.url)
            raise IgnoreRequest(f"{why} page")
        if response.status == 403:
            self.forbidden_run += 1
            if self.forbidden_run >= BLOCK_AFTER_403:
                self._stop(
                    "blocked", request.url, f"{self.forbidden_run} answers HTTP 403 in a row"
                )
                raise IgnoreRequest("blocked")
        elif 200 <= response.status < 400:
            self.forbidden_run = 0
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
        st.emit(
            "record",
            category=item["category"],
            carried=item["carried"],
            n=st.written,
            requests=sum(st.requests.values()),
        )
        return item
