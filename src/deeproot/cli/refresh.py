"""`deeproot refresh`, `deeproot changes`, and `catalog_import` (wired by the lead): thin CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from deeproot.errors import InputError

_DATA_HELP = (
    "Data folder: the crawl store, catalog.duckdb and reports/ (default ./deeproot-data); or a "
    "store URL s3://BUCKET/PREFIX (catalog and reports then live in its local folder, see "
    "docs/lake.md)."
)
DataOpt = Annotated[
    str,
    typer.Option("--data", "--data-dir", "--out", envvar="DEEPROOT_DATA_DIR", help=_DATA_HELP),
]
_DEFAULT_DATA = "deeproot-data"
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        envvar="DEEPROOT_S3_ENDPOINT",
        help="S3-compatible endpoint for s3:// stores (MinIO: http://HOST:9000).",
    ),
]


def _local(data: str, endpoint: str | None) -> Path:
    """The local data folder of DATA: itself, or a store URL's local folder (deeproot.lake)."""
    from deeproot import lake

    return lake.open_lake(data, endpoint).root if lake.is_url(data) else Path(data)


def _emit(report: dict[str, Any], as_json: bool) -> None:
    from deeproot.refresh import markdown

    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(markdown.render(report), nl=False)


def _stages() -> Any:
    """One line on stderr per stage of a refresh (only on a terminal)."""
    names = {
        "crawl": "crawling",
        "ingest": "reading crawls into the catalog",
        "tag": "tagging new ingredient texts",
        "derive": "computing catalog tables",
    }
    seen: set[str] = set()

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in seen and stage in names:
            seen.add(stage)
            typer.echo(f"{names[stage]}…", err=True)

    return report


def _format(as_json: bool, as_markdown: bool) -> bool:
    if as_json and as_markdown:
        raise InputError("choose one of --json and --markdown")
    return as_json


def refresh_cmd(
    data: DataOpt = _DEFAULT_DATA,
    s3_endpoint: EndpointOpt = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Catalog (default: DATA/catalog.duckdb).")
    ] = None,
    categories: Annotated[
        str, typer.Option("--categories", "-c", help="all, or comma-separated category keys.")
    ] = "all",
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Crawl this host instead of the site's.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML overriding category codes.")
    ] = None,
    recheck_days: Annotated[
        float,
        typer.Option(
            "--recheck-days",
            help="Re-read ingredient notices so that none is older than this many days.",
        ),
    ] = 14.0,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Seconds between requests (default 2.5).")
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option("--max-pages", help="Listing pages per category.")
    ] = None,
    browser: Annotated[
        str,
        typer.Option(
            "--browser",
            help="auto (plain HTTP, Chromium when a page needs it), always or never.",
            metavar="auto|always|never",
        ),
    ] = "auto",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 30.0,
    retries: Annotated[int, typer.Option("--retries", help="Retries per request.")] = 3,
    backoff: Annotated[
        float, typer.Option("--backoff", help="First retry wait without Retry-After.")
    ] = 5.0,
    max_missing: Annotated[
        float,
        typer.Option("--max-missing-ingredients", help="Quality gate: share without ingredients."),
    ] = 0.2,
    wait: Annotated[
        float | None,
        typer.Option("--wait", help="Seconds to wait for a running refresh (default: exit 6)."),
    ] = None,
    rank_top: Annotated[
        int, typer.Option("--rank-top", help="Recommendation depth compared per type x category.")
    ] = 10,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB memory limit for the build.")
    ] = "1GB",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the report as Markdown (the default).")
    ] = False,
) -> None:
    """Incremental crawl, catalog build and change report in one locked run (for schedulers).

    Exit: 0 changes, 7 nothing new, 5 stopped by the site, 4 gate failed, 6 locked, 130 interrupted.

    The report goes to DATA/reports/<crawl_id>.json and .md and to stdout.
    """
    from deeproot.refresh.refresh import refresh

    fmt_json = _format(as_json, as_markdown)
    if rank_top < 1:
        raise InputError(f"--rank-top must be at least 1, not {rank_top}")
    options: dict[str, Any] = {
        "categories": categories,
        "base_url": base_url,
        "config": config,
        "delay": delay,
        "max_pages": max_pages,
        "browser": browser,
        "timeout": timeout,
        "retries": retries,
        "backoff": backoff,
        "max_missing_ingredients": max_missing,
    }
    res = refresh(
        data,
        progress=_stages() if sys.stderr.isatty() else None,
        db_path=db,
        recheck_days=recheck_days,
        crawl_options=options,
        wait=wait,
        rank_top=rank_top,
        memory_limit=memory_limit,
        s3_endpoint=s3_endpoint,
    )
    _emit(res.report, fmt_json)
    typer.echo(f"report: {res.json_path} and {res.markdown_path}", err=True)
    if res.nothing_new:
        typer.echo("nothing new since the last crawl (exit 7)", err=True)
    raise typer.Exit(res.exit_code)


