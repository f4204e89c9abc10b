"""`deeproot serve`: the web service (pages and JSON API) on uvicorn; a thin wrapper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_cmd(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Model bundle folder (default: $DEEPROOT_DATA_DIR/models/default, else the demo).",
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Catalog database, opened read-only (default: $DEEPROOT_DATA_DIR/catalog.duckdb;"
            " none there: the bundled demo catalog).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes (each holds the model).")
    ] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    queue: Annotated[
        int,
        typer.Option("--queue", help="Requests that may wait per worker; more get 503."),
    ] = 16,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest upload per request, in MB.")
    ] = 200.0,
) -> None:
    """Serve the diagnosis pages and JSON API (OpenAPI at /docs) over HTTP."""
    from deeproot.web.server import run
    from deeproot.web.settings import Settings

    settings = Settings(
        models=models, db=db, device=device, queue=queue, max_upload_mb=max_upload_mb
    )

    def progress(msg: str) -> None:
        typer.echo(f"serve: {msg}", err=True)

    run(settings, host=host, port=port, workers=workers, progress=progress)


def register(app: typer.Typer) -> None:
    """Add `serve` to the app."""
    app.command("serve")(serve_cmd)
