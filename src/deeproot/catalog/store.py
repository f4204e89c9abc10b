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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    started_at: datetime | None = None  # from the manifest (UTC)

    def stat_signature(self) -> str:
        """File names, sizes and mtimes: equal means unchanged without reading a byte."""
        h = hashlib.sha256()
        for f in self.files:
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def fingerprint(self) -> str:
        """sha256 over the files' names and bytes: changes whenever a file is rewritten."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.name.encode() + b"\0")
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            h.update(b"\n")
        return h.hexdigest()[:32]


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
        started = None
        if manifest is None:
            complete, reason = False, "no manifest (crawl running or interrupted)"
        else:
            try:
                data = json.loads(manifest.read_text("utf-8"))
                complete, reason = manifest_complete(data)
                started = _started_at(data)
            except (OSError, ValueError) as exc:
                complete, reason = False, f"unreadable manifest {manifest.name}: {exc}"
        if complete and not (d / SUCCESS_MARKER).exists():
            complete, reason = False, f"no {SUCCESS_MARKER} marker in its partition"
        if complete and not files:
            complete, reason = False, "no Parquet files"
        crawls.append(StoreCrawl(crawl_id, d, files, manifest, complete, reason, started))
    return crawls


def _started_at(data: Any) -> datetime | None:
    raw = data.get("started_at") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# Arrow types a crawl column may have, by the catalog's DuckDB type. Anything else refuses the
# crawl with its reason: a wrong type is never read as NULLs.
def _accepts(duck_type: str, arrow_type: Any) -> bool:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_null(t):
        return True
    if pa.types.is_dictionary(t):
        t = t.value_type
    if duck_type == "VARCHAR":
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                    or pa.types.is_string_view(t))
    if duck_type in ("BIGINT", "INTEGER"):
        return bool(pa.types.is_integer(t))
    if duck_type == "DOUBLE":
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))
    if duck_type == "BOOLEAN":
        return bool(pa.types.is_boolean(t))
    if duck_type.startswith("TIMESTAMP"):
        return bool(pa.types.is_timestamp(t))
    return False


def check_schema(files: tuple[Path, ...], columns: tuple[tuple[str, str], ...],
                 required: tuple[str, ...]) -> str:
    """Why these Parquet files cannot be ingested ("" when they can): a required column missing,
    or a column whose type is not what the catalog stores (e.g. goods_no written as numbers)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    want = dict(columns)
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable Parquet: {f.name}: {str(exc).splitlines()[0] if str(exc) else exc}"
        missing = [c for c in required if c not in schema.names]
        if missing:
            return f"missing column(s) {', '.join(missing)}"
        for field in schema:
            typ = want.get(field.name)
            if typ is not None and not _accepts(typ, field.type):
                return (
                    f"column {field.name} has type {field.type} in {f.name}, expected "
                    f"{typ.lower()}; not ingested (a wrong type is never read as NULLs)"
                )
    return ""
