"""`deeproot crawl` (+ `crawl list`, `crawl prune`) and `deeproot sample-site`.

`crawl` is a Typer group invoked without a subcommand, so `deeproot crawl [options]` crawls exactly
as before, and `deeproot crawl list|prune` manage the store. Each parses options, calls one
library function and renders the result.
"""

from __future__ import annotations

import enum
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from deeproot.errors import RunInterrupted, StoppedBySiteError

_DEFAULT_OUT = "deeproot-data"
_ENDPOINT_HELP = "S3-compatible endpoint for s3:// stores (MinIO: http://HOST:9000)."


class BrowserMode(enum.StrEnum):
    """How pages are fetched: auto switches to Chromium when a page needs it."""

    auto = "auto"
    always = "always"
    never = "never"


class RowsPerPage(enum.StrEnum):
    """Listing page sizes the site offers."""

    r24 = "24"
    r36 = "36"
    r48 = "48"


class Layout(enum.StrEnum):
    """Detail page layouts of the offline sample shop."""

    y2025 = "2025"
    legacy = "legacy"


def _render(report: Any) -> str:
    rpp = report.requests_per_product
    per = f" = {rpp:.2f}/product" if rpp is not None else ""
    lines = [
        f"crawl {report.crawl_id}: {report.status} ({report.records} products, "
        f"{report.requests} requests{per}, {report.retries} retries, {report.duration_s:.1f} s)"
    ]
    if report.resumed:
        lines.append(f"resumed: {report.resumed} products were already in the checkpoint")
    head = ("category", "listed", "products", "new", "changed", "carried", "no-ingr", "soldout")
    fmt = "{:<26}{:>8}{:>10}{:>7}{:>9}{:>9}{:>9}{:>9}{:>6}"
    lines.append(fmt.format(*head, "lost"))
    for c in report.categories:
        listed = "-" if c.listed is None else c.listed
        lines.append(
            fmt.format(
                c.key,
                listed,
                c.products,
                c.new,
                c.changed,
                c.carried,
                c.missing_ingredients,
                c.sold_out,
                c.lost,
            )
        )
    lines.append(
        fmt.format(
            "total",
            "",
            report.records,
            report.new,
            report.changed,
            report.carried,
            report.missing_ingredients,
            sum(c.sold_out for c in report.categories),
            report.lost,
        )
    )
    if report.requests_by_kind:
        kinds = ("robots", "listing", "notice", "stats", "detail")
        parts = [f"{report.requests_by_kind.get(k, 0)} {k}" for k in kinds]
        lines.append("requests: " + ", ".join(parts))
    if report.rechecked or report.recheck_requests:
        lines.append(
            f"ingredient re-checks: {report.rechecked} products, {report.recheck_requests} requests"
        )
    if report.browser_used:
        lines.append("browser: switched to Chromium during this crawl")
    if report.previous_crawl_id:
        lines.append(
            f"compared with crawl {report.previous_crawl_id} "
            f"({report.unchanged} refetched unchanged)"
        )
    if report.deleted:
        gone = sorted({d["goods_no"] for d in report.deleted})
        lines.append(f"deleted since listed: {len(gone)} " + ", ".join(gone))
    if report.robots_forbidden:
        lines.append(f"robots.txt disallowed {report.robots_forbidden} requests")
    for w in report.warnings[:10]:
        lines.append(f"warning: {w}")
    if len(report.warnings) > 10:
        lines.append(f"  ... {len(report.warnings) - 10} more warnings in {report.manifest}")
    if report.errors:
        lines.append(f"errors: {len(report.errors)}")
        for e in report.errors[:10]:
            who = e.get("goods_no") or e.get("category") or ""
            lines.append(f"  - {e['kind']} {who}: {e['message']} ({e['url']})")
        if len(report.errors) > 10:
            lines.append(f"  ... {len(report.errors) - 10} more in {report.manifest}")
    if report.status in ("complete", "gate_failed"):
        gates = (
            "passed" if not report.gate_failures else "FAILED: " + "; ".join(report.gate_failures)
        )
        lines.append(f"quality gates: {gates}")
    lines.append(f"partition: {report.partition or '(none written)'}")
    lines.append(f"manifest: {report.manifest}")
    from deeproot.terminal import printable

    return "\n".join(printable(line) for line in lines)


