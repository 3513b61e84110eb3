"""Edge cases of the execution model: cancellation logging, interrupts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
import threading

import pytest

from tickwork import Scheduler
from tickwork.testing import wait_for_runs, wait_until


def now() -> float:
    """The running loop's (virtual) time."""
    return asyncio.get_running_loop().time()


async def test_held_back_failures_are_logged_when_the_task_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Identical failures awaiting the next summary are summarised when the task is cancelled."""
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise OSError("disk full")

    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("flaky", 1.0, failing)
        await asyncio.sleep(30.5)
        scheduler.cancel_task("flaky")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Task flaky failed: OSError: disk full",
        f"Task flaky failed {calls - 1} more times with the same error: OSError: disk full",
    ]
    assert calls == 31


async def test_shutdown_warns_about_a_task_it_cannot_cancel_and_cancels_the_rest(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure to cancel one task is a WARNING; shutdown still cancels the others."""

    async def job() -> None:
        pass

    scheduler = Scheduler()
    scheduler.schedule_task("a", 10.0, job)
    scheduler.schedule_task("b", 10.0, job)
    original = scheduler.cancel_task

    def cancel_failing_once(name: str) -> None:
        if name == "a":
            monkeypatch.setattr(scheduler, "cancel_task", original)
            raise RuntimeError("cannot cancel a")
        original(name)

    monkeypatch.setattr(scheduler, "cancel_task", cancel_failing_once)
    caplog.set_level(logging.WARNING, logger="tickwork.scheduler")
    await scheduler.shutdown(grace=1.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["Failed to cancel task a"]
    assert warnings[0].exc_info is not None
    assert "b" not in scheduler.list_tasks()


async def test_stuck_plain_function_does_not_delay_another_plain_function() -> None:
    """A plain function stuck in its thread never holds up another plain-function task."""
    release = threading.Event()
    started = threading.Event()
    ticks = 0

    def stuck() -> None:
        started.set()
        release.wait(20)

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    try:
        async with Scheduler() as scheduler:
            scheduler.schedule_task("stuck", 1.0, stuck)
            await wait_until(started.is_set, timeout=10)
            scheduler.schedule_task("tick", 0.001, tick)
            await wait_for_runs(scheduler, "tick", 20, timeout=10)
            assert scheduler.task_status("stuck").state == "running"
            release.set()
    finally:
        release.set()
    assert ticks >= 20


@pytest.mark.slow
def test_wall_clock_jump_does_not_move_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real loop, a wall clock jumping an hour ahead moves no start; epochs follow it."""
    import time

    from tickwork import _clock

    starts: list[float] = []

    async def job() -> None:
        starts.append(time.monotonic())

    async def main() -> tuple[float | None, float | None]:
        async with Scheduler() as scheduler:
            scheduler.schedule_task("t", 0.05, job)
            await wait_for_runs(scheduler, "t", 3, timeout=10)
            before = scheduler.task_status("t").next_run_at
            real_time = time.time
            monkeypatch.setattr(_clock.time, "time", lambda: real_time() + 3600)
            await wait_for_runs(scheduler, "t", 8, timeout=10)
            after = scheduler.task_status("t").next_run_at
            return before, after

    before, after = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert max(gaps) < 1.0  # no gap of an hour: the schedule runs on the monotonic clock
    assert before is not None
    assert after is not None
    assert after - before > 3000  # status epochs follow the wall clock


@pytest.mark.slow
def test_core_imports_only_the_standard_library() -> None:
    """Importing tickwork and tickwork.testing loads no third-party module."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import tickwork, tickwork.testing\n"
        "mods = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "extra = sorted(m for m in mods if m not in sys.stdlib_module_names and m != 'tickwork')\n"
        "print(','.join(extra))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == ""


async def test_debug_enabled_at_run_time_reaches_back_to_back_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Turning DEBUG on while an interval-0 task runs makes its runs log within a few runs."""
    runs = 0

    async def spin() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.001)  # let virtual time advance; the runs stay back to back

    caplog.set_level(logging.INFO, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("spin", 0.0, spin)
        await wait_until(lambda: runs >= 100, timeout=60)
        assert not [r for r in caplog.records if r.levelno == logging.DEBUG]
        caplog.set_level(logging.DEBUG, logger="tickwork.scheduler")
        switched = runs
        await wait_until(lambda: runs >= switched + 200, timeout=60)
    executing = [r for r in caplog.records if r.getMessage() == "Executing task: spin"]
    assert len(executing) >= 200 - 64
