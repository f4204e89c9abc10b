"""`run_crawl`: one crawl from settings to a published partition, a manifest and a report.

The Scrapy crawl itself runs in a worker process (`_worker.py`), so `run_crawl` can be called any
number of times in one Python process. This module owns resume, incremental bookkeeping, quality
gates and publishing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deeproot.crawler import storage
from deeproot.crawler.settings import CrawlSettings
from deeproot.errors import DeeprootError, InputError

log = logging.getLogger(__name__)
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CategorySummary:
    key: str
    products: int
    new: int
    changed: int
    carried: int
    missing_ingredients: int
    errors: int
    listed: int | None  # the total the listing announced


@dataclass(frozen=True)
class CrawlReport:
    """What a crawl did. `status`: complete, failed (quality gates), stopped, interrupted."""

    crawl_id: str
    status: str
    started_at: str
    finished_at: str
    duration_s: float
    records: int
    categories: tuple[CategorySummary, ...]
    new: int
    changed: int
    carried: int
    unchanged: int
    missing_ingredients: int
    deleted: tuple[dict[str, str], ...]
    errors: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    gate_failures: tuple[str, ...]
    stop: dict[str, str] | None
    requests: int
    retries: int
    robots_forbidden: int
    resumed: int
    previous_crawl_id: str | None
    partition: str | None
    manifest: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def problem(self) -> str | None:
        """One line saying why the crawl is not complete and what to do, or None."""
        if self.status == "stopped" and self.stop:
            if self.stop.get("reason") == "challenge":
                return (
                    f"crawl stopped: {self.stop.get('url')} answered with a bot challenge page; "
                    "deeproot never tries to get past it. Wait, then rerun with --resume"
                )
            return (
                f"crawl stopped: the site throttled us ({self.stop.get('message', '')}); "
                "rerun later with --resume"
            )
        if self.status == "failed":
            return "quality gates failed: " + "; ".join(self.gate_failures)
        return None

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _run_worker(job: dict[str, Any], progress: Progress | None) -> dict[str, Any] | None:
    """Run the crawl worker on `job`; relay its events; its final "done" event, or None."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deeproot.crawler._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job, ensure_ascii=False))
    proc.stdin.close()
    done: dict[str, Any] | None = None
    try:
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "done":
                done = ev
            elif progress is not None:
                progress(ev)
        proc.wait()
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Scrapy shuts down cleanly on the first SIGINT
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    return done if proc.returncode == 0 else None


def _prepare(s: CrawlSettings) -> tuple[str, dict[str, Any] | None]:
    old = storage.latest_unfinished(s.out) if s.resume else None
    if s.resume and old is None:
        raise InputError(f"nothing to resume in {s.out}: no unfinished crawl; run without --resume")
    if old is not None and storage.still_running(old):
        raise InputError(
            f"crawl {old['crawl_id']} is still running (pid {old['pid']}); wait for it to finish"
        )
    try:
        storage.crawls_dir(s.out).mkdir(parents=True, exist_ok=True)
        storage.products_dir(s.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot write to output folder {s.out}: {exc.strerror}; choose --out"
        ) from exc
    if old is not None:
        return old["crawl_id"], old
    return storage.new_crawl_id(), None


def run_crawl(settings: CrawlSettings, progress: Progress | None = None) -> CrawlReport:
    """Crawl the configured categories into a new partition under `settings.out`.

    Progress events (dicts with "event": listing, record, retry, error, deleted) go to `progress`.
    Returns the report; a crawl that failed its quality gates or stopped is reported, not raised.
    Raises DeeprootError when the worker dies (the crawl stays resumable).
    """
    s = settings
    crawl_id, old = _prepare(s)
    started = old["started_at"] if old else datetime.now(UTC).isoformat()
    prev_id = storage.latest_complete(s.out)
    mpath = storage.manifest_path(s.out, crawl_id)
    ckpt = storage.checkpoint_path(s.out, crawl_id)
    manifest: dict[str, Any] = {
        "crawl_id": crawl_id,
        "status": "running",
        "started_at": started,
        "pid": os.getpid(),
        "previous_crawl_id": prev_id,
        "settings": s.to_json(),
        "attempts": (old.get("attempts", 1) + 1) if old else 1,
    }
    storage.write_json_atomic(mpath, manifest)
    ckpt.touch()
    t0 = time.monotonic()
    job = {
        "settings": s.to_json(),
        "crawl_id": crawl_id,
        "checkpoint": str(ckpt),
        "prev_crawl_id": prev_id,
    }
    try:
        done = _run_worker(job, progress)
    except BaseException:
        storage.write_json_atomic(mpath, manifest | {"status": "interrupted"})
        raise
    if done is None:
        storage.write_json_atomic(mpath, manifest | {"status": "interrupted"})
        raise DeeprootError(
            f"crawl {crawl_id} ended abnormally (see messages above); rerun with --resume"
        )
    return _finish(s, crawl_id, manifest, done, prev_id, time.monotonic() - t0)


