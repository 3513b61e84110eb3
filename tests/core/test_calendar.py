"""Calendar tasks (``schedule_cron``) on virtual time: instants, DST, misfires, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from tickwork import CronSpec, Execution, ExecutionResult, Scheduler, SchedulerError
from tickwork._extras import MissingExtraError
from tickwork.testing import SimulatedCluster, VirtualTimeLoop, run, wait_for_runs


def at(text: str) -> float:
    """Epoch seconds of a UTC time written ``2026-03-29 01:00``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def wall() -> float:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    return loop.tickwork_wall_time()


def recorder(starts: list[str]) -> Callable[[], Coroutine[Any, Any, None]]:
    async def job() -> None:
        starts.append(utc(wall()))

    return job


def runs_between(
    start: str, days: float, expression: str, tz: str, **options: Any
) -> tuple[list[str], Scheduler]:
    """Run a calendar task on virtual time from ``start`` (UTC) for ``days``; its start times."""
    starts: list[str] = []

    async def scenario() -> Scheduler:
        scheduler = Scheduler()
        scheduler.schedule_cron("job", expression, recorder(starts), tz=tz, **options)
        await asyncio.sleep(days * 86_400)
        await scheduler.shutdown()
        return scheduler

    return starts, run(scenario(), epoch=at(start))


