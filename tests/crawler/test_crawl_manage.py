"""`crawl list`, `crawl prune`, `sample-site`, logging for schedulers and the library report."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deeproot.crawler import storage
from deeproot.crawler.parse import parse_detail, parse_listing
from deeproot.crawler.testsite import build_site, serve


def _fake_crawl(out: Path, when: datetime, status: str, pid: int | None = None) -> str:
    """A crawl in the store's layout: a complete one gets a one-record partition."""
    cid = storage.new_crawl_id(when)
    storage.crawls_dir(out).mkdir(parents=True, exist_ok=True)
    m = {"crawl_id": cid, "status": status, "started_at": when.isoformat(), "records": 1}
    if status == "complete":
        rec = {
            "crawled_at": when,
            "goods_no": "A000000000001",
            "category": "shampoo",
            "disp_cat_no": "1",
            "currency": "KRW",
            "product_url": "https://www.oliveyoung.co.kr/x",
            "has_ingredients": True,
            "listing_rank": 1,
            "carried": False,
            "source_layout": "listing",
            "listing_hash": "x",
            "crawl_id": cid,
        }
        storage.publish(out, cid, [rec])
        m |= {"finished_at": (when + timedelta(minutes=5)).isoformat(), "requests": 3}
    if pid is not None:
        m["pid"] = pid
    storage.write_json_atomic(storage.manifest_path(out, cid), m)
    return cid


def test_list_and_prune(tmp_path, capsys):
    from deeproot.cli.main import main

    out = tmp_path / "store"
    t = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    c1 = _fake_crawl(out, t, "complete")
    s1 = _fake_crawl(out, t + timedelta(days=1), "stopped")
    c2 = _fake_crawl(out, t + timedelta(days=2), "complete")
    r1 = _fake_crawl(out, t + timedelta(days=3), "running", pid=2**22 + 12345)  # a dead pid
    capsys.readouterr()
    assert main(["crawl", "list", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "crawl_id",
        "status",
        "products",
        "requests",
        "lost",
        "started",
        "ended",
    ]
    assert [ln.split()[:2] for ln in lines[1:]] == [
        [c1, "complete"],
        [s1, "stopped"],
        [c2, "complete"],
        [r1, "abandoned"],
    ]
    assert main(["crawl", "list", "--out", str(out), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["schema"] == "deeproot.crawl-list/1" and len(body["crawls"]) == 4
    # dry run: says, removes nothing
    assert main(["crawl", "prune", "--keep", "1", "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said == [
        f"would remove {c1} (complete)",
        f"would remove {s1} (stopped)",
        "would remove 2 crawl(s); kept the newest 1 complete",
    ]
    assert storage.is_complete(out, c1)
    assert main(["crawl", "prune", "--keep", "1", "--out", str(out)]) == 0
    assert not storage.partition_dir(out, c1).exists()
    assert not storage.manifest_path(out, s1).exists()
    assert storage.is_complete(out, c2)  # the newest complete crawl is never removed
    assert storage.manifest_path(out, r1).exists()  # newer than it: still resumable
    assert main(["crawl", "prune", "--keep", "0", "--out", str(out)]) == 2
    assert "--keep" in capsys.readouterr().err


def test_sample_site_serves_until_interrupted(tmp_path):
    env = dict(os.environ, COLUMNS="200")
    for layout in ("2025", "legacy"):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deeproot.cli.main",
                "sample-site",
                "--port",
                "0",
                "--layout",
                layout,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            first = proc.stdout.readline()  # type: ignore[union-attr]
            assert first.startswith("serving ") and f"in the {layout} layout at http://127.0.0.1:"
            url = first.rsplit(" ", 1)[1].strip()
            q = "dispCatNo=1000001000400080001&pageIdx=1&rowsPerPage=24"
            page = urllib.request.urlopen(f"{url}/store/display/getMCategoryList.do?{q}").read()
            cards = parse_listing(page.decode()).cards
            assert cards
            detail = urllib.request.urlopen(
                f"{url}/store/goods/getGoodsDetail.do?goodsNo={cards[0].goods_no}"
            ).read()
            info = parse_detail(detail.decode())
            assert info is not None and info.layout == layout and info.name
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err


def test_library_report_logging_and_stable_total(
    small_products, tmp_path, tmp_path_factory, caplog
):
    from deeproot.crawler import make_settings, run_crawl

    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:8]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-log"))
    events: list[dict] = []
    caplog.set_level(logging.INFO)
    with serve(site_dir) as site:
        s = make_settings(
            out=tmp_path / "d",
            categories="scalp_pack_scaler",
            base_url=site.base_url,
            delay=0,
            log_level="INFO",
        )
        report = run_crawl(s, progress=events.append, log_every=0)
    assert report.status == "complete" and report.error() is None and report.exit_code == 0
    body = report.to_json()
    assert body["schema"] == "deeproot.crawl/1"
    assert body["requests_per_product"] == round(report.requests / 8, 3)
    assert set(body["requests_by_kind"]) <= {"robots", "listing", "notice", "stats"}
    # the total is known once, after the listings and before any product
    kinds = [e["event"] for e in events]
    assert kinds.count("planned") == 1 and kinds.index("planned") < kinds.index("record")
    assert events[kinds.index("planned")]["products"] == 8
    msgs = [r.getMessage() for r in caplog.records if r.name == "deeproot.crawler"]
    assert any(f"crawl {report.crawl_id}: 8/8 products (100%)" in m and "ETA" in m for m in msgs)
    # Scrapy's own log is only shown at DEBUG
    assert not [r for r in caplog.records if r.name.startswith("scrapy")]
