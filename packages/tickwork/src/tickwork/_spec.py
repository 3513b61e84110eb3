"""``TaskSpec`` and the argument checks shared by ``schedule_task`` and ``schedule_tasks``.

Every caller mistake raises at once, naming the parameter and showing the value, before anything
is registered.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

__all__ = ["TaskSpec", "check_finite", "is_async_callable"]


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
        object.__setattr__(self, "interval", check_finite("interval", self.interval))
        check_task(self.task)
        if self.timeout is not None:
            object.__setattr__(self, "timeout", check_finite("timeout", self.timeout, zero=False))
        object.__setattr__(self, "jitter", check_finite("jitter", self.jitter))
        check_sums(self.interval, self.jitter, self.max_backoff)
        if not isinstance(self.run_immediately, bool):
            raise TypeError(f"run_immediately must be a bool, got {self.run_immediately!r}")
        if not isinstance(self.singleton, bool):
            raise TypeError(f"singleton must be a bool, got {self.singleton!r}")
        if self.max_backoff is not None:
            object.__setattr__(self, "max_backoff", check_finite("max_backoff", self.max_backoff))

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


# Characters of an operator's ``by`` (who paused a task): status, logs and the store keep it.
MAX_BY = 200


def check_by(by: object) -> str | None:
    """Return ``by`` (who asks for an operator action): None, or non-blank printable text."""
    if by is None:
        return None
    if not isinstance(by, str):
        raise TypeError(f"by must be a str or None, got {type(by).__name__} {by!r}")
    if not by.strip() or not by.isprintable() or len(by) > MAX_BY:
        raise ValueError(
            f"by must be 1 to {MAX_BY} printable characters, got {len(by)}: {by[:MAX_BY]!r}"
        )
    return by


def check_finite(param: str, value: object, *, zero: bool = True, unit: str = "seconds") -> float:
    """Return ``value`` as a float: a finite number ``>= 0`` (``> 0`` when ``zero`` is false).

    The one check of "a finite number > 0" in tickwork: the core's arguments and the service's
    settings (durations, rates).

    Raises:
        TypeError: ``value`` is not a real number (a bool is refused: ``True`` seconds is
            always a mistake). The message names ``param``.
        ValueError: NaN, infinite, negative, zero when ``zero`` is false, or too large for a
            float (``10**400``). The message names ``param`` and shows the value.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{param} must be a real number of {unit}, got {type(value).__name__} {value!r}"
        )
    bound = ">= 0" if zero else "> 0"
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(
            f"{param} must be a finite number {bound}, got {_short_repr(value)} (too large)"
        ) from None
    if not math.isfinite(seconds) or seconds < 0 or (not zero and seconds == 0):
        raise ValueError(f"{param} must be a finite number {bound}, got {value!r}")
    return seconds


def check_sums(interval: float, jitter: float, max_backoff: float | None) -> None:
    """Refuse waits that overflow: ``interval + jitter`` (and ``max_backoff + jitter``) finite."""
    # Each value alone is finite, but a wait adds them; an infinite deadline would put inf in
    # status, which JSON cannot carry (one task's value must not break /status for all).
    if not math.isfinite(interval + jitter):
        raise ValueError(
            f"interval + jitter must be finite, got interval={interval!r} jitter={jitter!r}"
        )
    if max_backoff is not None and not math.isfinite(max_backoff + jitter):
        raise ValueError(
            f"max_backoff + jitter must be finite, got max_backoff={max_backoff!r} "
            f"jitter={jitter!r}"
        )


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} digits)"


def check_task(task: object) -> None:
    """Refuse anything but a callable that can be called with no arguments."""
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
    if _takes_no_arguments(task):
        return
    try:
        signature = inspect.signature(task)
    except (TypeError, ValueError):
        return  # no signature to read (some builtins): let the first run tell
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        name = getattr(task, "__qualname__", None) or f"{type(task).__qualname__} object"
        raise TypeError(
            f"task must be a zero-argument callable; {name} needs {', '.join(required)}: "
            "pass them with functools.partial, tickwork.bind or a lambda"
        )


def _takes_no_arguments(task: object) -> bool:
    """The common cases without ``inspect.signature`` (which costs more than registering)."""
    skip = 0
    if type(task) is types.MethodType:
        task = task.__func__
        skip = 1
    if type(task) is not types.FunctionType:
        return False
    code = task.__code__
    required = code.co_argcount - skip - len(task.__defaults__ or ())
    required_kw = code.co_kwonlyargcount - len(task.__kwdefaults__ or {})
    return required <= 0 and required_kw == 0


def is_async_callable(obj: object) -> bool:
    """True when calling ``obj`` returns a coroutine: the one detector of tickwork.

    Coroutine functions, also behind ``functools.partial`` (nested), as bound methods, or as an
    object whose ``__call__`` is a coroutine function. ``schedule_task`` and ``bind`` both ask
    it. A plain function that happens to return an awaitable (``lambda: svc.refresh(6)``) is
    not detected here; the runner awaits what it returns (see ``_execution``).
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(type(obj), "__call__", None)  # noqa: B004 - the type's, not the instance's
    if callable(obj) and not isinstance(obj, type) and call is not None:
        while isinstance(call, functools.partial):
            call = call.func
        return inspect.iscoroutinefunction(call)
    return False
