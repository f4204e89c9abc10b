"""Crawl settings, parsed and checked once into a frozen dataclass, and their Scrapy translation."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deeproot import __version__
from deeproot.crawler.config import CategoryConfig, SiteConfig, load_site_config, select_categories
from deeproot.errors import InputError

ROWS_OPTIONS = (24, 36, 48)
BROWSER_MODES = ("auto", "always", "never")
LIVE_DELAY = 2.5
MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # after decompression too; real pages are under 1 MB
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_HINT = "install it with `apt-get install chromium` or set DEEPROOT_CHROMIUM to its path"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@dataclass(frozen=True)
class CrawlSettings:
    """Everything one crawl needs; build it with `make_settings`, which validates every field."""

    out: Path
    categories: tuple[CategoryConfig, ...]
    site_url: str
    base_url: str
    max_pages: int | None = None
    rows_per_page: int = 48
    delay: float = LIVE_DELAY
    jitter: float = 0.5  # spacing is uniform in [delay, delay * (1 + jitter)]
    autothrottle: bool = True
    browser: bool = False  # this run renders pages in Chromium (set by "always" or an auto switch)
    browser_mode: str = "auto"  # auto: plain HTTP, Chromium once a page needs it
    details: bool = False  # fetch every detail page (else only when a field is missing)
    recheck_days: float | None = None  # incremental: re-read notices older than this
    max_lost: float = 0.05  # quality gate: largest share of a category's listed products lost
    max_response_bytes: int = MAX_RESPONSE_BYTES
    resume: bool = False
    incremental: bool = False
    obey_robots: bool = True
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 5.0  # first retry wait without Retry-After; doubles per retry
    max_retry_after: float = 600.0  # a longer Retry-After stops the crawl (resume later)
    max_missing_ingredients: float = 0.2
    contact: str | None = None
    chromium: str = DEFAULT_CHROMIUM
    log_level: str = "WARNING"

    @property
    def chromium_ok(self) -> bool:
        return Path(self.chromium).exists()

    @property
    def user_agent(self) -> str:
        contact = self.contact or "unset (set DEEPROOT_CONTACT)"
        return f"deeproot/{__version__} (scalp-care catalog crawler; contact: {contact})"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CrawlSettings:
        d = dict(d)
        d["out"] = Path(d["out"])
        d["categories"] = tuple(CategoryConfig(**c) for c in d["categories"])
        return cls(**d)


def _check_base_url(url: str) -> str:
    u = urlparse(url.strip())
    if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
        raise InputError(
            f"malformed --base-url {url!r}; give scheme and host, e.g. http://127.0.0.1:8000"
        )
    try:
        u.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"malformed --base-url {url!r}: {exc}") from exc
    return url.strip().rstrip("/")


def _check_out(out: Path) -> Path:
    out = out.expanduser()
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"output folder {out} is not writable: {probe} is a file; choose --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"output folder {out} is not writable ({probe}); choose another --out")
    for sub in ("products", "crawls"):
        p = out / sub
        if p.exists() and (not p.is_dir() or not os.access(p, os.W_OK | os.X_OK)):
            raise InputError(f"output folder {p} is not writable; choose another --out")
    return out


def make_settings(
    *,
    out: str | Path,
    categories: str = "all",
    config: str | Path | None = None,
    base_url: str | None = None,
    max_pages: int | None = None,
    rows_per_page: int = 48,
    delay: float | None = None,
    autothrottle: bool | None = None,
    browser: bool | str = "auto",
    details: bool = False,
    recheck_days: float | None = None,
    max_lost: float = 0.05,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    resume: bool = False,
    incremental: bool = False,
    ignore_robots: bool = False,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 5.0,
    max_missing_ingredients: float = 0.2,
    contact: str | None = None,
    log_level: str = "WARNING",
) -> CrawlSettings:
    """Validate user options into CrawlSettings; raises InputError before anything is written.

    `browser`: "auto" (default: plain HTTP, Chromium when a page needs it), "always", "never";
    True/False are read as "always"/"never".
    """
    site: SiteConfig = load_site_config(config)
    cats = select_categories(site, categories)
    base = _check_base_url(base_url) if base_url else site.site_url
    if rows_per_page not in ROWS_OPTIONS:
        raise InputError(
            f"--rows-per-page {rows_per_page} is not offered by the site; use 24, 36 or 48"
        )
    if max_pages is not None and max_pages < 1:
        raise InputError("--max-pages must be at least 1")
    if delay is not None and delay < 0:
        raise InputError("--delay must be 0 or more seconds")
    if timeout <= 0 or retries < 0 or backoff < 0:
        raise InputError("--timeout must be positive; retries and backoff 0 or more")
    if not 0 <= max_missing_ingredients <= 1:
        raise InputError("max_missing_ingredients is a share between 0 and 1")
    if not 0 <= max_lost <= 1:
        raise InputError("max_lost is a share between 0 and 1")
    if recheck_days is not None and not recheck_days >= 0:  # 0: re-read every notice
        raise InputError("--recheck-days must be 0 or more days")
    if max_response_bytes < 1024:
        raise InputError("max_response_bytes must be at least 1024")
    mode = (
        {True: "always", False: "never"}.get(browser, browser)
        if isinstance(browser, bool)
        else str(browser)
    )
    if mode not in BROWSER_MODES:
        raise InputError(f"--browser {browser!r}: use one of {', '.join(BROWSER_MODES)}")
    d = LIVE_DELAY if delay is None else float(delay)
    chromium = os.environ.get("DEEPROOT_CHROMIUM", DEFAULT_CHROMIUM)
    if mode == "always" and not Path(chromium).exists():
        raise InputError(f"--browser always needs Chromium at {chromium}; {CHROMIUM_HINT}")
    return CrawlSettings(
        out=_check_out(Path(out)),
        categories=cats,
        site_url=site.site_url,
        base_url=base,
        max_pages=max_pages,
        rows_per_page=rows_per_page,
        delay=d,
        autothrottle=(d > 0) if autothrottle is None else autothrottle,
        browser=mode == "always",
        browser_mode=mode,
        details=details,
        recheck_days=recheck_days,
        max_lost=max_lost,
        max_response_bytes=int(max_response_bytes),
        resume=resume,
        incremental=incremental,
        obey_robots=not ignore_robots,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        max_missing_ingredients=max_missing_ingredients,
        contact=contact if contact is not None else os.environ.get("DEEPROOT_CONTACT") or None,
        chromium=chromium,
        log_level=log_level,
    )


def scrapy_settings(s: CrawlSettings) -> dict[str, Any]:
    """The Scrapy settings dict for `s`: politeness, retries (ours), optional Playwright."""
    mw = "deeproot.crawler.spider"
    d: dict[str, Any] = {
        "BOT_NAME": "deeproot",
        "USER_AGENT": s.user_agent,
        # robots.txt: fetched once by the parent and checked per request by our middleware, so the
        # crawl and `crawl --check` decide alike (and a 5xx or a timeout means "disallow all")
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_MAXSIZE": s.max_response_bytes,  # decompressed size is capped too
        "DOWNLOAD_WARNSIZE": s.max_response_bytes // 4,
        "CONCURRENT_REQUESTS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        # Jittered spacing that never drops below `delay`: Scrapy draws delay' * (1 ± j), so centre
        # delay' = delay * (1 + jitter/2) with j = (jitter/2) / (1 + jitter/2): [delay, delay * (1 +
        # jitter)]. AutoThrottle keeps delay' as its minimum.
        "DOWNLOAD_DELAY": s.delay * (1 + s.jitter / 2),
        "DOWNLOAD_DELAY_JITTER": (s.jitter / 2) / (1 + s.jitter / 2),
        "AUTOTHROTTLE_ENABLED": s.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(s.delay * (1 + s.jitter / 2), 0.1),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": s.timeout,
        "RETRY_ENABLED": False,  # PolitenessMiddleware retries with backoff and Retry-After
        "COOKIES_ENABLED": True,
        "TELNETCONSOLE_ENABLED": False,
        # Scrapy 2.19's RemoteControl runs Python code sent to a localhost HTTP port (token in a
        # file under $HOME): no crawler should open that; it also costs start-up and shutdown
        "REMOTE_CONTROL_ENABLED": False,
        # Scrapy re-parses a callback's source on every response to warn about generators that
        # return a value (its cache is keyed by the bound method, new each time): 13% of the
        # worker's time on a full crawl. Our callbacks are checked by the tests instead.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Scrapy starts CONCURRENT_ITEMS asyncio tasks for every callback's output (default 100,
        # ~100 tasks per response); our item pipeline is synchronous, so a few are plenty
        "CONCURRENT_ITEMS": 8,
        # Scrapy's own log only at DEBUG (-vv); -v shows our periodic stats instead
        "LOG_LEVEL": "DEBUG" if s.log_level == "DEBUG" else "WARNING",
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5",
        },
        "DOWNLOADER_MIDDLEWARES": {f"{mw}.PolitenessMiddleware": 560},
        "ITEM_PIPELINES": {f"{mw}.CheckpointPipeline": 300},
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    }
    if s.browser:
        handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
        d["DOWNLOAD_HANDLERS"] = {"http": handler, "https": handler}
        d["PLAYWRIGHT_BROWSER_TYPE"] = "chromium"
        d["PLAYWRIGHT_LAUNCH_OPTIONS"] = {
            "executable_path": s.chromium,
            "headless": True,
            "args": list(CHROMIUM_ARGS),
        }
        d["PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT"] = s.timeout * 1000
    return d
