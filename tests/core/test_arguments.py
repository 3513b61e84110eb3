"""Caller mistakes raise at once, name the parameter, show the value, and register nothing."""

from __future__ import annotations

import asyncio
import functools
import math
import warnings
from typing import Any

import pytest

from tickwork import Scheduler, SchedulerError, TaskSpec


async def job() -> None:
    """A trivial task."""


async def needs_one(days: int) -> None:
    """A task that needs an argument."""


class Needy:
    """Callables that need arguments, and some that do not."""

    def method(self, days: int) -> None:
        """Needs one argument besides self."""

    def fine(self, days: int = 1, *more: int) -> None:
        """Needs nothing."""

    def __call__(self, *, days: int) -> None:
        """Needs a keyword argument."""


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"name": 1}, TypeError, "name must be a str, got int 1"),
        ({"name": ""}, ValueError, "name must be a non-empty str, got ''"),
        ({"name": "   "}, ValueError, "name must be a non-empty str"),
        ({"interval": True}, TypeError, "interval must be a real number of seconds, got bool"),
        ({"interval": "1"}, TypeError, "interval must be a real number of seconds, got str '1'"),
        ({"interval": None}, TypeError, "interval must be a real number"),
        ({"interval": math.nan}, ValueError, "interval must be a finite number >= 0, got nan"),
        ({"interval": math.inf}, ValueError, "interval must be a finite number >= 0, got inf"),
        ({"interval": -1}, ValueError, "interval must be a finite number >= 0, got -1"),
        ({"task": 42}, TypeError, "task must be a zero-argument callable, got int 42"),
        ({"timeout": -1.0}, ValueError, "timeout must be a finite number > 0, got -1.0"),
        ({"timeout": 0}, ValueError, "timeout must be a finite number > 0, got 0"),
        ({"timeout": math.inf}, ValueError, "timeout must be a finite number > 0, got inf"),
        ({"jitter": -0.5}, ValueError, "jitter must be a finite number >= 0, got -0.5"),
        ({"jitter": math.nan}, ValueError, "jitter must be a finite number >= 0, got nan"),
        ({"jitter": False}, TypeError, "jitter must be a real number of seconds, got bool"),
        ({"jitter": None}, TypeError, "jitter must be a real number of seconds, got NoneType"),
        ({"jitter": ""}, TypeError, "jitter must be a real number of seconds, got str"),
        ({"max_backoff": -2}, ValueError, "max_backoff must be a finite number >= 0, got -2"),
        ({"max_backoff": "9"}, TypeError, "max_backoff must be a real number"),
        ({"run_immediately": 1}, TypeError, "run_immediately must be a bool, got 1"),
        ({"interval": 10**400}, ValueError, "interval must be a finite number >= 0, got 1000"),
        ({"timeout": 10**400}, ValueError, "timeout must be a finite number > 0, got 1000"),
        (
            {"interval": 1e308, "jitter": 1e308},
            ValueError,
            "interval + jitter must be finite, got interval=1e+308 jitter=1e+308",
        ),
        (
            {"max_backoff": 1e308, "jitter": 1e308},
            ValueError,
            "max_backoff + jitter must be finite",
        ),
        ({"task": needs_one}, TypeError, "zero-argument callable; needs_one needs days: pass them"),
        ({"task": lambda days: None}, TypeError, "<lambda> needs days"),
        ({"task": Needy().method}, TypeError, "Needy.method needs days"),
        ({"task": Needy()}, TypeError, "Needy object needs days"),
        ({"task": functools.partial(needs_one)}, TypeError, "needs days"),
    ],
)
async def test_bad_argument_is_named_and_nothing_registered(
    kwargs: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    """Each bad argument raises with a message naming it and showing its value."""
    args: dict[str, Any] = {"name": "t", "interval": 1.0, "task": job}
    args.update(kwargs)
    scheduler = Scheduler()
    with pytest.raises(error) as info:
        scheduler.schedule_task(args.pop("name"), args.pop("interval"), args.pop("task"), **args)
    assert fragment in str(info.value)
    assert scheduler.list_tasks() == []
    assert scheduler.status() == []


async def test_callables_needing_no_argument_are_accepted() -> None:
    """Defaults, *args, bound arguments and builtins without a signature are all accepted."""
    async with Scheduler() as scheduler:
        for name, task in [
            ("defaults", Needy().fine),
            ("partial", functools.partial(needs_one, 3)),
            ("unbound", functools.partial(Needy.method, Needy(), 1)),
            ("builtin", dict),
        ]:
            scheduler.schedule_task(name, 3600, task)
        assert scheduler.list_tasks() == ["defaults", "partial", "unbound", "builtin"]


async def test_coroutine_object_is_refused_with_a_hint() -> None:
    """Passing job() instead of job says to pass the function, and leaves no un-awaited warning."""
    scheduler = Scheduler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="pass the function, not its call"):
            scheduler.schedule_task("t", 1, job())  # type: ignore[arg-type]
    assert scheduler.list_tasks() == []


