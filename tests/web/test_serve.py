"""`deeproot serve` as a process: startup, the demo catalog, limits on a real socket, stopping."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deeproot.errors import InputError
from deeproot.web.settings import Settings

CLI = [sys.executable, "-m", "deeproot.cli.main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(demo_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """`deeproot serve --db DEMO --max-upload-mb 5` in a child process (one per module)."""
    port = _free_port()
    env = {**os.environ, "DEEPROOT_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--db", str(demo_db), "--max-upload-mb", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.communicate()[1][-2000:]
                raise AssertionError(f"serve did not start: {err}") from None
            time.sleep(0.05)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (headers and Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                      if k.strip().lower() == b"content-length"))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _get(port: int, path: str) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, json.loads(r.read())


def test_serve_answers_health(served) -> None:
    _, port = served
    status, body = _get(port, "/api/health")
    assert status == 200 and body["catalog"]["available"] is True


def test_2gb_upload_is_refused_before_its_body_is_read(served) -> None:
    proc, port = served
    rss_before = _rss_kb(proc.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /api/diagnose HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 2147483648\r\n\r\n" + b"--b\r\n" + b"\0" * 65536
        )
        t0 = time.monotonic()
        head = _read_response(s).decode("utf-8")
        elapsed = time.monotonic() - t0
    assert head.startswith("HTTP/1.1 413")
    assert "over the 5 MB limit" in head
    assert elapsed < 5
    assert _rss_kb(proc.pid) - rss_before < 20_000  # nothing like 2 GB was buffered


def test_chunked_upload_is_counted_and_cut_at_the_limit(served) -> None:
    """No Content-Length: the body is counted as it arrives and refused past the limit."""
    _, port = served
    chunk = b"\0" * (256 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /api/diagnose HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        part = b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
        s.sendall(b"%x\r\n%s\r\n" % (len(part), part))  # a valid part whose data never ends
        sent = 0
        answer = b""
        try:
            while sent < 64 * 1024 * 1024:  # a client that would send 64 MB
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                s.settimeout(0.001)
                try:
                    answer = s.recv(4096)
                except (TimeoutError, BlockingIOError):
                    continue
                finally:
                    s.settimeout(10)
                if answer:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not answer:
            answer = s.recv(4096)
        while b"\r\n\r\n" not in answer:
            answer += s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024  # stopped early: 5 MB limit, not the 64 MB offered


def test_port_in_use_is_one_line_exit_3(served, capsys) -> None:
    from deeproot.cli.main import main

    _, port = served
    assert main(["serve", "--port", str(port)]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is in use; stop the other server or pick --port"
    )


def test_missing_db_is_one_line_exit_3(tmp_path: Path, capsys) -> None:
    from deeproot.cli.main import main

    missing = tmp_path / "nope.duckdb"
    assert main(["serve", "--port", str(_free_port()), "--db", str(missing)]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: no catalog database at {missing}; build one with"
    )


def test_fresh_install_serves_the_demo_catalog(tmp_path, demo_db, monkeypatch) -> None:
    """No catalog anywhere: the demo catalog is built into scratch space, and removed after."""
    import deeproot.web.democatalog as dc
    from deeproot.web.server import prepared

    built: list[Path] = []

    def fake_build(folder: Path, progress=None) -> Path:  # the real build has its own fixture
        built.append(folder)
        return Path(shutil.copy(demo_db, folder / "catalog.duckdb"))

    monkeypatch.setattr(dc, "build_demo_catalog", fake_build)
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path / "empty"))
    said: list[str] = []
    with prepared(Settings(), said.append) as ready:
        assert ready.demo_catalog is True
        assert ready.db is not None and ready.db.is_file()
        assert not ready.db.is_relative_to(Path(dc.__file__).parent.parent)  # not in the package
    assert not ready.db.exists() and not built[0].exists()  # scratch removed on exit
    assert any("serving the bundled demo catalog" in s for s in said)
    # a catalog in the data dir is used as it is
    (tmp_path / "data").mkdir()
    shutil.copy(demo_db, tmp_path / "data" / "catalog.duckdb")
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path / "data"))
    with prepared(Settings()) as ready:
        assert ready.demo_catalog is False
        assert ready.db == (tmp_path / "data" / "catalog.duckdb").resolve()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DEEPROOT_SERVE_QUEUE": "lots"}, "DEEPROOT_SERVE_QUEUE='lots' is not a number"),
        ({"DEEPROOT_SERVE_MAX_UPLOAD_MB": "nan"}, "is not a number"),
        ({"DEEPROOT_SERVE_MAX_UPLOAD_MB": "-1"}, "give 0 < MB <= 4096"),
        ({"DEEPROOT_SERVE_DEVICE": "tpu"}, "unknown device 'tpu'"),
    ],
)
def test_bad_environment_is_one_clear_error(env, needle) -> None:
    with pytest.raises(InputError, match=None) as exc:
        Settings.from_env(env)
    assert needle in str(exc.value)


def test_settings_round_trip_through_the_environment(tmp_path) -> None:
    s = Settings(models=tmp_path / "m", db=tmp_path / "c.duckdb", demo_catalog=True,
                 device="cpu", max_upload_mb=12.5, max_photos=3, queue=4)
    assert Settings.from_env(s.to_env()) == s


def test_sigterm_stops_the_server_cleanly(served) -> None:
    """Last in this module: stops the module's server."""
    proc, port = served
    assert _get(port, "/api/health")[0] == 200
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    assert f"serving on http://localhost:{port}" in err


def test_stalled_upload_gets_408_and_frees_its_place(demo_db: Path, server_thread) -> None:
    """A client that stops sending mid-upload (slowloris) does not hold a queue place."""
    from deeproot.web.app import create_app
    from deeproot.web.service import Service

    svc = Service(Settings(db=demo_db, upload_idle_s=0.5, queue=0))
    with server_thread(create_app(service=svc)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /api/diagnose HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
            )
            t0 = time.monotonic()
            answer = _read_response(s).decode()
        assert answer.startswith("HTTP/1.1 408")
        assert "the upload stalled (nothing received for 0.5 s); send it again" in answer
        assert time.monotonic() - t0 < 5
        assert svc.gate.admitted == 0  # the place is free again


def test_without_the_crawler_the_service_still_diagnoses(tmp_path, monkeypatch) -> None:
    import deeproot.web.democatalog as dc
    from deeproot.errors import MissingExtraError
    from deeproot.web.server import prepared

    def no_crawler(folder: Path, progress=None) -> Path:
        raise MissingExtraError("scrapy", "crawl")

    monkeypatch.setattr(dc, "build_demo_catalog", no_crawler)
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path))
    said: list[str] = []
    with prepared(Settings(), said.append) as ready:
        assert ready.demo_catalog is False and not ready.db.exists()
    assert said[-1] == (
        "no products: scrapy is not installed; install it with: pip install 'deeproot[crawl]';"
        " pass --db or build a catalog with `deeproot catalog build`"
    )
