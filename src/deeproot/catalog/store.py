"""The crawler's Parquet store as the catalog sees it: crawls, their files, and which are complete.

Layout (deeproot.crawler.storage): `<store>/products/crawl_id=<id>/part-*.parquet` plus a `_SUCCESS`
marker, one partition per crawl, and the run manifest `<store>/crawls/<id>.json`. Only a crawl
whose manifest says `"status": "complete"` and whose partition has the marker is read; partial,
failed or manifest-less partitions are reported and left alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from deeproot.errors import InputError

SUCCESS_MARKER = "_SUCCESS"
COMPLETE_STATUSES = frozenset({"complete", "completed", "done", "ok", "success", "succeeded"})


@dataclass(frozen=True)
class StoreCrawl:
    """One crawl partition of the store."""

    crawl_id: str
    directory: Path
    files: tuple[Path, ...]
    manifest: Path | None
    complete: bool
    reason: str  # why it is not complete ("" when complete)

    def fingerprint(self) -> str:
        """Changes whenever a file of the partition is added, removed or rewritten."""
        h = hashlib.sha256()
        for f in self.files:
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


def _manifest_candidates(store: Path, crawl_dir: Path, crawl_id: str) -> list[Path]:
    return [
        store / "crawls" / f"{crawl_id}.json",  # the crawler's own place
        crawl_dir / "_manifest.json",
        crawl_dir / "manifest.json",
        store / "manifests" / f"{crawl_id}.json",
        store / "runs" / f"{crawl_id}.json",
        store / "runs" / crawl_id / "manifest.json",
        store / "crawls" / crawl_id / "manifest.json",
    ]


def manifest_complete(data: object) -> tuple[bool, str]:
    """Whether a manifest's content marks its crawl complete, and if not, why."""
    if not isinstance(data, dict):
        return False, "manifest is not a JSON object"
    if data.get("complete") is True or data.get("completed") is True:
        return True, ""
    status = str(data.get("status") or data.get("state") or "").strip().lower()
    if status in COMPLETE_STATUSES:
        return True, ""
    return False, f"manifest status is {status or 'missing'!r}, not complete"


def discover(store: str | Path) -> list[StoreCrawl]:
    """Every crawl partition under `<store>/products` (or `store` itself when it is that folder)."""
    root = Path(store)
    if not root.is_dir():
        raise InputError(f"no crawl store at {root}; run `deeproot crawl --out {root}` first")
    products = root / "products" if (root / "products").is_dir() else root
    if products == root and not any(root.glob("crawl_id=*")):
        raise InputError(
            f"no crawl store at {root} (no products/ folder); run `deeproot crawl --out {root}` "
            "first"
        )
    base = products.parent if products.name == "products" else root
    crawls = []
    for d in sorted(products.glob("crawl_id=*")):
        if not d.is_dir():
            continue
        crawl_id = d.name.split("=", 1)[1]
        files = tuple(sorted(f for f in d.rglob("*.parquet") if not f.name.startswith((".", "_"))))
        manifest = next((m for m in _manifest_candidates(base, d, crawl_id) if m.is_file()), None)
        if manifest is None:
            complete, reason = False, "no manifest (crawl running or interrupted)"
        else:
            try:
                complete, reason = manifest_complete(json.loads(manifest.read_text("utf-8")))
            except (OSError, ValueError) as exc:
                complete, reason = False, f"unreadable manifest {manifest.name}: {exc}"
        if complete and not (d / SUCCESS_MARKER).exists():
            complete, reason = False, f"no {SUCCESS_MARKER} marker in its partition"
        if complete and not files:
            complete, reason = False, "no Parquet files"
        crawls.append(StoreCrawl(crawl_id, d, files, manifest, complete, reason))
    return crawls
