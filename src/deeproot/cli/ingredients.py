"""`deeproot ingredients parse|tag`: read 전성분 text, tag scalp types."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from deeproot.errors import InputError

app = typer.Typer(
    help="Parse ingredient lists and tag the scalp types they serve.", no_args_is_help=True
)

_TABLE_HELP = "KCA table: seed (the original rows) or extended (adds cosmetic actives)."


def register(root: typer.Typer) -> None:
    """Add the `ingredients` group to the root app."""
    root.add_typer(app, name="ingredients")


def _read_text(text: str | None) -> str:
    if text is None:
        raise InputError("give the ingredient text as an argument, '-' for stdin, or --csv FILE")
    if text == "-":
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("stdin is not UTF-8 text; save the list as UTF-8") from None
    return text


@app.command("parse")
def parse_cmd(
    text: str = typer.Argument(..., help="The ingredient text, or - to read stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Split an ingredient list into tokens, with decorations and option groups."""
    from deeproot.ingredients import check_text, get_tagger

    raw = _read_text(text)
    check_text(raw)
    tagger = get_tagger("extended")
    parsed = tagger.parse(raw)
    ingredients = [tagger.normalize(t) for t in parsed.tokens]
    if as_json:
        doc = {
            "placeholder": parsed.placeholder,
            "groups": list(parsed.groups),
            "tokens": [
                {
                    "position": i.token.position,
                    "text": i.token.text,
                    "name": i.token.name,
                    "attrs": list(i.token.attrs),
                    "group": i.token.group,
                    "canonical": i.canonical,
                    "how": i.how,
                }
                for i in ingredients
            ],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if parsed.placeholder:
        typer.echo("no list: the seller refers to the product page (placeholder)")
        return
    if not ingredients:
        typer.echo("no list: the text is empty")
        return
    for i in ingredients:
        extra = f"  ({', '.join(i.token.attrs)})" if i.token.attrs else ""
        group = f"  [{i.token.group}]" if i.token.group else ""
        canon = i.canonical if i.canonical else "?"
        note = "" if i.canonical == i.token.name else f"  -> {canon} ({i.how})"
        _echo(f"{i.token.position:3d}  {i.token.name}{extra}{group}{note}")


@app.command("tag")
def tag_cmd(
    text: str | None = typer.Argument(None, help="The ingredient text, or - to read stdin."),
    table: str = typer.Option("extended", "--table", help=_TABLE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (single text)."),
    csv_file: Path | None = typer.Option(None, "--csv", help="Tag every row of a CSV file."),
    column: str = typer.Option("ingredient", "--column", help="CSV column with the text."),
    fmt: str = typer.Option("jsonl", "--format", help="Batch output: jsonl or parquet."),
    out: Path | None = typer.Option(
        None, "--out", help="Batch output file, a regular file (default or -: stdout, jsonl)."
    ),
) -> None:
    """Tag one ingredient list, or every row of a CSV, with the scalp types it serves."""
    from deeproot.ingredients import load_table

    load_table(table)  # validates the table name before any work
    if csv_file is not None:
        if text is not None:
            raise InputError("give either TEXT or --csv FILE, not both")
        _tag_batch(csv_file, column, table, fmt, out)
        return
    from deeproot.ingredients import get_tagger

    result = get_tagger(table).tag(_read_text(text))
    if as_json:
        typer.echo(json.dumps(result.record(), ensure_ascii=False, indent=2))
        return
    if result.placeholder:
        typer.echo("no list: the seller refers to the product page (placeholder)")
        return
    if not result.n_ingredients:
        typer.echo("no list: the text is empty")
        return
    types = ", ".join(result.types) if result.types else "none"
    _echo(f"scalp types: {types}  ({result.n_ingredients} ingredients, table {table})")
    for m in result.matches:
        via = m.entry if m.entry == m.canonical else f"{m.canonical} -> {m.entry}"
        _echo(f"  {m.type}\t{m.token}\t{via} ({m.how})")
    if result.flags:
        _echo(f"flags: {', '.join(result.flag_keys)}")
        for f in result.flags:
            via = f.canonical if f.entry == f.canonical else f"{f.canonical} -> {f.entry}"
            _echo(f"  {f.flag}\t{f.token}\t{via} ({f.how})")
    if result.unknown:
        _echo(f"unknown: {', '.join(result.unknown)}")


def _echo(line: str) -> None:
    """One line of text output, with anything that could drive the terminal removed."""
    from deeproot.terminal import printable

    typer.echo(printable(line))


def _tag_batch(csv_file: Path, column: str, table: str, fmt: str, out: Path | None) -> None:
    from deeproot.ingredients.batch import tag_csv, write_records

    if out is not None and str(out) == "-":
        out = None  # "-" is stdout, as for the text argument
    records, report = tag_csv(csv_file, column=column, table=table)
    write_records(records, fmt, out, sys.stdout)
    r = report()
    typer.echo(
        f"tagged {r.rows} rows ({r.encoding}): {r.tagged} with scalp types, "
        f"{r.flagged} with flags, {r.placeholders} placeholders, {r.empty} empty, {r.bad} bad",
        err=True,
    )
