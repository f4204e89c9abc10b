"""Index of the AI Hub scalp dataset: one row per unique image, built from the label JSONs.

Reads the release as delivered (`Training/`, `Validation/`, `[원천]…`/`[라벨]…` folders, possibly
nested one level deeper), de-duplicates the same image across symptom folders and splits, checks
that copies agree, and reports what it could not use (malformed JSON, values out of range, labels
without images). The index is Parquet (`INDEX_SCHEMA`) so analysts can query it in DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError
from deeproot.taxonomy import SYMPTOM_KEYS, SYMPTOMS

log = logging.getLogger(__name__)

SPLITS = ("Training", "Validation")
SYNTHETIC_MARKER = "deeproot-synthetic.json"  # written by deeproot.training.synthetic
_FOLDER = re.compile(r"^\[(원천|라벨)\](?:\d+\.)?(.+?)_([0-3])\.(.+)$")
_NAME = re.compile(r"^(\d{4})_([A-Z0-9]{15})_(\d{9,13})_(\d+)_(TH|LH|RH|BH)$")
META_KEYS = ("gender", "age", "location") + tuple(f"answers{i}" for i in range(1, 8))
# answers1..7 as readable column names (research note §1.5)
ANSWER_COLUMNS = (
    "shampoo_frequency",
    "perm",
    "dye",
    "hair_state",
    "products",
    "wants_custom_care",
    "purchase_criterion",
)
PROBLEM_KINDS = {
    "malformed_json": "label files that are not valid JSON",
    "bad_value": "label files with a missing or out-of-range value (not 0..3)",
    "missing_image": "labels whose image is not in any [원천] folder",
    "conflict": "images whose label copies disagree (left out)",
    "unlabelled_image": "images without a valid label",
    "bad_name": "images whose file name is not site_serial_time_shot_location",
    "bad_archive": "zip archives that could not be opened",
}


def index_schema() -> Any:
    """Explicit pyarrow schema of the index."""
    import pyarrow as pa

    fields = [
        pa.field("image_file_name", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        *[pa.field(k, pa.int8(), nullable=False) for k in SYMPTOM_KEYS],
        pa.field("visit_id", pa.string(), nullable=False),
        pa.field("site", pa.string()),
        pa.field("device", pa.string()),
        pa.field("captured_ms", pa.int64()),
        pa.field("shot", pa.int16()),
        pa.field("location", pa.string()),
        pa.field("split", pa.string(), nullable=False),  # Training, Validation or both
        pa.field("n_copies", pa.int16(), nullable=False),
        pa.field("gender", pa.string()),
        pa.field("age", pa.string()),
        *[pa.field(c, pa.string()) for c in ANSWER_COLUMNS],
    ]
    return pa.schema(fields)


@dataclass(frozen=True)
class IndexReport:
    """What `build_index` found.

    Attributes:
        root: dataset root.
        n_label_files: label JSON files read (META files excluded).
        n_image_files: image files found in [원천] folders (all copies).
        n_images: unique images indexed.
        n_duplicates: valid label copies collapsed into an already indexed image.
        n_overlap: indexed images present in both Training and Validation.
        n_visits: distinct visits (site_serial_time).
        class_counts: symptom -> [count of value 0, 1, 2, 3].
        problems: problem kind -> file names (see PROBLEM_KINDS).
        sha256: hash of the index rows (dataset identity in bundles).
        synthetic: the root was written by `deeproot.training.synthetic`.
    """

    root: str
    n_label_files: int
    n_image_files: int
    n_images: int
    n_duplicates: int
    n_overlap: int
    n_visits: int
    class_counts: dict[str, list[int]]
    problems: dict[str, list[str]] = field(default_factory=dict)
    sha256: str = ""
    synthetic: bool = False

    def majority_rate(self, symptom: str, merged: bool = True) -> float:
        """Share of the commonest class (3-class merge 0 / 1+2 / 3 when `merged`)."""
        c = self.class_counts[symptom]
        classes = [c[0], c[1] + c[2], c[3]] if merged else list(c)
        return max(classes) / max(1, sum(classes))

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "n_label_files": self.n_label_files,
            "n_image_files": self.n_image_files,
            "n_images": self.n_images,
            "n_duplicates": self.n_duplicates,
            "n_overlap": self.n_overlap,
            "n_visits": self.n_visits,
            "class_counts": self.class_counts,
            "majority_rate_3": {k: round(self.majority_rate(k), 4) for k in self.class_counts},
            "majority_rate_4": {
                k: round(self.majority_rate(k, False), 4) for k in self.class_counts
            },
            "problems": self.problems,
            "sha256": self.sha256,
            "synthetic": self.synthetic,
        }


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _symptom_index(name: str) -> int | None:
    for i, s in enumerate(SYMPTOMS):
        if name == s.ko:
            return i
    return None


def _split_of(parts: tuple[str, ...]) -> str | None:
    for p in reversed(parts):
        low = p.lower()
        if low in ("training", "train"):
            return "Training"
        if low in ("validation", "valid", "val"):
            return "Validation"
    return None


@dataclass(frozen=True)
class _Entry:
    """One file of the release: a real file or a zip member.

    `dir_parts` is the folder path relative to the root as the files would be laid out after
    extraction (a member `a/b.jpg` of `X/Y.zip` sits in `X/Y/a/`); `where` is what
    `sources.read_bytes` opens.
    """

    dir_parts: tuple[str, ...]
    name: str
    where: str


def _walk(root: Path) -> tuple[list[_Entry], int, list[str]]:
    """Every file under root, zip members included (read from the central directory, never
    extracted); also the number of zip archives and those that could not be opened."""
    from deeproot.training.sources import zip_members, zip_path

    entries: list[_Entry] = []
    zips = 0
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        d = Path(dirpath)
        rel = tuple(_nfc(p) for p in d.relative_to(root).parts)
        for f in sorted(filenames):
            if f.lower().endswith(".zip"):
                zips += 1
                archive = d / f
                try:
                    members = zip_members(archive)
                except DataError as exc:
                    log.warning("%s", exc)
                    bad.append(f)
                    continue
                base = rel + (_nfc(f[:-4]),)
                for m in sorted(members):
                    parts = tuple(_nfc(p) for p in m.split("/") if p)
                    if parts:
                        entries.append(_Entry(base + parts[:-1], parts[-1], zip_path(archive, m)))
            else:
                entries.append(_Entry(rel, _nfc(f), str(d / f)))
    return entries, zips, bad


def _scan(
    root: Path,
) -> tuple[
    list[tuple[_Entry, str]], dict[str, list[tuple[str, str]]], dict[tuple, str], int, list[str]
]:
    """Label entries (entry, split), image copies by file name (where, split), sidecar META
    files by (folder, name), the number of zip archives and the unreadable ones."""
    labels: list[tuple[_Entry, str]] = []
    images: dict[str, list[tuple[str, str]]] = {}
    metas: dict[tuple, str] = {}
    entries, zips, bad = _walk(root)
    for e in entries:
        if not e.dir_parts:
            continue
        m = _FOLDER.match(e.dir_parts[-1])
        if not m or _symptom_index(_nfc(m.group(2))) is None:
            continue
        split = _split_of(e.dir_parts[:-1]) or "Training"
        if m.group(1) == "라벨":
            if e.name.endswith("_META.json"):
                metas[(e.dir_parts, e.name)] = e.where
            elif e.name.endswith(".json"):
                labels.append((e, split))
        elif e.name.lower().endswith((".jpg", ".jpeg", ".png")):
            images.setdefault(e.name, []).append((e.where, split))
    return labels, images, metas, zips, bad


def _read_label(entry: _Entry, metas: dict[tuple, str]) -> tuple[dict[str, Any] | None, str | None]:
    """(label object, None) or (None, problem kind)."""
    from deeproot.training.sources import read_bytes

    try:
        obj = json.loads(read_bytes(entry.where).decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "malformed_json"
    if not isinstance(obj, dict):
        return None, "malformed_json"
    try:
        values = [int(str(obj[f"value_{k}"]).strip()) for k in range(1, 7)]
    except (KeyError, ValueError):
        return None, "bad_value"
    if any(v not in (0, 1, 2, 3) for v in values):
        return None, "bad_value"
    obj["_values"] = tuple(values)
    meta_where = metas.get((entry.dir_parts, entry.name[: -len(".json")] + "_META.json"))
    if not any(k in obj for k in META_KEYS) and meta_where:
        try:
            meta = json.loads(read_bytes(meta_where).decode("utf-8-sig"))
            if isinstance(meta, dict):
                obj.update({k: v for k, v in meta.items() if k not in obj})
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("unreadable metadata file %s", meta_where)
    return obj, None


def _row(name: str, obj: dict[str, Any], path: str, splits: set[str], n: int) -> dict[str, Any]:
    stem = name.rsplit(".", 1)[0]
    m = _NAME.match(stem)
    parts = stem.split("_")
    row: dict[str, Any] = {
        "image_file_name": name,
        "path": path,
        **dict(zip(SYMPTOM_KEYS, obj["_values"], strict=True)),
        "visit_id": "_".join(parts[:3]) if len(parts) >= 3 else stem,
        "site": m.group(1) if m else None,
        "device": m.group(2) if m else None,
        "captured_ms": int(m.group(3)) if m else None,
        "shot": int(m.group(4)) if m else None,
        "location": m.group(5) if m else (obj.get("location") or None),
        "split": "both" if len(splits) == 2 else next(iter(splits)),
        "n_copies": n,
        "gender": _str(obj.get("gender")),
        "age": _str(obj.get("age")),
    }
    for i, col in enumerate(ANSWER_COLUMNS, 1):
        row[col] = _str(obj.get(f"answers{i}"))
    return row


def _str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def build_index(
    root: str | Path, progress: Callable[[int, int], None] | None = None
) -> tuple[list[dict[str, Any]], IndexReport]:
    """Index a dataset root: rows (one per unique, validly labelled image with an image file)
    and a report. Raises InputError when the root has no label JSONs at all."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    label_files, images, metas, zips, bad_zips = _scan(root)
    if not label_files:
        hint = f" (read {zips} zip archives too)" if zips else ""
        if bad_zips:
            hint = f" ({len(bad_zips)} of {zips} zip archives could not be opened)"
        raise InputError(
            f"no label JSON files under {root}{hint}; expected Training/ and Validation/ "
            "with [라벨]<symptom>_<k>.<severity> folders (or zip archives of them)"
        )
    problems: dict[str, list[str]] = {"bad_archive": bad_zips} if bad_zips else {}
    seen: dict[str, dict[str, Any]] = {}
    seen_splits: dict[str, set[str]] = {}
    copies: Counter[str] = Counter()
    conflicts: set[str] = set()
    n_dup = 0
    for i, (path, split) in enumerate(label_files):
        obj, problem = _read_label(path, metas)
        if progress and (i % 500 == 0 or i + 1 == len(label_files)):
            progress(i + 1, len(label_files))
        if problem:
            problems.setdefault(problem, []).append(path.name)
            continue
        assert obj is not None
        name = _nfc(str(obj.get("image_file_name") or path.name[: -len(".json")] + ".jpg"))
        if name in seen:
            n_dup += 1
            if seen[name]["_values"] != obj["_values"]:
                conflicts.add(name)
        else:
            seen[name] = obj
        seen_splits.setdefault(name, set()).add(split)
        copies[name] += 1
    rows = []
    for name in sorted(seen):
        if name in conflicts:
            continue
        found = images.get(name)
        if not found:
            problems.setdefault("missing_image", []).append(name[:-4] + ".json")
            continue
        row = _row(name, seen[name], found[0][0], seen_splits[name], len(found))
        if row["site"] is None:
            problems.setdefault("bad_name", []).append(name)
        rows.append(row)
    if conflicts:
        problems["conflict"] = sorted(conflicts)
    unlabelled = sorted(n for n in images if n not in seen)
    if unlabelled:
        problems["unlabelled_image"] = unlabelled
    counts = {k: [0, 0, 0, 0] for k in SYMPTOM_KEYS}
    for r in rows:
        for k in SYMPTOM_KEYS:
            counts[k][r[k]] += 1
    report = IndexReport(
        root=str(root),
        n_label_files=len(label_files),
        n_image_files=sum(len(v) for v in images.values()),
        n_images=len(rows),
        n_duplicates=n_dup,
        n_overlap=sum(1 for r in rows if r["split"] == "both"),
        n_visits=len({r["visit_id"] for r in rows}),
        class_counts=counts,
        problems={k: sorted(v) for k, v in sorted(problems.items())},
        sha256=_rows_sha(rows),
        synthetic=(root / SYNTHETIC_MARKER).is_file(),
    )
    if not rows:
        raise DataError(f"no usable images under {root}: {_problem_line(report)}")
    return rows, report


