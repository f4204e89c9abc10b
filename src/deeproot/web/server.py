"""Running the service on uvicorn: settings to workers, the demo catalog when none exists.

Workers are separate processes (uvicorn's `--workers`), each creating the app from the
`DEEPROOT_SERVE_*` environment (`create_app()` with no arguments) with its own model session and
read-only catalog handle; onnxruntime threads are split between them (`DEEPROOT_THREADS`).
"""

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from deeproot.errors import DataError, InputError, MissingExtraError
from deeproot.web.settings import Settings

log = logging.getLogger(__name__)

APP = "deeproot.web.app:create_app"


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be bound (in use, not local, denied)."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} does not resolve ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} on {host} is in use; stop the other server or pick --port"
                ) from None
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


@contextlib.contextmanager
def prepared(
    settings: Settings, progress: Callable[[str], None] | None = None
) -> Iterator[Settings]:
    """Settings with a catalog: the given or default one, else the demo catalog built into a
    scratch folder that lives as long as the server.

    Raises:
        InputError: `--db` names a file that does not exist. DataError: bad bundle, demo build
            failed.
    """
    from deeproot.catalog import db as catalog_db
    from deeproot.diagnose.bundle import installed_bundle_path, load_bundle

    say = progress or (lambda msg: None)
    bundle = load_bundle(settings.models or installed_bundle_path())  # fail before forking
    if bundle.demo:
        say("model: the DEMO bundle (trained on synthetic images); results say so on every page")
    if settings.db is not None:
        if not Path(settings.db).is_file():
            raise InputError(
                f"no catalog database at {settings.db}; build one with `deeproot catalog build`"
                " or leave out --db to serve the demo catalog"
            )
        yield settings
        return
    default = catalog_db.default_db_path()
    if default.is_file():
        yield replace(settings, db=default.resolve())
        return
    from deeproot.files import scratch_dir
    from deeproot.web.democatalog import build_demo_catalog

    say(f"no catalog at {default}: serving the bundled demo catalog (fictional products)")
    with scratch_dir("serve") as folder:
        try:
            db = build_demo_catalog(folder, say)
        except (DataError, MissingExtraError) as exc:
            # Diagnoses do not need a catalog: serve them, and say once why there are no products.
            say(f"no products: {exc}; pass --db or build a catalog with `deeproot catalog build`")
            yield replace(settings, db=default)
            return
        yield replace(settings, db=db, demo_catalog=True)


def run(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    from deeproot.web import balance
    from deeproot.web.service import threads_per_worker

    if not 1 <= workers <= 64:
        raise InputError(f"--workers {workers}: give 1 to 64")
    check_port(host, port)
    rebalance = workers > 1 and balance.enabled()
    say = progress or (lambda msg: None)
    with prepared(settings, say) as ready, contextlib.ExitStack() as stack:
        os.environ.update(ready.to_env())
        os.environ.setdefault("DEEPROOT_THREADS", str(threads_per_worker(workers)))
        os.environ.pop(balance.ENV, None)
        if rebalance:  # the workers' shared load board (balance.py), removed when we stop
            from deeproot.files import scratch_dir

            folder = stack.enter_context(scratch_dir("serve-board"))
            os.environ[balance.ENV] = str(balance.create(folder / "board"))
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        say(f"serving on http://{shown}:{port} ({workers} worker{'s' if workers > 1 else ''},"
            f" {os.environ['DEEPROOT_THREADS']} thread(s) each); Ctrl-C stops")
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,  # deeproot's logging: -v, --log-file, UTC timestamps
            server_header=False,
            proxy_headers=True,
            timeout_graceful_shutdown=10,
        )
