"""Helpers for testing code that uses tickwork, deterministically and fast.

Virtual time: :class:`VirtualTimeLoop` is an asyncio event loop whose clock jumps straight to the
next timer whenever every task is idle, so "interval 30 s, three runs" takes no real time and
the times it records are exact. Its wall clock (used for the ``*_at`` fields of status) moves with
it. Run a coroutine on it with :func:`run`, or have pytest-asyncio (>= 1.4) run your async tests
on it from a ``conftest.py``::

    from tickwork.testing import VirtualTimeLoop

    def pytest_asyncio_loop_factories(config, item):
        return {"virtual": VirtualTimeLoop}

    async def test_refresh_runs_every_30_seconds():
        async with Scheduler() as scheduler:
            scheduler.schedule_task("refresh", 30, refresh)
            await wait_for_runs(scheduler, "refresh", 3)
            assert asyncio.get_running_loop().time() == 60

(No event-loop policy is offered: policies are deprecated from Python 3.14. With an older
pytest-asyncio, run the test body with :func:`run`.)

What is *not* virtual: I/O and threads. The loop never jumps while tickwork's worker threads are
running a plain-function task (it waits for them in real time), but it cannot see other threads
or sockets still in flight: code that waits on the network or on ``asyncio.to_thread`` may see
its timeouts fire early. Test such code on a normal loop with real time.

Clusters: :class:`SimulatedCluster` runs several coordinated schedulers sharing an in-process
store on the running loop, with crashes, partitions and clock skew, so your own singleton tasks
can be checked against the coordination guarantees on virtual time.

Waiting: :func:`wait_for_runs` and :func:`wait_until` wait for progress, bounded by a timeout
(in loop seconds, virtual or not), instead of sleeping a guessed amount. ``wait_until`` takes a
plain or an async predicate (an HTTP probe, a database query), so tests need no polling loop of
their own.
"""

from __future__ import annotations

import asyncio
import inspect
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from tickwork._hooks import Execution, ExecutionResult
from tickwork._scheduler import Scheduler
from tickwork._simulated import SimulatedCluster
from tickwork._threads import pool

__all__ = [
    "SimulatedCluster",
    "VirtualTimeLoop",
    "run",
    "wait_for_runs",
    "wait_until",
]

_T = TypeVar("_T")

# An arbitrary but fixed epoch for the virtual wall clock: 2026-01-01T00:00:00Z.
DEFAULT_EPOCH = 1_767_225_600.0


class _JumpingSelector(selectors.BaseSelector):
    """Wraps a real selector; a wait with nothing ready advances virtual time instead."""

    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # Read busy *before* polling: a worker writes its wake-up to the self-pipe and only then
        # decrements busy, so busy == 0 here means any finished job is visible to select(0).
        busy = pool.busy
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if busy:
            # A worker thread is running a task: its completion arrives through the self-pipe.
            # Wait for real, and let virtual time follow real time meanwhile.
            start = self._loop.real_time()
            ready = self._real.select(0.01 if timeout is None else min(timeout, 0.01))
            self._loop.advance(self._loop.real_time() - start)
            return ready
        if timeout is None:
            return self._real.select(None)
        self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: idle waits end at once and advance the clock.

    ``time()`` starts at 0. The wall clock seen by tickwork starts at ``epoch`` and advances with
    it. See the module docstring for what is not virtual.

    Args:
        epoch: Epoch seconds the virtual wall clock shows at loop time 0.
    """

    def __init__(self, epoch: float = DEFAULT_EPOCH) -> None:
        real = selectors.DefaultSelector()
        self._virtual_now = 0.0
        self._epoch = epoch
        super().__init__(_JumpingSelector(real, self))
        # asyncio compares timer deadlines with time() + resolution; keep jumps exact.
        self._clock_resolution = 1e-9

    def time(self) -> float:
        """The virtual monotonic time in seconds (0 at creation)."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward by ``seconds`` (>= 0)."""
        if seconds > 0:
            self._virtual_now += seconds

    def step_wall_clock(self, seconds: float) -> None:
        """Step the virtual wall clock by ``seconds`` (negative: back), the loop's clock not.

        What an NTP correction does, or a resume from suspend (the monotonic clock stops
        while the host sleeps; the wall clock does not): calendar tasks must notice it.
        """
        self._epoch += seconds

    def real_time(self) -> float:
        """The real monotonic clock, for measuring real waits."""
        return super().time()

    def tickwork_wall_time(self) -> float:
        """The virtual wall clock in epoch seconds (read by tickwork's status)."""
        return self._epoch + self._virtual_now


def run(main: Coroutine[Any, Any, _T], *, epoch: float = DEFAULT_EPOCH) -> _T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`, like ``asyncio.run``."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(epoch)) as runner:
        return runner.run(main)


class _Progress:
    """A hook that wakes waiters whenever an execution of the scheduler finishes."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def on_start(self, execution: Execution) -> None:
        self.changed.set()

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        self.changed.set()


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 60.0, poll: float = 0.01
) -> None:
    """Wait until ``predicate()`` is true, checking every ``poll`` seconds of loop time.

    Args:
        predicate: A zero-argument function returning a bool, or an awaitable of one (an
            ``async def`` probe is awaited each time; its own time counts against ``timeout``).
        timeout: Seconds of loop time (virtual on a :class:`VirtualTimeLoop`) before giving up.
        poll: Seconds of loop time between two checks.

    Raises:
        TimeoutError: Still false after ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(poll)


async def wait_for_runs(
    scheduler: Scheduler, name: str, runs: int, *, timeout: float = 86_400.0
) -> None:
    """Wait until task ``name`` has finished at least ``runs`` executions.

    It wakes on the scheduler's executions rather than polling, so on virtual time it returns
    exactly when the run finishes.

    Raises:
        TimeoutError: Fewer runs after ``timeout`` seconds of loop time.
        tickwork.SchedulerError: ``"not_scheduled"`` when the task is not (or no longer) scheduled.
    """
    progress = _Progress()
    scheduler.add_hook(progress)
    try:
        async with asyncio.timeout(timeout):
            while scheduler.task_status(name).runs < runs:
                progress.changed.clear()
                await progress.changed.wait()
    finally:
        scheduler.remove_hook(progress)
