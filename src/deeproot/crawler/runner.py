"""`run_crawl`: one crawl from settings to a published partition, a manifest and a report.

The Scrapy crawl itself runs in a worker process (`_worker.py`), so `run_crawl` can be called any
number of times in one Python process. This module owns the store lock, robots.txt, resume,
incremental bookkeeping (and ingredient re-checks), the switch to Chromium (`--browser auto`),
quality gates and publishing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from deeproot.crawler import storage
from deeproot.crawler.config import DETAIL_PATH, LISTING_PATH, NOTICE_PATH, STATS_HOST, stats_path
from deeproot.crawler.settings import CHROMIUM_HINT, CrawlSettings
from deeproot.errors import (
    DeeprootError,
    InputError,
    QualityGateError,
    RunInterrupted,
    StoppedBySiteError,
)

log = logging.getLogger("deeproot.crawler")
Progress = Callable[[dict[str, Any]], None]
REPORT_SCHEMA = "deeproot.crawl/1"
STATUSES = ("complete", "stopped", "interrupted", "gate_failed")


@dataclass(frozen=True)
class CategorySummary:
    key: str
    products: int  # records stored
    new: int
    changed: int
    carried: int
    missing_ingredients: int
    errors: int  # products that failed to store (errors of any kind, offsite redirects...)
    listed: int | None  # the total the listing announced
    seen: int = 0  # products found on the listing pages this run (resume: plus the checkpoint)
    lost: int = 0  # seen, neither stored nor deleted by the site
    sold_out: int = 0


@dataclass(frozen=True)
class CrawlReport:
    """What a crawl did. `status`: complete, stopped, interrupted, gate_failed."""

    crawl_id: str
    status: str
    started_at: str
    finished_at: str
    duration_s: float
    records: int
    categories: tuple[CategorySummary, ...]
    new: int
    changed: int
    carried: int
    unchanged: int
    missing_ingredients: int
    deleted: tuple[dict[str, str], ...]
    errors: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    gate_failures: tuple[str, ...]
    stop: dict[str, str] | None
    requests: int
    retries: int
    robots_forbidden: int
    resumed: int
    previous_crawl_id: str | None
    partition: str | None
    manifest: str
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    recheck_requests: int = 0
    rechecked: int = 0
    lost: int = 0
    browser_used: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def requests_per_product(self) -> float | None:
        """Requests of this run per stored record (None without records)."""
        return round(self.requests / self.records, 3) if self.records else None

    def problem(self) -> str | None:
        """One line saying why the crawl is not complete and what to do, or None."""
        if self.status == "stopped" and self.stop:
            return stop_message(self.stop)
        if self.status == "gate_failed":
            return (
                "quality gates failed: "
                + "; ".join(self.gate_failures)
                + ". Nothing was published; rerun with --resume to retry what failed"
            )
        if self.status == "interrupted":
            return (
                f"crawl {self.crawl_id} was interrupted; its records so far are kept: finish "
                f"it with deeproot crawl --resume --out {self.settings.get('out', '')}"
            )
        return None

    def error(self) -> DeeprootError | None:
        """The exception a caller should raise for this report (None when complete)."""
        problem = self.problem()
        if problem is None:
            return None
        cls: type[DeeprootError] = {
            "stopped": StoppedBySiteError,
            "gate_failed": QualityGateError,
            "interrupted": RunInterrupted,
        }.get(self.status, DeeprootError)
        if self.status == "stopped" and self.stop and self.stop.get("reason") == "robots":
            cls = StoppedBySiteError
        return cls(problem)

    @property
    def error_class(self) -> type[DeeprootError] | None:
        e = self.error()
        return type(e) if e is not None else None

    @property
    def exit_code(self) -> int:
        e = self.error()
        return e.exit_code if e is not None else 0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schema": REPORT_SCHEMA}
        d |= asdict(self)
        d["requests_per_product"] = self.requests_per_product
        d["problem"] = self.problem()
        d["exit_code"] = self.exit_code
        return d


def stop_message(stop: dict[str, str]) -> str:
    """One line: what stopped the crawl and what the user can do."""
    reason, url = stop.get("reason"), stop.get("url", "")
    extra = f" ({stop['message']})" if stop.get("message") else ""
    if reason == "challenge":
        return (
            f"crawl stopped: {url} answered with a bot challenge page{extra}; deeproot never "
            "tries to get past it. Retry later with --resume (or --browser auto/always), or ask "
            "the site owner for access"
        )
    if reason == "needs_js":
        return (
            f"crawl stopped: {url} needs JavaScript and Chromium is not available; "
            f"{CHROMIUM_HINT}, then rerun with --resume"
        )
    if reason == "blocked":
        return (
            f"crawl stopped: the site blocks this crawler ({url} answered 'Access Denied' / "
            f"HTTP 403{extra}). Retry much later with --resume, or ask the site owner for access"
        )
    if reason == "robots":
        return (
            f"crawl stopped before its first listing request: robots.txt disallows {url}{extra}. "
            "Crawl only with the site owner's permission (--ignore-robots), or import a "
            "licensed feed with deeproot catalog import"
        )
    if reason == "unreachable":
        return (
            f"crawl stopped: the site cannot be reached ({url}{extra}); check the network or "
            "--base-url, then retry (with --resume if records were kept)"
        )
    return f"crawl stopped: the site throttled us{extra}; rerun later with --resume"


# ------------------------------------------------------------------------------- worker


def _run_worker(
    job: dict[str, Any], progress: Progress | None, on_start: Callable[[int], None]
) -> tuple[dict[str, Any] | None, int]:
    """Run the crawl worker on `job`; relay its events; (its "done" event or None, exit code)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deeproot.crawler._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None
    on_start(proc.pid)
    done: dict[str, Any] | None = None
    try:
        proc.stdin.write(json.dumps(job, ensure_ascii=False))
        proc.stdin.close()
        proc.stdin = None  # so communicate() below never touches the closed pipe
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "done":
                done = ev
            elif kind == "log":
                logging.getLogger(str(ev.get("name") or "scrapy")).log(
                    int(ev.get("level") or logging.INFO), "%s", ev.get("msg")
                )
            elif progress is not None:
                progress(ev)
        proc.wait()
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Scrapy shuts down cleanly on the first SIGINT
            try:
                proc.communicate(timeout=30)  # drain its events so it never blocks writing
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            except (OSError, ValueError):
                proc.wait()
        raise
    return done, proc.returncode


