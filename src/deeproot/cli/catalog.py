"""`deeproot catalog build|import-csv`, `deeproot recommend`, `deeproot sql`: thin wrappers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from deeproot.errors import InputError

_DB_HELP = "Catalog database (default: $DEEPROOT_DATA_DIR/catalog.duckdb, else ./deeproot-data/)."


def _progress() -> Any:
    last: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage == "derive" and done == 0:
            typer.echo("computing products, history and recommendation tables", err=True)
        if stage != "tag" or not total:
            return
        step = done * 10 // total
        if last.get(stage) != step or done == total:
            last[stage] = step
            typer.echo(f"tagging ingredient texts: {done:,}/{total:,}", err=True)

    return report


def _print_report(rep: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rep.to_json(), ensure_ascii=False, indent=2))
        return
    for s in rep.skipped:
        typer.echo(f"skipped crawl {s.crawl_id}: {s.reason}", err=True)
    if rep.skipped_rows:
        typer.echo(f"skipped {len(rep.skipped_rows)} CSV row(s) without a goodsNo", err=True)
    typer.echo(
        f"catalog {rep.db_path}: {len(rep.added)} crawl(s) added, {len(rep.replaced)} replaced, "
        f"{len(rep.unchanged)} unchanged, {len(rep.skipped)} skipped; "
        f"{rep.texts_tagged:,} new ingredient text(s) tagged"
    )
    typer.echo(
        f"{rep.n_crawls} crawl(s), {rep.n_records:,} records, {rep.n_products:,} products "
        f"({rep.n_listed:,} listed now) in {rep.seconds:.1f} s"
    )


def build_cmd(
    data: Annotated[
        Path | None, typer.Option("--data", help="Crawl store (default: the data dir).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    retag: Annotated[
        bool, typer.Option("--retag", help="Tag every ingredient text again.")
    ] = False,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB memory limit.")
    ] = "2GB",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Tagging processes (default: one per CPU).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the build report as JSON.")
    ] = False,
) -> None:
    """Build or refresh the catalog from every complete crawl in the Parquet store."""
    from deeproot.catalog.build import build

    rep = build(
        data, db, retag=retag, memory_limit=memory_limit, workers=workers, progress=_progress()
    )
    _print_report(rep, as_json)


def import_csv_cmd(
    files: Annotated[
        list[Path], typer.Argument(help="DeepRoot crawl CSVs, or folders holding them.")
    ],
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    crawled_at: Annotated[
        str | None,
        typer.Option(
            "--crawled-at",
            help="When the CSVs were crawled (ISO date/time, UTC; default: "
            "2024-11-07, when the original crawl was published).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the import report as JSON.")
    ] = False,
) -> None:
    """Import the original DeepRoot crawl CSVs into the catalog as one pseudo-crawl."""
    from deeproot.catalog.build import import_csv

    when = None
    if crawled_at:
        try:
            when = datetime.fromisoformat(crawled_at)
        except ValueError as exc:
            raise InputError(f"--crawled-at {crawled_at!r} is not an ISO date/time") from exc
    rep = import_csv(files, db, crawled_at=when, progress=_progress())
    _print_report(rep, as_json)


def recommend_cmd(
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Diagnosed scalp type (repeatable).")
    ] = None,
    survey_type: Annotated[
        str | None, typer.Option("--survey-type", help="Survey answer: 건성 or 지성.")
    ] = None,
    concerns: Annotated[
        list[str] | None, typer.Option("--concern", help="Survey concern (repeatable).")
    ] = None,
    categories: Annotated[
        list[str] | None, typer.Option("--category", help="Category key (repeatable).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Products per category.")] = 3,
    ranking: Annotated[
        str, typer.Option("--ranking", help="seed (rating, reviews) or bayes.")
    ] = "seed",
    all_brands: Annotated[
        bool, typer.Option("--all-brands", help="Allow several per brand.")
    ] = False,
    table: Annotated[
        str, typer.Option("--table", help="Ingredient table: seed or extended.")
    ] = "extended",
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON (schema deeproot.recommend/1).")
    ] = False,
) -> None:
    """Scalp-care products per category for a scalp type or the survey's answers."""
    from deeproot.catalog.recommend import recommend
    from deeproot.catalog.survey import survey_types

    wanted = list(types or []) or survey_types(survey_type, concerns or [])
    res = recommend(
        db,
        types=wanted,
        categories=categories,
        top=top,
        ranking=ranking,
        all_brands=all_brands,
        table=table,
    )
    if as_json:
        typer.echo(json.dumps(res.to_json(), ensure_ascii=False, indent=2))
        return
    from deeproot.taxonomy import scalp_type

    label = ", ".join(f"{scalp_type(t).ko} {t}" for t in res.types)
    typer.echo(f"scalp type: {label}; ranking {res.ranking}, {res.table} ingredient table")
    for c in res.categories:
        what = "products" if not res.table_types else f"products for {label}"
        typer.echo(f"\n{c.category_ko} ({c.category}): {c.n_fit} of {c.n_total} {what}")
        for p in c.picks:
            price = f"  {p.price_sale:,} {p.currency or 'KRW'}" if p.price_sale is not None else ""
            rc = f"{p.review_count:,}" if p.review_count is not None else "?"
            head = f"  {p.rank}. {p.brand or '?'} | {p.name} | ★{p.rating} ({rc} reviews)"
            typer.echo(head + price)
            if p.matched:
                why = ", ".join(
                    dict.fromkeys(f"{m.canonical or m.token} ({m.type})" for m in p.matched)
                )
                typer.echo(f"     why: {why}")
            typer.echo(f"     {p.product_url}")
            if p.image_url:
                typer.echo(f"     image: {p.image_url}")


def _table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    from rich.cells import cell_len

    widths = [max([cell_len(c)] + [cell_len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def line(cells: Any) -> str:
        return " | ".join(c + " " * (w - cell_len(c)) for c, w in zip(cells, widths, strict=True))

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(s.rstrip() for s in out)


def sql_cmd(
    query: Annotated[str, typer.Argument(help="One SQL statement (the database is read-only).")],
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Query the catalog read-only (tables and views: see docs/catalog.md)."""
    from deeproot.catalog import sql

    if fmt not in sql.FORMATS:
        raise InputError(f"unknown --format {fmt!r}; valid: {', '.join(sql.FORMATS)}")
    res = sql.query(query, db)
    if fmt == "json":
        typer.echo(json.dumps(sql.to_records(res), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        typer.echo(sql.to_csv(res), nl=False)
    else:
        rows = [["NULL" if v is None else str(v) for v in r] for r in res.rows]
        typer.echo(_table(res.columns, rows))
        typer.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def register(app: typer.Typer) -> None:
    """Add `catalog build|import-csv`, `recommend` and `sql` to the app."""
    group = typer.Typer(help="Build the DuckDB product catalog.", no_args_is_help=True)
    group.command("build")(build_cmd)
    group.command("import-csv")(import_csv_cmd)
    app.add_typer(group, name="catalog")
    app.command("recommend")(recommend_cmd)
    app.command("sql")(sql_cmd)
