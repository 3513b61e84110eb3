"""Frozen snapshots the scheduler hands out: ``TaskStatus`` and ``ShutdownReport``.

They are copies taken at one moment; holding one never keeps scheduler state alive, and
``to_dict()`` gives plain JSON-safe data. ``*_at`` fields are epoch seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from tickwork._hooks import Outcome

__all__ = ["ShutdownReport", "TaskState", "TaskStatus"]

TaskState = Literal["scheduled", "running", "snoozed", "paused"]
"""What a task is doing: one type for the runner and for :class:`TaskStatus`.

- ``"scheduled"``: waiting for its next run (the interval, or the backoff after failures);
- ``"running"``: an execution is under way (or a timed-out plain function's thread still runs);
- ``"snoozed"``: waiting for its next run after a run that raised :class:`tickwork.Snooze`;
- ``"paused"``: paused by an operator (:meth:`tickwork.Scheduler.pause_task`): no run starts
  until :meth:`~tickwork.Scheduler.resume_task` (a run in progress shows ``"running"`` until
  it ends).

.. versionchanged:: 0.3.0
   ``"snoozed"``, ``"paused"``.
"""


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A snapshot of one scheduled task.

    Attributes:
        name: The task's name.
        interval: Seconds between one completion and the next start; None for a calendar
            task (``schedule_cron``).
        timeout: Seconds an execution may run, or None.
        state: ``"scheduled"`` (waiting for its next run), ``"running"``, or ``"snoozed"``
            (waiting for the next run after a :class:`tickwork.Snooze`). A plain function that
            timed out but whose thread has not returned yet is still ``"running"``: the next run
            waits for it.
        runs: Finished executions, whatever their outcome (cancelled ones excepted).
        failures: Executions that raised or timed out.
        consecutive_failures: Failures since the last success.
        last_started_at: When the latest execution started, or None before the first.
        last_finished_at: When the latest execution finished, or None.
        last_success_at: When the latest successful execution finished, or None.
        last_duration: Seconds the latest finished execution took, or None.
        last_error: ``"ExceptionType: message"`` of the latest failure while failures are
            consecutive; None after a success.
        next_run_at: When the next execution is due, or None while one is running or the
            task is paused.
        running_for: Seconds the current execution has been running, or None.
        last_outcome: How the latest finished execution ended (:data:`tickwork.Outcome`:
            ``"success"``, ``"failure"``, ``"timeout"``, ``"snoozed"``, ``"lease_lost"``), or
            None before the first.
        last_outcome_reason: That outcome in words, at most 500 characters: a failure's
            ``"Type: message"``, the timeout's message, the snooze's reason, why the lease was
            lost; None after a success.
        schedule: For a calendar task ``{"kind": "cron", "expression": ..., "tz": ...}``;
            None for an interval task.
        skipped: A calendar task's instants that did not run: they passed while a run was
            going, or were missed (suspend, downtime, a clock step, a pause) and coalesced into
            a newer one or older than ``misfire_grace``. Always 0 for an interval task.
        paused_at: When the task was paused (epoch seconds), or None when it is not paused.
            With a coordinator, the first pause cluster-wide, on the coordinator's clock.
        paused_by: Who paused it (the ``by`` given to ``pause_task``), or None.
        run_requested: A run-now request (:meth:`tickwork.Scheduler.trigger`) waits: for the
            run in progress to end, or, with a coordinator, for the task's lease.

    .. versionchanged:: 0.3.0
       ``last_outcome``, ``last_outcome_reason``, the states ``"snoozed"`` and ``"paused"``,
       ``schedule``, ``skipped``, ``paused_at``, ``paused_by`` and ``run_requested``.
    """

    name: str
    interval: float | None
    timeout: float | None
    state: TaskState
    runs: int
    failures: int
    consecutive_failures: int
    last_started_at: float | None
    last_finished_at: float | None
    last_success_at: float | None
    last_duration: float | None
    last_error: str | None
    next_run_at: float | None
    running_for: float | None
    last_outcome: Outcome | None = None
    last_outcome_reason: str | None = None
    schedule: dict[str, str] | None = None
    skipped: int = 0
    paused_at: float | None = None
    paused_by: str | None = None
    run_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as a JSON-safe dict, keyed by field name."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What :meth:`Scheduler.shutdown` did with the executions in flight.

    Attributes:
        finished: Tasks whose execution in flight finished within the grace period.
        cancelled: Tasks whose coroutine execution was cancelled when the grace period ran out.
        abandoned: Tasks whose plain function was still running in its worker thread at the end;
            threads cannot be stopped, so these may still be running.
    """

    finished: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    abandoned: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        """Return the report as a JSON-safe dict of lists."""
        return {
            "finished": list(self.finished),
            "cancelled": list(self.cancelled),
            "abandoned": list(self.abandoned),
        }
