"""Shared fixtures for the web service: the demo catalog (built once, the way `deeproot serve`
builds it on a fresh install), an app per module, photos."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")

DEMO_PHOTO = Path(str(resources.files("deeproot.data").joinpath("demo_photo.jpg")))


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo catalog, crawled from the offline site and built (once per session)."""
    from deeproot.web.democatalog import build_demo_catalog

    return build_demo_catalog(tmp_path_factory.mktemp("demo-catalog"))


@pytest.fixture(scope="session")
def photo() -> bytes:
    """The demo photo (a 640x480 synthetic microscope JPEG)."""
    return DEMO_PHOTO.read_bytes()


def jpeg(w: int, h: int, seed: int = 0) -> bytes:
    """A scalp-like JPEG of the given size (the diagnose tests' synthetic image)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = np.array([170, 120, 95], dtype=np.float32)
    noise = rng.normal(0, 28, (h, w, 3)).astype(np.float32)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class ServerThread:
    """uvicorn serving an app on 127.0.0.1 (a free port) in a thread of this process."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                     server_header=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server_thread() -> type[ServerThread]:
    return ServerThread


@pytest.fixture
def no_disk_writes() -> Iterator[list[str]]:
    """Files opened for writing by Python code while the test runs (an audit hook)."""
    import sys

    seen: list[str] = []
    state = {"on": True}

    def hook(event: str, args: tuple) -> None:
        if state["on"] and event == "open" and len(args) >= 2:
            path, mode = args[0], args[1]
            flags = args[2] if len(args) > 2 else 0
            import os

            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing:
                seen.append(str(path))

    sys.addaudithook(hook)  # hooks cannot be removed: this one is switched off after the test
    try:
        yield seen
    finally:
        state["on"] = False
