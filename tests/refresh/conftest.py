"""Refresh fixtures: the two offline sites (see refresh_helpers) and a data dir refreshed twice."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from refresh_helpers import (
    PRICE,
    RATING,
    RECHECK,
    REFORM,
    REFORM_TOKEN,
    SOLD_OUT,
    TEXT_ONLY,
    Refreshed,
    Sites,
    crawl_options,
    seed_first,
)

from deeproot.catalog.recommend import close_connections, recommend
from deeproot.crawler.testsite import SiteProduct, build_site, load_deeproot_csvs, serve
from deeproot.refresh.refresh import refresh


@pytest.fixture(scope="session")
def sites(crawl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Sites:
    allp = load_deeproot_csvs(crawl_dir)
    tonic = [p for p in allp if p.category == "scalp_tonic"][:14]
    pack = [p for p in allp if p.category == "scalp_pack_scaler"][:10]
    taken = {p.goods_no for p in tonic + pack}
    extra = next(p for p in allp if p.category == "shampoo" and p.goods_no not in taken)
    in_pack = {p.goods_no for p in pack}
    gone = seed_first([p for p in tonic if p.goods_no not in in_pack])
    assert gone.goods_no not in (REFORM, TEXT_ONLY, PRICE, RATING, SOLD_OUT)

    def change(p: SiteProduct) -> SiteProduct:
        if p.goods_no == PRICE:
            return replace(p, price_sale=p.price_sale - 1000)
        if p.goods_no == RATING:
            return replace(p, rating=round(p.rating - 0.2, 1), review_count=p.review_count + 7)
        if p.goods_no == REFORM:
            assert p.ingredients_text and p.ingredients_text.count(REFORM_TOKEN) == 1
            return replace(p, ingredients_text=p.ingredients_text.replace(REFORM_TOKEN + ", ", ""))
        if p.goods_no == TEXT_ONLY:
            assert p.dd_variant == "plain"
            return replace(p, dd_variant="br")
        if p.goods_no == SOLD_OUT:
            assert not p.sold_out
            return replace(p, sold_out=True)
        return p

    v1 = tonic + pack
    v2 = [change(p) for p in tonic if p is not gone] + [replace(extra, category="scalp_tonic")]
    v2 += [change(p) for p in pack]
    root = tmp_path_factory.mktemp("refresh-sites")
    return Sites(
        build_site(v1, root / "v1", layout_mix=0.0),
        build_site(v2, root / "v2", layout_mix=0.0),
        v1,
        v2,
        extra.goods_no,
        gone.goods_no,
    )


@pytest.fixture(scope="session")
def refreshed(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Refreshed:
    """A data dir refreshed from v1 (a full first crawl) and then from v2 (incremental, every
    notice due for a re-read); shared by the change-report and refresh tests."""
    data = tmp_path_factory.mktemp("refresh") / "data"
    with serve(sites.v1) as site:
        first = refresh(data, crawl_options=crawl_options(site.base_url), recheck_days=RECHECK)
    healthy = recommend(data / "catalog.duckdb", types=["healthy"], top=10)
    close_connections()
    time.sleep(RECHECK * 86400 + 0.2)  # every notice is now older than --recheck-days
    with serve(sites.v2) as site:
        second = refresh(data, crawl_options=crawl_options(site.base_url), recheck_days=RECHECK)
    return Refreshed(data, first, second, healthy)