def _finish(
    s: CrawlSettings,
    crawl_id: str,
    manifest: dict[str, Any],
    done: dict[str, Any],
    prev_id: str | None,
    elapsed: float,
) -> CrawlReport:
    order = {c.key: i for i, c in enumerate(s.categories)}
    recs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in storage.read_checkpoint(storage.checkpoint_path(s.out, crawl_id)):
        recs.setdefault((r["goods_no"], r["category"]), r)
    records = sorted(recs.values(), key=lambda r: (order.get(r["category"], 99), r["listing_rank"]))
    for r in records:
        r["crawl_id"] = crawl_id
    prev_hash: dict[tuple[str, str], str] = {}
    if prev_id:
        for r in storage.read_partition(s.out, prev_id):
            prev_hash[(r["goods_no"], r["category"])] = r["listing_hash"]
    per: dict[str, dict[str, int]] = {
        c.key: dict.fromkeys(
            ("products", "new", "changed", "carried", "unchanged", "missing", "errors"), 0
        )
        for c in s.categories
    }
    for r in records:
        c = per.setdefault(r["category"], dict.fromkeys(per[s.categories[0].key], 0))
        key = (r["goods_no"], r["category"])
        c["products"] += 1
        c["missing"] += not r["has_ingredients"]
        if r["carried"]:
            c["carried"] += 1
        elif key not in prev_hash:
            c["new"] += 1
        elif prev_hash[key] != r["listing_hash"]:
            c["changed"] += 1
        else:
            c["unchanged"] += 1
    errors = done.get("errors", [])
    for e in errors:
        for cat in e.get("categories") or ([e["category"]] if e.get("category") else []):
            if cat in per:
                per[cat]["errors"] += 1
    missing = sum(c["missing"] for c in per.values())
    gates: list[str] = []
    stats = done.get("stats", {})
    robots = int(stats.get("robotstxt/forbidden", 0))
    if not records:
        why = f" ({robots} requests disallowed by robots.txt)" if robots else ""
        gates.append("no products were crawled" + why)
    elif missing / len(records) > s.max_missing_ingredients:
        gates.append(
            f"{missing / len(records):.1%} of products have no ingredients "
            f"(limit {s.max_missing_ingredients:.0%})"
        )
    stop = done.get("stop")
    status = "stopped" if stop else "failed" if gates else "complete"
    partition = None
    if status == "complete":
        partition = str(storage.publish(s.out, crawl_id, records))
    finished = datetime.now(UTC).isoformat()
    totals = done.get("totals", {})
    cats = tuple(
        CategorySummary(
            k,
            v["products"],
            v["new"],
            v["changed"],
            v["carried"],
            v["missing"],
            v["errors"],
            totals.get(k),
        )
        for k, v in per.items()
    )
    report = CrawlReport(
        crawl_id=crawl_id,
        status=status,
        started_at=manifest["started_at"],
        finished_at=finished,
        duration_s=round(elapsed, 3),
        records=len(records),
        categories=cats,
        new=sum(c.new for c in cats),
        changed=sum(c.changed for c in cats),
        carried=sum(c.carried for c in cats),
        unchanged=sum(v["unchanged"] for v in per.values()),
        missing_ingredients=missing,
        deleted=tuple(done.get("deleted", [])),
        errors=tuple(errors),
        warnings=tuple(done.get("warnings", [])),
        gate_failures=tuple(gates),
        stop=stop,
        requests=int(stats.get("downloader/request_count", 0)),
        retries=int(stats.get("retry/count", 0)),
        robots_forbidden=robots,
        resumed=int(done.get("resumed", 0)),
        previous_crawl_id=prev_id,
        partition=partition,
        manifest=str(storage.manifest_path(s.out, crawl_id)),
        settings=s.to_json(),
    )
    body = report.to_json()
    body.pop("settings")
    storage.write_json_atomic(
        storage.manifest_path(s.out, crawl_id),
        manifest | body | {"stats": stats, "problem": report.problem()},
    )
    if status == "complete":
        storage.checkpoint_path(s.out, crawl_id).unlink(missing_ok=True)
    return report
