"""One diagnosis at a time per worker, with a bounded queue in front of it.

A request is admitted (`Gate.admit`) before its body is read, so a full queue costs the server
nothing: it answers 503 with a `Retry-After` estimated from recent diagnosis times. An admitted
request waits its turn (FIFO) for the one slot and runs the diagnosis in a thread, so the event
loop keeps answering health checks, pages and refusals meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """The worker's queue is full; `retry_after` is a whole number of seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"the service is busy (every diagnosis slot and queue place is taken); "
            f"retry in {retry_after} s"
        )
        self.retry_after = retry_after


class Gate:
    """At most one running diagnosis and `queue` waiting ones."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.admitted = 0  # running + waiting (+ reading their upload)
        self.done = 0
        self._seconds = 0.05  # moving average of one diagnosis
        self._lock: asyncio.Lock | None = None

    @property
    def capacity(self) -> int:
        return 1 + self.queue

    def retry_after(self) -> int:
        return max(1, math.ceil(self.admitted * self._seconds))

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for the request's whole life.

        Raises:
            Overloaded: no place left.
        """
        if self.admitted >= self.capacity:
            raise Overloaded(self.retry_after())
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a thread when the slot is free (callers wait in arrival order)."""
        import anyio.to_thread

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            t0 = time.perf_counter()
            try:
                return await anyio.to_thread.run_sync(fn, *args)
            finally:
                self.done += 1
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)