# ------------------------------------------------------------------------------- robots


def _hosts(s: CrawlSettings) -> dict[str, str]:
    """netloc -> a URL on it, for every host this crawl may request."""
    hosts = {urlparse(s.base_url).netloc: s.base_url}
    if s.base_url == s.site_url:
        hosts[urlparse(STATS_HOST).netloc] = STATS_HOST
    return hosts


def page_urls(s: CrawlSettings) -> list[tuple[str, str, str]]:
    """(category, page kind, URL) for the checks: each category's listing, and one product's
    notice, review stats and detail page (the product URLs do not depend on the category)."""
    from deeproot.crawler.parse import rebase

    goods = "A000000000000"  # a made-up goodsNo: only the path matters to robots.txt

    def url(path: str, q: str = "") -> str:
        return rebase(f"{s.site_url}{path}" + (f"?{q}" if q else ""), s.site_url, s.base_url)

    out = []
    for c in s.categories:
        q = (
            f"dispCatNo={c.disp_cat_no}&fltDispCatNo=&prdSort=01&pageIdx=1"
            f"&rowsPerPage={s.rows_per_page}&searchTypeSort=btn_thumb"
        )
        out.append((c.key, "listing", url(LISTING_PATH, q)))
    stats = (
        f"{STATS_HOST}{stats_path(goods)}"
        if s.base_url == s.site_url
        else f"{s.base_url}{stats_path(goods)}"
    )
    out.append(("*", "notice", url(NOTICE_PATH)))
    out.append(("*", "stats", stats))
    out.append(("*", "detail", url(DETAIL_PATH, f"goodsNo={goods}")))
    return out


