"""`deeproot catalog build|import-csv|export`, `deeproot recommend`, `deeproot sql`: thin CLI."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from deeproot.catalog.output import Format as FormatOpt
from deeproot.catalog.recommend import Ranking as RankingOpt
from deeproot.catalog.recommend import Table as TableOpt
from deeproot.cli._options import FreeOfOpt, IncludeSoldOutOpt, NoAllergensOpt
from deeproot.errors import InputError

_DB_HELP = "Catalog database (default: $DEEPROOT_DATA_DIR/catalog.duckdb, else ./deeproot-data/)."
_WAIT_HELP = "Wait up to SECONDS for the store's lock (a crawl or build running), not fail."


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
    from deeproot.terminal import printable

    if as_json:
        typer.echo(json.dumps(rep.to_json(), ensure_ascii=False, indent=2))
        return
    for s in rep.skipped:
        typer.echo(printable(f"skipped crawl {s.crawl_id}: {s.reason}"), err=True)
    if rep.skipped_rows:
        typer.echo(f"skipped {len(rep.skipped_rows)} CSV row(s) without a goodsNo", err=True)
    typer.echo(
        f"catalog {rep.db_path}: {len(rep.added)} crawl(s) added, "
        f"{len(rep.unchanged)} unchanged, {len(rep.skipped)} skipped; "
        f"{rep.texts_tagged:,} new ingredient text(s) tagged"
    )
    typer.echo(
        f"{rep.n_crawls} crawl(s), {rep.n_records:,} records, {rep.n_products:,} products "
        f"({rep.n_listed:,} listed now) in {rep.seconds:.1f} s"
    )


def build_cmd(
    data: Annotated[
        str | None,
        typer.Option(
            "--data", metavar="DIR|URL",
            help="Crawl store: a folder or s3://BUCKET/PREFIX (default: the data dir).",
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint", envvar="DEEPROOT_S3_ENDPOINT",
            help="S3-compatible endpoint URL (MinIO…) for an s3:// store.",
        ),
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    retag: Annotated[
        bool, typer.Option("--retag", help="Tag every ingredient text again.")
    ] = False,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB memory limit.")
    ] = "1GB",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Tagging processes (default: one per CPU).")
    ] = None,
    wait: Annotated[
        float | None, typer.Option("--wait", metavar="SECONDS", help=_WAIT_HELP)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the build report as JSON (deeproot.build/1).")
    ] = False,
) -> None:
    """Build or refresh the catalog from every complete crawl in the Parquet store."""
    from deeproot import lake
    from deeproot.catalog.build import build

    store = None if data is None else lake.local_store(data, s3_endpoint)
    if db is None and data is not None and lake.is_url(data):
        # the catalog of a remote store lives in the URL's local folder, as a refresh makes it
        db = lake.open_lake(data, s3_endpoint).root / "catalog.duckdb"
    rep = build(
        store, db, retag=retag, memory_limit=memory_limit, workers=workers,
        progress=_progress(), wait=wait,
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
    wait: Annotated[
        float | None, typer.Option("--wait", metavar="SECONDS", help=_WAIT_HELP)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the import report as JSON (deeproot.build/1).")
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
    rep = import_csv(files, db, crawled_at=when, progress=_progress(), wait=wait)
    _print_report(rep, as_json)


def export_cmd(
    out: Annotated[Path, typer.Argument(help="Folder for the Parquet files (created).")],
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
) -> None:
    """Export the catalog's derived tables (products, tags, flags, history) as Parquet."""
    from deeproot.catalog.export import export

    for path, n in export(out, db):
        typer.echo(f"{path}: {n:,} rows")


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
        RankingOpt, typer.Option("--ranking", help="seed (rating, reviews) or bayes.")
    ] = RankingOpt.seed,
    all_brands: Annotated[
        bool, typer.Option("--all-brands", help="Allow several per brand.")
    ] = False,
    table: Annotated[
        TableOpt, typer.Option("--table", help="Ingredient table.")
    ] = TableOpt.extended,
    free_of: FreeOfOpt = None,
    no_allergens: NoAllergensOpt = False,
    include_sold_out: IncludeSoldOutOpt = False,
    prefer_functional: Annotated[
        bool,
        typer.Option(
            "--prefer-functional",
            help="Rank products that state the 탈모 증상 완화 functional claim first.",
        ),
    ] = False,
    prefer_allergen_free: Annotated[
        bool,
        typer.Option(
            "--prefer-allergen-free", help="Rank products without fragrance allergens first."
        ),
    ] = False,
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
        ranking=ranking.value,
        all_brands=all_brands,
        table=table.value,
        free_of=free_of or [],
        no_allergens=no_allergens,
        include_sold_out=include_sold_out,
        prefer_functional=prefer_functional,
        prefer_allergen_free=prefer_allergen_free,
    )
    if as_json:
        typer.echo(json.dumps(res.to_json(), ensure_ascii=False, indent=2))
        return
    _print_recommendations(res)


