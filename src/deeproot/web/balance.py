"""Spreading keep-alive connections evenly over the workers of one `deeproot serve`.

Workers share one listening socket and the kernel hands each new connection to whichever worker
accepts first, so a handful of keep-alive clients (a phone app, a proxy's pool, a benchmark)
often lands 5/3 or 6/2 on two workers and stays there: the busier worker's queue, and so its
clients' latency, is up to three times the other's, and p95 is set by it (benchmarks/serve.py
prints the split; docs/benchmarks.md has the figures).

So the workers publish how many requests each holds (running + waiting) on a small shared board
(a file of fixed slots, memory-mapped; `serve` creates it and names it in
`DEEPROOT_SERVE_BOARD`), and a worker that answers a diagnosis while it holds more waiting
requests than the least busy live worker asks the client to reconnect (`Connection: close` on
that answer, which is complete). The new connection goes to whichever worker accepts it; repeated
at most once per answer, the split settles where no worker holds more than the lightest. With one
worker, without the board (tests, `create_app()` in another server) or with
`DEEPROOT_SERVE_REBALANCE=0`, nothing changes.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from pathlib import Path

from deeproot.errors import InputError
from deeproot.files import alive

log = logging.getLogger(__name__)

ENV = "DEEPROOT_SERVE_BOARD"
SWITCH = "DEEPROOT_SERVE_REBALANCE"
SLOTS = 64  # `serve --workers` allows 1 to 64
_SLOT = struct.Struct("<ii")  # pid, requests held


def enabled() -> bool:
    """`DEEPROOT_SERVE_REBALANCE` (`1`, the default, or `0`: leave connections where they land,
    e.g. behind a load balancer that spreads requests itself).

    Raises:
        InputError: any other value.
    """
    raw = os.environ.get(SWITCH, "").strip()
    if raw not in ("", "0", "1"):
        raise InputError(f"{SWITCH}={raw[:40]!r}: give 1 (rebalance, the default) or 0")
    return raw != "0"


def create(path: Path) -> Path:
    """Write an empty board (every slot free) at `path`."""
    path.write_bytes(bytes(SLOTS * _SLOT.size))
    return path


class Board:
    """This worker's slot on the shared board, and a look at the others'."""

    def __init__(self, path: str | os.PathLike[str], pid: int | None = None) -> None:
        import fcntl  # POSIX; elsewhere `from_env` serves without a board

        self.pid = pid if pid is not None else os.getpid()
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            if os.fstat(fd).st_size != SLOTS * _SLOT.size:
                raise ValueError(f"{path} is not a worker board")
            self._map = mmap.mmap(fd, SLOTS * _SLOT.size)
            fcntl.flock(fd, fcntl.LOCK_EX)  # claiming a slot: one worker at a time
            try:
                self.slot = self._claim()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        self.publish(0)

    def _claim(self) -> int:
        free = None
        for i in range(SLOTS):
            pid, _ = _SLOT.unpack_from(self._map, i * _SLOT.size)
            if pid == self.pid:
                return i
            if free is None and (pid == 0 or not alive(pid)):
                free = i  # never used, or a worker that died (uvicorn starts a new one)
        if free is None:
            raise ValueError("every slot of the worker board is taken")
        _SLOT.pack_into(self._map, free * _SLOT.size, self.pid, 0)
        return free

    def publish(self, held: int) -> None:
        """Say how many requests this worker holds now (one aligned 4-byte store)."""
        struct.pack_into("<i", self._map, self.slot * _SLOT.size + 4, held)

    def lightest_other(self) -> int | None:
        """The fewest requests any other live worker holds; None when there is no other."""
        least = None
        for i in range(SLOTS):
            if i == self.slot:
                continue
            pid, held = _SLOT.unpack_from(self._map, i * _SLOT.size)
            if pid == 0 or not alive(pid):
                continue
            least = held if least is None else min(least, held)
        return least

    def close(self) -> None:
        _SLOT.pack_into(self._map, self.slot * _SLOT.size, 0, 0)
        self._map.close()


def from_env() -> Board | None:
    """This worker's board when `serve` runs several workers, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        return Board(path)
    except (OSError, ValueError, ImportError) as exc:  # an optimisation: serve without it
        log.warning("worker board %s unusable (%s); connections are not rebalanced", path, exc)
        return None


def should_reconnect(board: Board | None, held: int) -> bool:
    """Whether the client just answered should reconnect: this worker holds `held` requests
    (not counting the one answered) and another live worker holds fewer."""
    if board is None or held == 0:
        return False
    least = board.lightest_other()
    return least is not None and held > least