@dataclass(frozen=True)
class RobotsCheck:
    """What `crawl --check` prints: robots.txt per host, then a verdict per category and kind."""

    hosts: tuple[dict[str, Any], ...]
    pages: tuple[dict[str, Any], ...]
    delay: float  # the delay the crawl would use (crawl-delay honoured)

    @property
    def allowed(self) -> bool:
        return all(p["allowed"] for p in self.pages if p["kind"] in ("listing", "notice"))


def fetch_all_robots(s: CrawlSettings) -> dict[str, Any]:
    from deeproot.crawler.robots import fetch_robots

    return {
        host: fetch_robots(url, s.user_agent, min(s.timeout, 30.0))
        for host, url in _hosts(s).items()
    }


def check_robots(s: CrawlSettings, robots: dict[str, Any] | None = None) -> RobotsCheck:
    """Fetch robots.txt (only) and say, per category and page kind, whether we may fetch it."""
    robots = robots if robots is not None else fetch_all_robots(s)
    hosts = []
    delay = s.delay
    for host, r in robots.items():
        hosts.append(
            {
                "host": host,
                "url": r.url,
                "state": r.state,
                "status": r.status,
                "detail": r.detail,
                "group": r.group,
                "crawl_delay": r.crawl_delay,
            }
        )
        if r.crawl_delay is not None and host == urlparse(s.base_url).netloc:
            delay = max(delay, r.crawl_delay)
    pages = []
    for cat, kind, url in page_urls(s):
        r = robots.get(urlparse(url).netloc)
        d = r.check(url) if r is not None else None
        pages.append(
            {
                "category": cat,
                "kind": kind,
                "url": url,
                "allowed": bool(d.allowed) if d else True,
                "why": d.why if d else "not checked",
            }
        )
    return RobotsCheck(tuple(hosts), tuple(pages), delay)


# ------------------------------------------------------------------------------- run


def _prepare(s: CrawlSettings) -> tuple[str, dict[str, Any] | None]:
    old = storage.latest_unfinished(s.out) if s.resume else None
    if s.resume and old is None:
        bad = storage.invalid_manifests(s.out)
        hint = f" ({len(bad)} manifest(s) with an invalid crawl id were ignored)" if bad else ""
        raise InputError(
            f"nothing to resume in {s.out}: no unfinished crawl{hint}; run without --resume"
        )
    if old is not None and storage.still_running(old):
        raise InputError(
            f"crawl {old['crawl_id']} is still running (pid {old['pid']}); wait for it to finish"
        )
    return (old["crawl_id"], old) if old is not None else (storage.new_crawl_id(), None)


def _recheck_set(s: CrawlSettings, prev: list[dict[str, Any]], prev_started: str | None) -> set:
    """goodsNo whose ingredient text is due for a re-read (only with --recheck-days).

    Everything older than N days, plus, oldest first, the share that ages past N days between
    two runs at this pace (time since the previous crawl / N days), so a steady schedule spreads
    the re-reads instead of re-reading everything on day N.
    """
    if s.recheck_days is None or not prev:
        return set()
    now = datetime.now(UTC)
    limit = timedelta(days=s.recheck_days)
    age: dict[str, datetime] = {}
    for r in prev:
        t = r.get("ingredients_at") or r.get("crawled_at")
        if t is None:
            continue
        t = t if isinstance(t, datetime) else datetime.fromisoformat(str(t))
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        g = r["goods_no"]
        age[g] = min(age.get(g, t), t)
    due = {g for g, t in age.items() if now - t >= limit}
    gap = limit
    if prev_started:
        try:
            gap = min(limit, now - datetime.fromisoformat(prev_started))
        except ValueError:
            pass
    share = 1.0 if limit.total_seconds() == 0 else gap / limit
    budget = math.ceil(len(age) * max(0.0, share))
    for g, _ in sorted(age.items(), key=lambda kv: kv[1])[:budget]:
        due.add(g)
    return due


