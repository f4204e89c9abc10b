"""Batch tagging of CSV files: one record per row, in input order, never stopping at a bad row."""

from __future__ import annotations

import collections
import csv
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from deeproot.errors import InputError
from deeproot.files import alive
from deeproot.ingredients.parser import strip_controls
from deeproot.ingredients.tagger import get_tagger
from deeproot.terminal import printable

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
    flagged: int  # rows with at least one ingredient flag
    placeholders: int
    empty: int  # rows with no list at all
    bad: int  # rows that could not be read as an ingredient list
    encoding: str


def decode_lines(raw: bytes) -> tuple[list[str], str, int]:
    """Decode a CSV line by line: (lines with their ends, encoding, lines that needed help).

    The file's encoding is the one (UTF-8 or CP949) that more lines decode in; a line that does
    not decode in it is tried in the other, and failing both its bad bytes become U+FFFD (that
    row is then marked bad), so one bad byte costs one row, never the file.
    """
    bom = raw.startswith(b"\xef\xbb\xbf")
    if bom:
        raw = raw[3:]
    lines = raw.splitlines(keepends=True)
    votes = {"utf-8": 0, "cp949": 0}
    for line in lines:
        if line.isascii():
            continue
        for enc in votes:
            try:
                line.decode(enc)
                votes[enc] += 1
            except UnicodeDecodeError:
                pass
    primary = "cp949" if votes["cp949"] > votes["utf-8"] else "utf-8"
    other = "utf-8" if primary == "cp949" else "cp949"
    out: list[str] = []
    fallbacks = 0
    codec = primary
    for line in lines:
        try:
            out.append(line.decode(codec))
            continue
        except UnicodeDecodeError:
            fallbacks += 1
        try:
            out.append(line.decode(other))
        except UnicodeDecodeError:
            out.append(line.decode(primary, errors="replace"))
    return out, "utf-8-sig" if bom and primary == "utf-8" else primary, fallbacks


class _Lines:
    """Lines fed to csv.reader one at a time, with the numbers of those the current record
    used, and a way to put lines back (to re-read the rows an unbalanced quote swallowed)."""

    def __init__(self, lines: list[str]):
        self._pending = collections.deque(enumerate(lines, 1))
        self.used: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self._pending:
            raise StopIteration
        item = self._pending.popleft()
        self.used.append(item)
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self._pending.extendleft(reversed(items))


def read_csv_rows(path: Path, column: str) -> tuple[Iterator[tuple[str | None, str | None]], str]:
    """Rows of `column` from a CSV as (text, error); the encoding that was used.

    Reads the original DeepRoot files as they are (UTF-8 with BOM, unnamed index columns) and
    CP949 exports, decoding line by line (see `decode_lines`). A quote left open that would merge
    the following rows into one is reported with its line number: that row is bad, and the rows
    it swallowed are read again on their own.
    """
    if not path.exists():
        raise InputError(f"CSV file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass a CSV file")
    lines, encoding, fallbacks = decode_lines(path.read_bytes())
    if fallbacks:
        encoding = f"{encoding}, {fallbacks} line(s) in another encoding or undecodable"
    csv.field_size_limit(_FIELD_LIMIT)
    feed = _Lines(lines)
    reader = csv.reader(feed)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path} is empty; expected a CSV with a header row") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV: {exc}") from None
    names = [strip_controls(h).strip() for h in header]
    if column not in names:
        shown = ", ".join(printable(n) or "(unnamed)" for n in names[:20])
        raise InputError(
            f"{path} has no column {printable(column)!r}; its columns are: {shown}. "
            "Use --column NAME"
        )
    idx = names.index(column)
    width = len(names)
    row_start = _RowStart()

    def rows() -> Iterator[tuple[str | None, str | None]]:
        while True:
            feed.used = []
            try:
                rec = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                used = feed.used
                first = used[0][0] if used else "?"
                feed.push_back(used[1:])  # the lines after the broken one are read again
                yield None, f"unreadable CSV row at line {first}: {exc}"
                continue
            used = feed.used
            if not used:
                return
            if len(used) > 1:
                swallowed = row_start.swallowed(used[1:], width)
                if len(rec) != width or swallowed is not None:
                    # re-read from the first swallowed row (or every line after the broken one)
                    at = swallowed if swallowed is not None else 1
                    feed.push_back(used[at:])
                    yield (
                        None,
                        (
                            f"unbalanced quote at line {used[0][0]}: it runs into line "
                            f"{used[-1][0]} and would merge rows; fix the quote"
                        ),
                    )
                    continue
            else:
                row_start.learn(rec, width)
            if not rec:
                continue  # a blank line is not a row (pandas skips them too)
            if len(rec) != width:
                yield (
                    None,
                    (
                        f"row at line {used[0][0]} has {len(rec)} fields, the header {width}; "
                        "check its quotes and commas"
                    ),
                )
                continue
            value = rec[idx]
            if "\ufffd" in value:
                yield None, f"undecodable bytes in the ingredient text (line {used[0][0]})"
                continue
            yield value, None

    return rows(), encoding


