"""Derived task facts (``overdue_by``, ``stuck``) and the metrics fed by executions."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from tickwork import Execution, ExecutionResult, Scheduler, TaskStatus
from tickwork.service import SchedulerMetrics
from tickwork.service._taskview import is_stuck, overdue_by, task_view
from tickwork.testing import wait_for_runs

NOW = 1_800_000_000.0

BASE = TaskStatus(
    name="sync",
    interval=30.0,
    timeout=None,
    state="scheduled",
    runs=3,
    failures=0,
    consecutive_failures=0,
    last_started_at=NOW - 40,
    last_finished_at=NOW - 39,
    last_success_at=NOW - 39,
    last_duration=1.0,
    last_error=None,
    next_run_at=NOW - 9,
    running_for=None,
)


def status(**changes: Any) -> TaskStatus:
    """A TaskStatus like BASE with ``changes``."""
    return dataclasses.replace(BASE, **changes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 9.0),
        ({"next_run_at": NOW + 5}, 0.0),
        ({"state": "running", "next_run_at": None, "running_for": 50.0}, 0.0),
        ({"next_run_at": None}, 0.0),
        ({"state": "snoozed"}, 9.0),
        ({"state": "paused"}, 0.0),
    ],
)
def test_overdue_by(changes: dict[str, Any], expected: float) -> None:
    """A waiting task past its next_run_at is overdue by the difference; others by 0."""
    assert overdue_by(status(**changes), NOW) == expected


@pytest.mark.parametrize(
    ("changes", "stuck_after", "expected"),
    [
        ({"state": "running", "running_for": 11.0, "timeout": 10.0}, 600.0, True),
        ({"state": "running", "running_for": 9.0, "timeout": 10.0}, 600.0, False),
        ({"state": "running", "running_for": 601.0}, 600.0, True),
        ({"state": "running", "running_for": 599.0}, 600.0, False),
        ({"state": "running", "running_for": 5.0}, 4.0, True),
        ({"running_for": None}, 0.001, False),
    ],
)
def test_is_stuck(changes: dict[str, Any], stuck_after: float, expected: bool) -> None:
    """Running past the timeout, or past stuck_after without a timeout, is stuck."""
    assert is_stuck(status(**changes), stuck_after) is expected


def test_task_view_adds_fields_and_cuts_errors() -> None:
    """The /status entry is to_dict() plus overdue_by and stuck, with last_error bounded."""
    view = task_view(status(last_error="E" * 2000, consecutive_failures=1), NOW, 600.0)
    assert set(view) == {*BASE.to_dict(), "overdue_by", "stuck"}
    assert view["overdue_by"] == 9.0
    assert view["stuck"] is False
    assert len(view["last_error"]) == 500


@pytest.mark.slow
async def test_metrics_count_runs_failures_and_durations() -> None:
    """Finished executions feed the counters and histograms; status feeds the gauges."""

    async def ok() -> None:
        return None

    def bad() -> None:
        raise OSError("disk")

    async with Scheduler() as scheduler:
        metrics = SchedulerMetrics(scheduler)
        scheduler.add_hook(metrics)
        scheduler.schedule_task("ok", 0.01, ok)
        scheduler.schedule_task("bad", 0.01, bad)
        await wait_for_runs(scheduler, "ok", 3, timeout=5)
        await wait_for_runs(scheduler, "bad", 3, timeout=5)
        registry = metrics.registry
        ok_runs = registry.get_sample_value(
            "tickwork_task_runs_total", {"task": "ok", "outcome": "success"}
        )
        assert ok_runs is not None
        assert ok_runs >= 3
        bad_failures = registry.get_sample_value("tickwork_task_failures_total", {"task": "bad"})
        assert bad_failures is not None
        assert bad_failures >= 3
        assert registry.get_sample_value("tickwork_task_failures_total", {"task": "ok"}) == 0
        count = registry.get_sample_value("tickwork_task_duration_seconds_count", {"task": "ok"})
        assert count is not None
        assert count >= 3
        last_success = registry.get_sample_value(
            "tickwork_task_last_success_timestamp_seconds", {"task": "ok"}
        )
        # Epoch fields are derived from the loop clock at each read: equal to the microsecond.
        assert last_success == pytest.approx(scheduler.task_status("ok").last_success_at, abs=1e-3)
        assert (
            registry.get_sample_value(
                "tickwork_task_last_success_timestamp_seconds", {"task": "bad"}
            )
            is None
        )
        overdue = registry.get_sample_value("tickwork_task_overdue_seconds", {"task": "ok"})
        assert overdue is not None
        assert 0.0 <= overdue < 1.0
        assert b"tickwork_task_lateness_seconds_bucket" in metrics.render()


async def test_metrics_drop_the_series_of_cancelled_tasks() -> None:
    """After cancel_task, a scrape drops the task's series; a scheduled task keeps its counts."""

    async def ok() -> None:
        return None

    async def bad() -> None:
        raise OSError("disk")

    async with asyncio.timeout(5), Scheduler() as scheduler:
        metrics = SchedulerMetrics(scheduler)
        scheduler.add_hook(metrics)
        scheduler.schedule_task("kept", 3600.0, ok)
        scheduler.schedule_task("gone", 3600.0, bad)
        await wait_for_runs(scheduler, "kept", 1)
        await wait_for_runs(scheduler, "gone", 1)
        assert 'task="gone"' in metrics.render().decode()
        scheduler.cancel_task("gone")
        body = metrics.render().decode()
        assert 'task="gone"' not in body
        assert 'task="kept"' in body
        registry = metrics.registry
        kept_runs = {"task": "kept", "outcome": "success"}
        assert registry.get_sample_value("tickwork_task_runs_total", kept_runs) == 1
        assert registry.get_sample_value("tickwork_task_failures_total", {"task": "kept"}) == 0
        count = registry.get_sample_value("tickwork_task_duration_seconds_count", {"task": "kept"})
        assert count == 1
        assert registry.get_sample_value("tickwork_task_running", {"task": "kept"}) == 0
        assert registry.get_sample_value("tickwork_task_paused", {"task": "kept"}) == 0
        await scheduler.pause_task("kept")
        metrics.render()
        assert registry.get_sample_value("tickwork_task_paused", {"task": "kept"}) == 1


