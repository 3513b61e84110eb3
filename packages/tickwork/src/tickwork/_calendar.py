"""Calendar runs: a cron task's cycle on the same ``TaskRunner`` record as an interval task.

One runner, two ways to compute the next start. A runner with a :class:`Calendar` runs this
cycle (uncoordinated) instead of ``TaskRunner._main``; it uses the runner's ``_execute``, so
the body call, timeouts, status, hooks and failure logs are the interval tasks' own::

    schedule_cron: next_at = first instant after now (wall clock, in the task's zone)
         |
         v
    SCHEDULED  wake at min(next_at, now + 60 s) on the loop's clock; re-read the wall clock
         |        (an NTP step or a resume from suspend is noticed within 60 s)
         |  wall < next_at: wait again
         |  due: the instants from next_at up to the wall clock are coalesced into the newest;
         |  newer than misfire_grace -> run it (the others are skipped and counted)
         |  older                    -> skip them all, count them, next_at = first after now
         v
    RUNNING  runner._execute; on its end, TaskRunner._wait asks wait_after_run():
         |  instants that passed during the run are skipped and counted (no overlap);
         |  a failure with retries left and time before the next instant -> retry after the
         |  interval tasks' backoff (``max_backoff``), timed on the loop's clock; else
         |  next_at = first instant after now
         +--> SCHEDULED

With a coordinator the instant is the task's due time in the store (``_coordinated``): the
release after a run waits ``next instant - now``, so the cluster runs each instant once; a
grant is labelled with the newest instant at or before the replica's wall clock (plus
``_SKEW`` for clock differences between replicas), which decides the misfire grace and the
retries. Replicas' wall clocks must agree within ``_SKEW`` seconds (NTP): a calendar is wall
time, so this is the one place where a replica's own clock matters.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from tickwork import _clock
from tickwork._cron import CronExpression
from tickwork.coordination._protocol import TaskDecl

if TYPE_CHECKING:
    from tickwork._execution import TaskRunner

__all__ = ["Calendar", "run_calendar", "sleep_cap"]

# The runner never waits longer than this on the loop's clock before re-reading the wall clock.
MAX_PARK = 60.0
# Instants counted one by one when catching up (15 us each); the count stops there.
_MAX_STEPS = 10_000
# Wall-clock difference between replicas tolerated when labelling a grant (seconds).
_SKEW = 5.0
# With interval 0, the interval tasks' backoff starts from this many seconds (as _execution).
_BACKOFF_BASE = 0.5


class Calendar:
    """A cron task's schedule state: the next instant, retries, and skipped instants."""

    __slots__ = (
        "attempts",
        "cron",
        "cursor",
        "grace",
        "instant",
        "jitter",
        "max_backoff",
        "next_at",
        "offset",
        "retries",
        "retry_at",
        "retry_deadline",
        "skipped",
    )

    def __init__(
        self,
        cron: CronExpression,
        wall: float,
        *,
        retries: int,
        misfire_grace: float,
        jitter: float,
        max_backoff: float | None,
    ) -> None:
        self.cron = cron
        self.retries = retries
        self.grace = misfire_grace
        self.jitter = jitter
        self.max_backoff = max_backoff
        self.next_at = cron.first_after(wall)  # epoch: the next instant to run
        self.offset = random.uniform(0.0, jitter) if jitter else 0.0
        self.cursor = wall  # epoch: every instant up to here ran or was counted as skipped
        self.instant: float | None = None  # epoch: the instant of the run in progress/last run
        self.attempts = 0  # runs of ``instant`` so far (1 + retries used)
        self.retry_at: float | None = None  # epoch: a pending retry of ``instant`` (status)
        # The same retry on the loop's clock: a short backoff must not move with a clock step.
        self.retry_deadline = 0.0
        self.skipped = 0

    @property
    def next_run_at(self) -> float:
        """Epoch seconds of the next start: a pending retry, or the next instant."""
        return self.retry_at if self.retry_at is not None else self.next_at + self.offset

    def _count_until(self, wall: float) -> float | None:
        """Count the instants in (cursor, wall] as skipped; return the newest, or None."""
        newest = None
        steps = 0
        for instant in self.cron.after(self.cursor):
            if instant > wall:
                break
            newest = instant
            steps += 1
            if steps >= _MAX_STEPS:
                # Down for a very long time (a year of a per-minute job): the count stops
                # here rather than hold the loop for seconds; the newest is found directly.
                newest = self.cron.last_at_or_before(wall)
                break
        self.skipped += steps
        if wall > self.cursor:
            self.cursor = wall
        return newest

    def take_due(self, wall: float) -> bool:
        """At a wake with ``wall >= next_at``: True to run the newest due instant now."""
        self.cursor = self.next_at - 1e-6  # the next instant is the first one not yet counted
        newest = self._count_until(wall)
        assert newest is not None
        self.next_at = self.cron.first_after(wall)
        self._new_offset()
        if wall - newest > self.grace:
            return False  # every missed instant was counted
        self.skipped -= 1  # the newest one runs
        self.instant = newest
        self.attempts = 1
        return True

    def take_grant(self, wall: float) -> bool:
        """A coordinated grant arrived: True to run, False to skip (older than the grace)."""
        newest = self.cron.last_at_or_before(wall + _SKEW)
        if newest == self.instant:
            self.attempts += 1  # a retry (the store keeps the backoff's due time)
        else:
            self.instant = newest
            self.attempts = 1
        self.retry_at = None
        self.cursor = max(self.cursor, newest)
        self.next_at = self.cron.first_after(max(wall, newest))
        if wall - newest > self.grace:
            self.skipped += 1
            return False
        return True

    def take_request(self) -> None:
        """A run-now request (``Scheduler.trigger``) runs out of the instants: no retries."""
        self.attempts = self.retries + 1
        self.retry_at = None

    def follow(self, wall: float) -> None:
        """A follower (a peer holds the task): keep the next instant in status current."""
        if self.retry_at is None and wall >= self.next_at:
            self.next_at = self.cron.first_after(wall)

    def wait_after_run(self, runner: TaskRunner) -> float:
        """Seconds from the end of a run to the next start (``TaskRunner._wait``)."""
        wall = _clock.wall_time(runner._loop)
        self._count_until(wall)  # instants that passed during the run: skipped, no overlap
        self.next_at = self.cron.first_after(max(wall, self.instant or wall))
        self._new_offset()
        self.retry_at = None
        if runner.consecutive_failures and self.attempts <= self.retries:
            backoff = self._backoff(runner.consecutive_failures)
            if wall + backoff < self.next_at:
                self.retry_at = wall + backoff
                self.retry_deadline = runner._loop.time() + backoff
                return backoff
        return self.next_run_at - wall

    def snoozed(self, runner: TaskRunner) -> None:
        """The run raised ``Snooze(seconds)``: again then if before the next instant, else at it.

        Not a retry: the snoozed run does not use up one of ``retries``.
        """
        loop = runner._loop
        wait = max(0.0, runner.deadline - loop.time())
        self.wait_after_run(runner)  # instants that passed during the run; the next instant
        wall = _clock.wall_time(loop)
        if wall + wait < self.next_at:
            self.retry_at = wall + wait
            self.retry_deadline = runner.deadline
            self.attempts -= 1  # the retry branch counts an attempt; a snooze is none
        else:
            self.retry_at = None  # the snooze outlasts a failure's retry: the next instant
            runner.deadline = loop.time() + (self.next_run_at - wall)

    def _backoff(self, failures: int) -> float:
        """The interval tasks' backoff at interval 0: doubling from 1 s up to ``max_backoff``."""
        if self.max_backoff is None:
            return 0.0
        return min(self.max_backoff, _BACKOFF_BASE * 2.0 ** min(failures, 64))

    def _new_offset(self) -> None:
        if self.jitter:
            self.offset = random.uniform(0.0, self.jitter)

    def declaration(self, runner: TaskRunner, wall: float) -> TaskDecl:
        """The task as the coordinator sees it: first due at the next instant."""
        return TaskDecl(runner.name, max(0.0, self.next_run_at - wall), run_immediately=False)


