"""Crawl output on disk: the Parquet schema, per-crawl partitions, manifests and checkpoints.

Layout under the output folder `DIR`:

    DIR/products/crawl_id=<id>/part-0.parquet   complete crawls only (renamed into place)
    DIR/products/crawl_id=<id>/_SUCCESS         completion marker
    DIR/crawls/<id>.json                        manifest; "status": "complete" only once published
    DIR/crawls/<id>.records.jsonl               checkpoint of a running/interrupted crawl

A partition appears under `products/` by one directory rename after its file and marker are
complete, so a reader globbing `products/crawl_id=*/*.parquet` never sees a partial crawl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# (name, pyarrow type (`timestamp`: microseconds, UTC), nullable). The schema itself is built on
# first use (PRODUCT_SCHEMA, a module attribute made by __getattr__) so the crawl worker, which
# never writes Parquet, does not import pyarrow (and numpy) at start-up. The last four are
# additions (2026-12, issue 14/13): nullable, so products/1 readers keep working and older
# partitions read as NULL.
_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("crawl_id", "string", False),
    ("crawled_at", "timestamp", False),
    ("goods_no", "string", False),
    ("category", "string", False),
    ("disp_cat_no", "string", False),
    ("brand", "string", True),
    ("name", "string", True),
    ("price_sale", "int32", True),
    ("price_list", "int32", True),
    ("currency", "string", False),
    ("rating", "float64", True),
    ("review_count", "int32", True),
    ("image_url", "string", True),
    ("product_url", "string", False),
    ("ingredients_text", "string", True),
    ("has_ingredients", "bool_", False),
    ("listing_rank", "int32", False),
    ("carried", "bool_", False),
    ("carried_from", "string", True),
    ("source_layout", "string", False),
    ("listing_hash", "string", False),
    ("sold_out", "bool_", True),
    ("functional_claim", "string", True),
    ("review_source", "string", True),
    ("ingredients_at", "timestamp", True),
)
COLUMNS = tuple(f[0] for f in _FIELDS)
_SCHEMA: list[pa.Schema] = []


def _product_schema() -> pa.Schema:
    if not _SCHEMA:
        import pyarrow as pa

        def typ(name: str) -> pa.DataType:
            return pa.timestamp("us", tz="UTC") if name == "timestamp" else getattr(pa, name)()

        _SCHEMA.append(
            pa.schema(
                [pa.field(n, typ(t), nullable=nb) for n, t, nb in _FIELDS],
                metadata={"deeproot.schema": "products/1"},
            )
        )
    return _SCHEMA[0]


def __getattr__(name: str) -> Any:
    if name == "PRODUCT_SCHEMA":
        return _product_schema()
    raise AttributeError(name)


SUCCESS_MARKER = "_SUCCESS"


CRAWL_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")


def valid_crawl_id(crawl_id: object) -> bool:
    """True for ids `new_crawl_id` makes (`20261126T140512Z-3f9a`): never a path."""
    return isinstance(crawl_id, str) and CRAWL_ID_RE.fullmatch(crawl_id) is not None


def _checked(crawl_id: str) -> str:
    if not valid_crawl_id(crawl_id):
        from deeproot.errors import DataError

        raise DataError(
            f"invalid crawl id {str(crawl_id)[:80]!r} (expected like 20261126T140512Z-3f9a); "
            "the manifest was edited or damaged"
        )
    return crawl_id


def products_dir(out: Path) -> Path:
    return out / "products"


def crawls_dir(out: Path) -> Path:
    return out / "crawls"


def partition_dir(out: Path, crawl_id: str) -> Path:
    return products_dir(out) / f"crawl_id={_checked(crawl_id)}"


def manifest_path(out: Path, crawl_id: str) -> Path:
    return crawls_dir(out) / f"{_checked(crawl_id)}.json"


def checkpoint_path(out: Path, crawl_id: str) -> Path:
    return crawls_dir(out) / f"{_checked(crawl_id)}.records.jsonl"


def new_crawl_id(now: datetime | None = None) -> str:
    """Sortable, path-safe: `20261126T140512Z-3f9a`. The suffix is the fraction of the second
    (in 16 µs steps, 4 hex digits), so two crawls started in the same second still sort in the
    order they started (readers take the last id as the newest crawl)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + f"-{now.microsecond // 16:04x}"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def manifests(out: Path) -> list[dict[str, Any]]:
    """Every readable manifest with a valid id matching its file name, oldest first.

    A manifest whose `crawl_id` is not an id we make (e.g. `../../x`) is ignored: ids become
    paths, and a crafted one must never point outside the store.
    """
    d = crawls_dir(out)
    if not d.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for p in sorted(d.glob("*.json")):
        m = read_manifest(p)
        if not m or not isinstance(m, dict):
            continue
        cid = m.get("crawl_id")
        if not valid_crawl_id(cid) or p.name != f"{cid}.json":
            continue
        found.append(m)
    return found


