"""The `deeproot` app: global options, error mapping, command-group registration."""

from __future__ import annotations

import logging
import os
import sys

import typer

from deeproot import __version__
from deeproot.errors import DeeprootError

app = typer.Typer(
    name="deeproot",
    help="Scalp diagnosis, ingredient tagging, Olive Young crawl and product catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deeproot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log details to stderr."),
    quiet: bool = typer.Option(False, "--quiet", help="Only errors on stderr."),
) -> None:
    """deeproot: scalp photo + survey -> diagnosis, care guide and products."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


def _register() -> None:
    # Command groups import only light modules at import time; heavy imports live in functions.
    for extra in ("ingredients", "crawl", "catalog", "dataset", "train", "diagnose"):
        try:
            module = __import__(f"deeproot.cli.{extra}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"deeproot.cli.{extra}":
                raise
            continue
        module.register(app)


_register()


_CLI_LIBS = ("click", "typer")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping DeeprootError to a one-line message and exit code 1."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except DeeprootError as exc:
        if os.environ.get("DEEPROOT_DEBUG") == "1":
            raise
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
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
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(rerun with DEEPROOT_DEBUG=1 for a traceback)",
            err=True,
        )
        return 2
    # without standalone mode typer returns exit codes (typer.Exit, Ctrl-C) instead of raising
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
