"""`deeproot crawl`: parse options, call `deeproot.crawler.run_crawl`, print the summary."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from deeproot.errors import DeeprootError

_DEFAULT_OUT = Path("deeproot-data")


def _render(report: Any) -> str:
    lines = [
        f"crawl {report.crawl_id}: {report.status} ({report.records} products, "
        f"{report.requests} requests, {report.retries} retries, {report.duration_s:.1f} s)"
    ]
    if report.resumed:
        lines.append(f"resumed: {report.resumed} products were already in the checkpoint")
    head = ("category", "listed", "products", "new", "changed", "carried", "no-ingr", "errors")
    fmt = "{:<26}{:>8}{:>10}{:>7}{:>9}{:>9}{:>9}{:>8}"
    lines.append(fmt.format(*head))
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
                c.errors,
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
            len(report.errors),
        )
    )
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
    for w in report.warnings:
        lines.append(f"warning: {w}")
    if report.errors:
        lines.append(f"errors: {len(report.errors)}")
        for e in report.errors[:10]:
            who = e.get("goods_no") or e.get("category") or ""
            lines.append(f"  - {e['kind']} {who}: {e['message']} ({e['url']})")
        if len(report.errors) > 10:
            lines.append(f"  ... {len(report.errors) - 10} more in {report.manifest}")
    gates = "passed" if not report.gate_failures else "FAILED: " + "; ".join(report.gate_failures)
    lines.append(f"quality gates: {gates}")
    lines.append(f"partition: {report.partition or '(none written)'}")
    lines.append(f"manifest: {report.manifest}")
    return "\n".join(lines)


class _Progress:
    """A progress bar on stderr while records arrive (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("crawl"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("", total=None)
            self.total = 0

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
        if ev["event"] == "listing" and ev.get("total"):
            self.total += ev["total"]
            self.bar.update(self.task, total=self.total)
        elif ev["event"] == "record":
            self.bar.update(self.task, completed=ev["n"], description=ev["category"])


def crawl(
    categories: str = typer.Option(
        "all", "--categories", "-c", help="all, or comma-separated keys (shampoo,hair_water,...)."
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="Fetch from this host instead of the site's (a mirror or the offline test site).",
    ),
    out: Path = typer.Option(  # noqa: B008 - typer's idiom
        _DEFAULT_OUT,
        "--out",
        "--data-dir",
        envvar="DEEPROOT_DATA_DIR",
        help="Output folder.",
    ),
    config: Path | None = typer.Option(  # noqa: B008 - typer's idiom
        None, "--config", help="YAML overriding category codes (see docs/crawler.md)."
    ),
    max_pages: int | None = typer.Option(None, "--max-pages", help="Listing pages per category."),
    rows_per_page: int = typer.Option(48, "--rows-per-page", help="24, 36 or 48."),
    delay: float | None = typer.Option(
        None, "--delay", help="Seconds between requests (default 2.5, jittered)."
    ),
    autothrottle: bool | None = typer.Option(
        None,
        "--autothrottle/--no-autothrottle",
        help="Adapt the delay to the server (default: on when the delay is above 0).",
    ),
    browser: bool = typer.Option(False, "--browser", help="Render pages with Chromium."),
    resume: bool = typer.Option(False, "--resume", help="Finish the last interrupted crawl."),
    incremental: bool = typer.Option(
        False, "--incremental", help="Refetch only new or changed products; carry the rest."
    ),
    ignore_robots: bool = typer.Option(
        False, "--ignore-robots", help="Do not obey robots.txt (only with permission)."
    ),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request."),
    retries: int = typer.Option(3, "--retries", help="Retries per request on 429/5xx/timeouts."),
    backoff: float = typer.Option(
        5.0, "--backoff", help="First retry wait without Retry-After (doubles)."
    ),
    max_missing: float = typer.Option(
        0.2, "--max-missing-ingredients", help="Quality gate: largest share without ingredients."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Crawl Olive Young's hair-care categories into Parquet (polite, resumable, incremental)."""
    from deeproot.crawler import make_settings, run_crawl

    s = make_settings(
        out=out,
        categories=categories,
        config=config,
        base_url=base_url,
        max_pages=max_pages,
        rows_per_page=rows_per_page,
        delay=delay,
        autothrottle=autothrottle,
        browser=browser,
        resume=resume,
        incremental=incremental,
        ignore_robots=ignore_robots,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        max_missing_ingredients=max_missing,
        # `deeproot -v crawl` shows Scrapy's log too; `--quiet` only its errors
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
    )
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
    try:
        with _Progress(sys.stderr.isatty()) as progress:
            report = run_crawl(s, progress=progress)
    except KeyboardInterrupt:
        raise DeeprootError(
            f"crawl interrupted; its records so far are kept: finish it with "
            f"deeproot crawl --resume --out {s.out}"
        ) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(_render(report))
    problem = report.problem()
    if problem:
        raise DeeprootError(problem)


def register(app: typer.Typer) -> None:
    """Add `deeproot crawl` to the app."""
    app.command("crawl")(crawl)
