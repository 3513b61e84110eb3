"""Worker threads for plain-function tasks.

A pool of daemon threads that grows on demand and shrinks when idle. Unlike the loop's default
executor it never queues a job behind busy workers: a task stuck in its thread holds one worker
and delays nobody else (a task never overlaps itself, so each task holds at most one). Daemon
threads also never keep the interpreter alive at exit, so a stuck function cannot wedge a
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["pool"]

_Job = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any], contextvars.Context
]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class WorkerPool:
    """Runs zero-argument functions in daemon threads, one future per call."""

    def __init__(self, idle_timeout: float = 30.0) -> None:
        self._idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Invariant: waiting workers == idle + queued jobs (each queued job claimed a worker).
        self._idle = 0
        self._busy = 0

    @property
    def busy(self) -> int:
        """Functions submitted and not yet returned (read by the virtual-time test loop)."""
        return self._busy

    def submit(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], context: contextvars.Context
    ) -> asyncio.Future[Any]:
        """Run ``context.run(fn)`` in a worker thread; the future settles on ``loop``."""
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._busy += 1
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put((loop, future, fn, context))
        if spawn:
            threading.Thread(target=self._work, name="tickwork-worker", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                continue  # a job was claimed for this worker just as it timed out
            loop, future, fn, context = job
            try:
                ok, value = True, context.run(fn)
            except BaseException as exc:  # handed to the awaiting coroutine, which decides
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, ok, value)
            # Only now: a virtual-time loop that sees busy == 0 must find the callback queued.
            with self._lock:
                self._busy -= 1
                self._idle += 1
            del job, future, fn, context, value


pool = WorkerPool()
