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
# goods listed once in the small site (scalp_pack_scaler)
G429, G503, GTIME, GEMPTY, GDEAD503, GDEADEMPTY = (
    "A000000170636",
    "A000000141338",
    "B000000200545",
    "A000000201059",
    "A000000208666",
    "A000000102316",
)
G_STATS_404 = "A000000205782"  # capped card: its review stats fail, the detail page fills in
G_DELETED = "A000000180946"  # listed in both categories
NOTICE, STATS, DETAIL, LISTING = "getGoodsArtcAjax", "/stats", "getGoodsDetail", "getMCategoryList"


def test_faults_are_retried_and_reported(small_site, small_products, tmp_path, capsys):
    faults = Faults(
        rules=(
            Fault("429", NOTICE, goods_no=G429, times=2, retry_after=1),
            Fault("503", NOTICE, goods_no=G503, times=1, retry_after=None),
            Fault("timeout", NOTICE, goods_no=GTIME, times=1, seconds=1.6),
            Fault("empty", NOTICE, goods_no=GEMPTY, times=2),
            Fault("503", NOTICE, goods_no=GDEAD503, times=None, retry_after=None),
            Fault("empty", NOTICE, goods_no=GDEADEMPTY, times=None),
            Fault("malformed", LISTING, page=1, times=None),
            Fault("404", STATS, goods_no=G_STATS_404, times=None),
            Fault("empty", NOTICE, goods_no=G_DELETED, times=None),
            Fault("deleted", DETAIL, goods_no=G_DELETED, times=None),
        )
    )
    out = tmp_path / "data"
    with serve(small_site, faults) as site:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out), "--timeout", "1"
        )
    assert rc == 0, err
    expected = expected_records(
        small_products, drop={GDEAD503, GDEADEMPTY, G_DELETED}, cats=SMALL_CATS
    )
    # the failed review stats fell back to the detail page (2025 layout): exact fields from it
    [p404] = [p for p in small_products if p.goods_no == G_STATS_404]
    expected[(G_STATS_404, "scalp_pack_scaler")] |= {
        "image_url": p404.image_url,
        "source_layout": "2025",
        "review_source": "detail",
    }
    assert comparable(read_records(partitions(out)[0])) == expected
    log = site.log

    def statuses(goods: str, kind: str) -> list[int]:
        return [r["status"] for r in log if r["goods_no"] == goods and r["kind"] == kind]

    assert statuses(G429, "notice") == [429, 429, 200]
    assert statuses(G503, "notice") == [503, 200]
    assert len(statuses(GTIME, "notice")) == 2
    assert len(statuses(GEMPTY, "notice")) == 3
    assert len(statuses(GDEAD503, "notice")) == 4
    assert len(statuses(GDEADEMPTY, "notice")) == 4 and len(statuses(GDEADEMPTY, "detail")) == 1
    assert statuses(G_STATS_404, "stats") == [404] and statuses(G_STATS_404, "detail") == [200]
    # the 429 asked for 1 s: the retry came no sooner
    t429 = [r["t"] for r in log if r["goods_no"] == G429 and r["kind"] == "notice"]
    assert t429[1] - t429[0] >= 0.99 and t429[2] - t429[1] >= 0.99
    lines = stdout.splitlines()
    assert ": complete (108 products, " in lines[0]
    sold = sum(r["sold_out"] for k, r in expected.items() if k[1] == "scalp_pack_scaler")
    assert lines[3].split() == [
        "scalp_pack_scaler",
        "48",
        "45",
        "45",
        "0",
        "0",
        "0",
        str(sold),
        "2",
    ]
    assert f"deleted since listed: 1 {G_DELETED}" in lines
    assert "errors: 2" in lines
    assert any(
        line.startswith(f"  - notice {GDEAD503}: HTTP 503 after 3 retries (") for line in lines
    )
    assert any(
        line.startswith(
            f"  - notice {GDEADEMPTY}: ingredient notice stayed empty after 3 retries (throttled) ("
        )
        for line in lines
    )
    assert "quality gates: passed" in lines


