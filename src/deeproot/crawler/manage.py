"""Store housekeeping behind `deeproot crawl list|prune`, and the sample shop server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deeproot.crawler import storage
from deeproot.errors import InputError


def list_crawls(out: str | Path) -> list[dict[str, Any]]:
    """Every crawl in the store, oldest first: id, status, counts, requests, start and end.

    A manifest that says `running` whose process is gone is shown as `abandoned` (resumable).
    """
    root = Path(out)
    rows = []
    for m in storage.manifests(root):
        cid = m["crawl_id"]
        status = str(m.get("status") or "?")
        if status == "complete" and not storage.is_complete(root, cid):
            status = "complete?"  # manifest says so but the partition is gone
        elif status == "running" and not storage.still_running(m):
            status = "abandoned"
        rows.append(
            {
                "crawl_id": cid,
                "status": status,
                "records": m.get("records"),
                "requests": m.get("requests"),
                "requests_per_product": m.get("requests_per_product"),
                "lost": m.get("lost"),
                "started_at": m.get("started_at"),
                "finished_at": m.get("finished_at"),
                "partition": m.get("partition"),
            }
        )
    return rows


def prune_crawls(
    out: str | Path, *, keep: int, dry_run: bool = False, wait: float | None = None
) -> list[dict[str, Any]]:
    """Remove all but the newest `keep` complete crawls, and unfinished crawls older than the
    newest complete one (they can no longer be resumed). The newest complete crawl is never
    removed. Holds the store lock; returns what was (or, dry run, would be) removed."""
    from deeproot.lock import StoreLock

    if keep < 1:
        raise InputError("--keep must be at least 1: the newest complete crawl is always kept")
    root = Path(out)
    if not storage.crawls_dir(root).is_dir():
        raise InputError(f"{root} is not a crawl store (no crawls/ folder); check --out")

    def plan() -> list[dict[str, Any]]:
        found = storage.manifests(root)
        complete = [m["crawl_id"] for m in found if storage.is_complete(root, m["crawl_id"])]
        kept = set(complete[-keep:])
        newest = complete[-1] if complete else None
        gone = []
        for m in found:
            cid = m["crawl_id"]
            if cid in kept:
                continue
            if cid in complete:
                gone.append({"crawl_id": cid, "status": "complete"})
            elif newest is not None and cid < newest and not storage.still_running(m):
                gone.append({"crawl_id": cid, "status": str(m.get("status") or "?")})
        return gone

    if dry_run:
        return plan()
    with StoreLock(root, "deeproot crawl prune", wait=wait):
        gone = plan()
        for g in gone:
            storage.remove_crawl(root, g["crawl_id"])
    return gone


def serve_sample_site(
    *, port: int = 8000, layout: str = "2025", ready: Callable[[str, int], None] | None = None
) -> None:
    """Build the fictional sample shop in a scratch folder and serve it until KeyboardInterrupt."""
    from deeproot.crawler.testsite import build_site, serve
    from deeproot.demo import demo_products
    from deeproot.files import scratch_dir

    products = demo_products()
    with scratch_dir("sample-site") as tmp:
        site_dir = build_site(products, Path(tmp) / "site", layout=layout)
        try:
            server = serve(site_dir, port=port)
            site = server.__enter__()
        except OSError as exc:
            raise InputError(
                f"cannot serve on 127.0.0.1:{port}: {exc.strerror}; choose another --port"
            ) from exc
        try:
            if ready is not None:
                ready(site.base_url, len(products))
            while True:
                time.sleep(3600)
        finally:
            server.__exit__(None, None, None)
