"""The scheduler's own exception.

Caller mistakes in arguments raise the built-in ``TypeError``/``ValueError``; conflicts with the
scheduler's state raise :class:`SchedulerError`, whose ``code`` is stable for callers to branch on.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ErrorCode", "SchedulerError"]

ErrorCode = Literal[
    "already_scheduled",
    "not_scheduled",
    "shut_down",
    "coordinator_too_late",
    "coordinator_unavailable",
]

_MESSAGES: dict[str, str] = {
    "already_scheduled": "task {name!r} is already scheduled; cancel it first or pick another name",
    "not_scheduled": "task {name!r} is not scheduled",
    "shut_down": "the scheduler is shut down; task {name!r} cannot be scheduled",
    "coordinator_too_late": (
        "a coordinator must be set before the first task is scheduled; task {name!r} already is"
    ),
    "coordinator_unavailable": (
        "the coordinator could not be reached; task {name!r} was left as it was (try again)"
    ),
}


class SchedulerError(Exception):
    """A request that conflicts with the scheduler's state.

    Attributes:
        code: Stable, snake_case reason: ``"already_scheduled"`` (a task of that name exists),
            ``"not_scheduled"`` (no task of that name), ``"shut_down"`` (the scheduler no longer
            accepts tasks), ``"coordinator_too_late"`` (a coordinator was set after a task),
            ``"coordinator_unavailable"`` (an operator action could not be stored in the
            coordinator: nothing changed).
        task: The task name the request was about.
    """

    code: ErrorCode
    task: str

    def __init__(self, code: ErrorCode, task: str) -> None:
        self.code = code
        self.task = task
        super().__init__(_MESSAGES[code].format(name=task))

    def __reduce__(self) -> tuple[type[SchedulerError], tuple[ErrorCode, str]]:
        return (type(self), (self.code, self.task))
