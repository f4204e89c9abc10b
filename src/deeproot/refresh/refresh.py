"""`refresh`: one locked run of incremental crawl -> catalog build -> change report.

Meant for cron, systemd timers and orchestrators, so every outcome has its own exit code
(deeproot.errors): 0 changes found, 7 nothing new, 5 the site stopped the crawl, 4 the crawl
failed its quality gates, 6 another refresh holds the lock, 130 interrupted. The catalog is built
only from a complete crawl, so a stopped, failed or interrupted crawl leaves the good catalog as
it was.

Locks: the refresh holds `<data>/locks/refresh/.deeproot.lock` for its whole run. The crawl and
the build take their own lock on the store folder while they run; the refresh lock is a
different file, so the refresh never waits on itself.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.errors import (
    EXIT_NOTHING_NEW,
    EXIT_OK,
    DataError,
    DeeprootError,
    QualityGateError,
    RunInterrupted,
    StoppedBySiteError,
)
from deeproot.refresh import changes as changes_mod
from deeproot.refresh import markdown

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int | None], None]
DEFAULT_RECHECK_DAYS = 14
DEFAULT_RANK_TOP = 10


def lock_dir(data_dir: Path) -> Path:
    """The folder whose lock file serialises refreshes of one data dir."""
    return data_dir / "locks" / "refresh"


def reports_dir(data_dir: Path) -> Path:
    return data_dir / "reports"


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did; `exit_code` is 0 (changes) or 7 (nothing new)."""

    crawl_id: str
    exit_code: int
    report: dict[str, Any]  # the deeproot.changes/1 object
    json_path: Path
    markdown_path: Path
    markdown: str
    took_over_lock: dict[str, object] | None

    @property
    def nothing_new(self) -> bool:
        return self.exit_code == EXIT_NOTHING_NEW


# --------------------------------------------------------------------------- steps


