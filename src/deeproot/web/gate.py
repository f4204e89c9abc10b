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
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor

    from deeproot.web.balance import Board

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

    def __init__(self, queue: int, board: Board | None = None) -> None:
        self.queue = queue
        self.board = board  # where the other workers see how busy this one is (balance.py)
        self.admitted = 0  # running + waiting (+ reading their upload)
        self.done = 0
        self._seconds = 0.05  # moving average of one diagnosis
        self._lock: asyncio.Lock | None = None
        self._thread: ThreadPoolExecutor | None = None

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
        if self.board is not None:
            self.board.publish(self.admitted)
        try:
            yield
        finally:
            self.admitted -= 1
            if self.board is not None:
                self.board.publish(self.admitted)

    def reconnect_headers(self) -> dict[str, str]:
        """`Connection: close` for an answer when another worker is less busy (balance.py)."""
        from deeproot.web.balance import should_reconnect

        return {"Connection": "close"} if should_reconnect(self.board, self.admitted) else {}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in the worker's diagnosis thread when the slot is free (callers wait
        in arrival order).

        One thread of its own (not anyio's pool: a lighter hop per request). A caller cancelled
        while its diagnosis runs (the client went away) keeps the slot, and its queue place,
        until the thread is done, so the next diagnosis never starts beside it.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._thread is None:
            from concurrent.futures import ThreadPoolExecutor

            self._thread = ThreadPoolExecutor(1, thread_name_prefix="deeproot-diagnose")
        async with self._lock:
            t0 = time.perf_counter()
            running = asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await asyncio.wait({running})
                raise
            finally:
                self.done += 1
                self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)