def invalid_manifests(out: Path) -> list[Path]:
    """Manifest files whose crawl id is not valid (reported, never used)."""
    d = crawls_dir(out)
    if not d.is_dir():
        return []
    bad = []
    for p in sorted(d.glob("*.json")):
        m = read_manifest(p)
        cid = m.get("crawl_id") if isinstance(m, dict) else None
        if not valid_crawl_id(cid) or p.name != f"{cid}.json":
            bad.append(p)
    return bad


def is_complete(out: Path, crawl_id: str) -> bool:
    """A crawl is complete when its partition has the marker and its manifest says so."""
    m = read_manifest(manifest_path(out, crawl_id))
    return bool(
        m
        and m.get("status") == "complete"
        and (partition_dir(out, crawl_id) / SUCCESS_MARKER).exists()
    )


def latest_complete(out: Path) -> str | None:
    done = [m["crawl_id"] for m in manifests(out) if is_complete(out, m["crawl_id"])]
    return done[-1] if done else None


def latest_unfinished(out: Path) -> dict[str, Any] | None:
    """The newest crawl that never completed and is newer than the last complete crawl."""
    found = manifests(out)
    left: list[dict[str, Any]] = []
    for m in found:
        if is_complete(out, m["crawl_id"]):
            left = []  # an unfinished crawl older than a complete one is stale
        elif m.get("status") != "complete":
            left.append(m)
    return left[-1] if left else None


def still_running(m: dict[str, Any]) -> bool:
    """True when the manifest says running and its process is alive on this machine."""
    pid = m.get("pid")
    if m.get("status") != "running" or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_checkpoint(path: Path) -> list[dict[str, Any]]:
    """Records of a checkpoint; a torn last line (process killed mid-write) is ignored."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    # bytes, decoded line by line: a process killed mid-write can leave a torn multi-byte
    # character (Korean text) at the end, which a text-mode reader raises on
    with path.open("rb") as fh:
        for line in fh:
            try:
                out.append(json.loads(line.decode("utf-8")))
            except ValueError:  # UnicodeDecodeError is a ValueError too
                continue
    return out


def read_partition(out: Path, crawl_id: str) -> list[dict[str, Any]]:
    """A partition's records; columns an older crawl lacks read as None."""
    import pyarrow.parquet as pq

    table = pq.read_table(partition_dir(out, crawl_id) / "part-0.parquet")
    rows = table.to_pylist()
    for r in rows:
        for c in COLUMNS:
            r.setdefault(c, None)
    return rows


def _ts(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(v))


def to_table(records: Iterable[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    rows = []
    for r in records:
        row = {c: r.get(c) for c in COLUMNS}
        row["crawled_at"] = _ts(row["crawled_at"])
        if row["ingredients_at"] is not None:
            row["ingredients_at"] = _ts(row["ingredients_at"])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=_product_schema())


def publish(out: Path, crawl_id: str, records: list[dict[str, Any]]) -> Path:
    """Write the crawl's Parquet file, then rename its folder into `products/` and mark it."""
    import pyarrow.parquet as pq

    final = partition_dir(out, crawl_id)
    _checked(crawl_id)
    if final.exists():
        raise FileExistsError(f"partition {final} already exists")
    tmp = crawls_dir(out) / f".{crawl_id}.partition.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    pq.write_table(to_table(records), tmp / "part-0.parquet", compression="zstd")
    (tmp / SUCCESS_MARKER).write_text(crawl_id + "\n", encoding="utf-8")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)  # the one step that makes the crawl visible
    return final / "part-0.parquet"


def remove_crawl(out: Path, crawl_id: str) -> None:
    """Remove a crawl: its partition disappears first (one rename), then manifest and checkpoint."""
    part = partition_dir(out, crawl_id)
    if part.exists():
        trash = crawls_dir(out) / f".{crawl_id}.removing"
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(part, trash)
        shutil.rmtree(trash)
    manifest_path(out, crawl_id).unlink(missing_ok=True)
    checkpoint_path(out, crawl_id).unlink(missing_ok=True)
