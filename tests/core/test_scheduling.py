"""The seed's execution model, made exact: on virtual time every start time is asserted exactly."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest

from tickwork import Scheduler, SchedulerError
from tickwork.testing import DEFAULT_EPOCH, wait_for_runs, wait_until


def now() -> float:
    """The running loop's (virtual) time."""
    return asyncio.get_running_loop().time()


class Recorder:
    """A task that records its start and end times, and can be told to fail or to take time."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.fail_with: Exception | None = None

    async def __call__(self) -> None:
        self.starts.append(now())
        try:
            if self.duration:
                await asyncio.sleep(self.duration)
            if self.fail_with is not None:
                raise self.fail_with
        finally:
            self.ends.append(now())


async def test_first_run_is_immediate_then_fixed_delay_after_completion() -> None:
    """Runs start at once, then `interval` after each completion: 0, 7, 14 for 2 s + 5 s."""
    task = Recorder(duration=2.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 5.0, task)
        await wait_for_runs(scheduler, "t", 3)
    assert task.starts == [0.0, 7.0, 14.0]
    assert task.ends == [2.0, 9.0, 16.0]


async def test_run_immediately_false_waits_one_interval() -> None:
    """With run_immediately=False the first start is one interval after scheduling."""
    task = Recorder()
    async with Scheduler() as scheduler:
        await asyncio.sleep(1.5)
        scheduler.schedule_task("t", 10.0, task, run_immediately=False)
        assert scheduler.task_status("t").runs == 0
        await wait_for_runs(scheduler, "t", 2)
    assert task.starts == [11.5, 21.5]


async def test_name_is_registered_before_first_run_and_cancellable_from_inside() -> None:
    """A task can cancel itself from inside its very first execution; it never runs again."""
    starts: list[float] = []
    scheduler = Scheduler()

    async def once() -> None:
        starts.append(now())
        scheduler.cancel_task("self-cancelling")

    scheduler.schedule_task("self-cancelling", 1.0, once)
    assert scheduler.list_tasks() == ["self-cancelling"]
    await asyncio.sleep(100)
    assert starts == [0.0]
    assert scheduler.list_tasks() == []
    await scheduler.shutdown()


async def test_failure_is_logged_with_traceback_and_rescheduled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception is logged at ERROR with the name and traceback, and the task runs again."""
    task = Recorder()
    task.fail_with = ValueError("provider down")
    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("sync", 1.0, task)
        await wait_for_runs(scheduler, "sync", 2)
        status = scheduler.task_status("sync")
    assert task.starts == [0.0, 1.0]
    assert (status.runs, status.failures, status.consecutive_failures) == (2, 2, 2)
    assert status.last_error == "ValueError: provider down"
    first = caplog.records[0]
    assert first.levelno == logging.ERROR
    assert first.getMessage() == "Task sync failed: ValueError: provider down"
    assert first.exc_info is not None
    assert first.exc_info[1] is task.fail_with
    assert first.__dict__["task"] == "sync"


async def test_debug_lines_before_and_after_each_successful_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG 'Executing task: NAME' comes before a run, 'Task NAME completed successfully' after."""
    caplog.set_level(logging.DEBUG, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("lists", 60.0, Recorder())
        await wait_for_runs(scheduler, "lists", 2)
    messages = [r.getMessage() for r in caplog.records if r.name == "tickwork.scheduler"]
    assert messages[:4] == [
        "Executing task: lists",
        "Task lists completed successfully",
        "Executing task: lists",
        "Task lists completed successfully",
    ]


async def test_tasks_are_independent_of_hung_failing_and_cancelled_ones() -> None:
    """A hung, a failing and a cancelled task do not move another task's start times."""
    steady = Recorder(duration=0.5)
    failing = Recorder()
    failing.fail_with = RuntimeError("boom")
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    async with Scheduler() as scheduler:
        scheduler.schedule_task("hung", 0.0, hang)
        scheduler.schedule_task("failing", 0.1, failing)
        scheduler.schedule_task("cancelled", 0.2, Recorder(duration=3))
        scheduler.schedule_task("steady", 2.0, steady)
        await asyncio.sleep(1)
        scheduler.cancel_task("cancelled")
        await wait_for_runs(scheduler, "steady", 4)
        assert scheduler.task_status("hung").state == "running"
        report = await scheduler.shutdown(grace=0.5)
    assert steady.starts == pytest.approx([0.0, 2.5, 5.0, 7.5])
    assert failing.starts[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert "hung" in report.cancelled


async def test_cancel_lets_the_current_execution_finish_without_rescheduling() -> None:
    """cancel_task during a run frees the name at once; the run finishes and is not repeated."""
    task = Recorder(duration=3.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, task)
        await asyncio.sleep(1.0)
        scheduler.cancel_task("t")
        assert scheduler.list_tasks() == []
        await asyncio.sleep(30)
    assert task.starts == [0.0]
    assert task.ends == [3.0]


async def test_rescheduled_name_is_a_new_task_while_the_old_run_finishes() -> None:
    """A name scheduled again during the old run's finish has its own starts and counts."""
    old = Recorder(duration=5.0)
    new = Recorder(duration=0.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, old)
        await asyncio.sleep(1.0)
        scheduler.cancel_task("t")
        scheduler.schedule_task("t", 1.0, new)
        assert scheduler.task_status("t").runs == 0
        await asyncio.sleep(9.5)
        status = scheduler.task_status("t")
    assert old.starts == [0.0]
    assert old.ends == [5.0]
    assert new.starts == [1.0 + i for i in range(10)]
    assert status.runs == 10
    assert status.failures == 0


async def test_coroutine_timeout_cancels_counts_failure_and_reschedules() -> None:
    """A coroutine past its timeout is cancelled, counted as a TimeoutError failure, rescheduled."""
    task = Recorder(duration=10.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("slow", 5.0, task, timeout=2.0)
        await wait_for_runs(scheduler, "slow", 2)
        status = scheduler.task_status("slow")
    assert task.starts == [0.0, 7.0]
    assert task.ends == [2.0, 9.0]
    assert status.failures == 2
    assert status.last_error is not None
    assert status.last_error.startswith("TimeoutError: execution exceeded its timeout of 2 s")


async def test_timeout_error_raised_by_the_body_is_an_ordinary_failure() -> None:
    """A TimeoutError the body raises itself is reported as such, not as the task's timeout."""
    task = Recorder()
    task.fail_with = TimeoutError("upstream timed out")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, task, timeout=30)
        await wait_for_runs(scheduler, "t", 1)
        assert scheduler.task_status("t").last_error == "TimeoutError: upstream timed out"


async def test_jitter_adds_a_bounded_random_wait_but_not_to_the_first_run() -> None:
    """Every wait lies in [interval, interval + jitter]; the first run is still immediate."""
    random.seed(7)
    task = Recorder()
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 10.0, task, jitter=2.0)
        await wait_for_runs(scheduler, "t", 30)
    assert task.starts[0] == 0.0
    gaps = [b - a for a, b in zip(task.ends, task.starts[1:], strict=False)]
    assert all(10.0 <= gap <= 12.0 for gap in gaps)
    assert len({round(gap, 6) for gap in gaps}) > 20  # actually random, not a constant