def test_metrics_drop_a_late_finish_of_a_cancelled_task() -> None:
    """A run finishing after its task was cancelled is dropped at the next scrape."""
    scheduled = ["kept"]

    class Source:
        def status(self) -> list[TaskStatus]:
            return []

        def list_tasks(self) -> list[str]:
            return list(scheduled)

    metrics = SchedulerMetrics(Source())
    for name in ("kept", "gone"):
        execution = Execution(name, 30.0, 1, NOW, NOW, 0.0)
        metrics.on_start(execution)
        metrics.on_finish(execution, ExecutionResult("timeout", 1.0, NOW + 1, TimeoutError()))
    body = metrics.render().decode()
    assert 'task="gone"' not in body
    assert 'tickwork_task_failures_total{task="kept"} 1.0' in body
    assert 'tickwork_task_lateness_seconds_count{task="kept"} 1.0' in body
    scheduled.append("gone")
    execution = Execution("gone", 30.0, 2, NOW, NOW, 0.0)
    metrics.on_finish(execution, ExecutionResult("success", 1.0, NOW + 1, None))
    assert (
        'tickwork_task_runs_total{outcome="success",task="gone"} 1.0' in metrics.render().decode()
    )


def test_metrics_count_the_skipped_instants_of_calendar_tasks_only() -> None:
    """tickwork_task_skipped_instants_total: a calendar task's TaskStatus.skipped."""
    cron = dataclasses.replace(
        BASE, name="nightly", interval=None, schedule={"kind": "cron"}, skipped=3
    )
    interval = dataclasses.replace(BASE, name="every-minute")

    class Source:
        def status(self) -> list[TaskStatus]:
            return [cron, interval]

        def list_tasks(self) -> list[str]:
            return ["nightly", "every-minute"]

    metrics = SchedulerMetrics(Source())
    body = metrics.render().decode()
    assert 'tickwork_task_skipped_instants_total{task="nightly"} 3.0' in body
    assert 'tickwork_task_skipped_instants_total{task="every-minute"}' not in body