class _Progress:
    """A progress bar on stderr (only on a terminal): total = products known after the listings."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("crawl"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("listing pages", total=None)
            self.done = 0

    def __enter__(self) -> _Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def __call__(self, ev: dict[str, Any]) -> None:
        if not self.bar:
            return
        kind = ev["event"]
        if kind == "planned":
            self.done = int(ev.get("resumed") or 0)
            self.bar.update(
                self.task, total=int(ev.get("products") or 0), completed=self.done, description=""
            )
            return
        if kind == "record":
            self.done += 1
        elif kind == "error":
            self.done += len(ev.get("categories") or [])
        elif kind == "deleted":
            self.done += int(ev.get("n") or 1)
        else:
            return
        self.bar.update(self.task, completed=self.done, description=ev.get("category", ""))


def _out_option() -> Any:
    return typer.Option(
        _DEFAULT_OUT,
        "--out",
        "--data-dir",
        envvar="DEEPROOT_DATA_DIR",
        help="The crawl store: a folder, or s3://BUCKET/PREFIX (any pyarrow/fsspec URL).",
    )


def _endpoint_option() -> Any:
    return typer.Option(None, "--s3-endpoint", envvar="DEEPROOT_S3_ENDPOINT", help=_ENDPOINT_HELP)


crawl_app = typer.Typer(
    help="Crawl Olive Young's hair-care categories into Parquet; list and prune crawls.",
    add_completion=False,
)


@crawl_app.callback(invoke_without_command=True)
def crawl(
    ctx: typer.Context,
    categories: str = typer.Option(
        "all", "--categories", "-c", help="all, or comma-separated keys (shampoo,hair_water,...)."
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="Fetch from this host instead of the site's (a mirror or the offline sample shop).",
    ),
    out: str = _out_option(),
    s3_endpoint: str | None = _endpoint_option(),
    config: Path | None = typer.Option(  # noqa: B008 - typer's idiom
        None, "--config", help="YAML overriding category codes (see docs/crawler.md)."
    ),
    max_pages: int | None = typer.Option(None, "--max-pages", help="Listing pages per category."),
    rows_per_page: RowsPerPage = typer.Option(  # noqa: B008 - typer's idiom
        RowsPerPage.r48, "--rows-per-page", help="Cards per listing page."
    ),
    delay: float | None = typer.Option(
        None, "--delay", help="Seconds between requests (default 2.5, jittered)."
    ),
    autothrottle: bool | None = typer.Option(
        None,
        "--autothrottle/--no-autothrottle",
        help="Adapt the delay to the server (default: on when the delay is above 0).",
    ),
    browser: BrowserMode = typer.Option(  # noqa: B008 - typer's idiom
        BrowserMode.auto,
        "--browser",
        help="auto: plain HTTP, Chromium once a page is a challenge or needs JavaScript.",
        case_sensitive=False,
    ),
    details: bool = typer.Option(
        False, "--details", help="Fetch every detail page (default: only when a field is missing)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Finish the last unfinished crawl."),
    incremental: bool = typer.Option(
        False, "--incremental", help="Refetch only new or changed products; carry the rest."
    ),
    recheck_days: float | None = typer.Option(
        None,
        "--recheck-days",
        help="With --incremental: re-read ingredient notices older than this many days.",
    ),
    ignore_robots: bool = typer.Option(
        False, "--ignore-robots", help="Do not obey robots.txt (only with the owner's permission)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Fetch robots.txt only; say what this crawler may fetch, and why."
    ),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
    retries: int = typer.Option(3, "--retries", help="Retries per request on 429/5xx/timeouts."),
    backoff: float = typer.Option(
        5.0, "--backoff", help="First retry wait without Retry-After (doubles)."
    ),
    max_missing: float = typer.Option(
        0.2, "--max-missing-ingredients", help="Quality gate: largest share without ingredients."
    ),
    max_lost: float = typer.Option(
        0.05, "--max-lost", help="Quality gate: largest share of a category's products lost."
    ),
    wait: float | None = typer.Option(
        None, "--wait", help="Seconds to wait for another run holding the store's lock."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Crawl Olive Young's hair-care categories into Parquet (polite, resumable, incremental)."""
    if ctx.invoked_subcommand is not None:
        return
    from deeproot import lake
    from deeproot.crawler import make_settings, run_crawl

    remote = lake.open_lake(out, s3_endpoint) if lake.is_url(out) else None
    root = logging.getLogger().getEffectiveLevel()
    s = make_settings(
        out=remote.stage if remote else Path(out),
        categories=categories,
        config=config,
        base_url=base_url,
        max_pages=max_pages,
        rows_per_page=int(rows_per_page.value),
        delay=delay,
        autothrottle=autothrottle,
        browser=browser.value,
        details=details,
        resume=resume,
        incremental=incremental,
        recheck_days=recheck_days,
        ignore_robots=ignore_robots,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        max_missing_ingredients=max_missing,
        max_lost=max_lost,
        # Scrapy's own log only with -vv (DEBUG); -v shows our periodic stats
        log_level="DEBUG"
        if root <= logging.DEBUG
        else "INFO"
        if root <= logging.INFO
        else "WARNING",
    )
    if check:
        _check(s, as_json)
        return
    if recheck_days is not None and not incremental:
        typer.echo("note: --recheck-days applies to --incremental crawls only; ignored", err=True)
    if ignore_robots:
        typer.echo(
            "WARNING: --ignore-robots: robots.txt will NOT be obeyed. Only do this with the "
            "site owner's permission.",
            err=True,
        )
    if s.base_url == s.site_url and not s.contact:
        typer.echo(
            "warning: DEEPROOT_CONTACT is not set; the User-Agent should say how the site "
            "can reach you",
            err=True,
        )
    if s.browser_mode == "auto" and not s.chromium_ok:
        from deeproot.crawler.settings import CHROMIUM_HINT

        typer.echo(
            f"note: Chromium not found at {s.chromium}; --browser auto carries on without it and "
            f"stops if a page needs it ({CHROMIUM_HINT})",
            err=True,
        )
    try:
        with _Progress(sys.stderr.isatty()) as progress:
            if remote is not None:
                report = lake.run_crawl(remote, s, progress=progress, wait=wait)
            else:
                report = run_crawl(s, progress=progress, wait=wait)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"crawl interrupted; its records so far are kept: finish it with "
            f"deeproot crawl --resume --out {out}"
        ) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(_render(report))
    err = report.error()
    if err is not None:
        raise err