class _StatsLog:
    """Periodic one-line crawl stats at INFO (`-v`), for schedulers and logs."""

    def __init__(self, crawl_id: str, every: float, progress: Progress | None) -> None:
        self.crawl_id, self.every, self.progress = crawl_id, every, progress
        self.t0 = self.last = time.monotonic()
        self.total: int | None = None
        self.done = 0
        self.requests = 0
        self.errors = 0
        self.retries = 0

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "planned":
            self.total = int(ev.get("products") or 0)
            self.done = int(ev.get("resumed") or 0)
            log.info(
                "crawl %s: %d products listed; %d to fetch, %d carried, %d already done",
                self.crawl_id,
                self.total,
                ev.get("to_fetch", 0),
                ev.get("carried", 0),
                self.done,
            )
        elif kind == "record":
            self.done += 1
            self.requests = int(ev.get("requests") or self.requests)
        elif kind == "error":
            self.errors += 1
            self.done += len(ev.get("categories") or [])
        elif kind == "deleted":
            self.done += int(ev.get("n") or 1)
        elif kind == "retry":
            self.retries += 1
        elif kind == "browser":
            log.warning("%s", ev.get("message"))
        if self.progress is not None:
            self.progress(ev)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line())

    def line(self) -> str:
        took = time.monotonic() - self.t0
        if self.total:
            pct = min(self.done, self.total) / self.total
            eta = (took / pct - took) if pct > 0 else None
            where = f"{self.done}/{self.total} products ({pct:.0%})"
            eta_s = f", ETA {eta:.0f} s" if eta is not None else ""
        else:
            where, eta_s = f"{self.done} products (listing pages still coming)", ""
        return (
            f"crawl {self.crawl_id}: {where}, {self.requests} requests, {self.errors} errors, "
            f"{self.retries} retries, {took:.0f} s{eta_s}"
        )


def run_crawl(
    settings: CrawlSettings,
    progress: Progress | None = None,
    *,
    wait: float | None = None,
    log_every: float = 30.0,
) -> CrawlReport:
    """Crawl the configured categories into a new partition under `settings.out`.

    Holds the store's lock (`deeproot.lock.StoreLock(out, "crawl")`, `wait` seconds to queue) from
    start to publish. Progress events (dicts with "event": planned, listing, record, retry, error,
    deleted, browser) go to `progress`; periodic stats are logged at INFO every `log_every` s.

    Returns the report: `status` complete, stopped (challenge, block, rate limit, robots.txt,
    unreachable), interrupted (the worker was stopped by a signal) or gate_failed; nothing is
    published unless complete, and `report.error()` is the exception to raise otherwise.
    Raises LockedError when another crawl holds the store, InputError for bad options,
    KeyboardInterrupt after recording "interrupted" (the crawl stays resumable), and
    DeeprootError when the worker crashes.
    """
    from deeproot.lock import StoreLock

    s = settings
    if s.resume:  # a read-only check first: bad input writes nothing
        _prepare(s)
    with StoreLock(s.out, "deeproot crawl", wait=wait):
        return _run_locked(s, progress, log_every)


