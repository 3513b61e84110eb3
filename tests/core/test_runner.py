"""The runner's contract: whatever a body raises or returns, the task stays and says so."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from typing import Any

import pytest

from tickwork import Execution, ExecutionResult, Scheduler, bind
from tickwork._spec import is_async_callable
from tickwork.testing import wait_for_runs, wait_until


class _Custom(BaseException):
    """A BaseException subclass of the user's own."""


async def noop() -> None:
    """A trivial coroutine task."""


class Results:
    """An execution hook keeping every result."""

    def __init__(self) -> None:
        self.results: list[tuple[str, ExecutionResult]] = []

    def on_start(self, execution: Execution) -> None:
        """Nothing to do at the start."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Keep the result."""
        self.results.append((execution.task, result))


@pytest.mark.parametrize(
    "error",
    [
        SystemExit(3),
        KeyboardInterrupt(),
        GeneratorExit(),
        _Custom("mine"),
        asyncio.CancelledError(),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit", "custom", "CancelledError"],
)
async def test_base_exception_from_a_body_is_a_failure_and_the_task_stays(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """A body raising any BaseException fails that run, logged with its name; it keeps running."""
    calls = 0

    async def body() -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise error

    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("rogue", 1.0, body)
        scheduler.schedule_task("other", 1.0, noop)
        await wait_for_runs(scheduler, "rogue", 4)
        status = scheduler.task_status("rogue")
        assert scheduler.list_tasks() == ["rogue", "other"]
        assert status.failures == 2
        assert status.state == "scheduled"
        assert status.next_run_at is not None
    assert calls == 4
    assert status.runs == 4
    assert caplog.records[0].getMessage() == f"Task rogue failed: {type(error).__name__}: {error}"
    assert caplog.records[0].task == "rogue"  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_system_exit_from_a_plain_function_is_a_failure_and_the_task_stays() -> None:
    """A plain function raising SystemExit in its thread fails that run; the task runs again."""

    def leave() -> None:
        raise SystemExit(2)

    async with Scheduler() as scheduler:
        scheduler.schedule_task("leave", 0.01, leave)
        await wait_for_runs(scheduler, "leave", 3, timeout=10)
        status = scheduler.task_status("leave")
    assert status.failures == status.runs >= 3
    assert status.last_error == "SystemExit: 2"


async def test_hooks_see_a_body_asking_the_process_to_exit() -> None:
    """The hooks get the body's SystemExit as a failure's error: how a runtime learns of it."""
    results = Results()

    async def leave() -> None:
        raise SystemExit(5)

    async with Scheduler(hooks=[results]) as scheduler:
        scheduler.schedule_task("leave", 10.0, leave)
        await wait_for_runs(scheduler, "leave", 1)
    (task, result), *_ = results.results
    assert task == "leave"
    assert result.outcome == "failure"
    assert isinstance(result.error, SystemExit)
    assert result.error.code == 5


async def test_shutdown_cancelling_a_body_is_not_a_failure() -> None:
    """A cancellation the scheduler asked for (shutdown) ends the run as cancelled, uncounted."""
    results = Results()
    started = asyncio.Event()

    async def long() -> None:
        started.set()
        await asyncio.sleep(3600)

    scheduler = Scheduler(hooks=[results])
    scheduler.schedule_task("long", 1.0, long)
    await started.wait()
    report = await scheduler.shutdown(grace=1.0)
    assert report.cancelled == ("long",)
    assert [(task, result.outcome) for task, result in results.results] == [("long", "cancelled")]


class Service:
    """A service with an async method, and an attribute whose __call__ is async."""

    def __init__(self) -> None:
        self.refreshed: list[int] = []
        self.job = AsyncCallable(self)

    async def refresh(self, days: int) -> None:
        await asyncio.sleep(1)
        self.refreshed.append(days)


class AsyncCallable:
    """An object whose __call__ is a coroutine function."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, days: int = 1) -> None:
        self.service.refreshed.append(-days)


async def test_plain_function_returning_a_coroutine_awaits_it_on_the_loop() -> None:
    """lambda: svc.refresh(6) runs refresh to its end: no silent success, no unawaited warning."""
    service = Service()
    async with Scheduler() as scheduler:
        scheduler.schedule_task("refresh", 10.0, lambda: service.refresh(6))
        await wait_for_runs(scheduler, "refresh", 2)
        status = scheduler.task_status("refresh")
    assert service.refreshed == [6, 6]
    assert status.failures == 0
    assert status.last_duration == pytest.approx(1.0, abs=0.05)


async def test_returned_coroutine_that_fails_or_overruns_fails_the_run() -> None:
    """An awaitable returned by a plain function counts its error and the task's timeout."""

    async def fail() -> None:
        raise ValueError("in the coroutine")

    async def overrun() -> None:
        await asyncio.sleep(60)

    async with Scheduler() as scheduler:
        scheduler.schedule_task("fail", 10.0, lambda: fail())
        scheduler.schedule_task("overrun", 100.0, lambda: overrun(), timeout=2)
        await wait_for_runs(scheduler, "overrun", 1)
        failing = scheduler.task_status("fail")
        overran = scheduler.task_status("overrun")
    assert failing.last_error == "ValueError: in the coroutine"
    assert overran.last_error == "TimeoutError: execution exceeded its timeout of 2 s"
    assert overran.last_duration == pytest.approx(2.0, abs=0.05)


async def test_bind_to_an_attribute_with_async_call_is_awaited() -> None:
    """bind() on an attribute whose __call__ is async gives a coroutine function that runs."""
    service = Service()
    bound = bind(service, "job", days=4)
    assert inspect.iscoroutinefunction(bound)
    async with Scheduler() as scheduler:
        scheduler.schedule_task("job", 10.0, bound)
        await wait_for_runs(scheduler, "job", 1)
    assert service.refreshed == [-4]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Service.refresh, True),
        (functools.partial(functools.partial(Service.refresh, Service()), 2), True),
        (AsyncCallable(Service()), True),
        (functools.partial(AsyncCallable(Service()), 3), True),
        (Service().refresh, True),
        (lambda: None, False),
        (print, False),
        (Service, False),
    ],
    ids=[
        "coroutine function",
        "nested partial",
        "async __call__",
        "partial of async __call__",
        "bound method",
        "lambda",
        "builtin",
        "class",
    ],
)
def test_one_detector_for_async_callables(target: Any, expected: bool) -> None:
    """is_async_callable sees through partials, bound methods and async __call__."""
    assert is_async_callable(target) is expected


