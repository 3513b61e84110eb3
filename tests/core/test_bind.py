"""bind() turns instance.method(*args, **kwargs) into a zero-argument task."""

from __future__ import annotations

import inspect

import pytest

from tickwork import Scheduler, bind
from tickwork.testing import wait_for_runs


class Service:
    """A service whose methods the scheduler calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []

    async def sync_movies(self, batch: int, *, dry_run: bool = False) -> None:
        self.calls.append(("async", batch, dry_run))

    def stats(self, source: str) -> None:
        self.calls.append(("plain", source, None))


async def test_bound_async_method_is_a_coroutine_function_and_runs() -> None:
    """An async method stays a coroutine function, and the scheduler awaits it with its args."""
    service = Service()
    bound = bind(service, "sync_movies", 5, dry_run=True)
    assert inspect.iscoroutinefunction(bound)
    assert inspect.signature(bound).parameters == {}
    async with Scheduler() as scheduler:
        scheduler.schedule_task("sync", 60, bound)
        await wait_for_runs(scheduler, "sync", 1)
    assert service.calls == [("async", 5, True)]


def test_bound_plain_method_is_a_plain_callable() -> None:
    """A plain method gives a plain callable (the scheduler will run it in a thread)."""
    service = Service()
    bound = bind(service, "stats", "yts")
    assert not inspect.iscoroutinefunction(bound)
    bound()
    assert service.calls == [("plain", "yts", None)]
    assert bound.__qualname__ == "Service.stats"


def test_missing_method_fails_at_bind_time() -> None:
    """A typo in the method name raises AttributeError when binding, not at the first run."""
    with pytest.raises(AttributeError, match="sync_movie"):
        bind(Service(), "sync_movie")


def test_non_callable_attribute_and_non_string_name_are_refused() -> None:
    """bind refuses an attribute that is not callable, and a method name that is not a str."""
    service = Service()
    with pytest.raises(TypeError, match=r"Service\.calls must be callable"):
        bind(service, "calls")
    with pytest.raises(TypeError, match="method must be the name of a method"):
        bind(service, service.stats)  # type: ignore[arg-type]
