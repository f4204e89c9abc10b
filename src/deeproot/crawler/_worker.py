"""Crawl worker: runs one Scrapy crawl in its own process (Twisted's reactor cannot restart).

Protocol: the parent writes a JSON job on stdin; the worker appends records to the checkpoint file
and writes JSON-line events on stdout, the last one `{"event": "done", ...}` with stats. Log
records travel as `{"event": "log", ...}` events too, so the parent's logging (level, timestamps,
--log-file) applies to them. The worker dies with its parent (Linux: PR_SET_PDEATHSIG; elsewhere
a watchdog thread), so a killed `deeproot crawl` never leaves a crawler running.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO


def _jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in stats.items()}


def _die_with_parent() -> None:
    """Get SIGTERM when the parent process dies (then Scrapy shuts down like on Ctrl-C)."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="deeproot-parent-watch", daemon=True).start()


class _EventLog(logging.Handler):
    """Log records as events for the parent (which logs them with its own handlers)."""

    def __init__(self, events: TextIO) -> None:
        super().__init__()
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                msg += "\n" + logging.Formatter().formatException(record.exc_info)
            line = {"event": "log", "level": record.levelno, "name": record.name, "msg": msg}
            self.events.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.events.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the parent is gone; nothing to tell


def main() -> int:
    # Keep the event stream clean: anything else printed to stdout goes to stderr.
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _die_with_parent()
    job = json.loads(sys.stdin.read())

    from scrapy.crawler import CrawlerProcess

    from deeproot.crawler import storage
    from deeproot.crawler.robots import Robots, parse_robots
    from deeproot.crawler.settings import CrawlSettings, scrapy_settings
    from deeproot.crawler.spider import CrawlState, ProductSpider

    s = CrawlSettings.from_json(job["settings"])
    root = logging.getLogger()
    handler = _EventLog(events)
    if s.log_level != "DEBUG":
        # Scrapy's (and Twisted's, Playwright's) own log only at DEBUG (-vv); ours from INFO
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith("deeproot"))
    root.handlers[:] = [handler]
    root.setLevel(logging.getLevelName(s.log_level))
    ckpt = Path(job["checkpoint"])
    done = {(r["goods_no"], r["category"]) for r in storage.read_checkpoint(ckpt)}
    prev: dict[tuple[str, str], dict[str, Any]] = {}
    if job.get("prev_crawl_id"):
        for r in storage.read_partition(s.out, job["prev_crawl_id"]):
            prev[(r["goods_no"], r["category"])] = r
    robots: dict[str, Robots] = {}
    for host, r in (job.get("robots") or {}).items():
        if r["state"] == "rules":
            robots[host] = parse_robots(r["text"], r["url"], r["status"])
        else:
            robots[host] = Robots(r["url"], r["state"], r["status"], r["detail"])
    with ckpt.open("a", encoding="utf-8") as fh:
        state = CrawlState(
            settings=s,
            events=events,
            checkpoint=fh,
            done=done,
            prev=prev,
            prev_crawl_id=job.get("prev_crawl_id"),
            robots=robots if s.obey_robots else None,
            recheck=frozenset(job.get("recheck") or ()),
            browser=s.browser,
        )
        process = CrawlerProcess(scrapy_settings(s) | {"LOG_INSTALL_ROOT_HANDLER": False})
        crawler = process.create_crawler(ProductSpider)
        crawler.spider_state = state  # type: ignore[attr-defined]  # read by our middlewares
        process.crawl(crawler, state=state)
        process.start()
        stats = _jsonable(crawler.stats.get_stats() if crawler.stats else {})
    state.emit(
        "done",
        reason=stats.get("finish_reason"),
        stop=state.stop,
        stats=stats,
        errors=state.errors,
        warnings=state.warnings,
        deleted=state.deleted,
        totals=state.totals,
        seen=state.seen,
        requests=state.requests,
        recheck_requests=state.recheck_requests,
        robots_forbidden=state.robots_forbidden,
        responses=state.responses,
        resumed=len(done),
    )
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:
        sys.exit(130)
    # The checkpoint is closed and the "done" event flushed: skip the interpreter's teardown of
    # Scrapy, Twisted and lxml (a quarter of a second per crawl)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
