"""Snooze and the outcome of each run, on virtual time: not now, again in N seconds, no failure."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import pytest

from tickwork import (
    Execution,
    ExecutionResult,
    LeaseLostError,
    Scheduler,
    Snooze,
    current_lease,
)
from tickwork.coordination import InProcessCoordinator, MemoryStore
from tickwork.testing import DEFAULT_EPOCH, wait_for_runs, wait_until


def now() -> float:
    return asyncio.get_running_loop().time()


class Results:
    """An execution hook keeping every result."""

    def __init__(self) -> None:
        self.results: list[ExecutionResult] = []

    def on_start(self, execution: Execution) -> None:
        """Nothing to do at the start."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Keep the result."""
        self.results.append(result)


def scripted(*steps: BaseException | None) -> Any:
    """A coroutine function that raises (or returns, for None) each step in turn, then returns."""
    queue = list(steps)

    async def body() -> None:
        step = queue.pop(0) if queue else None
        if step is not None:
            raise step

    return body


@pytest.mark.parametrize("hooked", [False, True], ids=["fast-path", "hooked"])
async def test_snooze_from_a_coroutine_delays_the_next_run_without_a_failure(
    hooked: bool,
) -> None:
    """A coroutine's Snooze(3) ends its run snoozed; the next run starts 3 s after it ends."""
    starts: list[float] = []

    async def body() -> None:
        starts.append(now())
        if len(starts) == 1:
            raise Snooze(3, "tmdb unreachable (connect error)")

    async with Scheduler(hooks=[Results()] if hooked else []) as scheduler:
        scheduler.schedule_task("sync", 10.0, body)
        await asyncio.sleep(1.0)
        snoozed = scheduler.task_status("sync")
        await asyncio.sleep(3.0)
        after = scheduler.task_status("sync")
    assert starts == [0.0, 3.0]
    assert snoozed.state == "snoozed"
    assert (snoozed.runs, snoozed.failures, snoozed.consecutive_failures) == (1, 0, 0)
    assert snoozed.last_outcome == "snoozed"
    assert snoozed.last_outcome_reason == "tmdb unreachable (connect error)"
    assert snoozed.next_run_at == DEFAULT_EPOCH + 3.0
    assert snoozed.last_finished_at == DEFAULT_EPOCH
    assert snoozed.last_success_at is None  # a snooze is no success
    assert snoozed.last_error is None
    assert after.state == "scheduled"
    assert (after.runs, after.failures) == (2, 0)
    assert (after.last_outcome, after.last_outcome_reason) == ("success", None)
    assert after.last_success_at == DEFAULT_EPOCH + 3.0
    assert after.next_run_at == DEFAULT_EPOCH + 13.0


@pytest.mark.slow  # the body runs in a real worker thread; the virtual loop waits for it
async def test_snooze_from_a_plain_function_in_its_thread() -> None:
    """A plain function raising Snooze in its worker thread snoozes its task the same way."""
    threads: list[str] = []

    def body() -> None:
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            raise Snooze(30, "quota spent")

    async with Scheduler() as scheduler:
        scheduler.schedule_task("vacuum", 5.0, body, timeout=10)
        await wait_for_runs(scheduler, "vacuum", 1, timeout=5)
        snoozed = scheduler.task_status("vacuum")
        await wait_for_runs(scheduler, "vacuum", 2, timeout=60)
        after = scheduler.task_status("vacuum")
    assert threads[0] != threading.current_thread().name
    assert snoozed.state == "snoozed"
    assert (snoozed.last_outcome, snoozed.last_outcome_reason) == ("snoozed", "quota spent")
    assert snoozed.failures == 0
    assert snoozed.next_run_at is not None
    assert snoozed.last_finished_at is not None
    assert snoozed.next_run_at - snoozed.last_finished_at == pytest.approx(30.0)
    assert after.last_started_at is not None
    assert after.last_started_at - snoozed.last_finished_at >= 30.0
    assert (after.state, after.last_outcome, after.failures) == ("scheduled", "success", 0)