def _run_locked(s: CrawlSettings, progress: Progress | None, log_every: float) -> CrawlReport:
    crawl_id, old = _prepare(s)
    try:
        storage.crawls_dir(s.out).mkdir(parents=True, exist_ok=True)
        storage.products_dir(s.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot write to output folder {s.out}: {exc.strerror}; choose --out"
        ) from exc
    started = old["started_at"] if old else datetime.now(UTC).isoformat()
    prev_id = storage.latest_complete(s.out)
    mpath = storage.manifest_path(s.out, crawl_id)
    ckpt = storage.checkpoint_path(s.out, crawl_id)
    manifest: dict[str, Any] = {
        "crawl_id": crawl_id,
        "status": "running",
        "started_at": started,
        "pid": os.getpid(),
        "previous_crawl_id": prev_id,
        "settings": s.to_json(),
        "attempts": (old.get("attempts", 1) + 1) if old else 1,
    }
    storage.write_json_atomic(mpath, manifest)
    ckpt.touch()
    t0 = time.monotonic()
    stats_log = _StatsLog(crawl_id, log_every, progress)
    early_requests = 0
    robots_json: dict[str, Any] = {}
    if s.obey_robots:
        robots = fetch_all_robots(s)
        early_requests = len(robots)
        base = robots[urlparse(s.base_url).netloc]
        stop: dict[str, str] | None = None
        if base.state == "unreachable":
            stop = {"reason": "unreachable", "url": base.url, "message": base.detail}
        elif base.state == "challenge":
            stop = {"reason": "challenge", "url": base.url, "message": "robots.txt"}
        else:
            check = check_robots(s, robots)
            bad = [
                p for p in check.pages if p["kind"] in ("listing", "notice") and not p["allowed"]
            ]
            if bad:
                stop = {"reason": "robots", "url": bad[0]["url"], "message": bad[0]["why"]}
            elif check.delay > s.delay:
                log.warning(
                    "robots.txt asks for a crawl-delay of %g s: the delay is now %g s",
                    check.delay,
                    check.delay,
                )
                s = replace(s, delay=check.delay, autothrottle=True)
        if stop is not None:
            early: dict[str, Any] = {
                "stop": stop,
                "stats": {},
                "requests": {"robots": early_requests},
            }
            return _finish(s, crawl_id, manifest, early, prev_id, time.monotonic() - t0, 0)
        for host, r in robots.items():
            robots_json[host] = {
                "url": r.url,
                "state": r.state,
                "status": r.status,
                "detail": r.detail,
                "text": _robots_text(r),
            }
    recheck: set[str] = set()
    if s.incremental and prev_id and s.recheck_days is not None:
        prev_m = storage.read_manifest(storage.manifest_path(s.out, prev_id)) or {}
        recheck = _recheck_set(s, storage.read_partition(s.out, prev_id), prev_m.get("started_at"))
    job = {
        "crawl_id": crawl_id,
        "checkpoint": str(ckpt),
        "prev_crawl_id": prev_id,
        "robots": robots_json,
        "recheck": sorted(recheck),
    }

    def started_worker(pid: int) -> None:
        storage.write_json_atomic(mpath, manifest | {"worker_pid": pid})

    browser = s.browser
    total: dict[str, Any] = {}
    while True:
        run_s = replace(s, browser=browser)
        try:
            got, rc = _run_worker(job | {"settings": run_s.to_json()}, stats_log, started_worker)
        except BaseException:
            storage.write_json_atomic(mpath, manifest | {"status": "interrupted"})
            raise
        done: dict[str, Any] | None = got
        if done is None:
            if rc in (-signal.SIGTERM, -signal.SIGINT, 130, -signal.SIGKILL):
                done = {"stop": None, "stats": {}, "reason": "shutdown"}
            else:
                storage.write_json_atomic(mpath, manifest | {"status": "interrupted"})
                raise DeeprootError(
                    f"crawl {crawl_id} ended abnormally (see messages above); rerun with --resume"
                )
        total = _merge_runs(total, done)
        halt: dict[str, Any] = done.get("stop") or {}
        if (
            halt.get("reason") in ("challenge", "needs_js")
            and s.browser_mode == "auto"
            and not browser
            and s.chromium_ok
        ):
            browser = True
            stats_log(
                {
                    "event": "browser",
                    "message": f"{halt.get('url')}: {halt.get('reason')}; switching this crawl "
                    "to Chromium (same delay, same User-Agent)",
                }
            )
            continue
        break
    total["requests"]["robots"] = total["requests"].get("robots", 0) + early_requests
    return _finish(
        s, crawl_id, manifest, total, prev_id, time.monotonic() - t0, len(recheck), browser
    )


def _robots_text(r: Any) -> str:
    """Rules back as robots.txt text for the worker (which parses them the same way)."""
    lines = [f"User-agent: {r.group or '*'}"]
    for rule in r.rules:
        lines.append(f"{'Allow' if rule.allow else 'Disallow'}: {rule.pattern}")
    if not r.rules:
        lines.append("Allow: /")
    return "\n".join(lines) + "\n"


