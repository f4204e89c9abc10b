"""Crawler fixtures: the imitation site built from the real DeepRoot rows (read from ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest
from crawler_helpers import SMALL_CATS

from deeproot.crawler.testsite import SiteProduct, build_site, load_deeproot_csvs


@pytest.fixture(scope="session")
def all_products(crawl_dir: Path) -> list[SiteProduct]:
    return load_deeproot_csvs(crawl_dir)


@pytest.fixture(scope="session")
def small_products(all_products: list[SiteProduct]) -> list[SiteProduct]:
    """Two categories, 112 listing entries, 8 goods in both."""
    return [p for p in all_products if p.category in SMALL_CATS]


@pytest.fixture(scope="session")
def small_site(small_products: list[SiteProduct], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(small_products, tmp_path_factory.mktemp("site-small"))