async def test_task_failing_every_other_run_logs_one_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing every other run for 45 s logs one traceback and one recovery, not one per streak."""
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise OSError("disk full")

    caplog.set_level(logging.INFO, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("flaky", 1.0, flaky)
        await asyncio.sleep(44.5)
        scheduler.cancel_task("flaky")
    assert calls == 45
    messages = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert messages == [
        ("ERROR", "Task flaky failed: OSError: disk full", True),
        ("INFO", "Task flaky recovered after 1 consecutive failures", False),
        ("ERROR", "Task flaky failed 22 more times with the same error: OSError: disk full", False),
    ]


async def test_a_distinct_error_logs_its_traceback_again_after_five_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same error shows its traceback once per five minutes; summaries count the rest."""

    async def failing() -> None:
        raise OSError("disk full")

    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("failing", 10.0, failing)
        await asyncio.sleep(305)
    # Runs at 0, 10, ..., 300: tracebacks at 0 and 300, a summary each minute between.
    traceback = ("Task failing failed: OSError: disk full", True)
    summary = "Task failing failed {} more times with the same error: OSError: disk full"
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        traceback,
        *[(summary.format(6), False)] * 4,
        (summary.format(5), False),
        traceback,
    ]


async def test_timed_out_coroutine_logs_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A timeout logs 'timed out after N s' with no traceback of tickwork's internals."""

    async def hang() -> None:
        await asyncio.sleep(3600)

    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("hang", 100.0, hang, timeout=30)
        await wait_for_runs(scheduler, "hang", 1)
    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("Task hang timed out after 30 s", None)
    ]


@pytest.mark.slow
async def test_timed_out_plain_function_logs_one_line_and_hooks_see_a_plain_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A timed-out plain function logs one line; the hook's error is a plain TimeoutError."""
    release = threading.Event()
    results = Results()
    caplog.set_level(logging.ERROR, logger="tickwork.scheduler")
    async with Scheduler(hooks=[results]) as scheduler:
        scheduler.schedule_task("stuck", 100.0, lambda: release.wait(10), timeout=0.05)
        await wait_until(lambda: bool(results.results), timeout=10)
        release.set()
    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "Task stuck timed out after 0.05 s (the function is still running in its thread; "
            "the next run waits for it)",
            None,
        )
    ]
    error = results.results[0][1].error
    assert type(error) is TimeoutError
    assert results.results[0][1].outcome == "timeout"


@pytest.mark.parametrize("interval", [0.0, 0.5, 2.0])
async def test_fast_and_hooked_paths_report_the_same_status(interval: float) -> None:
    """The inline fast path and the hooked path record identical status, failures included."""

    def make_body() -> Any:
        calls = 0

        async def body() -> None:
            nonlocal calls
            calls += 1
            if calls % 3 == 2:
                await asyncio.sleep(0.25)
            if calls % 5 == 0:
                raise ValueError(f"call {calls}")

        return body

    async with Scheduler() as fast, Scheduler(hooks=[Results()]) as hooked:
        fast.schedule_task("t", interval, make_body())
        hooked.schedule_task("t", interval, make_body())
        # No wait_for_runs here: its hook would take the fast scheduler off its fast path.
        # Sample times fall between events (which lie on multiples of 0.25 s).
        await asyncio.sleep(0.1)
        for _ in range(40):
            assert fast.task_status("t") == hooked.task_status("t")
            await asyncio.sleep(0.37)
        status = fast.task_status("t")
    assert status.runs >= 5
    assert status.failures >= 1


async def test_scheduler_repr_counts_running_executions_only() -> None:
    """repr(scheduler) counts tasks whose body is running, not idle ones waiting."""
    release = asyncio.Event()
    async with Scheduler() as scheduler:
        scheduler.schedule_task("idle", 0.5, noop)
        scheduler.schedule_task("busy", 0.5, release.wait)
        await asyncio.sleep(0.2)
        assert repr(scheduler) == "<Scheduler open tasks=2 running=1>"
        release.set()


async def test_hook_added_during_a_run_hears_of_its_end() -> None:
    """wait_for_runs called while a run is under way returns when that run finishes."""

    async def two_seconds() -> None:
        await asyncio.sleep(2)

    async with Scheduler() as scheduler:
        scheduler.schedule_task("slow", 10.0, two_seconds)
        await asyncio.sleep(1)
        await wait_for_runs(scheduler, "slow", 1)
        assert asyncio.get_running_loop().time() == 2.0