def changes_cmd(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Older crawl: a crawl id, or a date (the newest crawl started before it). "
            "Default: the crawl before the newest.",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Newer crawl id (default: the newest).")
    ] = None,
    data: DataOpt = _DEFAULT_DATA,
    s3_endpoint: EndpointOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON (schema deeproot.changes/1).")
    ] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Markdown (the default).")
    ] = False,
) -> None:
    """What changed between two complete crawls: new, delisted, stock, prices, reformulations.

    Read from the store; recommendation rank changes are in the reports of deeproot refresh.
    """
    from deeproot import lake
    from deeproot.refresh.changes import compare, complete_crawls, load_report

    fmt_json = _format(as_json, as_markdown)
    store = lake.local_store(data, s3_endpoint)  # a URL: its synced read cache
    home = _local(data, s3_endpoint)
    if since is None and until is None:
        crawls = complete_crawls(store)
        if crawls:
            stored = home / "reports" / f"{crawls[-1][0]}.json"
            if stored.is_file():  # the refresh's own report: same pair, plus rank changes
                _emit(load_report(stored), fmt_json)
                return
    _emit(compare(store, since=since, until=until).to_json(), fmt_json)


def catalog_import(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="CSV, JSON lines or Parquet files of a product feed (or folders "
            "of DeepRoot CSVs with --preset deeproot-csv)."
        ),
    ],
    mapping: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="field=column pairs: goods_no=…,name=…,brand=…,ingredients=… required; "
            "price, list_price, rating, reviews, url, image, category, sold_out optional.",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="deeproot-csv: the original DeepRoot crawl CSVs (no --map needed).",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Name of the feed, recorded with every row (default: feed, or the preset's name).",
        ),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="Category of every row when the feed has no column."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: by extension).")
    ] = None,
    crawled_at: Annotated[
        str | None,
        typer.Option("--crawled-at", help="When the feed's data was taken (ISO; default now)."),
    ] = None,
    data: DataOpt = _DEFAULT_DATA,
    s3_endpoint: EndpointOpt = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Catalog (default: DATA/catalog.duckdb).")
    ] = None,
    build_catalog: Annotated[
        bool, typer.Option("--build/--no-build", help="Build the catalog after the import.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a licensed product feed (CSV, JSON lines, Parquet) as a pseudo-crawl of the store.

    The catalog is then built from it as from a crawl (--no-build to skip).
    """
    from datetime import datetime

    from deeproot.catalog.feed import import_feed, parse_mapping

    when = None
    if crawled_at:
        try:
            when = datetime.fromisoformat(crawled_at)
        except ValueError as exc:
            raise InputError(f"--crawled-at {crawled_at!r} is not an ISO date/time") from exc
    if mapping is None and preset is None:
        raise InputError("give --map field=column,… (or --preset deeproot-csv)")
    rep = import_feed(
        files,
        parse_mapping(mapping) if mapping is not None else None,
        source or preset or "feed",
        store=data,
        category=category,
        fmt=fmt,
        preset=preset,
        crawled_at=when,
        endpoint=s3_endpoint,
    )
    out: dict[str, Any] = {"import": rep.to_json()}
    if build_catalog:
        from deeproot import lake
        from deeproot.catalog.build import build

        home = _local(data, s3_endpoint)
        store = lake.local_store(data, s3_endpoint)
        out["build"] = build(store, db if db is not None else home / "catalog.duckdb").to_json()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2, default=str))
        return
    for s in rep.skipped_rows:
        typer.echo(f"skipped {s}", err=True)
    typer.echo(rep.summary())
    if build_catalog:
        b = out["build"]
        typer.echo(
            f"catalog {b['db_path']}: {len(b['added'])} crawl(s) added; "
            f"{b['n_products']:,} products ({b['n_listed']:,} listed now)"
        )


def register(app: typer.Typer) -> None:
    """Add `deeproot refresh` and `deeproot changes` (catalog_import is wired by the lead)."""
    app.command("refresh")(refresh_cmd)
    app.command("changes")(changes_cmd)