def test_quarter_hour_steps_run_on_the_quarter_hours_and_never_at_once() -> None:
    """``*/15`` runs at :00 :15 :30 :45, the first one after scheduling, not immediately."""
    starts, _ = runs_between("2026-01-01 00:05", 1 / 24, "*/15 * * * *", "UTC")
    assert starts == [
        "2026-01-01 00:15:00",
        "2026-01-01 00:30:00",
        "2026-01-01 00:45:00",
        "2026-01-01 01:00:00",
    ]


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        # Spring forward, 02:00 -> 03:00 CEST: 02:30 does not exist; it runs right after the jump.
        (
            "Europe/Rome",
            "30 2 * * *",
            "2026-03-27 12:00",
            ["03-28 01:30", "03-29 01:00", "03-30 00:30"],
        ),
        # Fall back, 03:00 CEST -> 02:00 CET: 02:30 happens twice; it runs at the first.
        (
            "Europe/Rome",
            "30 2 * * *",
            "2026-10-23 12:00",
            ["10-24 00:30", "10-25 00:30", "10-26 01:30"],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-06 12:00",
            ["03-07 07:30", "03-08 07:00", "03-09 06:30"],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-30 12:00",
            ["10-31 05:30", "11-01 05:30", "11-02 06:30"],
        ),
    ],
)
def test_a_daily_job_runs_once_each_day_across_dst(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    """A fixed-time daily job runs once a day across both 2026 DST changes, at cron's times."""
    starts, _ = runs_between(start, 3, expression, zone)
    assert [s[5:16] for s in starts] == expected


def test_a_step_job_follows_the_real_timeline_in_the_repeated_hour() -> None:
    """``*/30`` in New York on the fall-back night: every 30 real minutes, no duplicate."""
    starts, _ = runs_between("2026-11-01 04:40", 3 / 24, "*/30 * * * *", "America/New_York")
    assert [s[11:16] for s in starts] == ["05:00", "05:30", "06:00", "06:30", "07:00", "07:30"]


def test_a_step_job_has_no_burst_after_the_skipped_hour() -> None:
    """``*/30`` in New York on the spring-forward night: every 30 real minutes, no burst."""
    starts, _ = runs_between("2026-03-08 06:10", 2 / 24, "*/30 * * * *", "America/New_York")
    assert [s[11:16] for s in starts] == ["06:30", "07:00", "07:30", "08:00"]


def test_day_of_month_and_day_of_week_both_restricted_match_either() -> None:
    """``0 12 13 * 5`` runs on the 13th and on Fridays, as cron does."""
    starts, _ = runs_between("2026-01-01 00:00", 17, "0 12 13 * 5", "UTC")
    assert [s[:10] for s in starts] == ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"]


async def test_instants_that_pass_during_a_run_are_skipped_and_counted() -> None:
    """A run that lasts 150 s skips the two minutes it covers; the next starts after it."""
    starts: list[str] = []

    async def slow() -> None:
        starts.append(utc(wall()))
        await asyncio.sleep(150)

    async with Scheduler() as scheduler:
        scheduler.schedule_cron("slow", "* * * * *", slow)
        await wait_for_runs(scheduler, "slow", 2)
        status = scheduler.task_status("slow")
    assert starts == ["2026-01-01 00:01:00", "2026-01-01 00:04:00"]
    assert status.skipped == 4  # 00:02, 00:03 during the first run; 00:05, 00:06 in the second


async def test_missed_instants_within_the_grace_run_once() -> None:
    """A wall clock stepped 2 h forward: the newest missed instant runs once, within 60 s."""
    starts: list[str] = []
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("hourly", "0 * * * *", recorder(starts))
        await asyncio.sleep(1800)
        loop.step_wall_clock(2 * 3600)  # now 02:30
        await asyncio.sleep(61)
        status = scheduler.task_status("hourly")
    assert len(starts) == 1
    assert "2026-01-01 02:30:00" <= starts[0] <= "2026-01-01 02:31:00"
    assert status.skipped == 1  # 01:00, coalesced into 02:00
    assert status.next_run_at == at("2026-01-01 03:00")


async def test_missed_instants_older_than_the_grace_are_skipped_and_counted() -> None:
    """With misfire_grace 600 s, instants 30 and 90 minutes old are skipped, not run."""
    starts: list[str] = []
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("hourly", "0 * * * *", recorder(starts), misfire_grace=600)
        await asyncio.sleep(1800)
        loop.step_wall_clock(2 * 3600)
        await asyncio.sleep(61)
        status = scheduler.task_status("hourly")
    assert starts == []
    assert status.skipped == 2
    assert status.next_run_at == at("2026-01-01 03:00")


async def test_a_wall_clock_stepped_back_never_repeats_an_instant() -> None:
    """After the 01:00 run the clock goes back 30 min: 01:00 does not run again; 02:00 does."""
    starts: list[str] = []
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("hourly", "0 * * * *", recorder(starts))
        await asyncio.sleep(3600 + 600)  # 01:10
        loop.step_wall_clock(-1800)  # 00:40
        await asyncio.sleep(1800 + 3600)
    assert starts == ["2026-01-01 01:00:00", "2026-01-01 02:00:00"]


async def test_a_resume_from_suspend_catches_up_once_within_a_minute() -> None:
    """A host suspended over the 03:00 instant (wall jumps, loop clock does not) runs it once."""
    starts: list[str] = []
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("nightly", "0 3 * * *", recorder(starts))
        await asyncio.sleep(2 * 3600)  # 02:00
        loop.step_wall_clock(3600 + 1200)  # suspended until 03:20
        await asyncio.sleep(3600)
    assert len(starts) == 1
    assert "2026-01-01 03:20:00" <= starts[0] <= "2026-01-01 03:21:00"


async def test_a_failed_run_is_retried_with_backoff_before_the_next_instant() -> None:
    """retries=2: a run failing twice is retried after 1 s and 2 s, then succeeds."""
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(wall())
        if len(starts) < 3:
            raise RuntimeError("boom")

    async with Scheduler() as scheduler:
        scheduler.schedule_cron("flaky", "0 * * * *", flaky, retries=2, max_backoff=60)
        await wait_for_runs(scheduler, "flaky", 3)
        status = scheduler.task_status("flaky")
    first = at("2026-01-01 01:00")
    assert [s - first for s in starts] == [0.0, 1.0, 3.0]
    assert status.failures == 2
    assert status.consecutive_failures == 0


async def test_retries_stop_after_the_limit_until_the_next_instant() -> None:
    """retries=1 with a body that always fails: two runs per instant."""
    starts: list[str] = []

    async def broken() -> None:
        starts.append(utc(wall()))
        raise RuntimeError("always")

    async with Scheduler() as scheduler:
        scheduler.schedule_cron("broken", "0 * * * *", broken, retries=1)
        await asyncio.sleep(2 * 3600 + 60)
    assert starts == [
        "2026-01-01 01:00:00",
        "2026-01-01 01:00:00",
        "2026-01-01 02:00:00",
        "2026-01-01 02:00:00",
    ]


async def test_the_leap_day_job_is_next_due_on_29_february_2028() -> None:
    """``0 0 29 2 *`` scheduled in 2026 is next due on 2028-02-29 00:00 UTC."""
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("leap", "0 0 29 2 *", recorder([]))
        assert scheduler.task_status("leap").next_run_at == at("2028-02-29 00:00")


async def test_status_shows_the_expression_and_zone_and_no_interval() -> None:
    """A calendar task's status: interval None, schedule {kind, expression, tz}, JSON-safe."""
    async with Scheduler() as scheduler:
        scheduler.schedule_cron("rome", "0 3 * * *", recorder([]), tz="Europe/Rome")
        status = scheduler.task_status("rome")
    assert status.interval is None
    assert status.schedule == {"kind": "cron", "expression": "0 3 * * *", "tz": "Europe/Rome"}
    assert status.next_run_at == at("2026-01-01 02:00")
    assert json.loads(json.dumps(status.to_dict()))["schedule"]["tz"] == "Europe/Rome"


async def test_macros_and_cron_specs_register_like_schedule_cron() -> None:
    """``@daily`` through schedule_tasks(CronSpec) runs at midnight, in the same name space."""
    starts: list[str] = []
    async with Scheduler() as scheduler:
        scheduler.schedule_tasks([CronSpec("d", "@daily", recorder(starts))])
        with pytest.raises(SchedulerError) as caught:
            scheduler.schedule_task("d", 1.0, recorder([]))
        assert caught.value.code == "already_scheduled"
        await wait_for_runs(scheduler, "d", 1, timeout=2 * 86_400)
    assert starts == ["2026-01-02 00:00:00"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 1 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 1,9", "day-of-week: 9 is out of range 0-7"),
        ("0 0 * foo *", "month: 'foo' is not a valid value"),
        ("0 0 * *", "expression must have 5 fields"),
        ("@often", "expression must have 5 fields"),
    ],
)
async def test_an_invalid_expression_names_the_field_and_value(
    expression: str, message: str
) -> None:
    """schedule_cron raises ValueError naming the bad field and value; nothing is registered."""
    async with Scheduler() as scheduler:
        with pytest.raises(ValueError, match=message):
            scheduler.schedule_cron("bad", expression, recorder([]))
        assert scheduler.list_tasks() == []