async def test_backoff_doubles_per_failure_up_to_cap_and_resets_on_success() -> None:
    """Waits after failures go 2, 4, 8, 10, 10 (cap) and back to the interval after a success."""
    task = Recorder()
    task.fail_with = OSError("down")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, task, max_backoff=10.0)
        await wait_for_runs(scheduler, "t", 6)
        task.fail_with = None
        await wait_for_runs(scheduler, "t", 8)
    gaps = [b - a for a, b in zip(task.ends, task.starts[1:], strict=False)]
    assert gaps == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 1.0]


async def test_backoff_from_interval_zero_starts_at_one_second() -> None:
    """With interval 0, backoff waits 1, 2, 4 s rather than spinning."""
    task = Recorder()
    task.fail_with = OSError("down")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 0.0, task, max_backoff=60.0)
        await wait_for_runs(scheduler, "t", 4)
    assert task.starts == [0.0, 1.0, 3.0, 7.0]


async def test_identical_failures_are_summarised_and_recovery_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 0.1 s task failing the same way logs one traceback, then a summary per minute."""
    task = Recorder()
    task.fail_with = ConnectionError("refused")
    caplog.set_level(logging.INFO, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("search", 0.1, task)
        await wait_until(lambda: len(task.starts) >= 1300, timeout=200)
        task.fail_with = KeyError("other")
        await wait_for_runs(scheduler, "search", len(task.ends) + 2)
        task.fail_with = None
        await wait_for_runs(scheduler, "search", len(task.ends) + 1)
    records = [r for r in caplog.records if r.name == "tickwork.scheduler"]
    with_traceback = [r for r in records if r.exc_info]
    assert [r.getMessage() for r in with_traceback] == [
        "Task search failed: ConnectionError: refused",
        "Task search failed: KeyError: 'other'",
    ]
    summaries = [r.getMessage() for r in records if "more times" in r.getMessage()]
    prefix = "Task search failed "
    suffix = " more times with the same error: "
    # 130 s of identical failures at 10/s: one summary per full minute, one when it changes.
    assert [m.split(suffix)[1] for m in summaries] == [
        "ConnectionError: refused",
        "ConnectionError: refused",
        "ConnectionError: refused",
        "KeyError: 'other'",
    ]
    counts = [int(m.removeprefix(prefix).split(suffix)[0]) for m in summaries]
    assert counts[0] == pytest.approx(600, abs=1)
    assert sum(counts) + len(with_traceback) == len(task.ends) - 1  # every failure accounted
    assert records[-1].levelno == logging.INFO
    assert records[-1].getMessage() == (
        f"Task search recovered after {len(task.ends) - 1} consecutive failures"
    )
    assert len(records) == 2 + len(summaries) + 1


async def test_status_is_a_frozen_json_safe_snapshot_in_epoch_seconds() -> None:
    """status() reports every field; *_at are epoch seconds; to_dict() is JSON-serialisable."""
    task = Recorder(duration=2.0)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("a", 10.0, task, timeout=5)
        scheduler.schedule_task("b", 1.0, Recorder())
        await asyncio.sleep(1.0)
        running = scheduler.task_status("a")
        await asyncio.sleep(2.0)
        waiting = scheduler.task_status("a")
        assert [s.name for s in scheduler.status()] == ["a", "b"]
    assert running.state == "running"
    assert running.running_for == 1.0
    assert running.next_run_at is None
    assert running.last_started_at == DEFAULT_EPOCH
    assert waiting.to_dict() == {
        "name": "a",
        "interval": 10.0,
        "timeout": 5.0,
        "state": "scheduled",
        "runs": 1,
        "failures": 0,
        "consecutive_failures": 0,
        "last_started_at": DEFAULT_EPOCH,
        "last_finished_at": DEFAULT_EPOCH + 2.0,
        "last_success_at": DEFAULT_EPOCH + 2.0,
        "last_duration": 2.0,
        "last_error": None,
        "next_run_at": DEFAULT_EPOCH + 12.0,
        "running_for": None,
        "last_outcome": "success",
        "last_outcome_reason": None,
        "schedule": None,
        "skipped": 0,
        "paused_at": None,
        "paused_by": None,
        "run_requested": False,
    }
    json.dumps(waiting.to_dict())
    with pytest.raises(AttributeError):
        waiting.runs = 5  # type: ignore[misc]


async def test_internal_error_surfaces_in_the_loop_exception_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in the scheduler's own code reaches the loop's exception handler, not a log line."""
    from tickwork import _execution

    seen: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))

    def broken(self: object, *args: object) -> None:
        raise ZeroDivisionError("scheduler bug")

    monkeypatch.setattr(_execution.TaskRunner, "_end", broken)
    failing = Recorder()
    failing.fail_with = ValueError("the task's own failure, recorded by the broken _end")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, failing)
        await wait_until(lambda: bool(seen), timeout=10)
        assert scheduler.list_tasks() == []
    assert isinstance(seen[0]["exception"], ZeroDivisionError)
    assert "tickwork internal error" in str(seen[0]["message"])


