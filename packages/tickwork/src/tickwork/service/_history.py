"""A bounded ring of recent executions per task, fed by an execution hook.

Backs ``GET /history`` (and the status page's charts). Each entry is ``{"started_at",
"duration", "outcome", "lateness", "reason"}``: ``reason`` is the outcome in words (a failed
run's ``"Type: message"``, a timeout's message, a snooze's reason, why a lease was lost; at
most 500 characters, the core's bound) or None. Each task keeps its last ``size``
executions (100 by default); the number of tasks remembered is bounded too, dropping the task
whose last execution is oldest, so renamed or cancelled tasks cannot grow memory forever.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickwork import Execution, ExecutionResult

__all__ = ["HistoryRing"]


class HistoryRing:
    """Remember the last executions of each task; an :class:`tickwork.ExecutionHook`.

    Args:
        size: Executions kept per task; ``>= 1``.
        max_tasks: Tasks kept; ``>= 1``.

    Raises:
        ValueError: ``size`` or ``max_tasks`` below 1.
    """

    def __init__(self, size: int = 100, max_tasks: int = 10_000) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an int >= 1, got {size!r}")
        if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
            raise ValueError(f"max_tasks must be an int >= 1, got {max_tasks!r}")
        self.size = size
        self._max_tasks = max_tasks
        self._rings: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    def on_start(self, execution: Execution) -> None:
        """Do nothing: an execution is recorded when it finishes."""

    def on_finish(self, execution: Execution, result: ExecutionResult) -> None:
        """Append the finished execution to its task's ring."""
        ring = self._rings.pop(execution.task, None)
        if ring is None:
            ring = deque(maxlen=self.size)
        ring.append(
            {
                "started_at": execution.started_at,
                "duration": result.duration,
                "outcome": result.outcome,
                "lateness": execution.lateness,
                # Already bounded by the core (tickwork._snooze.MAX_REASON), and shared with
                # the task's status: no copy per entry.
                "reason": result.reason,
            }
        )
        self._rings[execution.task] = ring
        while len(self._rings) > self._max_tasks:
            self._rings.popitem(last=False)

    def get(self, task: str) -> list[dict[str, Any]]:
        """Return the task's recent executions, oldest first (empty for an unknown task)."""
        return list(self._rings.get(task, ()))