def test_schedule_without_running_loop_says_so() -> None:
    """Outside a running loop, schedule_task raises RuntimeError explaining what is needed."""
    scheduler = Scheduler()
    with pytest.raises(RuntimeError, match="running asyncio event loop to schedule task 't'"):
        scheduler.schedule_task("t", 1, job)
    assert scheduler.list_tasks() == []


async def test_duplicate_name_is_refused_with_code() -> None:
    """A second task of the same name raises SchedulerError 'already_scheduled' naming it."""
    async with Scheduler() as scheduler:
        scheduler.schedule_task("sync", 1, job)
        with pytest.raises(SchedulerError) as info:
            scheduler.schedule_task("sync", 2, job)
        assert info.value.code == "already_scheduled"
        assert info.value.task == "sync"
        assert "'sync'" in str(info.value)
        assert scheduler.task_status("sync").interval == 1


async def test_unknown_name_is_not_scheduled() -> None:
    """cancel_task and task_status of an unknown name raise 'not_scheduled' naming it."""
    async with Scheduler() as scheduler:
        for call in (scheduler.cancel_task, scheduler.task_status):
            with pytest.raises(SchedulerError) as info:
                call("ghost")
            assert info.value.code == "not_scheduled"
            assert "'ghost'" in str(info.value)


async def test_schedule_tasks_is_all_or_nothing() -> None:
    """When one spec of a batch is refused, none of the batch is registered."""
    async with Scheduler() as scheduler:
        scheduler.schedule_task("taken", 1, job)
        specs = [TaskSpec("a", 1, job), TaskSpec("taken", 1, job)]
        with pytest.raises(SchedulerError, match="'taken'"):
            scheduler.schedule_tasks(specs)
        with pytest.raises(SchedulerError, match="'b'"):
            scheduler.schedule_tasks([TaskSpec("b", 1, job), TaskSpec("b", 2, job)])
        with pytest.raises(TypeError, match="TaskSpec"):
            scheduler.schedule_tasks([TaskSpec("c", 1, job), ("d", 1, job)])  # type: ignore[list-item]
        assert scheduler.list_tasks() == ["taken"]
        scheduler.schedule_tasks([TaskSpec("a", 1, job), TaskSpec("b", 0.5, job, timeout=3)])
        assert scheduler.list_tasks() == ["taken", "a", "b"]
        assert scheduler.task_status("b").timeout == 3


def test_task_spec_validates_on_creation() -> None:
    """A TaskSpec checks its fields when created, like schedule_task."""
    with pytest.raises(ValueError, match="interval must be a finite number >= 0, got -3"):
        TaskSpec("x", -3, job)


async def test_scheduler_is_bound_to_one_loop() -> None:
    """Using a scheduler from a second event loop is refused with a clear error."""
    scheduler = Scheduler()
    scheduler.schedule_task("here", 10, job)

    async def elsewhere() -> None:
        scheduler.schedule_task("there", 10, job)

    def in_other_loop() -> None:
        asyncio.run(elsewhere())

    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(in_other_loop)
    await scheduler.shutdown()