async def run_calendar(runner: TaskRunner, calendar: Calendar) -> None:
    """The uncoordinated cycle of a calendar task, until it parks or is cancelled."""
    loop = runner._loop
    while not runner.cancelled:
        now = loop.time()
        if runner._run_requested:  # run now (Scheduler.trigger), out of the instants
            runner._run_requested = runner._bypass = False
            calendar.take_request()
            due = now
        elif runner.paused is not None and runner.hold():
            return  # resume_task spawns the runner again; missed instants coalesce then
        elif calendar.retry_at is None:
            wall = _clock.wall_time(loop)
            if wall < calendar.next_run_at:
                _park(runner, calendar, now, wall)
                return
            if not calendar.take_due(wall):
                continue
            assert calendar.instant is not None
            due = now - (wall - calendar.instant)
        elif now < calendar.retry_deadline:
            runner.deadline = calendar.retry_deadline
            runner._timer = loop.call_at(calendar.retry_deadline, runner._spawn)
            return
        else:
            due = calendar.retry_deadline
            calendar.retry_at = None
            calendar.attempts += 1
        runner.deadline = due  # Execution.due_at and lateness
        keep = await runner._execute(loop.time())
        if runner.state == "snoozed":
            calendar.snoozed(runner)
        if not keep:  # after a BaseException: continue on a fresh asyncio task
            _park(runner, calendar, loop.time(), _clock.wall_time(loop))
            return


def _park(runner: TaskRunner, calendar: Calendar, now: float, wall: float) -> None:
    """Show the next start in status and wake at it, or within MAX_PARK to re-read the clock."""
    wait = max(0.0, calendar.next_run_at - wall)
    runner.deadline = now + wait
    if not runner._loop.is_closed():
        runner._timer = runner._loop.call_at(now + min(wait, MAX_PARK), runner._spawn)


def sleep_cap(wait: float) -> float:
    """A coordinated calendar task asks again at least every MAX_PARK seconds."""
    return min(wait, MAX_PARK)
