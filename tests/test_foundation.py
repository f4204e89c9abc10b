"""Store lock, atomic output, scratch folders and terminal-safe text (shared by every command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deeproot.errors import InputError, LockedError
from deeproot.files import atomic_output, check_output_path, scratch_dir, scratch_root
from deeproot.lock import LOCK_NAME, StoreLock
from deeproot.terminal import printable


def _hold_lock_in_child(folder: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time\n"
        "from deeproot.lock import StoreLock\n"
        f"lock = StoreLock({str(folder)!r}, 'crawl').acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path):
    proc = _hold_lock_in_child(tmp_path)
    try:
        with pytest.raises(LockedError) as err, StoreLock(tmp_path, "catalog build"):
            pass
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and "crawl" in msg and "--wait" in msg
        assert err.value.exit_code == 6
    finally:
        proc.kill()
        proc.wait()


def test_lock_wait_queues_behind_the_holder(tmp_path):
    proc = _hold_lock_in_child(tmp_path)
    time.sleep(0.1)
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {proc.pid}"])
    started = time.monotonic()
    with StoreLock(tmp_path, "catalog build", wait=20):
        waited = time.monotonic() - started
    proc.wait()
    assert 0.3 < waited < 15


def test_stale_lock_of_a_killed_process_is_taken_over_with_a_warning(tmp_path, caplog):
    proc = _hold_lock_in_child(tmp_path)
    proc.kill()
    proc.wait()
    with caplog.at_level("WARNING"), StoreLock(tmp_path, "catalog build") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == proc.pid
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "catalog build"
    assert "taking over a stale lock" in caplog.text
    # a clean release leaves an empty file: the next run takes it silently
    with StoreLock(tmp_path, "again") as lock:
        assert lock.took_over is None


def test_output_only_to_regular_files(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        check_output_path("/dev/null")
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "such.jsonl")
    with pytest.raises(InputError, match="too long"):
        check_output_path(tmp_path / ("x" * 300))
    assert check_output_path(tmp_path / "ok.jsonl") == tmp_path / "ok.jsonl"


def test_atomic_output_keeps_the_old_file_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    with atomic_output(out) as tmp:
        tmp.write_text("new\n")
    assert out.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_scratch_dirs_are_removed_and_dead_ones_swept():
    with scratch_dir("test") as d:
        (d / "f").write_text("x")
        assert d.parent == scratch_root()
    assert not d.exists()
    # a folder left by a killed process (dead pid) is swept at the next start
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    litter = scratch_root() / f"deeproot-demo-{dead.stdout.strip()}-abc"
    litter.mkdir()
    with scratch_dir("test"):
        assert not litter.exists()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\u202e리모넨", "리모넨"),
        ("\ufeff정제수", "정제수"),
        ("향료\x07", "향료"),
        ("\x1b[31m빨강\x1b[0m", "빨강"),
        ("\x1b]0;title\x07name", "name"),
        ("a\nb\tc", "a b\tc"),
    ],
)
def test_printable_strips_terminal_controls(raw, clean):
    assert printable(raw) == clean
