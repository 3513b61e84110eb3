"""``bind``: the seed's helper that turns ``instance.method`` plus arguments into a task."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tickwork._spec import is_async_callable

__all__ = ["bind"]


def bind(instance: object, method: str, /, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """Return a zero-argument callable that calls ``instance.method(*args, **kwargs)``.

    The method is looked up now, so a typo fails at registration rather than at the first run.
    When calling the method returns a coroutine (an ``async def`` method, a ``functools.partial``
    of one, or an attribute whose ``__call__`` is ``async``: the same detector as
    :meth:`Scheduler.schedule_task`), the result is a coroutine function
    (``inspect.iscoroutinefunction`` is true), so the scheduler awaits it on the loop instead of
    sending it to a thread.

    Args:
        instance: The object that owns the method.
        method: The method's name.
        *args: Positional arguments for every call.
        **kwargs: Keyword arguments for every call.

    Returns:
        A callable taking no arguments, named after the method.

    Raises:
        TypeError: ``method`` is not a string.
        AttributeError: ``instance`` has no attribute ``method``.
        TypeError: The attribute is not callable.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be the name of a method (str), got {method!r}")
    target = getattr(instance, method)  # AttributeError names the object and the attribute
    if not callable(target):
        raise TypeError(
            f"{type(instance).__name__}.{method} must be callable, got {type(target).__name__}"
        )
    qualname = f"{type(instance).__name__}.{method}"

    if is_async_callable(target):

        async def bound_async() -> Any:
            return await target(*args, **kwargs)

        bound: Callable[[], Any] = bound_async
    else:

        def bound_sync() -> Any:
            return target(*args, **kwargs)

        bound = bound_sync
    # Name and docs of the method, but not __wrapped__: inspect.signature must keep saying
    # "no arguments", which is what the scheduler calls it with.
    functools.update_wrapper(bound, target, updated=())
    del bound.__dict__["__wrapped__"]
    bound.__qualname__ = qualname
    return bound
