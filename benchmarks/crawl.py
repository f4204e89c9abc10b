"""Crawl requests and throughput against the offline site (delays off): full crawl, 5% refresh.

Builds the site from the real DeepRoot rows (../shared/deeproot-scalp-data) in the real 2025
layout and in the legacy layout, crawls all seven categories, then changes the sale price of
every 20th goodsNo (5%) and runs `--incremental`; also one full crawl with `--details`. Prints
requests per product (target <= 1.35 for complete records), requests by kind, products per
second, and the refresh's share of a full crawl's requests (target: at most 15%).

    .venv/bin/python benchmarks/crawl.py [--data ../shared/deeproot-scalp-data] [--repeat 1]
        [--browser] [--lake]

`--lake` also publishes the full crawl to an S3 server on 127.0.0.1 (moto's, in this process)
and syncs it back into a read cache, as `deeproot crawl --out s3://…` and the readers do.
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


def _lake(store: Path, cache: Path) -> None:
    """Publish a local store's crawls to moto's S3 server on 127.0.0.1, then sync them back."""
    import logging

    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    from deeproot import lake
    from deeproot.crawler import storage

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
            DEEPROOT_LAKE_CACHE=str(cache),
        )
        endpoint = f"http://{host}:{port}"
        pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}", scheme="http", allow_bucket_creation=True
        ).create_dir("bench")
        lk = lake.open_lake("s3://bench/store", endpoint)
        ids = [m["crawl_id"] for m in storage.manifests(store) if storage.is_complete(store,
                                                                                  m["crawl_id"])]
        size = sum(f.stat().st_size for f in (store / "products").rglob("*.parquet"))
        t0 = time.perf_counter()
        for cid in ids:
            lk.push(cid, source=store)
        t_push = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = lk.pull()
        t_pull = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = lk.pull()
        t_again = time.perf_counter() - t0
        print(
            f"lake (moto S3 on 127.0.0.1): publish {len(ids)} crawl(s), {size / 1e6:.2f} MB: "
            f"{t_push:.2f} s; sync into an empty read cache ({len(got)} copied): {t_pull:.2f} s; "
            f"sync again ({len(again)} copied, sizes checked): {t_again:.2f} s"
        )
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "deeproot-scalp-data")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is kept)")
    ap.add_argument("--browser", action="store_true", help="also time a Chromium sample crawl")
    ap.add_argument("--lake", action="store_true", help="also time publishing to S3 and syncing")
    args = ap.parse_args()
    products = load_deeproot_csvs(args.data)
    goods = sorted({p.goods_no for p in products})
    changed = set(goods[::20])
    v2 = [
        replace(p, price_sale=p.price_sale - 1000) if p.goods_no in changed else p for p in products
    ]
    capped = {p.goods_no for p in products if p.review_count > 999}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"site: {len(products)} listing entries, {len(goods)} goodsNo "
        f"({len(capped) / len(goods):.1%} with more than 999 reviews), 7 categories; "
        f"refresh changes {len(changed)} goodsNo ({len(changed) / len(goods):.1%})"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for layout in ("2025", "legacy"):
            t0 = time.perf_counter()
            v1_dir = build_site(products, tmp_path / f"v1-{layout}", layout=layout)
            v2_dir = build_site(v2, tmp_path / f"v2-{layout}", layout=layout)
            print(f"build both {layout} sites: {time.perf_counter() - t0:.2f} s")
            full_best = inc_best = None
            for i in range(args.repeat):
                out = tmp_path / f"out-{layout}-{i}"
                full = _crawl(v1_dir, out)
                inc = _crawl(v2_dir, out, incremental=True)
                if full_best is None or full[0] < full_best[0]:
                    full_best = full
                if inc_best is None or inc[0] < inc_best[0]:
                    inc_best = inc
            assert full_best is not None and inc_best is not None
            rows.append((f"full crawl, {layout} layout", *full_best))
            rows.append((f"5% refresh (--incremental), {layout} layout", *inc_best))
            if layout == "2025":
                det = _crawl(v1_dir, tmp_path / "out-details", details=True)
                rows.append(("full crawl with --details (every detail page)", *det))
                if args.lake:
                    _lake(tmp_path / f"out-{layout}-0", tmp_path / "lake-cache")
    print()
    print("| run | products | requests | requests/product | by kind | wall time | products/s |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, r, _served in rows:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(r.requests_by_kind.items()))
        print(
            f"| {name} | {r.records:,} | {r.requests:,} | {r.requests / r.records:.3f} | "
            f"{kinds} | {wall:.1f} s | {r.records / wall:.0f} |"
        )
    full_r = rows[0][2]
    inc_r = rows[1][2]
    share = inc_r.requests / full_r.requests
    print(
        f"\nrefresh requests / full requests = {share:.1%} (target <= 15%: "
        f"{'met' if share <= 0.15 else 'NOT met'}); full crawl requests/product "
        f"{full_r.requests / full_r.records:.3f} (target <= 1.35: "
        f"{'met' if full_r.requests / full_r.records <= 1.35 else 'NOT met'})"
    )
    live = full_r.requests * 2.5 / 60
    print(f"at the live site's polite 2.5 s floor: full crawl >= {live:.0f} min")
    chromium = os.environ.get("DEEPROOT_CHROMIUM", "/usr/bin/chromium")
    if args.browser and Path(chromium).exists():
        with tempfile.TemporaryDirectory() as tmp:
            sample = [p for p in products if p.category == "scalp_pack_scaler"][:24]
            site_dir = build_site(sample, Path(tmp) / "site")
            bw, br, _ = _crawl(
                site_dir, Path(tmp) / "out", categories="scalp_pack_scaler", browser="always"
            )
        print(
            f"--browser always (Chromium, {len(sample)} products): {br.records / bw:.1f} "
            f"products/s, {br.requests / br.records:.3f} requests/product, {bw:.1f} s"
        )


if __name__ == "__main__":
    main()