async def test_hooks_see_every_execution_with_lateness_and_outcome() -> None:
    """Hooks get start and finish of each execution with due time, lateness and outcome."""
    from tickwork import Execution, ExecutionResult

    events: list[tuple[str, object]] = []

    class Hook:
        def on_start(self, execution: Execution) -> None:
            events.append(("start", execution))

        def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
            events.append(("finish", result))

    class BrokenHook:
        def on_start(self, execution: Execution) -> None:
            raise RuntimeError("hook bug")

        def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
            raise RuntimeError("hook bug")

    task = Recorder(duration=1.0)
    async with Scheduler(hooks=[BrokenHook(), Hook()]) as scheduler:
        scheduler.schedule_task("t", 2.0, task)
        await wait_for_runs(scheduler, "t", 2)
        task.fail_with = ValueError("x")
        await wait_for_runs(scheduler, "t", 3)
    starts = [e for kind, e in events if kind == "start"]
    finishes = [e for kind, e in events if kind == "finish"]
    assert isinstance(starts[1], Execution)
    assert (starts[1].number, starts[1].started_at, starts[1].due_at) == (
        2,
        DEFAULT_EPOCH + 3.0,
        DEFAULT_EPOCH + 3.0,
    )
    assert starts[1].lateness == 0.0
    assert [f.outcome for f in finishes[:3]] == ["success", "success", "failure"]  # type: ignore[attr-defined]
    assert finishes[0].duration == 1.0  # type: ignore[attr-defined]


async def test_shutdown_waits_for_runs_in_flight_then_reports() -> None:
    """shutdown waits up to grace: short runs finish, long ones are cancelled; then it is closed."""
    async with Scheduler() as scheduler:
        scheduler.schedule_task("quick", 100.0, Recorder(duration=2.0))
        scheduler.schedule_task("long", 100.0, Recorder(duration=60.0))
        scheduler.schedule_task("idle", 100.0, Recorder(), run_immediately=False)
        await asyncio.sleep(0.5)
        start = now()
        report = await scheduler.shutdown(grace=5.0)
        assert now() - start == pytest.approx(5.0)
        assert report.finished == ("quick",)
        assert report.cancelled == ("long",)
        assert report.abandoned == ()
        assert scheduler.list_tasks() == []
        with pytest.raises(SchedulerError) as info:
            scheduler.schedule_task("late", 1.0, Recorder())
        assert info.value.code == "shut_down"
        assert await scheduler.shutdown() is report


async def test_shutdown_is_bounded_when_a_body_ignores_cancellation() -> None:
    """A body that swallows CancelledError cannot keep shutdown from returning."""

    released = False

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(1000)
            except asyncio.CancelledError:
                if released:  # let the test's own loop teardown finish
                    raise

    scheduler = Scheduler()
    scheduler.schedule_task("stubborn", 1.0, stubborn)
    await asyncio.sleep(0.1)
    start = now()
    report = await scheduler.shutdown(grace=2.0)
    assert now() - start <= 2.0 + 0.5 + 1e-6
    assert report.cancelled == ("stubborn",)
    released = True