class _RowStart:
    """What a row of this file looks like at its start (its first field is a number in every
    one-line row seen so far), to tell a swallowed row from a list that wraps lines."""

    def __init__(self) -> None:
        self.numeric_first = True
        self.seen = 0

    def learn(self, rec: list[str], width: int) -> None:
        if len(rec) == width:
            self.seen += 1
            self.numeric_first &= rec[0].strip().isdigit()

    def swallowed(self, lines: list[tuple[int, str]], width: int) -> int | None:
        """Index in `lines` of the first line that is a whole row on its own, or None."""
        for k, (_, line) in enumerate(lines):
            if "," not in line:
                continue
            try:
                fields = next(csv.reader([line]))
            except (csv.Error, StopIteration):
                continue
            if len(fields) != width:
                continue
            if self.seen and self.numeric_first and not fields[0].strip().isdigit():
                continue
            return k + 1  # lines[k] is used[k + 1]
        return None


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
    counts = {"rows": 0, "tagged": 0, "flagged": 0, "placeholders": 0, "empty": 0, "bad": 0}

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
                counts["flagged"] += bool(result.flags)
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
    """Write records as JSON lines (to `out` or stdout) or Parquet (to `out`), atomically.

    `out` must be a regular file (or not exist yet): a device, FIFO or folder is refused. The
    file is written beside the target under a pid-suffixed name and renamed into place; partial
    files of killed runs (dead pids) are removed first.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE")
    if out is None:
        for rec in records:
            stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return
    from deeproot.files import atomic_output, check_output_path

    check_output_path(out)
    sweep_partials(out)
    try:
        with atomic_output(out) as tmp:
            if fmt == "jsonl":
                with tmp.open("w", encoding="utf-8") as fh:
                    for rec in records:
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            else:
                _write_parquet(records, tmp)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None


def _write_parquet(records: Iterator[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = record_schema()
    with pq.ParquetWriter(path, schema) as writer:
        chunk: list[dict] = []
        for rec in records:
            chunk.append(rec)
            if len(chunk) >= 10_000:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                chunk = []
        writer.write_table(pa.Table.from_pylist(chunk, schema=schema))


def sweep_partials(out: Path) -> int:
    """Remove `.<name>.partial-<pid>` files of dead processes (and the old pid-less
    `.<name>.partial`) beside `out`; return how many were removed."""
    removed = 0
    prefix = f".{out.name}.partial"
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return 0
    for p in siblings:
        if not p.name.startswith(prefix):
            continue
        rest = p.name[len(prefix) :]
        if rest and not (rest.startswith("-") and rest[1:].isdigit()):
            continue
        if rest and alive(int(rest[1:])):
            continue
        try:
            p.unlink()
            removed += 1
            log.info("removed %s left by a killed run", p)
        except OSError:
            pass
    return removed

