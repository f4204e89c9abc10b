"""An offline imitation of Olive Young's hair-care pages, for tests, benchmarks and demos.

`build_site(products, out_dir, layout="2025"|"legacy")` writes static listing pages (24/36/48
rows), detail pages in the real 2025 layout (default) or the legacy layout, notice fragments and
review-stats JSON; `serve(out_dir, faults)` serves them from 127.0.0.1 with optional faults (429,
503, timeouts, empty notices, challenge and block pages, malformed HTML, deleted products,
offsite redirects, gzip bombs, JavaScript-only listings, robots.txt errors).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from deeproot.crawler.testsite.model import (
    Fault,
    Faults,
    SiteProduct,
    by_category,
    first_by_goods,
    load_deeproot_csvs,
    synth_prices,
)
from deeproot.crawler.testsite.render import (
    detail_2025,
    detail_legacy,
    listing_page,
    notice_fragment,
    review_stats_json,
)
from deeproot.crawler.testsite.server import RunningSite, serve
from deeproot.taxonomy import category

__all__ = [
    "Fault",
    "Faults",
    "RunningSite",
    "SiteProduct",
    "build_site",
    "layout_of",
    "load_deeproot_csvs",
    "serve",
    "synth_prices",
]

ROWS_OPTIONS = (24, 36, 48)
LAYOUTS = ("2025", "legacy")


def layout_of(goods_no: str, layout_mix: float) -> str:
    """Which detail layout a product gets: "2025" for a `layout_mix` share, else "legacy"."""
    h = int(hashlib.sha1(f"layout:{goods_no}".encode()).hexdigest(), 16) % 1000
    return "2025" if h < layout_mix * 1000 else "legacy"


def build_site(
    products: Iterable[SiteProduct],
    out_dir: str | Path,
    *,
    layout: str = "2025",
    layout_mix: float | None = None,
    hash_seed: str = "2025",
    codes: Mapping[str, str] | None = None,
) -> Path:
    """Write the site for `products` (listing order = input order per category) under `out_dir`.

    Args:
        products: one SiteProduct per (product, category) listing entry; a goodsNo listed in two
            categories gets one detail page, from its first entry.
        out_dir: folder to write (created; files are overwritten).
        layout: detail page layout, "2025" (the real current markup) or "legacy".
        layout_mix: when given, a mix instead: this share of pages in the 2025 layout.
        hash_seed: seed of those class hashes (crawlers must not depend on it).
        codes: category key -> dispCatNo; default the taxonomy's codes.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    products = list(products)
    out = Path(out_dir)
    groups = by_category(products)
    code_of = {k: (codes or {}).get(k) or category(k).disp_cat_no for k in groups}
    layouts: dict[str, str] = {}
    for cat, items in groups.items():
        code = code_of[cat]
        for rows in ROWS_OPTIONS:
            d = out / "listing" / code / str(rows)
            d.mkdir(parents=True, exist_ok=True)
            pages = max(1, -(-len(items) // rows))
            for page in range(1, pages + 1):
                (d / f"{page}.html").write_text(
                    listing_page(cat, code, items, page, rows), encoding="utf-8"
                )
            (d / "empty.html").write_text(
                listing_page(cat, code, items, pages + 1, rows), encoding="utf-8"
            )
    (out / "detail").mkdir(parents=True, exist_ok=True)
    (out / "notice").mkdir(parents=True, exist_ok=True)
    (out / "stats").mkdir(parents=True, exist_ok=True)
    for p in first_by_goods(products):
        kind = layout if layout_mix is None else layout_of(p.goods_no, layout_mix)
        layouts[p.goods_no] = kind
        code = code_of[p.category]
        html = detail_2025(p, code, hash_seed) if kind == "2025" else detail_legacy(p, code)
        (out / "detail" / f"{p.goods_no}.html").write_text(html, encoding="utf-8")
        (out / "notice" / f"{p.goods_no}.html").write_text(notice_fragment(p), encoding="utf-8")
        (out / "stats" / f"{p.goods_no}.json").write_text(review_stats_json(p), encoding="utf-8")
    meta = {
        "codes": {code: cat for cat, code in code_of.items()},
        "rows": list(ROWS_OPTIONS),
        "layouts": layouts,
        "counts": {cat: len(items) for cat, items in groups.items()},
    }
    (out / "site.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return out