async def test_snooze_keeps_a_failure_streak_and_its_backoff_then_success_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A snooze between failures neither ends nor extends the streak; a success ends it."""
    caplog.set_level(logging.INFO, logger="tickwork.scheduler")
    body = scripted(None, ValueError("boom"), Snooze(7, "down"), ValueError("boom"), None)
    starts: list[float] = []

    async def recorded() -> None:
        starts.append(now())
        await body()

    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, recorded, max_backoff=100)
        await wait_for_runs(scheduler, "t", 3)
        snoozed = scheduler.task_status("t")
        await wait_for_runs(scheduler, "t", 5)
        recovered = scheduler.task_status("t")
    # 1 s after the success, 2 s backoff after the first failure, 7 s snooze, 4 s backoff.
    assert starts == [0.0, 1.0, 3.0, 10.0, 14.0]
    assert snoozed.state == "snoozed"
    assert (snoozed.failures, snoozed.consecutive_failures) == (1, 1)
    assert snoozed.last_error == "ValueError: boom"
    assert snoozed.last_success_at == DEFAULT_EPOCH
    assert (recovered.failures, recovered.consecutive_failures) == (2, 0)
    assert (recovered.last_outcome, recovered.last_error) == ("success", None)
    assert caplog.records[-1].getMessage() == "Task t recovered after 2 consecutive failures"


async def test_hooks_see_each_outcome_with_its_reason() -> None:
    """Hooks get "snoozed" with the reason and no error; a failure with its error text."""
    results = Results()
    async with Scheduler(hooks=[results]) as scheduler:
        scheduler.schedule_task("t", 1.0, scripted(Snooze(0.5, "later"), KeyError("k"), None))
        await wait_for_runs(scheduler, "t", 3)
    outcomes = [(r.outcome, r.reason, r.error) for r in results.results]
    assert outcomes[0] == ("snoozed", "later", None)
    assert outcomes[1][:2] == ("failure", "KeyError: 'k'")
    assert isinstance(outcomes[1][2], KeyError)
    assert outcomes[2] == ("success", None, None)


async def test_snooze_logs_one_debug_line_and_nothing_above(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A snooze is no error: one DEBUG line with its seconds and reason, nothing above DEBUG."""
    caplog.set_level(logging.DEBUG, logger="tickwork.scheduler")
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, scripted(Snooze(2.5, "provider down")))
        await asyncio.sleep(1.0)
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    assert "Task t snoozed for 2.5 s: provider down" in [r.getMessage() for r in caplog.records]


async def test_snooze_zero_runs_again_at_once() -> None:
    """Snooze(0) without a reason: the next run starts at once, whatever the interval."""
    starts: list[float] = []
    body = scripted(Snooze(0))

    async def recorded() -> None:
        starts.append(now())
        await body()

    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 60.0, recorded)
        await wait_for_runs(scheduler, "t", 2)
        status = scheduler.task_status("t")
    assert starts == [0.0, 0.0]
    assert status.last_outcome == "success"


async def test_reasons_are_bounded_to_500_characters() -> None:
    """A long snooze reason or error message is kept to 500 characters, ending in an ellipsis."""
    results = Results()
    async with Scheduler(hooks=[results]) as scheduler:
        scheduler.schedule_task("s", 1.0, scripted(Snooze(10, "x" * 10_000)))
        scheduler.schedule_task("f", 1.0, scripted(RuntimeError("y" * 10_000)))
        await asyncio.sleep(0.5)
        snoozed = scheduler.task_status("s")
        failed = scheduler.task_status("f")
    for reason in (snoozed.last_outcome_reason, failed.last_outcome_reason):
        assert reason is not None
        assert len(reason) == 500
        assert reason.endswith("…")
    assert [len(r.reason or "") for r in results.results] == [500, 500]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1,), ValueError, "seconds must be a finite number >= 0, got -1"),
        ((math.nan,), ValueError, "seconds must be a finite number >= 0, got nan"),
        ((math.inf,), ValueError, "seconds must be a finite number >= 0, got inf"),
        ((True,), TypeError, "seconds must be a real number of seconds, got bool True"),
        (("5",), TypeError, "seconds must be a real number of seconds, got str '5'"),
        ((5, 42), TypeError, "reason must be a str or None, got int 42"),
    ],
)
def test_snooze_rejects_bad_arguments_naming_them(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    """Snooze() checks its arguments at once; the message names the parameter and the value."""
    with pytest.raises(error) as caught:
        Snooze(*args)
    assert str(caught.value) == message


async def test_a_malformed_snooze_in_a_body_is_that_runs_failure() -> None:
    """A body whose Snooze() call is malformed fails that run with the ValueError."""

    async def body() -> None:
        raise Snooze(-5, "oops")

    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, body)
        await asyncio.sleep(0.5)
        status = scheduler.task_status("t")
    assert (status.state, status.failures, status.last_outcome) == ("scheduled", 1, "failure")
    assert status.last_error == "ValueError: seconds must be a finite number >= 0, got -5"


def test_snooze_reads_and_pickles_as_its_arguments() -> None:
    """str() says the seconds and reason; a pickled Snooze comes back equal in both."""
    import pickle

    snooze = pickle.loads(pickle.dumps(Snooze(45, "tmdb unreachable")))
    assert (snooze.seconds, snooze.reason) == (45.0, "tmdb unreachable")
    assert str(snooze) == "snoozed for 45 s: tmdb unreachable"
    assert str(Snooze(0.1)) == "snoozed for 0.1 s"