async def test_an_unknown_zone_is_named() -> None:
    """An unknown IANA zone raises ValueError naming it."""
    async with Scheduler() as scheduler:
        with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
            scheduler.schedule_cron("bad", "0 3 * * *", recorder([]), tz="Mars/Olympus")


async def test_without_the_cron_extra_one_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cronsim installed, schedule_cron raises one error naming tickwork[cron]."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cronsim" else real(name)
    )
    async with Scheduler() as scheduler:
        with pytest.raises(MissingExtraError, match=r"pip install 'tickwork\[cron\]'"):
            scheduler.schedule_cron("c", "0 3 * * *", recorder([]))


async def test_an_instant_runs_once_across_replicas_and_again_after_a_holder_crash() -> None:
    """Three replicas run each quarter-hour once; a crashed holder's instant reruns once, fenced."""
    cluster = SimulatedCluster(3, ttl=30)
    runs: list[tuple[str, str]] = []
    crash_at = "2026-01-01 00:30:00"

    async def job() -> None:
        now = utc(wall())
        runs.append((now, "ok" if cluster.fenced_write() else "refused"))
        if now.startswith(crash_at[:16]) and len(runs) == 2:
            await asyncio.sleep(3600)  # the holder is crashed while it waits here

    cluster.schedule_cron("quarter", "*/15 * * * *", job)
    await asyncio.sleep(1800 + 5)  # 00:30:05, the holder is inside the 00:30 run
    holder = next(
        i
        for i, r in enumerate(cluster.replicas)
        if r.scheduler.task_status("quarter").state == "running"
    )
    await cluster.crash(holder)
    await asyncio.sleep(3600)
    await cluster.shutdown()
    minutes = [when[:16] for when, _ in runs]
    assert minutes[0] == "2026-01-01 00:15"
    assert minutes[1] == minutes[2] == "2026-01-01 00:30"  # rerun once, after the lease expired
    assert runs[2][0] >= "2026-01-01 00:30:30"
    assert minutes[3:] == [f"2026-01-01 {h:02d}:{m:02d}" for h, m in _quarters(45, 4)]
    assert not cluster.refused


