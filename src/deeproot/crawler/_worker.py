"""Crawl worker: runs one Scrapy crawl in its own process (Twisted's reactor cannot restart).

Protocol: the parent writes a JSON job on stdin; the worker appends records to the checkpoint file
and writes JSON-line events on stdout, the last one `{"event": "done", ...}` with stats. Logs go
to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in stats.items()}


def main() -> int:
    # Keep the event stream clean: anything else printed to stdout goes to stderr.
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    job = json.loads(sys.stdin.read())

    from scrapy.crawler import CrawlerProcess

    from deeproot.crawler import storage
    from deeproot.crawler.settings import CrawlSettings, scrapy_settings
    from deeproot.crawler.spider import CrawlState, ProductSpider

    s = CrawlSettings.from_json(job["settings"])
    ckpt = Path(job["checkpoint"])
    done = {(r["goods_no"], r["category"]) for r in storage.read_checkpoint(ckpt)}
    prev: dict[tuple[str, str], dict[str, Any]] = {}
    if job.get("prev_crawl_id"):
        for r in storage.read_partition(s.out, job["prev_crawl_id"]):
            prev[(r["goods_no"], r["category"])] = r
    with ckpt.open("a", encoding="utf-8") as fh:
        state = CrawlState(
            settings=s,
            events=events,
            checkpoint=fh,
            done=done,
            prev=prev,
            prev_crawl_id=job.get("prev_crawl_id"),
        )
        process = CrawlerProcess(scrapy_settings(s))
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
        resumed=len(done),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
