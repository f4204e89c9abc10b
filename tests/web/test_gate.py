"""The diagnosis gate: one diagnosis at a time per worker, on the worker's own thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from deeproot.web.gate import Gate


def test_one_at_a_time_on_one_thread_even_when_a_caller_gives_up() -> None:
    gate = Gate(queue=4)
    started, release = threading.Event(), threading.Event()
    threads: list[str] = []

    def slow() -> int:
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        return 1

    def quick() -> int:
        threads.append(threading.current_thread().name)
        return 2

    async def scenario() -> int:
        first = asyncio.create_task(gate.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.005)
        first.cancel()  # the client went away while its diagnosis runs
        await asyncio.sleep(0.05)
        assert not first.done()  # it keeps the slot until the thread is done
        second = asyncio.create_task(gate.run(quick))
        await asyncio.sleep(0.05)
        assert not second.done() and threads == [threads[0]]  # queued, not beside it
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(scenario()) == 2
    assert gate.done == 2
    assert len(set(threads)) == 1 and threads[0].startswith("deeproot-diagnose")
