"""One lock per store (crawl, build and refresh take it), held with `flock` on a lock file.

The kernel drops an `flock` when its holder dies, so a lock left by a killed process is never a
deadlock: the next run sees the file, finds it unlocked, warns that it takes over a stale lock
(naming the dead holder's pid and start time) and goes on. The file holds the holder's pid, host,
start time and command as JSON, so `LockedError` can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from deeproot.errors import InputError, LockedError

log = logging.getLogger(__name__)

LOCK_NAME = ".deeproot.lock"


def _read_holder(fd: int) -> dict[str, object]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, object]) -> str:
    if not holder:
        return "another process"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"(started {holder.get('started', '?')}: {holder.get('command', '?')})"
    )


class StoreLock:
    """An exclusive lock on a folder (a crawl store, a catalog's folder).

    Use as a context manager: `with StoreLock(folder, "catalog build"): ...`.

    Args:
        folder: the folder to lock; the lock file is `folder/.deeproot.lock`.
        what: what the holder does, shown to anyone who finds the lock taken.
        wait: seconds to wait for the lock (None or 0: fail at once with LockedError).
    """

    def __init__(self, folder: str | os.PathLike[str], what: str, wait: float | None = None):
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self.wait = wait or 0.0
        self._fd: int | None = None
        self.took_over: dict[str, object] | None = None

    def acquire(self) -> StoreLock:
        """Take the lock, waiting up to `wait` seconds; raise LockedError if it stays taken."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(
                f"cannot create the lock file {self.path}: {exc.strerror}; "
                "check that the folder is writable"
            ) from exc
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"{self.path.parent} is locked by {_describe(holder)}; "
                        "wait for it to finish, or pass --wait SECONDS to queue behind it"
                    ) from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        previous = _read_holder(fd)
        if previous and previous.get("pid") != os.getpid():
            self.took_over = previous
            log.warning("taking over a stale lock on %s left by %s", self.path.parent,
                        _describe(previous))
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.what,
            "argv": sys.argv[:8],
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the file stays; an empty file means 'released cleanly')."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
