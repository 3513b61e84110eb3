"""The instrumentation seam: hooks told when each execution starts and finishes.

The service uses it for metrics, tracing and the recent-executions history; tests use it to wait
for progress. Both calls happen in the execution's own asyncio task and contextvars context,
right before the task body starts and right after it ends, so a context attached in
``on_start`` (an OpenTelemetry span, say) is current while the body runs, in the worker thread
of a plain function too, and can be detached in ``on_finish``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Execution", "ExecutionHook", "ExecutionResult", "Outcome"]

_log = logging.getLogger("tickwork.scheduler")

Outcome = Literal["success", "failure", "timeout", "snoozed", "cancelled", "lease_lost"]
"""How a run ended; one type for :class:`ExecutionResult`, :class:`tickwork.TaskStatus`, the
service's ``/status``, ``/history`` and ``/metrics``:

- ``"success"``: the body returned;
- ``"failure"``: the body raised (any exception, a ``BaseException`` such as ``SystemExit``
  included), counted in ``failures``;
- ``"timeout"``: it ran past its timeout, counted in ``failures``;
- ``"snoozed"``: the body raised :class:`tickwork.Snooze`: not a failure, the next run after
  the snooze's seconds;
- ``"cancelled"``: a shutdown cancelled it (hooks only: the task is gone from status);
- ``"lease_lost"``: a coordinated run whose lease passed to another replica; not a failure.
"""


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a task, as it starts.

    Attributes:
        task: The task's name.
        interval: The task's interval in seconds.
        number: 1 for the task's first execution, then 2, 3, ...
        due_at: Epoch seconds at which it was due (previous completion plus the wait).
        started_at: Epoch seconds at which it started.
        lateness: ``started_at - due_at``, never negative.
    """

    task: str
    interval: float
    number: int
    due_at: float
    started_at: float
    lateness: float


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How an execution ended.

    Attributes:
        outcome: ``"success"``, ``"failure"`` (the body raised: any exception, a
            ``BaseException`` such as ``SystemExit`` included), ``"timeout"`` (ran past its
            timeout), ``"snoozed"`` (the body raised :class:`tickwork.Snooze`),
            ``"cancelled"`` (cancelled by a shutdown) or ``"lease_lost"`` (a coordinated run
            whose lease passed to another replica; not a failure). See :data:`Outcome`.
        duration: Seconds from start to end. For a timed-out plain function this is the time
            until the scheduler stopped waiting, not until the thread returned.
        finished_at: Epoch seconds at which it ended.
        error: The exception for ``"failure"`` and ``"timeout"`` (a plain ``TimeoutError``),
            else None. A ``SystemExit`` or ``KeyboardInterrupt`` here means the body asked the
            process to exit: the scheduler kept the task scheduled, and it is the embedding
            runtime's decision to stop (``tickwork run`` shuts down gracefully, exit 1).
            None for ``"snoozed"``: a snooze is not an error.
        reason: The outcome in words, at most 500 characters: ``"Type: message"`` of a
            failure, the timeout's message, a snooze's reason, why a lease was lost; None for
            ``"success"``, ``"cancelled"`` and a snooze without a reason.

    .. versionchanged:: 0.3.0
       ``reason``, and the outcome ``"snoozed"``.
    """

    outcome: Outcome
    duration: float
    finished_at: float
    error: BaseException | None
    reason: str | None = None


class ExecutionHook(Protocol):
    """Receives every execution's start and end. Register with ``Scheduler(hooks=...)``.

    A hook must be quick and must not block: it runs on the event loop, on the path of every
    execution. A hook that raises is logged at ERROR on ``tickwork.scheduler`` and otherwise
    ignored; it never affects the task.
    """

    def on_start(self, execution: Execution) -> None:
        """Called right before the task body starts."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Called right after the task body ended, before the next run is scheduled."""


def call_start(hooks: tuple[ExecutionHook, ...], execution: Execution) -> None:
    for hook in hooks:
        try:
            hook.on_start(execution)
        except Exception:
            _log.exception(
                "Hook %r failed in on_start for task %s",
                hook,
                execution.task,
                extra={"task": execution.task},
            )


def call_finish(
    hooks: tuple[ExecutionHook, ...], execution: Execution, result: ExecutionResult
) -> None:
    for hook in hooks:
        try:
            hook.on_finish(execution, result)
        except Exception:
            _log.exception(
                "Hook %r failed in on_finish for task %s",
                hook,
                execution.task,
                extra={"task": execution.task},
            )