async def test_a_snoozed_task_is_not_in_flight_at_shutdown() -> None:
    """Shutdown during a snooze's wait returns at once, the task listed nowhere in the report."""
    async with Scheduler() as scheduler:
        scheduler.schedule_task("t", 1.0, scripted(Snooze(3600, "down")))
        await asyncio.sleep(1.0)
        assert scheduler.task_status("t").state == "snoozed"
        report = await scheduler.shutdown(grace=5)
        assert now() == 1.0
    assert report.to_dict() == {"finished": [], "cancelled": [], "abandoned": []}


async def test_a_body_snoozing_during_the_shutdown_grace_finishes_and_is_not_rescheduled() -> None:
    """A run in flight at shutdown that ends snoozed is "finished", reported, never run again."""
    results = Results()
    calls = 0

    async def body() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(2.0)
        raise Snooze(1, "shutting down")

    async with Scheduler(hooks=[results]) as scheduler:
        scheduler.schedule_task("t", 1.0, body)
        await asyncio.sleep(0.5)
        report = await scheduler.shutdown(grace=5)
        assert now() == 2.0
        await asyncio.sleep(10)
    assert report.finished == ("t",)
    assert calls == 1
    assert [(r.outcome, r.reason) for r in results.results] == [("snoozed", "shutting down")]


async def test_a_snooze_in_a_coordinated_run_is_the_release_wait() -> None:
    """A coordinated run that snoozes releases its lease with the snooze as the wait."""
    store = MemoryStore(heartbeat=1.0)
    a, b = (InProcessCoordinator(store, cluster="c", ttl=2.0, replica=r) for r in ("r0", "r1"))
    runs: list[tuple[str, float]] = []
    snoozes = [Snooze(30, "tmdb unreachable (connect error)")]

    def body(replica: str) -> Any:
        async def job() -> None:
            runs.append((replica, now()))
            if snoozes:
                await asyncio.sleep(1.0)
                raise snoozes.pop()

        return job

    async with Scheduler(coordinator=a) as sa, Scheduler(coordinator=b) as sb:
        sa.schedule_task("sync", 5.0, body("r0"))
        await wait_until(lambda: runs, timeout=5)
        sb.schedule_task("sync", 5.0, body("r1"))
        await wait_until(lambda: sa.task_status("sync").last_outcome == "snoozed", timeout=10)
        await asyncio.sleep(0.5)
        snoozed = sa.task_status("sync")
        view = await a.cluster_view()
        await wait_until(lambda: len(runs) >= 2, timeout=120)
    first_end = runs[0][1] + 1.0
    assert snoozed.state == "snoozed"
    assert snoozed.last_outcome_reason == "tmdb unreachable (connect error)"
    assert (snoozed.failures, snoozed.runs) == (0, 1)
    (row,) = view.tasks
    assert (row.last_outcome, row.failures) == ("snoozed", 0)
    # No replica ran it during the snooze; the next start follows it within the busy jitter.
    assert first_end + 30.0 <= runs[1][1] <= first_end + 30.1


@pytest.mark.parametrize("interval", [0.0, 0.5])
async def test_fast_and_hooked_paths_report_the_same_snoozes(interval: float) -> None:
    """The inline fast path and the hooked path record identical status around snoozes."""

    def make_body() -> Any:
        calls = 0

        async def body() -> None:
            nonlocal calls
            calls += 1
            if calls % 3 == 2:
                await asyncio.sleep(0.25)
            if calls % 4 == 0:
                raise Snooze(0.75 * (calls % 3), f"call {calls}")
            if calls % 7 == 0:
                raise ValueError(f"call {calls}")

        return body

    async with Scheduler() as fast, Scheduler(hooks=[Results()]) as hooked:
        fast.schedule_task("t", interval, make_body())
        hooked.schedule_task("t", interval, make_body())
        await asyncio.sleep(0.1)  # samples fall between events (multiples of 0.25 s)
        states = set()
        for _ in range(40):
            assert fast.task_status("t") == hooked.task_status("t")
            states.add(fast.task_status("t").state)
            await asyncio.sleep(0.37)
        status = fast.task_status("t")
    assert status.failures >= 1
    assert "snoozed" in states


async def test_a_lease_lost_run_is_its_outcome_not_a_success() -> None:
    """A coordinated run ending lease_lost shows that outcome and why, and is no last success."""

    async def job() -> None:
        lease = current_lease()
        assert lease is not None
        raise LeaseLostError(lease.task, lease.token, "refused by the data")

    coordinator = InProcessCoordinator(MemoryStore(heartbeat=1.0), cluster="c", replica="r0")
    async with Scheduler(coordinator=coordinator) as scheduler:
        scheduler.schedule_task("t", 5.0, job)
        await wait_until(lambda: scheduler.task_status("t").runs >= 1, timeout=10)
        status = scheduler.task_status("t")
    assert (status.last_outcome, status.last_outcome_reason) == (
        "lease_lost",
        "the body reported it",
    )
    assert status.last_success_at is None
    assert status.failures == 0