def _quarters(first_minute: int, count: int) -> list[tuple[int, int]]:
    return [divmod(first_minute + 15 * i, 60) for i in range(count)]


async def test_a_restarted_replica_never_reruns_an_instant_and_catches_up_a_missed_one() -> None:
    """A lone coordinated replica: a restart does not rerun 01:00; 02:00, missed, runs once."""
    from tickwork.coordination import InProcessCoordinator, MemoryStore

    store = MemoryStore()
    starts: list[str] = []

    def replica() -> Scheduler:
        scheduler = Scheduler(coordinator=InProcessCoordinator(store, replica="r", ttl=30))
        scheduler.schedule_cron("hourly", "0 * * * *", recorder(starts))
        return scheduler

    first = replica()
    await wait_for_runs(first, "hourly", 1)
    await first.shutdown()
    await asyncio.sleep(5400)  # down over 02:00, back at 02:30
    second = replica()
    await asyncio.sleep(120)
    await second.shutdown()
    assert starts == ["2026-01-01 01:00:00", "2026-01-01 02:30:00"]


async def test_hooks_see_the_instant_as_due_time_and_a_timeout_as_the_outcome() -> None:
    """A calendar run reaches the hooks like an interval run: due_at is the instant."""
    seen: list[tuple[float, str]] = []

    class Hook:
        def on_start(self, execution: Execution) -> None:
            pass

        def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
            seen.append((execution.due_at, result.outcome))

    async def stuck() -> None:
        await asyncio.sleep(600)

    async with Scheduler(hooks=[Hook()]) as scheduler:
        scheduler.schedule_cron("stuck", "0 * * * *", stuck, timeout=5)
        await wait_for_runs(scheduler, "stuck", 1)
        status = scheduler.task_status("stuck")
    assert seen == [(at("2026-01-01 01:00"), "timeout")]
    assert status.last_error == "TimeoutError: execution exceeded its timeout of 5 s"


async def test_a_cluster_down_longer_than_the_grace_skips_the_missed_instant() -> None:
    """A coordinated replica back 30 min after a missed 04:00 (grace 10 min) waits for 06:00."""
    from tickwork.coordination import InProcessCoordinator, MemoryStore

    store = MemoryStore()
    starts: list[str] = []

    def replica() -> Scheduler:
        scheduler = Scheduler(coordinator=InProcessCoordinator(store, replica="r", ttl=30))
        scheduler.schedule_cron("two-hourly", "0 */2 * * *", recorder(starts), misfire_grace=600)
        return scheduler

    first = replica()
    await wait_for_runs(first, "two-hourly", 1)  # 02:00
    await first.shutdown()
    await asyncio.sleep(2 * 3600 + 1800)  # down over 04:00, back at 04:30
    second = replica()
    await asyncio.sleep(120)
    assert starts == ["2026-01-01 02:00:00"]
    assert second.task_status("two-hourly").skipped == 1
    await wait_for_runs(second, "two-hourly", 1)
    await second.shutdown()
    assert starts == ["2026-01-01 02:00:00", "2026-01-01 06:00:00"]


async def test_a_follower_shows_the_clusters_next_instant() -> None:
    """On the replica that does not hold the task, next_run_at follows the instants too."""
    cluster = SimulatedCluster(2, ttl=30)
    cluster.schedule_cron("hourly", "0 * * * *", recorder([]))
    await asyncio.sleep(2 * 3600 + 120)  # 02:02
    for replica in cluster.replicas:
        assert replica.scheduler.task_status("hourly").next_run_at == at("2026-01-01 03:00")
    await cluster.shutdown()


async def test_a_pending_retry_is_not_moved_by_a_wall_clock_step() -> None:
    """A clock stepped back 1 h while a retry waits: the retry still starts 1 s later."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    started: list[float] = []

    async def fails_once() -> None:
        started.append(loop.time())
        if len(started) == 1:
            loop.step_wall_clock(-3600)
            raise RuntimeError("first attempt")

    async with Scheduler() as scheduler:
        scheduler.schedule_cron("t", "0 * * * *", fails_once, retries=1, max_backoff=60)
        await wait_for_runs(scheduler, "t", 2)
    assert started == [3600.0, 3601.0]