def _crawl(
    data_dir: Path,
    options: Mapping[str, Any],
    recheck_days: float,
    progress: Progress | None,
    wait: float | None = None,
    lk: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the incremental crawl; its report, or the matching error for a scheduler.

    With a remote store (`lk`, a deeproot.lake.Lake), `data_dir` is its staging folder: staged
    crawls not yet published are published first, the remote's complete crawls are copied in,
    and the complete crawl is published at the end."""
    from deeproot.crawler import make_settings, run_crawl, storage

    if lk is not None:
        from deeproot import lake

        with lk.lock("deeproot refresh", wait=wait):
            lk.push_pending()
            lk.pull(lk.stage)
            rep, summary = _crawl(data_dir, options, recheck_days, progress, wait)
            lake.publish_staged(lk, rep.crawl_id)
        return rep, summary

    params = inspect.signature(make_settings).parameters
    kwargs = dict(options)
    kwargs["out"] = data_dir
    kwargs["incremental"] = storage.latest_complete(data_dir) is not None
    recheck_supported = "recheck_days" in params
    if recheck_supported:
        kwargs["recheck_days"] = recheck_days
    else:
        log.info(
            "this crawler has no --recheck-days; ingredient notices are re-read only for "
            "products whose listing changed"
        )
    settings = make_settings(**kwargs)

    def relay(ev: dict[str, Any]) -> None:
        if progress and ev.get("event") == "record":
            progress("crawl", int(ev.get("n", 0)), None)

    extra: dict[str, Any] = {}
    if wait and "wait" in inspect.signature(run_crawl).parameters:
        extra["wait"] = wait  # queue behind a hand-run crawl or build holding the store
    log.info(
        "refresh: %s crawl of %s", "incremental" if kwargs["incremental"] else "full", data_dir
    )
    try:
        rep = run_crawl(settings, progress=relay, **extra)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"refresh interrupted during the crawl; the catalog is unchanged. Run deeproot "
            f"refresh again, or finish that crawl with deeproot crawl --resume --out {data_dir}"
        ) from None
    status = getattr(rep, "status", None)
    problem = rep.problem() if hasattr(rep, "problem") else None
    if status == "stopped":
        raise StoppedBySiteError(
            f"{problem or 'crawl stopped by the site'}; the catalog is unchanged"
        )
    if status in ("failed", "gate_failed"):
        raise QualityGateError(
            f"{problem or 'the crawl failed its quality gates'}; nothing was published and the "
            "catalog is unchanged"
        )
    if status == "interrupted":
        raise RunInterrupted(
            f"crawl {rep.crawl_id} was interrupted; the catalog is unchanged. Run deeproot "
            "refresh again"
        )
    if status != "complete":
        raise DeeprootError(f"crawl {rep.crawl_id} ended with status {status!r}; catalog unchanged")
    summary = {
        "crawl_id": rep.crawl_id,
        "previous_crawl_id": getattr(rep, "previous_crawl_id", None),
        "incremental": kwargs["incremental"],
        "records": rep.records,
        "requests": rep.requests,
        "recheck_days": recheck_days if recheck_supported else None,
        "recheck_requests": _recheck_requests(rep) if recheck_supported else None,
        "rechecked": getattr(rep, "rechecked", None),
        "duration_s": getattr(rep, "duration_s", None),
    }
    return rep, summary


def _recheck_requests(rep: Any) -> int | None:
    for name in ("recheck_requests", "rechecked", "recheck"):
        v = getattr(rep, name, None)
        if isinstance(v, int):
            return v
    return None


def rank_snapshot(db_path: Path, top: int) -> dict[tuple[str, str], list[dict[str, Any]]] | None:
    """Top `top` picks per scalp type x category, as `recommend` gives them; {} without catalog.

    None when the catalog cannot be read by this deeproot (another schema version).
    """
    from deeproot.catalog.recommend import close_connections, recommend

    if not db_path.is_file():
        return {}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for t in taxonomy.SCALP_TYPES:
            res = recommend(db_path, types=[t.key], top=top)
            for c in res.categories:
                out[(t.key, c.category)] = [
                    {"goods_no": p.goods_no, "brand": p.brand, "name": p.name} for p in c.picks
                ]
    except DataError as exc:
        log.warning("recommendation ranks not compared: %s", exc)
        return None
    finally:
        close_connections()  # never keep a handle that would block the next build
    return out


def rank_changes(
    before: dict[tuple[str, str], list[dict[str, Any]]],
    after: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Entries for every product whose position moved, entered or left a type x category list."""
    out = []
    for key in sorted(set(before) | set(after)):
        b = {p["goods_no"]: (i, p) for i, p in enumerate(before.get(key, []), 1)}
        a = {p["goods_no"]: (i, p) for i, p in enumerate(after.get(key, []), 1)}
        for g in sorted(set(a) | set(b)):
            pb, pa = b.get(g, (None, None))[0], a.get(g, (None, None))[0]
            if pb == pa:
                continue
            info = (a.get(g) or b[g])[1]
            out.append(
                {
                    "type": key[0],
                    "category": key[1],
                    "goods_no": g,
                    "brand": info["brand"],
                    "name": info["name"],
                    "before": pb,
                    "after": pa,
                }
            )
    return out


def _write(path: Path, text: str) -> None:
    from deeproot.files import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(data_dir: Path, report: dict[str, Any]) -> tuple[Path, Path, str]:
    """Write `<data>/reports/<crawl_id>.json` and `.md`; returns both paths and the Markdown."""
    crawl_id = report["after"]["crawl_id"]
    folder = reports_dir(data_dir)
    md = markdown.render(report)
    jpath, mpath = folder / f"{crawl_id}.json", folder / f"{crawl_id}.md"
    _write(jpath, json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    _write(mpath, md)
    return jpath, mpath, md


# --------------------------------------------------------------------------- entry point


def refresh(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    db_path: str | os.PathLike[str] | None = None,
    recheck_days: float = DEFAULT_RECHECK_DAYS,
    crawl_options: Mapping[str, Any] | None = None,
    wait: float | None = None,
    rank_top: int = DEFAULT_RANK_TOP,
    memory_limit: str = "1GB",
    progress: Progress | None = None,
    s3_endpoint: str | None = None,
) -> RefreshResult:
    """Incremental crawl -> catalog build -> change report, under the data dir's refresh lock.

    Args:
        data_dir: the store and catalog folder (None: $DEEPROOT_DATA_DIR or ./deeproot-data),
            or a store URL (`s3://BUCKET/PREFIX`, deeproot.lake): the crawl is staged and
            published there, the catalog and reports live in the URL's local folder (reports
            are also copied to `<url>/reports/`).
        db_path: the catalog (None: `<data_dir>/catalog.duckdb`).
        recheck_days: no product's ingredient text older than this (passed to the crawler
            when it supports it).
        crawl_options: further `make_settings` options (categories, base_url, delay, ...).
        wait: seconds to wait for another refresh's lock, and for the store's lock when a
            crawl or build run by hand holds it (None: fail at once, exit 6).
        rank_top: recommendation depth compared per scalp type x category.
        memory_limit: DuckDB's limit for the build.
        progress: called with (stage, done, total) for stages crawl, ingest, tag, derive.
        s3_endpoint: S3-compatible endpoint for an `s3://` data_dir (MinIO).

    Raises:
        LockedError (6), StoppedBySiteError (5), QualityGateError (4), RunInterrupted (130),
        InputError (3) for bad options; the catalog is untouched by all of them.
    """
    from deeproot.catalog import db
    from deeproot.catalog.build import build
    from deeproot.lock import StoreLock

    if not recheck_days > 0:
        from deeproot.errors import InputError

        raise InputError(f"--recheck-days must be more than 0 days, not {recheck_days}")
    from deeproot import lake

    lk = None
    if data_dir is not None and lake.is_url(data_dir):
        lk = lake.open_lake(str(data_dir), s3_endpoint)
        lk.check()
        data = lk.root
    else:
        data = Path(data_dir) if data_dir is not None else db.data_dir()
    store = data if lk is None else lk.read
    dbp = Path(db_path) if db_path is not None else data / db.DB_NAME
    t0 = time.monotonic()
    with StoreLock(lock_dir(data), "deeproot refresh", wait=wait) as lock:
        before_ranks = rank_snapshot(dbp, rank_top)
        crawl_rep, crawl_summary = _crawl(
            data if lk is None else lk.stage, crawl_options or {}, recheck_days, progress, wait, lk
        )
        if lk is not None:
            with lk.read_lock("deeproot refresh", wait=wait or 300.0):
                lk.pull()  # the read cache: what the remote store holds complete, now with it
        log.info(
            "refresh: crawl %s complete (%s records, %s requests); comparing",
            crawl_rep.crawl_id,
            crawl_rep.records,
            crawl_rep.requests,
        )
        report = changes_mod.compare(store, until=crawl_rep.crawl_id)
        log.info("refresh: building the catalog %s", dbp)
        build_extra: dict[str, Any] = {}
        if wait and "wait" in inspect.signature(build).parameters:
            build_extra["wait"] = wait
        try:
            built = build(store, dbp, memory_limit=memory_limit, progress=progress, **build_extra)
        except KeyboardInterrupt:
            raise RunInterrupted(
                f"refresh interrupted during the catalog build; crawl {crawl_rep.crawl_id} is "
                f"stored: run deeproot catalog build --data {data_dir or data} (or the next "
                "refresh)"
            ) from None
        after_ranks = rank_snapshot(dbp, rank_top)
        ranks = (
            None
            if before_ranks is None or after_ranks is None
            else rank_changes(before_ranks, after_ranks)
        )
        summary = {
            "crawl": crawl_summary,
            "build": {
                "db_path": str(dbp),
                "added": list(built.added),
                "texts_tagged": built.texts_tagged,
                "n_products": built.n_products,
                "seconds": built.seconds,
            },
            "rank_top": rank_top,
            "seconds": round(time.monotonic() - t0, 3),
        }
        final = report.with_ranks(ranks, summary)
        data_json = final.to_json()
        jpath, mpath, md = write_report(data, data_json)
        if lk is not None:
            lk.put_file(jpath, "reports", jpath.name)
            lk.put_file(mpath, "reports", mpath.name)
        log.info(
            "refresh: report %s (%s)",
            jpath,
            ", ".join(f"{k} {v}" for k, v in final.counts().items() if v),
        )
    code = EXIT_NOTHING_NEW if final.empty else EXIT_OK
    return RefreshResult(
        crawl_id=crawl_rep.crawl_id,
        exit_code=code,
        report=data_json,
        json_path=jpath,
        markdown_path=mpath,
        markdown=md,
        took_over_lock=lock.took_over,
    )
