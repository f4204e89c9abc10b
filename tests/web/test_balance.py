"""Keep-alive connections spread over workers: the shared load board and `Connection: close`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deeproot.web import balance
from deeproot.web.balance import Board, should_reconnect


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_board_slots_loads_and_dead_workers(tmp_path: Path) -> None:
    path = balance.create(tmp_path / "board")
    me = Board(path)
    assert me.lightest_other() is None  # alone: nothing to compare with
    ghost = Board(path, pid=_dead_pid())  # a worker that died holding requests
    ghost.publish(7)
    assert me.lightest_other() is None  # a dead worker's slot does not count...
    other = Board(path, pid=os.getppid())  # a live process standing in for a second worker
    assert other.slot == ghost.slot  # ...and is taken over by the next worker
    other.publish(3)
    me.publish(5)
    assert me.lightest_other() == 3 and other.lightest_other() == 5
    assert Board(path).slot == me.slot  # the same worker finds its own slot again
    other.close()
    assert me.lightest_other() is None


@pytest.mark.parametrize(
    ("held", "others", "expected"),
    [
        (0, [0], False),  # nothing waiting here
        (3, [3], False),  # even (4/4 with 8 clients): stay
        (3, [4], False),
        (4, [3], True),  # 5/3: one client should move
        (1, [0, 2], True),
        (2, [], False),  # one worker
    ],
)
def test_reconnect_only_when_another_worker_holds_fewer(
    tmp_path: Path, held: int, others: list[int], expected: bool
) -> None:
    path = balance.create(tmp_path / "board")
    me = Board(path)
    for i, n in enumerate(others):
        Board(path, pid=[os.getppid(), 1][i]).publish(n)
    assert should_reconnect(me, held) is expected
    assert should_reconnect(None, held) is False


def test_unusable_board_is_served_without(tmp_path: Path, monkeypatch, caplog) -> None:
    bad = tmp_path / "board"
    bad.write_bytes(b"short")
    monkeypatch.setenv(balance.ENV, str(bad))
    assert balance.from_env() is None
    assert "not a worker board" in caplog.text
    monkeypatch.delenv(balance.ENV)
    assert balance.from_env() is None


def test_busier_worker_answers_with_connection_close(
    tmp_path: Path, demo_db: Path, photo: bytes, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from deeproot.web.app import create_app
    from deeproot.web.service import Service
    from deeproot.web.settings import Settings

    path = balance.create(tmp_path / "board")
    monkeypatch.setenv(balance.ENV, str(path))
    svc = Service(Settings(db=demo_db, queue=4))
    other = Board(path, pid=os.getppid())
    files = [("photos", ("scalp.jpg", photo, "image/jpeg"))]
    with TestClient(create_app(service=svc)) as client:
        r = client.post("/api/diagnose", files=files)
        assert r.status_code == 200 and "close" not in r.headers.get("connection", "")
        with svc.gate.admit():  # another request waits here; the other worker holds none
            other.publish(0)
            r = client.post("/api/diagnose", files=files)
            assert r.status_code == 200 and r.headers["connection"] == "close"
            assert r.json()["schema"] == "deeproot.diagnose/1"  # the answer is whole
            page = client.post("/result", files=files)
            assert page.status_code == 200 and page.headers["connection"] == "close"
            other.publish(1)  # as busy as this one: stay
            r = client.post("/api/diagnose", files=files)
            assert r.status_code == 200 and "close" not in r.headers.get("connection", "")
        assert svc.gate.board is not None
        assert svc.gate.board.lightest_other() == 1


def test_rebalance_switch(monkeypatch) -> None:
    from deeproot.errors import InputError

    for value, on in (("", True), ("1", True), ("0", False)):
        monkeypatch.setenv(balance.SWITCH, value)
        assert balance.enabled() is on
    monkeypatch.setenv(balance.SWITCH, "maybe")
    with pytest.raises(InputError, match="DEEPROOT_SERVE_REBALANCE='maybe': give 1"):
        balance.enabled()


@pytest.mark.parametrize(("workers", "switch", "board"), [(2, "", True), (1, "", False),
                                                          (2, "0", False)])
def test_serve_shares_a_board_between_several_workers(
    demo_db: Path, monkeypatch, workers: int, switch: str, board: bool
) -> None:
    import uvicorn

    from deeproot.web import server
    from deeproot.web.settings import Settings

    seen: dict = {}

    def fake_run(*args, **kwargs) -> None:
        path = os.environ.get(balance.ENV)
        seen["path"] = path
        seen["size"] = Path(path).stat().st_size if path else None

    saved = dict(os.environ)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv(balance.SWITCH, switch)
    monkeypatch.setenv(balance.ENV, "/left/over/from/a/parent")
    try:
        server.run(Settings(db=demo_db), port=0, workers=workers)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if board:
        assert seen["size"] == balance.SLOTS * 8
        assert not Path(seen["path"]).exists()  # removed when serve stops
    else:
        assert seen["path"] is None
