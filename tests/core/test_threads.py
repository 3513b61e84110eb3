"""Plain functions run in worker threads: they never block the loop and never overlap themselves."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from tickwork import Execution, ExecutionResult, Scheduler
from tickwork.testing import wait_for_runs, wait_until

pytestmark = pytest.mark.slow  # worker threads take real time; the loop follows it


async def test_plain_function_runs_in_a_worker_thread_while_the_loop_goes_on() -> None:
    """A blocking plain function runs off the loop; coroutines keep running meanwhile."""
    release = threading.Event()
    threads: list[str] = []

    def blocking() -> None:
        threads.append(threading.current_thread().name)
        release.wait(5)

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 5:
            release.set()

    async with Scheduler() as scheduler:
        scheduler.schedule_task("blocking", 100.0, blocking)
        scheduler.schedule_task("tick", 0.001, tick)
        await wait_for_runs(scheduler, "blocking", 1, timeout=10)
    assert threads == ["tickwork-worker"]
    assert ticks >= 5


async def test_timed_out_thread_keeps_the_task_running_and_is_never_overlapped() -> None:
    """After a thread timeout the task counts a failure, stays running, and waits for the thread."""
    release = threading.Event()
    active = 0
    most_active = 0
    calls = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal active, most_active, calls
        with lock:
            active += 1
            calls += 1
            most_active = max(most_active, active)
            first = calls == 1
        if first:
            release.wait(10)
        with lock:
            active -= 1

    async with Scheduler() as scheduler:
        scheduler.schedule_task("slow", 0.0, slow, timeout=0.05)
        await wait_until(lambda: scheduler.task_status("slow").failures == 1, timeout=10)
        status = scheduler.task_status("slow")
        assert status.state == "running"
        assert status.last_error is not None
        assert "still running in its thread" in status.last_error
        await asyncio.sleep(0.2)
        assert calls == 1  # no second start while the first thread runs
        release.set()
        await wait_for_runs(scheduler, "slow", 3, timeout=10)
    assert most_active == 1


async def test_hook_context_is_current_in_the_worker_thread() -> None:
    """A contextvar set by a hook's on_start is visible to the plain function in its thread."""
    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")
    seen: list[str] = []

    class Hook:
        def on_start(self, execution: Execution) -> None:
            current.set(f"run {execution.number}")

        def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
            pass

    async with Scheduler(hooks=[Hook()]) as scheduler:
        scheduler.schedule_task("ctx", 0.01, lambda: seen.append(current.get()))
        await wait_for_runs(scheduler, "ctx", 2, timeout=10)
    assert seen[:2] == ["run 1", "run 2"]


async def test_shutdown_abandons_a_stuck_thread_within_grace_plus_margin() -> None:
    """A function stuck in its thread is reported abandoned; shutdown still returns in time."""
    release = threading.Event()
    started = threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(30)

    scheduler = Scheduler()
    scheduler.schedule_task("stuck", 1.0, stuck)
    await wait_until(started.is_set, timeout=10)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    report = await scheduler.shutdown(grace=0.2)
    elapsed = loop.time() - begin
    release.set()
    assert report.abandoned == ("stuck",)
    assert report.cancelled == ()
    assert elapsed < 0.2 + 1.0 + 1.0  # grace, cancel margin, generous slack on a busy machine


async def test_plain_function_failure_is_caught_and_rescheduled() -> None:
    """An exception raised in the worker thread is recorded like any task failure."""

    def broken() -> None:
        raise LookupError("no such row")

    async with Scheduler() as scheduler:
        scheduler.schedule_task("broken", 0.01, broken)
        await wait_for_runs(scheduler, "broken", 2, timeout=10)
        status = scheduler.task_status("broken")
    assert status.failures >= 2
    assert status.last_error == "LookupError: no such row"
