"""The `deeproot` app: global options, error mapping, command-group registration."""

from __future__ import annotations

import enum
import logging
import os
import signal
import sys
from pathlib import Path

import typer

from deeproot import __version__
from deeproot.errors import EXIT_ERROR, EXIT_INPUT, EXIT_INTERRUPTED, DeeprootError
from deeproot.terminal import printable

app = typer.Typer(
    name="deeproot",
    help="Scalp diagnosis, ingredient tagging, Olive Young crawl and product catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class LogLevel(enum.StrEnum):
    """Log levels accepted by --log-level."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def configure_logging(
    *, verbose: int = 0, quiet: bool = False, level: LogLevel | None = None,
    log_file: Path | None = None,
) -> None:
    """Set up the root logger: stderr at the chosen level, timestamps, optional log file.

    Timestamps are UTC ISO 8601 so logs from cron and containers line up. Scrapy's own debug
    output is only shown at DEBUG (the crawler reads the root level).
    """
    if level is not None:
        lvl = getattr(logging, level.value.upper())
    else:
        lvl = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else (
            logging.ERROR if quiet else logging.WARNING
        )
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                            "%Y-%m-%dT%H:%M:%SZ")
    import time as _time

    fmt.converter = _time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise typer.BadParameter(f"cannot open {log_file}: {exc.strerror}",
                                     param_hint="--log-file") from exc
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=lvl, handlers=handlers, force=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deeproot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: int = typer.Option(
        0, "-v", "--verbose", count=True, show_default=False,
        help="More log on stderr: -v progress (INFO), -vv DEBUG.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
    log_level: LogLevel | None = typer.Option(
        None, "--log-level", help="Log level (overrides -v/--quiet).", case_sensitive=False
    ),
    log_file: Path | None = typer.Option(
        None, "--log-file", help="Also append the log, with timestamps, to this file."
    ),
) -> None:
    """deeproot: scalp photo + survey -> diagnosis, care guide and products."""
    configure_logging(verbose=verbose, quiet=quiet, level=log_level, log_file=log_file)
    _check_data_dir(os.environ.get("DEEPROOT_DATA_DIR"))


def _check_data_dir(value: str | None) -> None:
    """DEEPROOT_DATA_DIR names a folder: refuse what no file system accepts, with the variable's
    name, before any command trips over it with a bare OSError."""
    if not value or "://" in value:  # unset, or a store URL (s3://…) for the commands that take one
        return
    raw = os.fsencode(value)
    if b"\0" in raw or len(raw) >= 4096 or any(len(p) > 255 for p in raw.split(b"/")):
        from deeproot.errors import InputError

        raise InputError(
            f"DEEPROOT_DATA_DIR is not a usable folder path ({len(value):,} characters; at most "
            "4,095 bytes, 255 per folder name, no NUL); set it to a folder such as ./deeproot-data"
        )


def _register() -> None:
    # Command groups import only light modules at import time; heavy imports live in functions.
    for extra in (
        "ingredients", "crawl", "catalog", "refresh", "dataset", "train", "diagnose", "models",
        "serve",
    ):
        try:
            module = __import__(f"deeproot.cli.{extra}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"deeproot.cli.{extra}":
                raise
            continue
        module.register(app)


_register()


_CLI_LIBS = ("click", "typer")


def _sigterm(signum: int, frame: object) -> None:
    # SIGTERM (timeout, kill, systemd, containers) takes the same clean path as Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping DeeprootError to a one-line message and its exit code."""
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        pass
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_VALUE_NAMES = {"str": "TEXT", "path": "PATH", "int": "INTEGER", "float": "NUMBER"}


def _value_name(
    param: typer.core.TyperArgument | typer.core.TyperOption, ctx: object
) -> str | None:
    """Help shows click-style value names (TEXT, PATH, INTEGER…) instead of Python type names
    (`<bool>`, `<list[str]>`, Typer 0.2x); flags show none; choices keep their values."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if isinstance(param, typer.core.TyperOption) and param.metavar is not None:
        return param.metavar
    desc = getattr(param, "type_descriptor", None)
    shown = param.display_type(ctx)  # type: ignore[arg-type]
    if desc is None or not shown:
        return shown
    bare = shown.strip("<>").removeprefix("list[").removesuffix("]")
    more = "…" if desc.is_list else ""
    if desc.is_choice:
        return f"<{bare}>{more}"
    return _VALUE_NAMES.get(bare.lower(), bare.upper()) + more


for _cls in (getattr(typer.core, "TyperArgument", None), getattr(typer.core, "TyperOption", None)):
    if _cls is not None and hasattr(_cls, "display_type_rich") and hasattr(_cls, "display_type"):
        _cls.display_type_rich = _value_name  # type: ignore[method-assign,assignment]


def _run(argv: list[str] | None) -> int:
    try:
        rc = app(args=argv, prog_name="deeproot", standalone_mode=False)
    except DeeprootError as exc:
        if os.environ.get("DEEPROOT_DEBUG") == "1":
            raise
        typer.echo(f"error: {printable(str(exc))}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if os.environ.get("DEEPROOT_DEBUG") == "1":
            raise
        where = f" {printable(str(exc.filename))[:200]}" if exc.filename else ""
        typer.echo(f"error: cannot access{where}: {exc.strerror or exc}", err=True)
        return EXIT_INPUT
    except Exception as exc:  # usage errors (click, or typer's vendored click) and the unexpected
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int) and type(exc).__module__.startswith(_CLI_LIBS):
            show()
            return code
        if type(exc).__name__ == "Abort" and type(exc).__module__.startswith(_CLI_LIBS):
            typer.echo("aborted", err=True)
            return 1
        if os.environ.get("DEEPROOT_DEBUG") == "1":
            raise
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {printable(str(exc))[:300]} "
            "(rerun with DEEPROOT_DEBUG=1 for a traceback)",
            err=True,
        )
        return EXIT_ERROR
    # without standalone mode typer returns exit codes (typer.Exit, Ctrl-C) instead of raising
    if rc == EXIT_INTERRUPTED:
        typer.echo("interrupted", err=True)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
