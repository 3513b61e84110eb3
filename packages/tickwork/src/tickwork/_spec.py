"""``TaskSpec`` and the argument checks shared by ``schedule_task`` and ``schedule_tasks``.

Every caller mistake raises at once, naming the parameter and showing the value, before anything
is registered.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

__all__ = ["TaskSpec"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task's registration, for :meth:`Scheduler.schedule_tasks`.

    The fields mean what the parameters of :meth:`Scheduler.schedule_task` of the same names mean;
    they are checked when the spec is created.

    Attributes:
        name: Unique, non-empty task name.
        interval: Seconds between one execution's completion and the next start (>= 0).
        task: Zero-argument coroutine function or plain function.
        timeout: Seconds an execution may run, or None for no limit.
        jitter: Up to this many random seconds are added to each wait.
        run_immediately: Start the first execution at once (True) or after one interval.
        max_backoff: Cap of the doubling wait after consecutive failures, or None for a
            constant interval.
        singleton: With a coordinator: one run at a time cluster-wide (True, the default) or
            every replica runs it (False). Without a coordinator it changes nothing.
    """

    name: str
    interval: float
    task: Callable[[], Any]
    timeout: float | None = None
    jitter: float = 0.0
    run_immediately: bool = True
    max_backoff: float | None = None
    singleton: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        object.__setattr__(self, "interval", check_seconds("interval", self.interval))
        check_task(self.task)
        if self.timeout is not None:
            object.__setattr__(self, "timeout", check_seconds("timeout", self.timeout, zero=False))
        object.__setattr__(self, "jitter", check_seconds("jitter", self.jitter))
        if not isinstance(self.run_immediately, bool):
            raise TypeError(f"run_immediately must be a bool, got {self.run_immediately!r}")
        if self.max_backoff is not None:
            object.__setattr__(self, "max_backoff", check_seconds("max_backoff", self.max_backoff))
        if not isinstance(self.singleton, bool):
            raise TypeError(f"singleton must be a bool, got {self.singleton!r}")

    @property
    def is_async(self) -> bool:
        """True when the task is awaited on the loop, False when it runs in a worker thread."""
        return is_async_callable(self.task)


def check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__} {name!r}")
    if not name.strip():
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    return name


def check_seconds(param: str, value: object, *, zero: bool = True) -> float:
    # bool is a Real subclass, and True seconds is always a mistake.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{param} must be a real number of seconds, got {type(value).__name__} {value!r}"
        )
    seconds = float(value)
    bound = ">= 0" if zero else "> 0"
    if not math.isfinite(seconds) or seconds < 0 or (not zero and seconds == 0):
        raise ValueError(f"{param} must be a finite number {bound}, got {value!r}")
    return seconds


def check_task(task: object) -> None:
    if inspect.iscoroutine(task) or inspect.isawaitable(task):
        if inspect.iscoroutine(task):
            task.close()  # it was never awaited; closing it avoids a RuntimeWarning
        raise TypeError(
            f"task must be a zero-argument callable; got an awaitable {task!r}: "
            "pass the function, not its call"
        )
    if not callable(task):
        raise TypeError(
            f"task must be a zero-argument callable, got {type(task).__name__} {task!r}"
        )


def is_async_callable(obj: object) -> bool:
    """True for coroutine functions, also behind ``functools.partial`` or as ``__call__``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(type(obj).__call__)
    )
