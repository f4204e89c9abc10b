"""Batch tagging of CSV files: one record per row, in input order, never stopping at a bad row."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from deeproot.errors import InputError
from deeproot.ingredients.tagger import get_tagger

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")
_FIELD_LIMIT = 64 * 1024 * 1024


def record_schema():  # noqa: ANN201 - pyarrow is imported lazily
    """The explicit pyarrow schema of a batch record."""
    import pyarrow as pa

    match = pa.struct(
        [
            ("type", pa.string()),
            ("token", pa.string()),
            ("canonical", pa.string()),
            ("entry", pa.string()),
            ("how", pa.string()),
        ]
    )
    flag = pa.struct(
        [
            ("flag", pa.string()),
            ("token", pa.string()),
            ("canonical", pa.string()),
            ("entry", pa.string()),
            ("source", pa.string()),
            ("how", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("row", pa.int64()),
            ("types", pa.list_(pa.string())),
            ("matches", pa.list_(match)),
            ("placeholder", pa.bool_()),
            ("n_ingredients", pa.int32()),
            ("unknown", pa.list_(pa.string())),
            ("flags", pa.list_(flag)),
            ("error", pa.string()),
        ]
    )


@dataclass(frozen=True)
class BatchReport:
    """What a batch run did."""

    rows: int
    tagged: int  # rows with at least one scalp type
    placeholders: int
    empty: int  # rows with no list at all
    bad: int  # rows that could not be read as an ingredient list
    encoding: str


def read_csv_rows(path: Path, column: str) -> tuple[Iterator[tuple[str | None, str | None]], str]:
    """Rows of `column` from a CSV as (text, error); the encoding that was used.

    Reads the original DeepRoot files as they are (UTF-8 with BOM, unnamed index columns), falls
    back to CP949, and as a last resort replaces undecodable bytes and marks those rows bad.
    """
    if not path.exists():
        raise InputError(f"CSV file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass a CSV file")
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        encoding = "utf-8 (with undecodable bytes)"
        text = raw.decode("utf-8-sig", errors="replace")
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path} is empty; expected a CSV with a header row") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV: {exc}") from None
    names = [h.strip().lstrip("\ufeff") for h in header]
    if column not in names:
        shown = ", ".join(n or "(unnamed)" for n in names[:20])
        raise InputError(
            f"{path} has no column {column!r}; its columns are: {shown}. Use --column NAME"
        )
    idx = names.index(column)

    def rows() -> Iterator[tuple[str | None, str | None]]:
        line = 1
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield None, f"unreadable CSV row after line {line}: {exc}"
                continue
            line = reader.line_num
            if idx >= len(rec):
                yield None, f"row has {len(rec)} fields, no {column!r} value"
                continue
            value = rec[idx]
            if "\ufffd" in value:
                yield None, "undecodable bytes in the ingredient text"
                continue
            yield value, None

    return rows(), encoding


def tag_csv(
    path: Path,
    *,
    column: str = "ingredient",
    table: str = "extended",
    progress: Callable[[int], None] | None = None,
) -> tuple[Iterator[dict], Callable[[], BatchReport]]:
    """Tag every row of a CSV; returns the records (lazily) and a report of the finished run."""
    rows, encoding = read_csv_rows(path, column)
    tagger = get_tagger(table)
    counts = {"rows": 0, "tagged": 0, "placeholders": 0, "empty": 0, "bad": 0}

    def records() -> Iterator[dict]:
        for i, (text, error) in enumerate(rows):
            counts["rows"] += 1
            if error is None:
                try:
                    result = tagger.tag(text)
                except InputError as exc:
                    error = str(exc)
            if error is not None:
                counts["bad"] += 1
                log.warning("row %d: %s", i, error)
                yield {
                    "row": i,
                    "types": [],
                    "matches": [],
                    "placeholder": False,
                    "n_ingredients": 0,
                    "unknown": [],
                    "flags": [],
                    "error": error,
                }
            else:
                counts["tagged"] += bool(result.types)
                counts["placeholders"] += result.placeholder
                counts["empty"] += (not result.placeholder) and result.n_ingredients == 0
                rec = result.record(i)
                rec["error"] = None
                yield rec
            if progress is not None:
                progress(i + 1)

    def report() -> BatchReport:
        return BatchReport(encoding=encoding, **counts)

    return records(), report


def write_records(records: Iterator[dict], fmt: str, out: Path | None, stdout: TextIO) -> None:
    """Write records as JSON lines (to `out` or stdout) or Parquet (to `out`), atomically."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE")
    if out is not None:
        if out.is_dir():
            raise InputError(f"--out {out} is a folder; give a file path")
        if not out.parent.exists():
            raise InputError(f"folder {out.parent} does not exist; create it or choose --out")
    tmp = None if out is None else out.with_name(f".{out.name}.partial")
    try:
        if fmt == "jsonl":
            fh = stdout if tmp is None else tmp.open("w", encoding="utf-8")
            try:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            finally:
                if tmp is not None:
                    fh.close()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = record_schema()
            assert tmp is not None
            with pq.ParquetWriter(tmp, schema) as writer:
                chunk: list[dict] = []
                for rec in records:
                    chunk.append(rec)
                    if len(chunk) >= 10_000:
                        writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                        chunk = []
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        if tmp is not None and out is not None:
            tmp.replace(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