def _rows_sha(rows: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update((r["image_file_name"] + "".join(str(r[k]) for k in SYMPTOM_KEYS)).encode())
    return h.hexdigest()


def _problem_line(report: IndexReport) -> str:
    if not report.problems:
        return "no problems"
    return "; ".join(f"{len(v)} {PROBLEM_KINDS[k]}" for k, v in report.problems.items())


def write_index(rows: list[dict[str, Any]], report: IndexReport, out: str | Path) -> Path:
    """Write the index Parquet (report kept in the file's metadata and beside it as JSON)."""
    out = write_index_rows(rows, report.to_json(), out)
    out.with_name(out.stem + ".report.json").write_text(
        json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    return out


def write_index_rows(rows: list[dict[str, Any]], report: dict[str, Any], out: str | Path) -> Path:
    """Write index rows with a report (as `read_index` returns them) to a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = index_schema().with_metadata(
        {"deeproot.index": json.dumps(report, ensure_ascii=False)}
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    return out


def read_index(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows and the stored report of an index file; DataError when it is not one."""
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir() and (p / "prepared.json").is_file():
        p = p / "index.parquet"  # a prepared dataset carries its index rows
    if not p.is_file():
        raise InputError(f"index {p} does not exist; build it with `deeproot dataset index ROOT`")
    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several error types
        raise DataError(f"index {p} is not a Parquet file ({exc})") from exc
    meta = (table.schema.metadata or {}).get(b"deeproot.index")
    missing = [
        c
        for c in ("image_file_name", "path", "visit_id", *SYMPTOM_KEYS)
        if c not in table.column_names
    ]
    if meta is None or missing:
        raise DataError(f"{p} is not a deeproot dataset index (missing {missing or 'metadata'})")
    return table.to_pylist(), json.loads(meta)