def _tiny(small_products, n: int = 10):  # noqa: ANN202
    return [p for p in small_products if p.category == "scalp_pack_scaler"][:n]


def test_stops_are_honest_and_resumable(small_products, tmp_path, tmp_path_factory, capsys):
    """A challenge whose marker sits after 40 KB, an Akamai 'Access Denied' 403, and bare 403s in
    a row each stop the crawl (exit 5) with the checkpoint kept; --resume then completes."""
    products = _tiny(small_products, 12)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-stops"))
    victim = products[5].goods_no
    cases = {
        "late": (Faults(rules=(Fault("challenge_late", NOTICE, goods_no=victim),)), "challenge"),
        "akamai": (Faults(rules=(Fault("akamai", NOTICE, goods_no=victim),)), "blocked"),
        "403s": (Faults(blocked_after=6), "blocked"),
    }
    expected = expected_records(products)
    for name, (faults, reason) in cases.items():
        out = tmp_path / name
        with serve(site_dir, faults) as site:
            rc, stdout, err = crawl(
                capsys,
                "-c",
                "scalp_pack_scaler",
                "--base-url",
                site.base_url,
                "--out",
                str(out),
                "--browser",
                "never",
            )
            forbidden = [r for r in site.log if r["status"] == 403]
        assert rc == 5, (name, err)
        last = err.splitlines()[-1]
        assert last.startswith("error: crawl stopped: "), last
        assert "--resume" in last and "site owner" in last
        # nothing after the stop: one request at a time, no hammering
        assert len(forbidden) == (3 if name == "403s" else 1)
        assert site.log[-1]["status"] == 403
        assert partitions(out) == []
        [manifest] = (out / "crawls").glob("*.json")
        m = json.loads(manifest.read_text())
        assert m["status"] == "stopped" and m["stop"]["reason"] == reason
        assert m["exit_code"] == 5
        assert "partition: (none written)" in stdout
        with serve(site_dir) as site2:
            rc, stdout, err = crawl(
                capsys,
                "-c",
                "scalp_pack_scaler",
                "--base-url",
                site2.base_url,
                "--out",
                str(out),
                "--resume",
            )
        assert rc == 0, (name, err)
        [part] = partitions(out)
        assert part.parent.name == f"crawl_id={m['crawl_id']}"
        assert comparable(read_records(part)) == expected


