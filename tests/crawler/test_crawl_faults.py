"""Faults, politeness, resume and incremental refresh, all through the real `deeproot crawl`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from crawler_helpers import (
    SMALL_CATS,
    comparable,
    crawl,
    expected_records,
    partitions,
    read_records,
    with_changes,
)

from deeproot.crawler.storage import read_checkpoint
from deeproot.crawler.testsite import Fault, Faults, build_site, serve

CATS = ",".join(SMALL_CATS)
# goods listed once in the small site; layouts: G_LEGACY legacy, G_2025 2025-style
G429, G503, GTIME, GEMPTY, GDEAD503, GDEADEMPTY = (
    "A000000170636",
    "A000000141338",
    "B000000200545",
    "A000000201059",
    "A000000208666",
    "A000000102316",
)
G_LEGACY, G_2025 = "A000000111221", "A000000205782"
G_DELETED = "A000000180946"  # listed in both categories


def test_faults_are_retried_and_reported(small_site, small_products, tmp_path, capsys):
    faults = Faults(
        rules=(
            Fault("429", "getGoodsDetail", goods_no=G429, times=2, retry_after=1),
            Fault("503", "getGoodsArtcAjax", goods_no=G503, times=1, retry_after=None),
            Fault("timeout", "getGoodsDetail", goods_no=GTIME, times=1, seconds=1.6),
            Fault("empty", "getGoodsArtcAjax", goods_no=GEMPTY, times=2),
            Fault("503", "getGoodsDetail", goods_no=GDEAD503, times=None, retry_after=None),
            Fault("empty", "getGoodsArtcAjax", goods_no=GDEADEMPTY, times=None),
            Fault("malformed", "getMCategoryList", page=1, times=None),
            Fault("malformed", "getGoodsDetail", goods_no=G_LEGACY, times=None),
            Fault("malformed", "getGoodsDetail", goods_no=G_2025, times=None),
            Fault("deleted", "getGoodsDetail", goods_no=G_DELETED, times=None),
        )
    )
    out = tmp_path / "data"
    with serve(small_site, faults) as site:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out), "--timeout", "1"
        )
    assert rc == 0, err
    expected = expected_records(small_products, drop={GDEAD503, GDEADEMPTY, G_DELETED})
    assert comparable(read_records(partitions(out)[0])) == expected
    log = site.log
    assert [r["status"] for r in log if r["goods_no"] == G429 and r["kind"] == "detail"] == [
        429,
        429,
        200,
    ]
    assert [r["status"] for r in log if r["goods_no"] == G503 and r["kind"] == "notice"] == [
        503,
        200,
    ]
    assert sum(r["kind"] == "detail" and r["goods_no"] == GTIME for r in log) == 2
    assert sum(r["kind"] == "notice" and r["goods_no"] == GEMPTY for r in log) == 3
    assert sum(r["kind"] == "detail" and r["goods_no"] == GDEAD503 for r in log) == 4
    assert sum(r["kind"] == "notice" and r["goods_no"] == GDEADEMPTY for r in log) == 4
    # the 429 asked for 1 s: the retry came no sooner
    t429 = [r["t"] for r in log if r["goods_no"] == G429 and r["kind"] == "detail"]
    assert t429[1] - t429[0] >= 0.99 and t429[2] - t429[1] >= 0.99
    lines = stdout.splitlines()
    # requests: robots 1 + listing 3 + detail 104-1+2+1+3 (shared goods once) + notice 102+1+2+3
    assert lines[0].startswith("crawl ")
    assert ": complete (108 products, 222 requests, 12 retries, " in lines[0]
    assert lines[3].split() == ["scalp_pack_scaler", "48", "45", "45", "0", "0", "0", "2"]
    assert f"deleted since listed: 1 {G_DELETED}" in lines
    assert "errors: 2" in lines
    assert any(
        line.startswith(f"  - detail {GDEAD503}: HTTP 503 after 3 retries (") for line in lines
    )
    assert any(
        line.startswith(
            f"  - notice {GDEADEMPTY}: ingredient notice stayed empty after 3 retries (throttled) ("
        )
        for line in lines
    )
    assert "quality gates: passed" in lines


def test_challenge_stops_cleanly_then_resume_completes(
    small_site, small_products, tmp_path, capsys
):
    out = tmp_path / "data"
    with serve(small_site, Faults(challenge_after=41)) as site:
        rc, stdout, err = crawl(capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out))
    assert rc == 1
    challenged = [r for r in site.log if r["status"] == 403]
    assert len(challenged) == 1  # one request at a time: nothing more after the challenge
    c = challenged[0]
    assert c["kind"] in ("detail", "notice")  # request 42 is a product page, not a listing
    url = f"{site.base_url}{c['path']}" + (
        f"?goodsNo={c['goods_no']}" if c["kind"] == "detail" else ""
    )
    assert err.splitlines()[-1] == (
        f"error: crawl stopped: {url} answered with a bot challenge page; deeproot never tries "
        "to get past it. Wait, then rerun with --resume"
    )
    assert partitions(out) == []
    [manifest] = (out / "crawls").glob("*.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "stopped" and m["stop"]["reason"] == "challenge"
    assert "partition: (none written)" in stdout
    done = read_checkpoint(out / "crawls" / f"{m['crawl_id']}.records.jsonl")
    assert 0 < len(done) < 112
    with serve(small_site) as site2:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site2.base_url, "--out", str(out), "--resume"
        )
    assert rc == 0, err
    [part] = partitions(out)
    assert part.parent.name == f"crawl_id={m['crawl_id']}"
    assert comparable(read_records(part)) == expected_records(small_products)
    assert f"resumed: {len(done)} products were already in the checkpoint" in stdout
    done_keys = {(r["goods_no"], r["category"]) for r in done}
    need = {g for (g, c) in expected_records(small_products) if (g, c) not in done_keys}
    assert site2.count("detail") == len(need)


def test_robots_txt_disallow_stops_requests(small_site, tmp_path, capsys):
    robots = "User-agent: deeproot\nDisallow: /store/\n\nUser-agent: *\nAllow: /\n"
    out = tmp_path / "data"
    with serve(small_site, Faults(robots_txt=robots)) as site:
        rc, stdout, err = crawl(capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out))
        assert [r["kind"] for r in site.log] == ["robots"]
        assert rc == 1
        assert err.splitlines()[-1] == (
            "error: quality gates failed: no products were crawled "
            "(2 requests disallowed by robots.txt)"
        )
        assert "robots.txt disallowed 2 requests" in stdout
        assert partitions(out) == []
        rc, stdout, err = crawl(
            capsys,
            "-c",
            "scalp_pack_scaler",
            "--base-url",
            site.base_url,
            "--out",
            str(out),
            "--ignore-robots",
        )
    assert rc == 0
    assert err.startswith("WARNING: --ignore-robots: robots.txt will NOT be obeyed.")
    assert len(read_records(partitions(out)[0])) == 48


def _crawl_argv(base_url: str, out: Path) -> list[str]:
    """`deeproot crawl` of the small categories in a child process, delays off."""
    return [
        sys.executable,
        "-m",
        "deeproot.cli.main",
        "crawl",
        "-c",
        CATS,
        "--base-url",
        base_url,
        "--out",
        str(out),
        "--delay",
        "0",
    ]


def test_killed_midway_then_resume_equals_uninterrupted(
    small_site, small_products, tmp_path, capsys
):
    out = tmp_path / "data"
    env = dict(os.environ, COLUMNS="200")
    with serve(small_site, Faults(latency=0.01)) as site:
        proc = subprocess.Popen(
            _crawl_argv(site.base_url, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        ckpt = None
        while time.monotonic() < deadline:
            found = list((out / "crawls").glob("*.records.jsonl")) if out.exists() else []
            if found and len(read_checkpoint(found[0])) >= 30:
                ckpt = found[0]
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert ckpt is not None, "the crawl never reached 30 records"
    assert partitions(out) == []
    done = read_checkpoint(ckpt)
    assert 30 <= len(done) < 112
    with serve(small_site) as site2:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site2.base_url, "--out", str(out), "--resume"
        )
    assert rc == 0, err
    [part] = partitions(out)
    assert comparable(read_records(part)) == expected_records(small_products)
    assert site2.count("detail") < 104


def test_incremental_refetches_only_changed(
    small_site, small_products, tmp_path, tmp_path_factory, capsys
):
    out = tmp_path / "data"
    with serve(small_site) as site:
        assert crawl(capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out))[0] == 0
        full_requests = len(site.log)
    [base_part] = partitions(out)
    base_id = base_part.parent.name.removeprefix("crawl_id=")
    base = {(r["goods_no"], r["category"]): r for r in read_records(base_part)}
    v2, changed = with_changes(small_products, every=20)
    assert len(changed) == 6
    site2_dir = build_site(v2, tmp_path_factory.mktemp("site-v2"))
    with serve(site2_dir) as site2:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site2.base_url, "--out", str(out), "--incremental"
        )
    assert rc == 0, err
    new_part = [p for p in partitions(out) if p != base_part][0]
    rows = read_records(new_part)
    expected = expected_records(v2)
    for key, rec in expected.items():
        if key[0] not in changed:
            expected[key] = rec | {"carried": True, "carried_from": base_id}
    assert comparable(rows) == expected
    for r in rows:
        if r["carried"]:
            assert r["crawled_at"] == base[(r["goods_no"], r["category"])]["crawled_at"]
    n_changed = sum(1 for k in expected if k[0] in changed)
    assert site2.count("detail") == site2.count("notice") == len(changed)
    assert len(site2.log) <= 0.15 * full_requests
    total = [line for line in stdout.splitlines() if line.startswith("total")][0]
    assert total.split() == ["total", "112", "0", str(n_changed), str(112 - n_changed), "0", "0"]


def test_quality_gate_too_many_without_ingredients(
    small_products, tmp_path, tmp_path_factory, capsys
):
    goods = sorted({p.goods_no for p in small_products})
    strip = set(goods[::3])
    products = [
        replace(p, ingredients_text=None) if p.goods_no in strip else p for p in small_products
    ]
    share = sum(1 for r in expected_records(products).values() if not r["has_ingredients"]) / 112
    site_dir = build_site(products, tmp_path_factory.mktemp("site-noingr"))
    out = tmp_path / "data"
    with serve(site_dir) as site:
        rc, stdout, err = crawl(capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out))
    assert rc == 1
    assert err.splitlines()[-1] == (
        f"error: quality gates failed: {share:.1%} of products have no ingredients (limit 20%)"
    )
    assert partitions(out) == []
    [manifest] = (out / "crawls").glob("*.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "failed" and m["records"] == 112
    assert len(read_checkpoint(out / "crawls" / f"{m['crawl_id']}.records.jsonl")) == 112


def test_library_run_reports_progress_and_stops_on_long_retry_after(
    small_products, tmp_path, tmp_path_factory
):
    from deeproot.crawler import make_settings, run_crawl

    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:4]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-4"))
    # detail requests run last-listed first (Scrapy's LIFO queue), one at a time
    first, second = products[3].goods_no, products[0].goods_no
    faults = Faults(
        rules=(
            Fault("429", "getGoodsDetail", goods_no=first, times=1, retry_after=0),
            Fault("429", "getGoodsDetail", goods_no=second, times=None, retry_after=1000),
        )
    )
    events: list[dict] = []
    with serve(site_dir, faults) as site:
        s = make_settings(
            out=tmp_path / "data",
            categories="scalp_pack_scaler",
            base_url=site.base_url,
            delay=0,
            backoff=0.05,
        )
        report = run_crawl(s, progress=events.append)
    assert report.status == "stopped" and report.partition is None
    assert report.problem() == (
        "crawl stopped: the site throttled us (asked to wait 1000 s); rerun later with --resume"
    )
    kinds = [e["event"] for e in events]
    assert kinds[0] == "listing" and events[0]["total"] == 4
    assert {
        "event": "retry",
        "url": f"{site.base_url}/store/goods/getGoodsDetail.do?goodsNo={first}",
        "reason": "HTTP 429",
        "wait": 0.0,
    } in events
    assert kinds.count("record") == report.resumed + sum(
        1 for e in events if e["event"] == "record"
    )
    assert sum(1 for r in site.log if r["goods_no"] == second and r["kind"] == "detail") == 1


def test_ctrl_c_marks_interrupted_and_says_how_to_resume(
    small_site, small_products, tmp_path, capsys
):
    out = tmp_path / "data"
    with serve(small_site, Faults(latency=0.01)) as site:
        proc = subprocess.Popen(
            _crawl_argv(site.base_url, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list((out / "crawls").glob("*.records.jsonl")) if out.exists() else []
            if found and len(read_checkpoint(found[0])) >= 10:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.splitlines()[-1] == (
        f"error: crawl interrupted; its records so far are kept: finish it with "
        f"deeproot crawl --resume --out {out}"
    )
    [manifest] = (out / "crawls").glob("*.json")
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert partitions(out) == []
    with serve(small_site) as site2:
        rc, _, err = crawl(
            capsys, "-c", CATS, "--base-url", site2.base_url, "--out", str(out), "--resume"
        )
    assert rc == 0, err
    assert comparable(read_records(partitions(out)[0])) == expected_records(small_products)