def _print_recommendations(res: Any) -> None:
    from deeproot.ingredients.flags import FLAG_LABELS
    from deeproot.taxonomy import scalp_type
    from deeproot.terminal import printable

    label = ", ".join(f"{scalp_type(t).ko} {t}" for t in res.types)
    typer.echo(f"scalp type: {label}; ranking {res.ranking}, {res.table} ingredient table")
    for c in res.categories:
        what = "products" if not res.table_types else f"products for {label}"
        typer.echo(f"\n{c.category_ko} ({c.category}): {c.n_fit} of {c.n_total} {what}")
        for p in c.picks:
            price = f"  {p.price_sale:,} {p.currency or 'KRW'}" if p.price_sale is not None else ""
            rc = f"{p.review_count:,}" if p.review_count is not None else "?"
            star = f"★{p.rating}" if p.rating is not None else "★ unrated"
            sold = "  [품절 sold out]" if p.sold_out else ""
            head = f"  {p.rank}. {p.brand or '?'} | {p.name} | {star} ({rc} reviews)"
            typer.echo(printable(head + price + sold))
            if p.matched:
                why = ", ".join(
                    dict.fromkeys(f"{m.canonical or m.token} ({m.type})" for m in p.matched)
                )
                typer.echo(printable(f"     why: {why}"))
            if p.hair_loss_functional_claim:
                typer.echo("     기능성: 탈모 증상 완화 (hair-loss functional cosmetic)")
            if p.allergens:
                tag = "caution" if p.cautions else "allergens"
                typer.echo(
                    printable(f"     {tag}: {FLAG_LABELS['allergen']['ko']} "
                              f"{', '.join(p.allergens)}")
                )
            if p.free_of:
                typer.echo(
                    "     free of: " + ", ".join(FLAG_LABELS[f]["en"] for f in p.free_of)
                )
            typer.echo(printable(f"     {p.product_url}"))
            if p.image_url:
                typer.echo(printable(f"     image: {p.image_url}"))


def _params(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        name, sep, value = v.partition("=")
        if not sep or not name.strip().isidentifier():
            raise InputError(
                f"--param {v!r} is not name=value; e.g. --param goods_no=A000000202566"
            )
        out[name.strip()] = value
    return out


def _read_query(query: str | None, file: Path | None) -> str:
    if file is not None and query is not None:
        raise InputError("give the query as an argument or with --file, not both")
    if file is not None:
        if str(file) == "-":
            return sys.stdin.read()
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{file} is not UTF-8 text: {exc.reason}") from exc
    if query is None:
        raise InputError('no query; pass one, e.g. deeproot sql "SELECT count(*) FROM products"')
    if query == "-":
        return sys.stdin.read()
    return query


def _print_schema(db: Path | None) -> None:
    from deeproot.catalog.sql import describe
    from deeproot.terminal import printable

    for rel in describe(db):
        name = rel.name if rel.schema == "main" else f"{rel.schema}.{rel.name}"
        typer.echo(printable(f"{name} ({rel.kind}){': ' + rel.comment if rel.comment else ''}"))
        for col in rel.columns:
            com = f"  -- {col.comment}" if col.comment else ""
            typer.echo(printable(f"    {col.name} {col.type}{com}"))


def sql_cmd(
    query: Annotated[
        str | None,
        typer.Argument(
            help="One SQL query (read-only); - reads it from stdin; `tables` lists the schema."
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the query from FILE (- for stdin).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    fmt: Annotated[FormatOpt, typer.Option("--format", help="Output format.")] = FormatOpt.table,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", metavar="NAME=VALUE", help="Value for $NAME in the query."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to FILE (atomically) instead of stdout."),
    ] = None,
    max_rows: Annotated[
        int | None,
        typer.Option("--max-rows", help="Rows at most (default: 100 for table, else all; 0: all)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Stop the query after this long.")
    ] = 300.0,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print tables, views, columns and their comments.")
    ] = False,
) -> None:
    """Query the catalog read-only, in a sandbox (tables and views: `--schema`, docs/catalog.md)."""
    from deeproot.catalog import output as out_fmt
    from deeproot.catalog import sql

    if schema or (query is not None and query.strip().lower() == "tables" and file is None):
        _print_schema(db)
        return
    text = _read_query(query, file)
    if fmt is FormatOpt.parquet and output is None:
        raise InputError("--format parquet writes a file; add --output FILE.parquet")
    if output is not None:
        from deeproot.files import check_output_path

        check_output_path(output)
    cap = (100 if fmt is FormatOpt.table else None) if max_rows is None else (max_rows or None)
    res = sql.run_query(
        text, db_path=db, params=_params(param), max_rows=cap, timeout_s=timeout,
        memory_limit="4GB",
    )
    if res.truncated and fmt is not FormatOpt.table:
        typer.echo(f"warning: only the first {cap:,} rows written (--max-rows)", err=True)
    if fmt is FormatOpt.parquet:
        out_fmt.write_parquet(res, output)
        typer.echo(f"{output}: {len(res.rows):,} rows", err=True)
        return
    import shutil

    width = shutil.get_terminal_size((100, 24)).columns
    text_out = out_fmt.render(res, fmt.value, width)
    if output is None:
        typer.echo(text_out, nl=False)
        return
    from deeproot.files import atomic_output

    with atomic_output(output) as tmp:
        tmp.write_text(text_out, encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add `catalog build|import-csv|export`, `recommend` and `sql` to the app."""
    group = typer.Typer(help="Build the DuckDB product catalog.", no_args_is_help=True)
    group.command("build")(build_cmd)
    group.command("import-csv")(import_csv_cmd)
    # the generic feed import (CSV, JSON lines, Parquet with --map) lives with the refresh CLI
    from deeproot.cli.refresh import catalog_import

    group.command("import")(catalog_import)
    group.command("export")(export_cmd)
    app.add_typer(group, name="catalog")
    app.command("recommend")(recommend_cmd)
    app.command("sql")(sql_cmd)
