"""Operators' controls on virtual time: pause_task, resume_task and trigger, uncoordinated.

Every start is recorded on the virtual clock, so each test says exactly when runs happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tickwork import Scheduler, SchedulerError, Snooze
from tickwork.testing import wait_until


def now() -> float:
    return asyncio.get_running_loop().time()


class Body:
    """A coroutine function recording its starts; each run lasts ``duration`` seconds."""

    def __init__(self, duration: float = 0.0, *, snooze: float | None = None) -> None:
        self.duration = duration
        self.snooze = snooze
        self.starts: list[float] = []
        self.ends: list[float] = []

    async def __call__(self) -> None:
        self.starts.append(now())
        if self.duration:
            await asyncio.sleep(self.duration)
        self.ends.append(now())
        if self.snooze is not None:
            raise Snooze(self.snooze, "provider down")


async def idle(seconds: float) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.parametrize("interval", [0.5, 10.0], ids=["sleeping", "parked"])
async def test_pause_while_waiting_stops_runs_and_resume_after_the_due_time_runs_once(
    interval: float,
) -> None:
    """Paused for 10 intervals: no run meanwhile; resumed: one run at once, then the interval."""
    body = Body()
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", interval, body)
        await idle(0.1)
        assert body.starts == [t0]
        status = await scheduler.pause_task("t", by="alice")
        assert status.state == "paused"
        assert status.paused_by == "alice"
        assert status.paused_at == pytest.approx(t0 + 0.1 + _epoch_offset())
        assert status.next_run_at is None
        assert scheduler.list_tasks() == ["t"]
        await idle(interval * 10)
        assert body.starts == [t0]  # nothing ran while paused
        resumed_at = now()
        status = await scheduler.resume_task("t")
        assert status.paused_at is None
        assert status.state in ("scheduled", "running")
        await idle(interval * 2.5)
        # One run at once (the due time passed long ago), then every interval from its end.
        assert body.starts == pytest.approx(
            [t0, resumed_at, resumed_at + interval, resumed_at + 2 * interval]
        )


def _epoch_offset() -> float:
    from tickwork import _clock

    return _clock.wall_offset(asyncio.get_running_loop())


async def test_resume_before_the_due_time_keeps_the_schedule() -> None:
    """Paused and resumed within one interval: the next run is at its usual time."""
    body = Body()
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 60.0, body)
        await idle(10)
        await scheduler.pause_task("t")
        await idle(10)
        await scheduler.resume_task("t")
        await idle(45)
        assert body.starts == [t0, t0 + 60.0]


async def test_pause_while_running_lets_the_run_finish_then_holds() -> None:
    """A run in progress ends normally (state "running" meanwhile); no run starts after it."""
    body = Body(duration=5.0)
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 0.0, body)
        await idle(1)
        status = await scheduler.pause_task("t")
        assert status.state == "running"
        assert status.paused_at is not None
        await idle(60)
        assert body.starts == [t0]
        assert body.ends == [t0 + 5.0]
        status = scheduler.task_status("t")
        assert status.state == "paused"
        assert status.runs == 1
        assert status.last_outcome == "success"


async def test_trigger_an_idle_task_runs_it_at_once_then_waits_its_interval() -> None:
    body = Body()
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 3600.0, body)
        await idle(100)
        status = await scheduler.trigger("t")
        assert status.next_run_at == pytest.approx(now() + _epoch_offset())
        await idle(1)
        assert body.starts == [t0, t0 + 100]
        assert scheduler.task_status("t").next_run_at == pytest.approx(
            t0 + 100 + 3600 + _epoch_offset()
        )


async def test_trigger_while_running_starts_the_next_right_after_without_overlap() -> None:
    """Three requests during a 10 s run make one run, right after it; never two at once."""
    body = Body(duration=10.0)
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 3600.0, body)
        await idle(2)
        for _ in range(3):
            status = await scheduler.trigger("t")
            assert status.run_requested
            assert status.state == "running"
        await idle(30)
        assert body.starts == [t0, t0 + 10.0]
        assert body.ends == [t0 + 10.0, t0 + 20.0]
        assert not scheduler.task_status("t").run_requested
        await idle(3600)
        assert body.starts[2] == pytest.approx(t0 + 20.0 + 3600.0)


async def test_trigger_while_running_on_the_fast_path_at_interval_zero_with_a_snooze() -> None:
    """At interval 0 a run that snoozes is followed at once when run-now was asked meanwhile."""
    body = Body(duration=1.0, snooze=100.0)
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 0.0, body)
        await idle(0.5)
        await scheduler.trigger("t")
        await idle(50)
        assert body.starts == [t0, t0 + 1.0]  # the second run snoozes for 100 s


async def test_trigger_a_paused_task_runs_it_once_and_it_stays_paused() -> None:
    body = Body()
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 10.0, body)
        await idle(1)
        await scheduler.pause_task("t", by="ops")
        await idle(100)
        status = await scheduler.trigger("t")
        await idle(100)
        assert body.starts == [t0, t0 + 101]
        status = scheduler.task_status("t")
        assert status.state == "paused"
        assert status.paused_by == "ops"


async def test_pause_a_snoozed_task_and_resume_keeps_the_snooze() -> None:
    """A snooze in force when paused still holds after resume; past its end, one run at once."""
    body = Body(snooze=100.0)
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 1.0, body)
        await idle(10)
        assert scheduler.task_status("t").state == "snoozed"
        await scheduler.pause_task("t")
        await idle(10)
        status = await scheduler.resume_task("t")
        assert status.state == "snoozed"
        await idle(100)
        assert body.starts == [t0, t0 + 100.0]
        await scheduler.pause_task("t")
        await idle(500)  # the second snooze ended meanwhile
        resumed = now()
        await scheduler.resume_task("t")
        await idle(1)
        assert body.starts == [t0, t0 + 100.0, resumed]


async def test_resume_of_a_snoozed_task_that_is_not_paused_changes_nothing() -> None:
    body = Body(snooze=100.0)
    async with Scheduler() as scheduler:
        t0 = now()
        scheduler.schedule_task("t", 1.0, body)
        await idle(10)
        status = await scheduler.resume_task("t")
        assert status.state == "snoozed"
        await idle(200)
        assert body.starts == [t0, t0 + 100.0, t0 + 200.0]


async def test_pause_twice_keeps_the_first_and_resume_of_a_running_task_is_harmless() -> None:
    body = Body(duration=5.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 10.0, body)
        await idle(1)
        await scheduler.resume_task("t")  # not paused: nothing happens
        first = await scheduler.pause_task("t", by="a")
        await idle(1)
        second = await scheduler.pause_task("t", by="b")
        assert (second.paused_at, second.paused_by) == (first.paused_at, "a")


async def test_cancel_a_paused_task_frees_its_name_and_a_new_task_starts_unpaused() -> None:
    body = Body()
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 10.0, body)
        await idle(1)
        await scheduler.pause_task("t")
        scheduler.cancel_task("t")
        assert scheduler.list_tasks() == []
        again = Body()
        scheduler.schedule_task("t", 10.0, again)
        await idle(1)
        assert len(again.starts) == 1
        assert scheduler.task_status("t").state == "scheduled"
        await idle(100)
        assert len(body.starts) == 1


ActionCall = Callable[[Scheduler, str], Awaitable[object]]
ACTIONS: dict[str, ActionCall] = {
    "pause": lambda s, n: s.pause_task(n),
    "resume": lambda s, n: s.resume_task(n),
    "trigger": lambda s, n: s.trigger(n),
}


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_an_unknown_task_is_refused_with_its_name_and_a_stable_code(action: str) -> None:
    async with Scheduler() as scheduler:
        with pytest.raises(SchedulerError, match="'nope' is not scheduled") as info:
            await ACTIONS[action](scheduler, "nope")
        assert info.value.code == "not_scheduled"
        assert info.value.task == "nope"
    with pytest.raises(SchedulerError) as info:
        await ACTIONS[action](scheduler, "nope")
    assert info.value.code == "shut_down"


async def test_a_calendar_task_paused_over_instants_runs_once_on_resume_within_grace() -> None:
    """Paused over three hourly instants: resumed 10 s after the last, it runs that one once."""
    pytest.importorskip("cronsim")
    body = Body()
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("c", "0 * * * *", body, misfire_grace=60)
        status = scheduler.task_status("c")
        assert status.next_run_at is not None
        first = status.next_run_at - _epoch_offset()
        await idle(first - now() + 1)
        assert len(body.starts) == 1
        await scheduler.pause_task("c")
        assert scheduler.task_status("c").next_run_at is None
        await idle(3 * 3600 - 1 + 10)  # 10 s after the third instant since
        assert len(body.starts) == 1
        await scheduler.resume_task("c")
        await idle(1)
        assert len(body.starts) == 2
        assert scheduler.task_status("c").skipped == 2
        await scheduler.trigger("c")  # run now: out of the instants
        await idle(1)
        assert len(body.starts) == 3
        status = scheduler.task_status("c")
        assert status.next_run_at == pytest.approx(first + 4 * 3600 + _epoch_offset())


async def test_pause_from_inside_the_task_holds_after_this_run() -> None:
    """The body pauses its own task (as an app might on a fatal condition)."""
    starts: list[float] = []
    scheduler = Scheduler()

    async def body() -> None:
        starts.append(now())
        await scheduler.pause_task("self", by="itself")

    async with scheduler:
        scheduler.schedule_task("self", 0.0, body)
        await wait_until(lambda: scheduler.task_status("self").state == "paused", timeout=5)
        await idle(10)
        assert len(starts) == 1


async def test_a_snoozing_calendar_task_runs_again_after_the_snooze_before_the_next_instant() -> (
    None
):
    """Snooze(600) in an hourly task: again 10 min later (no retry used up), then on the hour."""
    pytest.importorskip("cronsim")
    body = Body(snooze=600.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("c", "0 * * * *", body)
        status = scheduler.task_status("c")
        assert status.next_run_at is not None
        first = status.next_run_at - _epoch_offset()
        await idle(first - now() + 1)
        status = scheduler.task_status("c")
        assert status.state == "snoozed"
        assert status.next_run_at == pytest.approx(first + 600 + _epoch_offset())
        await idle(3600)
        # first, +600 (snoozed again), +1200, ... every 10 min within the hour, then the hour
        assert body.starts[:3] == pytest.approx([first, first + 600, first + 1200])
        assert first + 3600 in [pytest.approx(s) for s in body.starts]
        assert scheduler.task_status("c").failures == 0


async def test_a_calendar_task_snoozed_past_its_next_instant_waits_for_that_instant() -> None:
    pytest.importorskip("cronsim")
    body = Body(snooze=7200.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("c", "0 * * * *", body)
        status = scheduler.task_status("c")
        assert status.next_run_at is not None
        first = status.next_run_at - _epoch_offset()
        await idle(first - now() + 3601)
        assert body.starts == pytest.approx([first, first + 3600])


@pytest.mark.parametrize(
    ("by", "error", "message"),
    [
        (42, TypeError, "by must be a str or None, got int 42"),
        ("", ValueError, "by must be 1 to 200 printable characters, got 0"),
        ("eve\nadmin", ValueError, "printable characters, got 9"),
        ("x" * 201, ValueError, "printable characters, got 201"),
    ],
)
@pytest.mark.parametrize("action", ["pause_task", "resume_task", "trigger"])
async def test_a_bad_by_is_refused_naming_it_and_nothing_changes(
    action: str, by: object, error: type[Exception], message: str
) -> None:
    body = Body()
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 3600.0, body)
        await idle(1)
        with pytest.raises(error, match=message):
            await getattr(scheduler, action)("t", by=by)
        status = scheduler.task_status("t")
        assert status.state == "scheduled"
        assert not status.run_requested
        await idle(10)
        assert len(body.starts) == 1
