"""The three implementations under test, behind one small setup interface.

* ``bare``: the floor for asyncio, one task per job running
  ``while True: try: await job() except Exception: pass; await asyncio.sleep(interval)``
  (issue 11's baseline: a loop that survives its job's errors, as a scheduler must).
* ``tickwork``: ``Scheduler.schedule_task(name, interval, job)``.
* ``apscheduler``: APScheduler 3.11 ``AsyncIOScheduler``, one interval-trigger job per task with
  ``max_instances=1`` (never overlaps itself, like the others), ``coalesce=True`` (a late job runs
  once, not once per missed period) and ``misfire_grace_time=None`` (a late job still runs).
  APScheduler is fixed-rate: a job is due every ``interval`` after its first run time, not
  ``interval`` after its previous completion as in the other two.

The adapters are used to set a scenario up, never inside a timed loop: the scenarios that time
API calls (``schedule_task``, ``cancel_task``) call each library directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

__all__ = ["IMPLEMENTATIONS", "Implementation", "bare_loop", "make"]

Job = Callable[[], Awaitable[None]]

IMPLEMENTATIONS = ("bare", "tickwork", "apscheduler")


async def bare_loop(job: Job, interval: float) -> None:
    """The baseline: run ``job`` forever, ``interval`` seconds after each completion."""
    while True:
        # The loop the issue names, not contextlib.suppress (a context manager costs more).
        try:  # noqa: SIM105
            await job()
        except Exception:
            pass
        await asyncio.sleep(interval)


class Implementation(Protocol):
    """Starts a set of recurring jobs, all due at once, on the running loop."""

    name: str

    def start(self, jobs: Sequence[tuple[str, float, Job]]) -> None:
        """Schedule every ``(name, interval, job)``; each runs first on the next loop turn."""

    def first_run_epoch(self) -> float | None:
        """Epoch seconds of APScheduler's first run time (its fixed-rate grid), else None."""

    def warnings(self) -> int:
        """WARNING records logged by the implementation (APScheduler's skipped/missed runs)."""


class _Bare:
    name = "bare"

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, jobs: Sequence[tuple[str, float, Job]]) -> None:
        self.tasks = [asyncio.create_task(bare_loop(job, interval)) for _, interval, job in jobs]

    def first_run_epoch(self) -> float | None:
        return None

    def warnings(self) -> int:
        return 0


class _Tickwork:
    name = "tickwork"

    def __init__(self) -> None:
        from tickwork import Scheduler

        self.scheduler = Scheduler()

    def start(self, jobs: Sequence[tuple[str, float, Job]]) -> None:
        for name, interval, job in jobs:
            self.scheduler.schedule_task(name, interval, job)

    def first_run_epoch(self) -> float | None:
        return None

    def warnings(self) -> int:
        return 0


class _CountingHandler(logging.Handler):
    """Counts records instead of printing them (APScheduler warns on every skipped run)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class _APScheduler:
    name = "apscheduler"

    def __init__(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._handler = _CountingHandler()
        logger = logging.getLogger("apscheduler")
        logger.addHandler(self._handler)
        logger.propagate = False
        self.scheduler: Any = AsyncIOScheduler()
        self._first: datetime | None = None

    def start(self, jobs: Sequence[tuple[str, float, Job]]) -> None:
        # Jobs are added before start(): adding to a running AsyncIOScheduler wakes it once per
        # job, which would charge APScheduler a setup cost the others do not pay here.
        first = datetime.now().astimezone() + timedelta(milliseconds=1)
        self._first = first
        for name, interval, job in jobs:
            self.scheduler.add_job(
                job,
                "interval",
                seconds=interval,
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=first,
            )
        self.scheduler.start()

    def first_run_epoch(self) -> float | None:
        return None if self._first is None else self._first.timestamp()

    def warnings(self) -> int:
        return self._handler.count


def make(name: str) -> Implementation:
    """Return a fresh adapter for implementation ``name`` (one of :data:`IMPLEMENTATIONS`).

    Raises:
        ValueError: Unknown name.
    """
    if name == "bare":
        return _Bare()
    if name == "tickwork":
        return _Tickwork()
    if name == "apscheduler":
        return _APScheduler()
    raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
