"""`deeproot refresh` end to end on the offline site: reports, ranks, lock, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from refresh_helpers import CATS, PRICE, RATING, RECHECK, REFORM, SOLD_OUT, TEXT_ONLY

from deeproot.cli.main import main
from deeproot.crawler.testsite import Faults, serve
from deeproot.errors import EXIT_NOTHING_NEW, QualityGateError, RunInterrupted
from deeproot.refresh.refresh import lock_dir, refresh


def _cli(data: Path, base_url: str, *extra: str) -> list[str]:
    return [
        "refresh",
        "--data",
        str(data),
        "-c",
        CATS,
        "--base-url",
        base_url,
        "--delay",
        "0",
        "--backoff",
        "0.05",
        "--browser",
        "never",
        "--recheck-days",
        str(RECHECK),
        *extra,
    ]


def test_first_refresh_builds_and_reports(refreshed):
    data, first = refreshed.data, refreshed.first
    assert first.exit_code == 0
    rep = first.report
    assert rep["before"] is None and rep["summary"]["new"] == rep["after"]["products"]
    assert first.json_path == data / "reports" / f"{first.crawl_id}.json"
    assert json.loads(first.json_path.read_text()) == rep
    assert first.markdown_path.read_text() == first.markdown
    assert first.markdown.startswith(f"**deeproot changes** — crawl {first.crawl_id} (first crawl)")
    assert rep["refresh"]["crawl"]["incremental"] is False
    assert rep["refresh"]["build"]["added"] == [first.crawl_id]
    # no catalog before: every pick entered its list
    assert rep["changes"]["rank"] and all(e["before"] is None for e in rep["changes"]["rank"])


def test_second_refresh_reports_the_changes_and_ranks(refreshed, sites):
    first, second = refreshed.first, refreshed.second
    assert second.exit_code == 0
    rep = second.report
    assert rep["before"]["crawl_id"] == first.crawl_id
    assert rep["refresh"]["crawl"]["incremental"] is True
    ch = rep["changes"]
    assert [e["goods_no"] for e in ch["new"]] == [sites.new]
    assert [e["goods_no"] for e in ch["delisted"]] == [sites.delisted]
    assert [e["goods_no"] for e in ch["price"]] == [PRICE]
    assert [e["goods_no"] for e in ch["ratings"]] == [RATING]
    # the incremental crawl re-read every notice (all older than --recheck-days), so it saw
    # the reformulation that the listing card does not show
    assert [e["goods_no"] for e in ch["reformulated"]] == [REFORM]
    assert [e["goods_no"] for e in ch["text_changed"]] == [TEXT_ONLY]
    assert [e["goods_no"] for e in ch["sold_out"]] == [SOLD_OUT]
    crawl = rep["refresh"]["crawl"]
    assert crawl["recheck_days"] == RECHECK and crawl["recheck_requests"] > 0
    # the delisted product held a healthy-scalp pick in scalp_tonic: it left that list
    tonic = next(c for c in refreshed.healthy_before.categories if c.category == "scalp_tonic")
    before_pos = [p.goods_no for p in tonic.picks].index(sites.delisted) + 1
    assert {
        "type": "healthy",
        "category": "scalp_tonic",
        "goods_no": sites.delisted,
        "before": before_pos,
        "after": None,
    }.items() <= next(
        e
        for e in ch["rank"]
        if (e["type"], e["category"], e["goods_no"]) == ("healthy", "scalp_tonic", sites.delisted)
    ).items()
    md = second.markdown
    assert "### Recommendation rank changes" in md and "### Delisted (1)" in md


def test_overlapping_refreshes_and_nothing_new(refreshed, sites, capsys):
    """A second refresh started while one runs exits 6; the first finds nothing new (7)."""
    data = refreshed.data
    lock_file = lock_dir(data) / ".deeproot.lock"
    with serve(sites.v2) as site:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deeproot.cli.main", *_cli(data, site.base_url)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            holder = lock_file.read_text() if lock_file.exists() else ""
            if f'"pid": {proc.pid}' in holder:
                break
            time.sleep(0.05)
        else:
            proc.kill()
            pytest.fail("the first refresh never took the lock")
        capsys.readouterr()
        rc = main(_cli(data, site.base_url))
        out, err = capsys.readouterr()
        stdout, stderr = proc.communicate(timeout=120)
    assert rc == 6 and out == ""
    assert err.startswith(f"error: {lock_dir(data)} is locked by pid {proc.pid} ")
    assert proc.returncode == EXIT_NOTHING_NEW, stderr
    assert "Nothing changed." in stdout
    assert "nothing new since the last crawl (exit 7)" in stderr


def test_stopped_crawl_keeps_catalog_and_stale_lock_is_taken_over(refreshed, sites, capsys):
    data = refreshed.data
    db = data / "catalog.duckdb"
    before = db.read_bytes()
    parts = sorted((data / "products").iterdir())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file = lock_dir(data) / ".deeproot.lock"
    lock_file.write_text(
        json.dumps(
            {"pid": dead.pid, "host": "h", "started": "2026-01-01", "command": "deeproot refresh"}
        )
    )
    with serve(sites.v2, Faults(challenge_after=2)) as site:
        capsys.readouterr()
        rc = main(_cli(data, site.base_url))
        out, err = capsys.readouterr()
    assert rc == 5, err
    assert out == ""
    assert f"taking over a stale lock on {lock_dir(data)} left by pid {dead.pid}" in err
    assert "challenge" in err and "the catalog is unchanged" in err
    assert db.read_bytes() == before
    assert sorted((data / "products").iterdir()) == parts
    assert lock_file.read_text() == ""  # released


class _Report:
    def __init__(self, status: str) -> None:
        self.status, self.crawl_id, self.records, self.requests = status, "x", 0, 0

    def problem(self) -> str:
        return "quality gates failed: 90.0% of products have no ingredients (limit 20%)"


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        ("failed", QualityGateError, 4),
        ("interrupted", RunInterrupted, 130),
    ],
)
def test_failed_or_interrupted_crawl_never_builds(tmp_path, monkeypatch, status, error, code):
    import deeproot.crawler.runner as runner

    monkeypatch.setattr(runner, "run_crawl", lambda s, progress=None: _Report(status))
    with pytest.raises(error) as exc:
        refresh(tmp_path, crawl_options={"categories": CATS, "base_url": "http://127.0.0.1:9"})
    assert exc.value.exit_code == code
    assert "catalog is unchanged" in str(exc.value)
    assert not (tmp_path / "catalog.duckdb").exists()


def test_ctrl_c_in_crawl_exits_130(tmp_path, monkeypatch, capsys):
    import deeproot.crawler.runner as runner

    def boom(s, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_crawl", boom)
    rc = main(["refresh", "--data", str(tmp_path), "-c", CATS, "--base-url", "http://127.0.0.1:9"])
    _, err = capsys.readouterr()
    assert rc == 130
    assert err.startswith("error: refresh interrupted during the crawl; the catalog is unchanged")
    assert not (tmp_path / "catalog.duckdb").exists()


def test_bad_recheck_days(tmp_path, capsys):
    rc = main(["refresh", "--data", str(tmp_path), "--recheck-days", "0"])
    _, err = capsys.readouterr()
    assert rc == 3 and err == "error: --recheck-days must be more than 0 days, not 0.0\n"
    assert not os.listdir(tmp_path)


def test_sigterm_during_the_crawl_exits_130_and_keeps_the_catalog(refreshed, sites, tmp_path):
    """What systemd, `timeout` and a container stop send: a clean stop, catalog untouched."""
    import shutil
    import signal

    data = tmp_path / "data"
    shutil.copytree(refreshed.data, data)
    db = (data / "catalog.duckdb").read_bytes()
    parts = sorted((data / "products").iterdir())
    with serve(sites.v2, Faults(latency=0.1)) as site:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deeproot.cli.main", *_cli(data, site.base_url)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and site.count() < 3:  # the worker is fetching
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1].startswith(
        "error: refresh interrupted during the crawl; the catalog is unchanged"
    )
    assert (data / "catalog.duckdb").read_bytes() == db
    assert sorted((data / "products").iterdir()) == parts
    assert (lock_dir(data) / ".deeproot.lock").read_text() == ""  # released on the way out
