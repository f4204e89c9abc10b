"""Crawl throughput against the offline imitation site (delays off): full crawl and 5% refresh.

Builds the site from the real DeepRoot rows (../shared/deeproot-scalp-data), crawls all seven
categories, then changes the sale price of every 20th goodsNo (5%) and runs `--incremental`.
Prints products per second, requests per product, and the refresh's share of a full crawl's
requests (target: at most 15%).

    .venv/bin/python benchmarks/crawl.py [--data ../shared/deeproot-scalp-data] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from deeproot.crawler import make_settings, run_crawl
from deeproot.crawler.testsite import build_site, load_deeproot_csvs, serve

REPO = Path(__file__).resolve().parents[1]


def _crawl(site_dir: Path, out: Path, **kw: object) -> tuple[float, object, int]:
    with serve(site_dir) as site:
        s = make_settings(out=out, base_url=site.base_url, delay=0, **kw)
        t0 = time.perf_counter()
        report = run_crawl(s)
        wall = time.perf_counter() - t0
        served = len(site.log)
    assert report.ok, report.problem()
    return wall, report, served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "deeproot-scalp-data")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is kept)")
    args = ap.parse_args()
    products = load_deeproot_csvs(args.data)
    goods = sorted({p.goods_no for p in products})
    changed = set(goods[::20])
    v2 = [
        replace(p, price_sale=p.price_sale - 1000) if p.goods_no in changed else p for p in products
    ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"site: {len(products)} listing entries, {len(goods)} goodsNo, 7 categories; "
        f"refresh changes {len(changed)} goodsNo ({len(changed) / len(goods):.1%})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        v1_dir = build_site(products, tmp_path / "v1")
        v2_dir = build_site(v2, tmp_path / "v2")
        print(f"build both sites: {time.perf_counter() - t0:.2f} s")
        full_best = inc_best = None
        for i in range(args.repeat):
            out = tmp_path / f"out{i}"
            full = _crawl(v1_dir, out)
            inc = _crawl(v2_dir, out, incremental=True)
            if full_best is None or full[0] < full_best[0]:
                full_best = full
            if inc_best is None or inc[0] < inc_best[0]:
                inc_best = inc
    assert full_best is not None and inc_best is not None
    fw, fr, _ = full_best
    iw, ir, _ = inc_best
    print(
        f"full crawl:   {fr.records} products in {fw:.2f} s = {fr.records / fw:.1f} products/s; "
        f"{fr.requests} requests = {fr.requests / fr.records:.3f} requests/product "
        "(wall time includes the crawl worker's start-up)"
    )
    print(
        f"refresh (5%): {ir.records} products in {iw:.2f} s = {ir.records / iw:.1f} products/s; "
        f"{ir.requests} requests = {ir.requests / ir.records:.3f} requests/product; "
        f"{ir.changed} changed, {ir.carried} carried, {ir.new} new"
    )
    share = ir.requests / fr.requests
    print(
        f"refresh requests / full requests = {share:.1%} (target <= 15%: "
        f"{'met' if share <= 0.15 else 'NOT met'}); refresh wall time = {iw / fw:.1%} of full"
    )
    chromium = os.environ.get("DEEPROOT_CHROMIUM", "/usr/bin/chromium")
    if Path(chromium).exists():
        with tempfile.TemporaryDirectory() as tmp:
            sample = [p for p in products if p.category == "scalp_pack_scaler"][:24]
            site_dir = build_site(sample, Path(tmp) / "site")
            bw, br, _ = _crawl(
                site_dir, Path(tmp) / "out", categories="scalp_pack_scaler", browser=True
            )
        print(
            f"--browser (Chromium, {len(sample)} products): {br.records / bw:.1f} products/s, "
            f"{br.requests / br.records:.3f} requests/product, {bw:.1f} s"
        )


if __name__ == "__main__":
    main()
