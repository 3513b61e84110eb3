"""tickwork.testing: virtual time and wait helpers behave as documented."""

from __future__ import annotations

import asyncio
import time

import pytest

from tickwork import Scheduler
from tickwork import testing as tw_testing


def test_run_returns_the_result_and_takes_no_real_time_for_virtual_hours() -> None:
    """run() on virtual time: three runs of an hourly task finish at once, at exact times."""
    starts: list[float] = []

    async def hourly() -> None:
        starts.append(asyncio.get_running_loop().time())

    async def main() -> int:
        async with Scheduler() as scheduler:
            scheduler.schedule_task("hourly", 3600, hourly)
            await tw_testing.wait_for_runs(scheduler, "hourly", 3)
            return scheduler.task_status("hourly").runs

    began = time.monotonic()
    assert tw_testing.run(main()) == 3
    assert time.monotonic() - began < 5
    assert starts == [0.0, 3600.0, 7200.0]


def test_virtual_wall_clock_moves_with_loop_time() -> None:
    """The epoch seconds in status follow virtual time from the chosen epoch."""

    async def main() -> tuple[float | None, float | None]:
        async with Scheduler() as scheduler:
            scheduler.schedule_task("t", 90, lambda: None)
            await tw_testing.wait_for_runs(scheduler, "t", 2)
            status = scheduler.task_status("t")
            return status.last_started_at, status.next_run_at

    started, next_run = tw_testing.run(main(), epoch=1_000_000.0)
    assert started is not None
    assert next_run is not None
    assert started == pytest.approx(1_000_090.0, abs=0.5)
    assert next_run == pytest.approx(started + 90, abs=0.5)


async def test_wait_until_times_out_in_loop_time() -> None:
    """wait_until raises TimeoutError once its (virtual) timeout has passed."""
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await tw_testing.wait_until(lambda: False, timeout=30)
    assert loop.time() == pytest.approx(30, abs=0.02)


async def test_wait_for_runs_raises_for_an_unknown_task() -> None:
    """wait_for_runs on a name that is not scheduled raises SchedulerError at once."""
    from tickwork import SchedulerError

    async with Scheduler() as scheduler:
        with pytest.raises(SchedulerError) as info:
            await tw_testing.wait_for_runs(scheduler, "nope", 1)
    assert info.value.code == "not_scheduled"


async def test_wait_until_awaits_an_async_predicate() -> None:
    """wait_until accepts an async predicate and returns as soon as it answers true."""
    loop = asyncio.get_running_loop()
    checks: list[float] = []

    async def ready() -> bool:
        await asyncio.sleep(0.5)
        checks.append(loop.time())
        return len(checks) == 3

    await tw_testing.wait_until(ready, timeout=10, poll=1.0)
    assert checks == [0.5, 2.0, 3.5]


def test_no_event_loop_policy_is_offered() -> None:
    """tickwork.testing offers no event-loop policy (deprecated from Python 3.14)."""
    assert not any(
        isinstance(value, type) and issubclass(value, asyncio.AbstractEventLoopPolicy)
        for value in vars(tw_testing).values()
    )
