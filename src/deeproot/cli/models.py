"""`deeproot models install|list`: thin wrappers over `deeproot.diagnose.install`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from deeproot.terminal import printable

models_app = typer.Typer(
    help="Install and list model bundles (a folder, .zip or .tar.gz, or a URL with --sha256).",
    no_args_is_help=True,
)


@models_app.command("install")
def install_cmd(
    source: Annotated[
        str,
        typer.Argument(
            help="A bundle folder, a .zip or .tar.gz of one, or an http(s) URL of an archive.",
            metavar="FILE_OR_URL",
        ),
    ],
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="Expected SHA-256 of the file (required for a URL)."),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Installed name; 'default' is what diagnose uses.")
    ] = "default",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Verify a model bundle (checksum, loads, opens in onnxruntime), then install it atomically."""
    from deeproot.diagnose.install import install_bundle

    def progress(msg: str) -> None:
        if not quiet:
            typer.echo(printable(f"models: {msg}"), err=True)

    info = install_bundle(source, sha256=sha256, name=name, progress=progress)
    typer.echo(
        printable(
            f"{info.name}: {info.path} ({info.n_models} model(s), sha256 {info.sha256 or '-'})"
        )
    )


@models_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed bundles and the shipped demo; `*` marks the one diagnose uses."""
    from deeproot.diagnose.install import list_bundles

    items = list_bundles()
    if as_json:
        typer.echo(
            json.dumps(
                {"schema": "deeproot.models/1", "bundles": [b.to_json() for b in items]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for b in items:
        mark = "*" if b.used else " "
        demo = " demo" if b.demo else ""
        size = f"{b.size_bytes / 1024**2:.1f} MB"
        typer.echo(printable(f"{mark} {b.name}  {b.path}  {b.n_models} model(s), {size}{demo}"))
        if b.source:
            typer.echo(printable(f"    from {b.source}, sha256 {b.sha256 or '-'}, {b.installed}"))


def register(app: typer.Typer) -> None:
    """Add the `models` group to the app."""
    app.add_typer(models_app, name="models")