def test_challenge_stops_cleanly_then_resume_completes(
    small_site, small_products, tmp_path, capsys
):
    out = tmp_path / "data"
    with serve(small_site, Faults(challenge_after=41)) as site:
        rc, stdout, err = crawl(
            capsys,
            "-c",
            CATS,
            "--base-url",
            site.base_url,
            "--out",
            str(out),
            "--browser",
            "never",
        )
    assert rc == 5
    challenged = [r for r in site.log if r["status"] == 403]
    assert len(challenged) == 1  # one request at a time: nothing more after the challenge
    c = challenged[0]
    assert c["kind"] in ("notice", "stats")  # every listing page came first
    assert site.count("listing") == 3
    assert err.splitlines()[-1].startswith(f"error: crawl stopped: {site.base_url}{c['path']}")
    assert "answered with a bot challenge page; deeproot never tries to get past it." in err
    assert partitions(out) == []
    [manifest] = (out / "crawls").glob("*.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "stopped" and m["stop"]["reason"] == "challenge"
    done = read_checkpoint(out / "crawls" / f"{m['crawl_id']}.records.jsonl")
    assert 0 < len(done) < 112
    with serve(small_site) as site2:
        rc, stdout, err = crawl(
            capsys, "-c", CATS, "--base-url", site2.base_url, "--out", str(out), "--resume"
        )
    assert rc == 0, err
    [part] = partitions(out)
    assert part.parent.name == f"crawl_id={m['crawl_id']}"
    assert comparable(read_records(part)) == expected_records(small_products, cats=SMALL_CATS)
    assert f"resumed: {len(done)} products were already in the checkpoint" in stdout
    done_goods = {r["goods_no"] for r in done}
    need = {g for (g, _) in expected_records(small_products) if g not in done_goods}
    assert site2.count("notice") == len(need)


def test_robots_txt_first(small_products, tmp_path, tmp_path_factory, capsys):
    products = _tiny(small_products, 3)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-robots"))
    out = tmp_path / "data"
    robots = (
        "User-agent: deeproot\nDisallow: /store/display/\nAllow: /store/display/x\n\n"
        "User-agent: *\nAllow: /\n"
    )
    args = ("-c", "scalp_pack_scaler", "--out", str(out))
    with serve(site_dir, Faults(robots_txt=robots)) as site:
        rc, stdout, err = crawl(capsys, *args, "--base-url", site.base_url, "--check")
        assert rc == 5
        lines = stdout.splitlines()
        assert lines[0] == f"{site.base_url}/robots.txt: HTTP 200, group `User-agent: deeproot`"
        assert lines[1].split()[:3] == ["scalp_pack_scaler", "listing", "DISALLOWED"]
        assert lines[1].endswith("line 2: Disallow: /store/display/ (group `User-agent: deeproot`)")
        assert lines[2].split()[:3] == ["*", "notice", "allowed"]
        assert [r["kind"] for r in site.log] == ["robots"]
        rc, stdout, err = crawl(capsys, *args, "--base-url", site.base_url)
        # stopped before its first listing request, with the reason and the way forward
        assert [r["kind"] for r in site.log] == ["robots", "robots"]
        assert rc == 5
        assert err.splitlines()[-1] == (
            f"error: crawl stopped before its first listing request: robots.txt disallows "
            f"{site.base_url}/store/display/getMCategoryList.do?dispCatNo=1000001000400070003"
            "&fltDispCatNo=&prdSort=01&pageIdx=1&rowsPerPage=48&searchTypeSort=btn_thumb "
            "(line 2: Disallow: /store/display/ (group `User-agent: deeproot`)). Crawl only "
            "with the site owner's permission (--ignore-robots), or import a licensed feed "
            "with deeproot catalog import"
        )
        assert partitions(out) == []
        rc, stdout, err = crawl(capsys, *args, "--base-url", site.base_url, "--ignore-robots")
    assert rc == 0, err
    assert err.startswith("WARNING: --ignore-robots: robots.txt will NOT be obeyed.")
    assert len(read_records(partitions(out)[0])) == 3
    # RFC 9309: a robots.txt that answers 5xx or does not answer means "disallow everything"
    for faults, why in (
        (Faults(robots_status=500), "answered HTTP 500"),
        (Faults(robots_delay=2.5), "did not answer within 1 s"),
    ):
        with serve(site_dir, faults) as site:
            rc, _, err = crawl(capsys, *args, "--base-url", site.base_url, "--timeout", "1")
            assert rc == 5
            assert f"robots.txt {why}: everything is disallowed" in err
            assert site.count("listing") == 0


def test_crawl_delay_is_honoured(small_products, tmp_path, tmp_path_factory, capsys):
    products = _tiny(small_products, 3)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-delay"))
    robots = "User-agent: *\nCrawl-delay: 0.4\nAllow: /\n"
    with serve(site_dir, Faults(robots_txt=robots)) as site:
        rc, _, err = crawl(
            capsys,
            "-c",
            "scalp_pack_scaler",
            "--base-url",
            site.base_url,
            "--out",
            str(tmp_path / "d"),
        )
    assert rc == 0, err
    assert "robots.txt asks for a crawl-delay of 0.4 s: the delay is now 0.4 s" in err
    times = [r["t"] for r in site.log if r["kind"] != "robots"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 3 and min(gaps) >= 0.4 - 0.06


def test_losses_fail_the_gates_per_category(small_products, tmp_path, tmp_path_factory, capsys):
    """A third of the notices redirecting offsite: counted as lost in their category, exit 4."""
    products = _tiny(small_products, 12)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-offsite"))
    rules = tuple(Fault("offsite", NOTICE, goods_no=p.goods_no, times=None) for p in products[::3])
    out = tmp_path / "data"
    with serve(site_dir, Faults(rules=rules)) as site:
        rc, stdout, err = crawl(
            capsys, "-c", "scalp_pack_scaler", "--base-url", site.base_url, "--out", str(out)
        )
    assert rc == 4, err
    assert err.splitlines()[-1] == (
        "error: quality gates failed: category scalp_pack_scaler: 4 of 12 listed products were "
        "not stored (limit 5%). Nothing was published; rerun with --resume to retry what failed"
    )
    assert partitions(out) == []
    [row] = [ln.split() for ln in stdout.splitlines() if ln.startswith("scalp_pack_scaler")]
    assert row[:7] + row[8:] == ["scalp_pack_scaler", "12", "8", "8", "0", "0", "0", "4"]
    m = json.loads(next((out / "crawls").glob("*.json")).read_text())
    assert m["status"] == "gate_failed" and m["lost"] == 4 and m["exit_code"] == 4


def test_response_size_is_capped_decompressed_too(small_products, tmp_path, tmp_path_factory):
    """1 MB of gzip that inflates to 1 GiB is refused without using the memory."""
    import subprocess
    import sys

    products = _tiny(small_products, 3)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-bomb"))
    bomb = products[1].goods_no
    # the crawl runs in a fresh process whose only child is the crawl worker, so the peak RSS
    # of its children is the worker's (pytest's own children include other tests' workers)
    code = (
        "import resource, sys\n"
        "from deeproot.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(f'PEAK_KIB {peak}', file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    with serve(site_dir, Faults(rules=(Fault("bomb", NOTICE, goods_no=bomb, times=None),))) as site:
        proc = subprocess.run(
            [sys.executable, "-c", code, "crawl", "--delay", "0", "--backoff", "0.05",
             "-c", "scalp_pack_scaler", "--base-url", site.base_url,
             "--out", str(tmp_path / "d"), "--max-lost", "0.5"],
            capture_output=True, text=True, timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert any(
        line.startswith(f"  - notice {bomb}: ") and "DOWNLOAD_MAXSIZE" in line
        for line in proc.stdout.splitlines()
    )
    [peak_line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KIB ")]
    peak_mib = int(peak_line.split()[1]) / 1024
    assert peak_mib < 700, f"a crawl worker peaked at {peak_mib:.0f} MiB"


def test_unreachable_site_is_a_stop_not_a_gate(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = ("-c", "scalp_pack_scaler", "--base-url", url, "--out", str(tmp_path / "d"))
    rc, _, err = crawl(capsys, *args, "--timeout", "2")
    assert rc == 5
    assert err.splitlines()[-1].startswith(
        f"error: crawl stopped: the site cannot be reached ({url}/robots.txt (cannot be reached"
    )
    rc, _, err = crawl(capsys, *args, "--timeout", "2", "--ignore-robots", "--retries", "0")
    assert rc == 5
    assert "error: crawl stopped: the site cannot be reached (" in err
    assert "quality gates" not in err


def _crawl_argv(base_url: str, out: Path, *extra: str) -> list[str]:
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
        *extra,
    ]


def _wait_for_records(out: Path, n: int) -> Path | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((out / "crawls").glob("*.records.jsonl")) if out.exists() else []
        if found and len(read_checkpoint(found[0])) >= n:
            return found[0]
        time.sleep(0.02)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_killed_midway_then_resume_equals_uninterrupted(
    small_site, small_products, tmp_path, capsys
):
    """SIGKILL of `deeproot crawl`: the worker dies with it; --resume equals a full crawl."""
    out = tmp_path / "data"
    env = dict(os.environ, COLUMNS="200")
    with serve(small_site, Faults(latency=0.01)) as site:
        proc = subprocess.Popen(
            _crawl_argv(site.base_url, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        ckpt = _wait_for_records(out, 30)
        worker = json.loads(next((out / "crawls").glob("*.json")).read_text())["worker_pid"]
        proc.kill()  # the parent only: the worker must notice and stop
        proc.wait()
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the crawl worker outlived its killed parent"
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
    assert comparable(read_records(part)) == expected_records(small_products, cats=SMALL_CATS)
    assert site2.count("notice") < 104


def test_sigterm_takes_the_worker_down_and_records_interrupted(small_site, tmp_path):
    out = tmp_path / "data"
    with serve(small_site, Faults(latency=0.01)) as site:
        proc = subprocess.Popen(
            _crawl_argv(site.base_url, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert _wait_for_records(out, 10) is not None
        worker = json.loads(next((out / "crawls").glob("*.json")).read_text())["worker_pid"]
        proc.send_signal(signal.SIGTERM)  # what timeout, kill, systemd and containers send
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert not _alive(worker)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert err.splitlines()[-1] == (
        f"error: crawl interrupted; its records so far are kept: finish it with "
        f"deeproot crawl --resume --out {out}"
    )
    [manifest] = (out / "crawls").glob("*.json")
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert partitions(out) == []


def test_ctrl_c_marks_interrupted_and_says_how_to_resume(small_site, tmp_path):
    out = tmp_path / "data"
    with serve(small_site, Faults(latency=0.01)) as site:
        proc = subprocess.Popen(
            _crawl_argv(site.base_url, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert _wait_for_records(out, 10) is not None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == (
        f"error: crawl interrupted; its records so far are kept: finish it with "
        f"deeproot crawl --resume --out {out}"
    )
    [manifest] = (out / "crawls").glob("*.json")
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert partitions(out) == []  # (resume after a kill: test_killed_midway_then_resume...)


def test_store_lock_and_resume_id_validation(small_products, tmp_path, tmp_path_factory, capsys):
    from deeproot.lock import StoreLock

    products = _tiny(small_products, 3)
    site_dir = build_site(products, tmp_path_factory.mktemp("site-lock"))
    out = tmp_path / "data"
    with serve(site_dir) as site:
        args = ("-c", "scalp_pack_scaler", "--base-url", site.base_url, "--out", str(out))
        with StoreLock(out, "catalog build"):
            rc, _, err = crawl(capsys, *args, "--wait", "0.3")
            assert rc == 6
            assert "is locked by pid" in err and "catalog build" in err
            assert site.log == []  # nothing was fetched
        # a manifest whose crawl id is a path is never trusted
        crawls = out / "crawls"
        crawls.mkdir(parents=True, exist_ok=True)
        (crawls / "20261126T000000Z-abcd.json").write_text(
            json.dumps({"crawl_id": "../../escape", "status": "interrupted", "pid": 1})
        )
        rc, _, err = crawl(capsys, *args, "--resume")
        assert rc == 3
        assert err == (
            f"error: nothing to resume in {out}: no unfinished crawl (1 manifest(s) with an "
            "invalid crawl id were ignored); run without --resume\n"
        )
        assert not (tmp_path / "escape").exists()
        rc, _, err = crawl(capsys, *args)
    assert rc == 0, err
    assert not (tmp_path / "escape").exists() and not (out.parent / "escape").exists()


def test_incremental_refetches_only_changed_and_rechecks_old_notices(
    small_site, small_products, tmp_path, tmp_path_factory, capsys
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "data"
    with serve(small_site) as site:
        assert crawl(capsys, "-c", CATS, "--base-url", site.base_url, "--out", str(out))[0] == 0
        full_requests = len(site.log)
    [base_part] = partitions(out)
    base_id = base_part.parent.name.removeprefix("crawl_id=")
    # age the ingredient text of 5 goods by 20 days (as if read three weeks ago)
    table = pq.read_table(base_part)
    rows = table.to_pylist()
    old = sorted({r["goods_no"] for r in rows})[1:6]
    for r in rows:
        if r["goods_no"] in old:
            r["ingredients_at"] = r["ingredients_at"] - __import__("datetime").timedelta(days=20)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), base_part)
    base = {(r["goods_no"], r["category"]): r for r in rows}
    v2, changed = with_changes(small_products, every=20)
    assert len(changed) == 6 and not changed & set(old)
    # one of the aged products was reformulated: only a re-read of its notice can see it
    reform = old[0]
    v2 = [
        replace(p, ingredients_text=(p.ingredients_text or "") + ", 비오틴")
        if p.goods_no == reform
        else p
        for p in v2
    ]
    site2_dir = build_site(v2, tmp_path_factory.mktemp("site-v2"))
    with serve(site2_dir) as site2:
        rc, stdout, err = crawl(
            capsys,
            "-c",
            CATS,
            "--base-url",
            site2.base_url,
            "--out",
            str(out),
            "--incremental",
            "--recheck-days",
            "14",
        )
    assert rc == 0, err
    new_part = [p for p in partitions(out) if p != base_part][0]
    got = comparable(read_records(new_part))
    expected = expected_records(v2, cats=SMALL_CATS)
    for key, rec in expected.items():
        if key[0] not in changed and key[0] not in old:
            expected[key] = rec | {"carried": True, "carried_from": base_id}
    assert got == expected
    assert "비오틴" in got[next(k for k in got if k[0] == reform)]["ingredients_text"]
    stored = {(r["goods_no"], r["category"]): r for r in read_records(new_part)}
    for key, r in got.items():
        if r["carried"]:
            assert stored[key]["crawled_at"] == base[key]["crawled_at"]
        if key[0] in old:  # re-read just now
            assert stored[key]["ingredients_at"] > base[key]["ingredients_at"]
    n_changed = sum(1 for k in expected if k[0] in changed)
    n_old = sum(1 for k in expected if k[0] in old)
    assert site2.count("notice") == len(changed) + len(old)
    assert site2.count("detail") == 0
    assert len(site2.log) <= 0.15 * full_requests
    total = [line for line in stdout.splitlines() if line.startswith("total")][0]
    # re-read products keep their listing: "unchanged", neither changed nor carried
    assert total.split()[1:5] == ["112", "0", str(n_changed), str(112 - n_changed - n_old)]
    recheck_line = f"ingredient re-checks: {n_old} products, {len(old)} requests"
    assert recheck_line in stdout.splitlines()


def test_quality_gate_too_many_without_ingredients(
    small_products, tmp_path, tmp_path_factory, capsys
):
    subset = _tiny(small_products, 15)
    goods = sorted({p.goods_no for p in subset})
    strip = set(goods[::3])
    products = [replace(p, ingredients_text=None) if p.goods_no in strip else p for p in subset]
    share = sum(1 for r in expected_records(products).values() if not r["has_ingredients"]) / 15
    site_dir = build_site(products, tmp_path_factory.mktemp("site-noingr"))
    out = tmp_path / "data"
    with serve(site_dir) as site:
        rc, stdout, err = crawl(
            capsys, "-c", "scalp_pack_scaler", "--base-url", site.base_url, "--out", str(out)
        )
    assert rc == 4
    assert err.splitlines()[-1] == (
        f"error: quality gates failed: {share:.1%} of products have no ingredients (limit 20%). "
        "Nothing was published; rerun with --resume to retry what failed"
    )
    assert partitions(out) == []
    [manifest] = (out / "crawls").glob("*.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "gate_failed" and m["records"] == 15
    assert len(read_checkpoint(out / "crawls" / f"{m['crawl_id']}.records.jsonl")) == 15


def test_library_run_reports_progress_and_stops_on_long_retry_after(
    small_products, tmp_path, tmp_path_factory
):
    from deeproot.crawler import make_settings, run_crawl
    from deeproot.errors import StoppedBySiteError

    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:4]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-4"))
    # product requests run last-listed first (Scrapy's LIFO queue), one at a time
    first, second = products[3].goods_no, products[0].goods_no
    faults = Faults(
        rules=(
            Fault("429", NOTICE, goods_no=first, times=1, retry_after=0),
            Fault("429", NOTICE, goods_no=second, times=None, retry_after=1000),
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
    assert isinstance(report.error(), StoppedBySiteError) and report.exit_code == 5
    kinds = [e["event"] for e in events]
    assert kinds[0] == "listing" and events[0]["total"] == 4
    assert kinds[1] == "planned" and events[1]["products"] == 4
    assert {
        "event": "retry",
        "url": f"{site.base_url}/store/goods/getGoodsArtcAjax.do",
        "reason": "HTTP 429",
        "wait": 0.0,
    } in events
    assert sum(1 for r in site.log if r["goods_no"] == second and r["kind"] == "notice") == 1
