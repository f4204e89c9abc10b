"""Query results as text: a boxed table, CSV, JSON, JSON lines, Markdown; Parquet to a file.

Nested values (lists, structs, maps) are JSON in every text format; timestamps ISO 8601; NULL is
`NULL` in the table, empty in CSV, `null` in JSON. In the table, newlines and tabs inside a cell
show as `\\n` / `\\t`, other control characters are dropped, long cells are cut with `…`, and the
columns are narrowed to the terminal width, so one cell can never flood the terminal.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import io
import json
import uuid
from typing import Any

from deeproot.catalog.sql import QueryResult


class Format(enum.StrEnum):
    """Output formats of `deeproot sql` (`--format`)."""

    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    parquet = "parquet"


MAX_CELL = 40  # characters of one table cell before it is cut


def plain(value: Any) -> Any:
    """A JSON-ready form of a DuckDB value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def _text(value: Any) -> str:
    """One value as text in CSV and Markdown (nested values as JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(plain(value), ensure_ascii=False)
    v = plain(value)
    return v if isinstance(v, str) else str(v)


def to_records(result: QueryResult) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts."""
    return [dict(zip(result.columns, (plain(v) for v in row), strict=True)) for row in result.rows]


def to_json(result: QueryResult) -> str:
    return json.dumps(to_records(result), ensure_ascii=False, indent=2) + "\n"


def to_jsonl(result: QueryResult) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in to_records(result))


def to_csv(result: QueryResult) -> str:
    """RFC 4180 CSV with a header; lists and structs as JSON."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(result.columns)
    for row in result.rows:
        w.writerow(_text(v) for v in row)
    return buf.getvalue()


def _md_cell(value: Any) -> str:
    s = _text(value) if value is not None else "NULL"
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace(
        "\n", "<br>"
    )


def to_markdown(result: QueryResult) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped, newlines as <br>)."""
    out = ["| " + " | ".join(_md_cell(c) for c in result.columns) + " |"]
    out.append("|" + "|".join("---" for _ in result.columns) + "|")
    for row in result.rows:
        out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(out) + "\n"


def _cell(value: Any) -> str:
    from deeproot.terminal import printable

    if value is None:
        return "NULL"
    s = _text(value)
    return printable(s.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t"))


def _cut(text: str, width: int) -> str:
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


def _is_number(typ: str) -> bool:
    t = typ.upper()
    return any(k in t for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")) and (
        "[]" not in t
    )


def to_table(result: QueryResult, width: int = 100, max_cell: int = MAX_CELL) -> str:
    """A boxed table that fits `width` columns, then a line saying how many rows."""
    from rich.cells import cell_len

    header = [_cut(_cell(c), max_cell) for c in result.columns]
    body = [[_cut(_cell(v), max_cell) for v in row] for row in result.rows]
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in body]) for i, h in enumerate(header)]
    # narrow the widest columns until the table fits (3 cells of border per column, plus 1)
    while widths and sum(widths) + 3 * len(widths) + 1 > width and max(widths) > 6:
        i = widths.index(max(widths))
        widths[i] -= 1
    right = [_is_number(t) for t in result.types] or [False] * len(header)

    def line(cells: list[str]) -> str:
        parts = []
        for c, w, r in zip(cells, widths, right, strict=True):
            c = _cut(c, w)
            pad = " " * (w - cell_len(c))
            parts.append(pad + c if r else c + pad)
        return "│ " + " │ ".join(parts) + " │"

    def rule(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end

    out = [rule("┌", "┬", "┐"), line(header), rule("├", "┼", "┤")]
    out += [line(r) for r in body]
    out.append(rule("└", "┴", "┘"))
    n = len(result.rows)
    foot = f"{n} row{'s' if n != 1 else ''}"
    if result.truncated:
        foot += " shown; the query returned more (raise --max-rows to see them)"
    return "\n".join(out) + "\n" + foot + "\n"


def render(result: QueryResult, fmt: Format | str, width: int = 100) -> str:
    """The text form of a result in one of the text formats."""
    fmt = Format(fmt)
    if fmt is Format.table:
        return to_table(result, width)
    if fmt is Format.csv:
        return to_csv(result)
    if fmt is Format.json:
        return to_json(result)
    if fmt is Format.jsonl:
        return to_jsonl(result)
    if fmt is Format.markdown:
        return to_markdown(result)
    raise ValueError(f"{fmt} is not a text format")


def write_parquet(result: QueryResult, path: Any) -> None:
    """The result as a Parquet file (types as DuckDB gave them), written atomically."""
    import pyarrow.parquet as pq

    from deeproot.files import atomic_output

    with atomic_output(path) as tmp:
        pq.write_table(result.arrow, tmp)