def _check(s: Any, as_json: bool) -> None:
    from deeproot.crawler.runner import check_robots

    result = check_robots(s)
    if as_json:
        body = {
            "schema": "deeproot.crawl-check/1",
            "allowed": result.allowed,
            "hosts": list(result.hosts),
            "pages": list(result.pages),
            "delay": result.delay,
        }
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        for h in result.hosts:
            state = {
                "rules": f"HTTP {h['status']}, group `User-agent: {h['group']}`"
                if h["group"]
                else f"HTTP {h['status']}, no group for deeproot or *",
                "allow_all": f"{h['detail']}: no rules, everything allowed",
                "disallow_all": f"{h['detail']}: everything disallowed (RFC 9309)",
                "unreachable": h["detail"],
                "challenge": h["detail"],
            }[h["state"]]
            delay = f"; crawl-delay {h['crawl_delay']:g} s" if h["crawl_delay"] is not None else ""
            typer.echo(f"{h['url']}: {state}{delay}")
        for p in result.pages:
            verdict = "allowed" if p["allowed"] else "DISALLOWED"
            typer.echo(f"{p['category']:<26}{p['kind']:<9}{verdict:<12}{p['why']}")
        typer.echo(f"delay between requests: {result.delay:g} s (crawl-delay honoured)")
    if not result.allowed:
        raise StoppedBySiteError(
            "robots.txt disallows this crawl (see above); crawl only with the site owner's "
            "permission (--ignore-robots), or import a licensed feed with deeproot catalog import"
        )
    unreachable = [h for h in result.hosts if h["state"] in ("unreachable", "challenge")]
    if unreachable:
        raise StoppedBySiteError(f"robots.txt: {unreachable[0]['url']} {unreachable[0]['detail']}")