def _merge_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two worker runs of one crawl (plain HTTP, then Chromium) as one."""
    if not a:
        b = dict(b)
        b["requests"] = dict(b.get("requests") or {})
        return b
    out = dict(b)
    out["requests"] = dict(a.get("requests") or {})
    for k, v in (b.get("requests") or {}).items():
        out["requests"][k] = out["requests"].get(k, 0) + v
    for k in ("errors", "warnings", "deleted"):
        out[k] = list(a.get(k) or []) + list(b.get(k) or [])
    for k in ("recheck_requests", "robots_forbidden", "responses"):
        out[k] = int(a.get(k) or 0) + int(b.get(k) or 0)
    stats = dict(b.get("stats") or {})
    for k in ("retry/count",):
        stats[k] = int((a.get("stats") or {}).get(k, 0)) + int(stats.get(k, 0))
    out["stats"] = stats
    seen = {c: list(v) for c, v in (a.get("seen") or {}).items()}
    for c, v in (b.get("seen") or {}).items():
        have = set(seen.setdefault(c, []))
        seen[c] += [g for g in v if g not in have]
    out["seen"] = seen
    out["totals"] = (a.get("totals") or {}) | (b.get("totals") or {})
    out["resumed"] = a.get("resumed", 0)
    return out


def _finish(
    s: CrawlSettings,
    crawl_id: str,
    manifest: dict[str, Any],
    done: dict[str, Any],
    prev_id: str | None,
    elapsed: float,
    n_recheck: int,
    browser_used: bool = False,
) -> CrawlReport:
    order = {c.key: i for i, c in enumerate(s.categories)}
    recs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in storage.read_checkpoint(storage.checkpoint_path(s.out, crawl_id)):
        recs.setdefault((r["goods_no"], r["category"]), r)
    records = sorted(recs.values(), key=lambda r: (order.get(r["category"], 99), r["listing_rank"]))
    for r in records:
        r["crawl_id"] = crawl_id
    prev_hash: dict[tuple[str, str], str] = {}
    if prev_id:
        for r in storage.read_partition(s.out, prev_id):
            prev_hash[(r["goods_no"], r["category"])] = r["listing_hash"]
    names = ("products", "new", "changed", "carried", "unchanged", "missing", "errors", "sold_out")
    per: dict[str, dict[str, int]] = {c.key: dict.fromkeys(names, 0) for c in s.categories}
    stored: dict[str, set[str]] = {c.key: set() for c in s.categories}
    for r in records:
        c = per.setdefault(r["category"], dict.fromkeys(names, 0))
        stored.setdefault(r["category"], set()).add(r["goods_no"])
        key = (r["goods_no"], r["category"])
        c["products"] += 1
        c["missing"] += not r["has_ingredients"]
        c["sold_out"] += bool(r.get("sold_out"))
        if r["carried"]:
            c["carried"] += 1
        elif key not in prev_hash:
            c["new"] += 1
        elif prev_hash[key] != r["listing_hash"]:
            c["changed"] += 1
        else:
            c["unchanged"] += 1
    errors = list(done.get("errors") or [])
    listing_errors: dict[str, int] = {}
    for e in errors:
        for cat in e.get("categories") or ([e["category"]] if e.get("category") else []):
            if cat in per:
                per[cat]["errors"] += 1
        if e.get("kind") in ("listing", "category") and e.get("category"):
            listing_errors[e["category"]] = listing_errors.get(e["category"], 0) + 1
    deleted: dict[str, set[str]] = {}
    for d in done.get("deleted") or []:
        deleted.setdefault(d["category"], set()).add(d["goods_no"])
    seen = {c: set(v) for c, v in (done.get("seen") or {}).items()}
    lost: dict[str, int] = {}
    for cat_key in per:
        lost[cat_key] = len(
            seen.get(cat_key, set()) - stored.get(cat_key, set()) - deleted.get(cat_key, set())
        )
    stop = done.get("stop")
    interrupted = done.get("reason") == "shutdown" or (
        not stop and done.get("stats", {}).get("finish_reason") == "shutdown"
    )
    requests_by_kind = {k: int(v) for k, v in (done.get("requests") or {}).items()}
    n_requests = sum(requests_by_kind.values())
    if (
        not stop
        and not interrupted
        and not records
        and errors
        and int(done.get("responses") or 0) == 0
    ):
        first = errors[0]
        stop = {"reason": "unreachable", "url": first.get("url", ""), "message": first["message"]}
    gates: list[str] = []
    robots = int(done.get("robots_forbidden") or 0)
    if not stop and not interrupted:
        if not records:
            why = f" ({robots} requests disallowed by robots.txt)" if robots else ""
            gates.append("no products were crawled" + why)
        else:
            for cat in s.categories:
                k = cat.key
                n_seen = len(seen.get(k, set()))
                if per[k]["products"] == 0:
                    why = " (the listing failed)" if listing_errors.get(k) else ""
                    gates.append(f"category {k}: no products{why}")
                elif listing_errors.get(k):
                    gates.append(f"category {k}: {listing_errors[k]} listing page(s) failed")
                elif n_seen and lost[k] / n_seen > s.max_lost:
                    gates.append(
                        f"category {k}: {lost[k]} of {n_seen} listed products were not stored "
                        f"(limit {s.max_lost:.0%})"
                    )
            missing = sum(v["missing"] for v in per.values())
            if missing / len(records) > s.max_missing_ingredients:
                gates.append(
                    f"{missing / len(records):.1%} of products have no ingredients "
                    f"(limit {s.max_missing_ingredients:.0%})"
                )
    status = (
        "stopped"
        if stop
        else "interrupted"
        if interrupted
        else "gate_failed"
        if gates
        else "complete"
    )
    partition = None
    if status == "complete":
        partition = str(storage.publish(s.out, crawl_id, records))
    finished = datetime.now(UTC).isoformat()
    totals = done.get("totals") or {}
    cats = tuple(
        CategorySummary(
            k,
            v["products"],
            v["new"],
            v["changed"],
            v["carried"],
            v["missing"],
            v["errors"],
            totals.get(k),
            len(seen.get(k, set())),
            lost.get(k, 0),
            v["sold_out"],
        )
        for k, v in per.items()
    )
    stats = done.get("stats") or {}
    report = CrawlReport(
        crawl_id=crawl_id,
        status=status,
        started_at=manifest["started_at"],
        finished_at=finished,
        duration_s=round(elapsed, 3),
        records=len(records),
        categories=cats,
        new=sum(c.new for c in cats),
        changed=sum(c.changed for c in cats),
        carried=sum(c.carried for c in cats),
        unchanged=sum(v["unchanged"] for v in per.values()),
        missing_ingredients=sum(c.missing_ingredients for c in cats),
        deleted=tuple(done.get("deleted") or []),
        errors=tuple(errors),
        warnings=tuple(done.get("warnings") or []),
        gate_failures=tuple(gates),
        stop=stop,
        requests=n_requests,
        retries=int(stats.get("retry/count", 0)),
        robots_forbidden=robots,
        resumed=int(done.get("resumed", 0)),
        previous_crawl_id=prev_id,
        partition=partition,
        manifest=str(storage.manifest_path(s.out, crawl_id)),
        requests_by_kind=requests_by_kind,
        recheck_requests=int(done.get("recheck_requests") or 0),
        rechecked=sum(1 for r in records if r.get("rechecked")),
        lost=sum(lost.values()),
        browser_used=browser_used,
        settings=s.to_json(),
    )
    body = report.to_json()
    body.pop("settings")
    storage.write_json_atomic(
        storage.manifest_path(s.out, crawl_id),
        manifest | body | {"stats": stats, "recheck_due": n_recheck},
    )
    if status == "complete":
        storage.checkpoint_path(s.out, crawl_id).unlink(missing_ok=True)
    log.info(
        "crawl %s: %s, %d products, %d requests (%s per product), %.1f s",
        crawl_id,
        status,
        report.records,
        report.requests,
        report.requests_per_product,
        report.duration_s,
    )
    return report
