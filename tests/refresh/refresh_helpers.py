"""Refresh test helpers: two versions of a small offline site with known differences.

Version 1 is 14 scalp-tonic and 10 scalp-pack products of the original DeepRoot crawl.
Version 2 changes exactly: one new product; one delisted (the best-rated tonic listed only
there, so a recommendation rank changes too); one price; one rating and review count; one
reformulation (피록톤올아민 removed from 라보에이치's tonic, which loses the 비듬 and 지루성
tags); one text-only edit (the notice shows the same list one ingredient per line); and one
product sold out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot.catalog.recommend import RecommendationSet
from deeproot.crawler.testsite import SiteProduct
from deeproot.refresh.refresh import RefreshResult

CATS = "scalp_tonic,scalp_pack_scaler"
REFORM = "A000000202414"  # 라보에이치 tonic: loses 피록톤올아민
REFORM_TOKEN = "피록톤올아민"
TEXT_ONLY = "A000000189266"  # 라보에이치: same list, `<br>` lines instead of ", "
PRICE = "A000000185844"
RATING = "A000000189143"
SOLD_OUT = "A000000183430"
RECHECK = 1e-5  # days (0.86 s): by the second refresh every notice is due for a re-read


@dataclass(frozen=True)
class Sites:
    v1: Path
    v2: Path
    v1_products: list[SiteProduct]
    v2_products: list[SiteProduct]
    new: str
    delisted: str


def seed_first(products: list[SiteProduct]) -> SiteProduct:
    """The best product by `recommend`'s seed ranking (rating, reviews, goods_no)."""
    return sorted(products, key=lambda p: (-p.rating, -p.review_count, p.goods_no))[0]


def crawl_options(base_url: str) -> dict[str, Any]:
    """make_settings options for the offline site: no delay, plain HTTP only."""
    return {
        "categories": CATS,
        "base_url": base_url,
        "delay": 0,
        "backoff": 0.05,
        "browser": "never",
    }


@dataclass(frozen=True)
class Refreshed:
    data: Path
    first: RefreshResult  # from v1: the first crawl
    second: RefreshResult  # from v2
    healthy_before: RecommendationSet  # healthy-scalp picks between the two
