"""Derived task facts shared by ``/status``, ``/metrics`` and the stall warnings.

- ``overdue_by``: for a task waiting for its next run (state ``"scheduled"``, or ``"snoozed"``
  once the core reports it), how far (seconds) the current time is past ``next_run_at``; 0.0
  when it is not due yet, is running, or is in any other state (``"paused"`` is on purpose).
- ``stuck``: a running execution has run longer than the task's ``timeout`` (a timed-out plain
  function still in its thread) or, for a task without a timeout, longer than ``stuck_after``
  (600 s unless configured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickwork.service._components import truncate

if TYPE_CHECKING:
    from tickwork import TaskStatus

__all__ = ["DEFAULT_STUCK_AFTER", "MAX_ERROR_LENGTH", "is_stuck", "overdue_by", "task_view"]

# States in which a task waits for next_run_at: "snoozed" waits too, for its snooze's end.
_WAITING: frozenset[str] = frozenset({"scheduled", "snoozed"})

DEFAULT_STUCK_AFTER = 600.0
MAX_ERROR_LENGTH = 500


def overdue_by(status: TaskStatus, now: float) -> float:
    """Return how many seconds past its due time a waiting task is (0.0 if none)."""
    if status.state not in _WAITING or status.next_run_at is None:
        return 0.0
    return max(0.0, now - status.next_run_at)


def is_stuck(status: TaskStatus, stuck_after: float) -> bool:
    """Return whether the task's running execution has run for too long."""
    if status.state != "running" or status.running_for is None:
        return False
    limit = status.timeout if status.timeout is not None else stuck_after
    return status.running_for > limit


def task_view(status: TaskStatus, now: float, stuck_after: float) -> dict[str, Any]:
    """Return the task's ``/status`` entry: its ``to_dict()`` plus ``overdue_by`` and ``stuck``."""
    data = status.to_dict()
    error = data.get("last_error")
    if isinstance(error, str):
        data["last_error"] = truncate(error, MAX_ERROR_LENGTH)
    data["overdue_by"] = round(overdue_by(status, now), 3)
    data["stuck"] = is_stuck(status, stuck_after)
    return data
