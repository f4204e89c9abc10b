"""Olive Young hair-care crawler: Scrapy (+ scrapy-playwright) into per-crawl Parquet partitions.

Entry point: `run_crawl(make_settings(out=...))` -> `CrawlReport` (see docs/crawler.md);
`check_robots(settings)` is what `crawl --check` prints. Heavy modules (scrapy, pyarrow) load
lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PRODUCT_SCHEMA",
    "CrawlReport",
    "CrawlSettings",
    "check_robots",
    "make_settings",
    "run_crawl",
]


def __getattr__(name: str) -> Any:
    if name == "PRODUCT_SCHEMA":
        from deeproot.crawler.storage import PRODUCT_SCHEMA

        return PRODUCT_SCHEMA
    if name in ("CrawlReport", "run_crawl", "check_robots"):
        from deeproot.crawler import runner

        return getattr(runner, name)
    if name in ("CrawlSettings", "make_settings"):
        from deeproot.crawler import settings

        return getattr(settings, name)
    raise AttributeError(name)