@crawl_app.command("list")
def crawl_list(
    out: str = _out_option(),
    s3_endpoint: str | None = _endpoint_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the crawls as JSON."),
) -> None:
    """List the crawls in the store: status, counts, requests, start and end."""
    from deeproot.crawler.manage import list_crawls
    from deeproot.lake import local_store

    rows = list_crawls(local_store(out, s3_endpoint))
    if as_json:
        typer.echo(
            json.dumps({"schema": "deeproot.crawl-list/1", "crawls": rows}, ensure_ascii=False)
        )
        return
    if not rows:
        typer.echo(f"no crawls in {out}")
        return
    fmt = "{:<23}{:<13}{:>9}{:>9}{:>7}  {:<20}{:<20}"
    typer.echo(fmt.format("crawl_id", "status", "products", "requests", "lost", "started", "ended"))
    for r in rows:
        typer.echo(
            fmt.format(
                r["crawl_id"],
                r["status"],
                "-" if r["records"] is None else r["records"],
                "-" if r["requests"] is None else r["requests"],
                "-" if r["lost"] is None else r["lost"],
                (r["started_at"] or "-")[:19],
                (r["finished_at"] or "-")[:19],
            )
        )


@crawl_app.command("prune")
def crawl_prune(
    keep: int = typer.Option(..., "--keep", min=1, help="Complete crawls to keep (newest)."),
    out: str = _out_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
    wait: float | None = typer.Option(
        None, "--wait", help="Seconds to wait for another run holding the store's lock."
    ),
) -> None:
    """Remove old crawls, keeping the newest N complete ones (never the newest complete)."""
    from deeproot.crawler.manage import prune_crawls
    from deeproot.errors import InputError
    from deeproot.lake import is_url

    if is_url(out):
        raise InputError(
            f"crawl prune works on local stores only; remove old crawls from {out} with your "
            "object store's tools (delete crawls/<id>.json first, then products/crawl_id=<id>/)"
        )
    removed = prune_crawls(Path(out), keep=keep, dry_run=dry_run, wait=wait)
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        typer.echo(f"{verb} {r['crawl_id']} ({r['status']})")
    typer.echo(f"{verb} {len(removed)} crawl(s); kept the newest {keep} complete")


def sample_site(
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port on 127.0.0.1."),
    layout: Layout = typer.Option(  # noqa: B008 - typer's idiom
        Layout.y2025, "--layout", help="Detail page layout: the real 2025 markup or the legacy one."
    ),
) -> None:
    """Serve the offline sample shop (fictional products, real markup) until Ctrl-C."""
    from deeproot.crawler.manage import serve_sample_site

    def ready(url: str, n: int) -> None:
        typer.echo(f"serving {n} sample products in the {layout.value} layout at {url}")
        typer.echo(f"crawl it with: deeproot crawl --base-url {url} --delay 0 --out sample-data")
        typer.echo("press Ctrl-C to stop")

    try:
        serve_sample_site(port=port, layout=layout.value, ready=ready)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


def register(app: typer.Typer) -> None:
    """Add `deeproot crawl` (with `list` and `prune`) and `deeproot sample-site` to the app."""
    app.add_typer(crawl_app, name="crawl")
    app.command("sample-site")(sample_site)
