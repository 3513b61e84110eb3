"""Coordinated runs: a singleton task's cycle when the scheduler has a coordinator.

A runner whose task is a singleton in a coordinated scheduler runs this cycle instead of the
uncoordinated one (``TaskRunner._main``, which stays as it was)::

    declare ──> acquire ──Busy(wait)──> sleep(wait) ──> acquire ...
                   │
                 Grant ──> run the body under a Lease ──> release(wait) ──> sleep(wait) ──> ...
                               │  renew every ttl/3 (local deadline: 0.9 ttl on CLOCK_BOOTTIME)
                               ├─ superseded, or deadline passed: the lease is lost; a coroutine
                               │  body is cancelled, a plain function is flagged (it cannot be
                               │  stopped); the run ends ``lease_lost``
                               └─ the body raised Snooze(seconds): the run ends ``snoozed``,
                                  release(wait=seconds) (no replica runs it before), the
                                  runner's state is ``snoozed`` until it asks again

Operators' controls live in the store (``Scheduler.pause_task``/``resume_task``/``trigger``
write them there, then ``poke`` the local runner, which asks again at once). A paused task's
acquire answers ``Busy(paused=True)`` every few seconds, and the runner mirrors it in
``runner.paused`` (status "paused" on every replica that asks); a run-now request makes the
next acquire grant. Replicas that are not asking (a long wait) learn of both from the
heartbeat's controls within one heartbeat (``Coordination.apply_controls``).

Every wait comes from the coordinator, as a duration on its clock: the store decides when the
task is due, so a replica's clock never does. A coordinator that cannot be reached means "not
the holder": the task does not run, and :class:`Coordination` logs the episode once, a summary
each minute and its end; nothing a coordinator raises removes a task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tickwork import _clock
from tickwork._calendar import sleep_cap
from tickwork._execution import _Timeout
from tickwork._hooks import ExecutionResult, call_finish, call_start
from tickwork._lease import Lease, LeaseLostError, _current
from tickwork._snooze import Snooze, bounded
from tickwork.coordination._protocol import (
    Busy,
    Control,
    Coordinator,
    CoordinatorError,
    Grant,
    TaskDecl,
)

if TYPE_CHECKING:
    from tickwork._execution import TaskRunner
    from tickwork._scheduler import Scheduler

__all__ = ["Coordination", "declaration", "paused_at", "run_coordinated"]

_log = logging.getLogger("tickwork.coordination")

T = TypeVar("T")

# A lease is believed locally for this share of its TTL after the request that granted or
# renewed it was sent: the margin covers the request's own latency and clock-rate differences.
_LOCAL_SHARE = 0.9
# Retry delays while the coordinator cannot be reached (seconds).
_RETRY_MIN = 0.5
_RETRY_MAX = 5.0
# An unreachable episode is summarised this often (seconds).
_SUMMARY_EVERY = 60.0
# Busy waits get up to this much random extra, so replicas do not ask in lockstep.
_BUSY_JITTER = 0.02
# While a peer holds the lease, look again at least this often (seconds): a holder that shuts
# down cleanly hands the task back at once, and a peer should notice within this bound rather
# than at the lease's expiry. Costs one query per follower per period while a singleton runs.
_HANDOVER_POLL = 2.0
# A run cancelled by shutdown hands its lease back within this many seconds, or lets it expire.
_RELEASE_ON_CANCEL = 0.4


class _Restart(Exception):
    """Continue the cycle on a fresh asyncio task after waiting ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


class _Failed:
    """The result of a coordinator call that did not get through."""


FAILED = _Failed()


class Coordination:
    """A scheduler's link to its coordinator: startup, heartbeat, and unreachable episodes."""

    def __init__(self, coordinator: Coordinator, scheduler: Scheduler) -> None:
        self.coordinator = coordinator
        self._scheduler = scheduler
        self._started: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.reachable = False
        self._down_since: float | None = None
        self._failing: set[str] = set()
        self._down_failures = 0
        self._down_reported = 0.0
        self.calls = 0
        self.call_seconds = 0.0
        self.leases_acquired = 0
        self.leases_lost = 0
        self.leases_superseded = 0
        # Bumped by every operator action on this replica: a heartbeat's controls read before
        # an action must not undo its local mirror (see _run).
        self.actions = 0
        # The clock of this replica's lease deadlines; None: the loop's suspend clock. Only
        # simulations of clock-rate skew set it (tickwork.testing.SimulatedCluster.skew).
        self.lease_clock: Callable[[], float] | None = None

    @property
    def ready(self) -> bool:
        """True once the coordinator answered and while it keeps answering."""
        return self.reachable and self._started is not None and self._started.is_set()

    def ensure_running(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the background task (schema, heartbeat) on the scheduler's loop, once."""
        if self._task is None:
            self._started = asyncio.Event()
            self._stopping = asyncio.Event()
            self._task = loop.create_task(self._run(), name="tickwork-coordination")

    async def wait_started(self) -> None:
        """Wait until the coordinator has started (its schema is in place)."""
        assert self._started is not None
        await self._started.wait()

    async def call(self, kind: str, awaitable: Awaitable[T]) -> T | _Failed:
        """Await one coordinator call; a failure is logged as part of an episode, never raised.

        An episode begins with the first failing call and ends when every kind of call that
        failed in it (``kind``: "acquire", "heartbeat", ...) has succeeded again, so a
        coordinator whose one call keeps failing is one episode, not one per heartbeat.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        self.calls += 1
        try:
            result = await awaitable
        except (CoordinatorError, OSError, TimeoutError) as exc:
            self._failed(kind, exc, loop.time())
            return FAILED
        except Exception as exc:
            # A coordinator's own bug: still "not the holder", never a removed task. Logged
            # with its traceback, since no store outage explains it.
            self._failed(kind, exc, loop.time(), traceback=True)
            return FAILED
        finally:
            self.call_seconds += loop.time() - began
        self._failing.discard(kind)
        if self._down_since is not None and not self._failing:
            _log.info(
                "Coordinator %s reachable again after %.1f s (%d failed calls)",
                self.coordinator.backend,
                loop.time() - self._down_since,
                self._down_failures,
            )
            self._down_since = None
        self.reachable = not self._failing
        return result

    def _failed(
        self, kind: str, exc: BaseException, now: float, *, traceback: bool = False
    ) -> None:
        self.reachable = False
        self._failing.add(kind)
        if self._down_since is None:
            self._down_since = now
            self._down_reported = now
            self._down_failures = 1
            _log.warning(
                "Coordinator %s unreachable: %s; singleton tasks do not run until it answers",
                self.coordinator.backend,
                exc,
                exc_info=exc if traceback else None,
            )
            return
        self._down_failures += 1
        if now - self._down_reported >= _SUMMARY_EVERY:
            self._down_reported = now
            _log.warning(
                "Coordinator %s still unreachable after %.0f s (%d failed calls): %s",
                self.coordinator.backend,
                now - self._down_since,
                self._down_failures,
                exc,
            )

    async def _run(self) -> None:
        assert self._started is not None
        coordinator = self.coordinator
        delay = _RETRY_MIN
        while isinstance(await self.call("start", coordinator.start()), _Failed):
            if await self._stopped_within(delay):
                return
            delay = min(_RETRY_MAX, delay * 2)
        self._started.set()
        heartbeat = coordinator.heartbeat_interval
        while True:
            actions = self.actions
            controls = await self.call(
                "heartbeat", coordinator.heartbeat(self._scheduler.list_tasks())
            )
            if not isinstance(controls, _Failed) and actions == self.actions:
                self.apply_controls(controls)
            if await self._stopped_within(heartbeat):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as close() asks the background task to stop."""
        assert self._stopping is not None
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    def apply_controls(self, controls: Sequence[Control]) -> None:
        """Mirror the store's pauses and run-now requests in this replica's runners."""
        by_name = {control.task: control for control in controls}
        wall = _clock.wall_time(asyncio.get_running_loop())
        for runner in self._scheduler._runners.values():
            control = by_name.get(runner.name)
            paused = control is not None and control.paused
            if paused and runner.paused is None:
                assert control is not None
                runner.pause(paused_at(control.paused_for, wall), control.paused_by)
            elif not paused and runner.paused is not None:
                runner.resume()
            requested = control is not None and control.run_requested
            if requested and runner._coordination is not None and runner.state != "running":
                runner._run_requested = True
                runner.poke()

    async def close(self, timeout: float) -> None:
        """Stop the heartbeat and leave the cluster, within ``timeout`` seconds (twice).

        The background task is asked to stop and given half of ``timeout`` to end a call in
        flight before it is cancelled: a call cancelled while it opens a connection can leak
        that connection in some drivers (asyncpg), so a cancel is the last resort.
        """
        task, self._task = self._task, None
        if task is not None:
            assert self._stopping is not None
            self._stopping.set()
            done, _ = await asyncio.wait([task], timeout=timeout / 2)
            if not done:
                task.cancel()
                await asyncio.wait([task], timeout=timeout / 2)
        try:
            async with asyncio.timeout(timeout):
                await self.coordinator.close()
        except (TimeoutError, CoordinatorError, OSError) as exc:
            _log.warning("Coordinator %s did not close cleanly: %s", self.coordinator.backend, exc)


def declaration(runner: TaskRunner) -> TaskDecl:
    """The task as the coordinator's row sees it (a calendar task: due at its next instant)."""
    calendar = runner._calendar
    if calendar is not None:
        return calendar.declaration(runner, _clock.wall_time(runner._loop))
    return TaskDecl(runner.name, runner.interval, runner.run_immediately)


def paused_at(paused_for: float | None, wall: float) -> float:
    """Epoch seconds of a pause the store says began ``paused_for`` seconds ago."""
    return wall - max(0.0, paused_for or 0.0)


def _lease_cancel(task: asyncio.Task[Any], lease: Lease) -> None:
    """Cancel ``task`` because its lease was lost (told apart by the lease in the message)."""
    task.cancel(msg=f"tickwork: lease lost ({lease.token})")


async def run_coordinated(runner: TaskRunner, coordination: Coordination) -> None:
    """The cycle of a singleton task in a coordinated scheduler, until the task is cancelled."""
    loop = asyncio.get_running_loop()
    loop_clock = _clock.suspend_clock(loop)
    coordinator = coordination.coordinator
    name = runner.name
    await coordination.wait_started()
    retry = _RETRY_MIN
    declared = False
    calendar = runner._calendar  # a cron task: the instant is the due time (see _calendar)
    while not runner.cancelled:
        if runner.state == "snoozed":
            runner.state = "scheduled"  # the snooze's wait is over; a peer may take the task
        if not declared:
            declared = not isinstance(
                await coordination.call("declare", coordinator.declare([declaration(runner)])),
                _Failed,
            )
            if not declared:
                await runner.sleep(retry)
                retry = min(_RETRY_MAX, retry * 2)
                continue
        suspend_clock = coordination.lease_clock or loop_clock
        sent = suspend_clock()
        answer = await coordination.call("acquire", coordinator.acquire(name))
        if isinstance(answer, _Failed):
            wait = retry
            retry = min(_RETRY_MAX, retry * 2)
        elif isinstance(answer, Busy):
            retry = _RETRY_MIN
            _mirror(runner, answer, _clock.wall_time(loop))
            wait = answer.wait if answer.holder is None else min(answer.wait, _HANDOVER_POLL)
            if calendar is not None:
                calendar.follow(_clock.wall_time(loop))
            wait += random.uniform(0.0, _BUSY_JITTER)
        elif (
            calendar is not None
            and not (answer.requested or runner._run_requested)
            and not calendar.take_grant(_clock.wall_time(loop))
        ):
            retry = _RETRY_MIN  # an instant older than the grace: skipped, due at the next
            wait = calendar.next_run_at - _clock.wall_time(loop)
            wait = await _release(coordination, answer, max(0.0, wait), 0, "skipped") or 0.0
        else:
            retry = _RETRY_MIN
            try:
                wait = await _run_granted(runner, coordination, answer, sent, suspend_clock, loop)
            except _Restart as restart:
                if not runner.cancelled:
                    runner.deadline = loop.time() + restart.wait
                    runner._park()
                return
        if runner.cancelled:
            return
        if calendar is not None:
            wait = sleep_cap(wait)  # re-read the wall clock at least every minute
        await runner.sleep(wait)


def _mirror(runner: TaskRunner, busy: Busy, wall: float) -> None:
    """Show the store's pause in this replica's status; a run-now request was taken."""
    if busy.paused:
        if runner.paused is None:
            runner.paused = (paused_at(busy.paused_for, wall), busy.paused_by)
    else:
        runner.paused = None
        if busy.holder is None:
            runner._run_requested = False  # consumed by a run elsewhere (or never stored)


async def _run_granted(
    runner: TaskRunner,
    coordination: Coordination,
    grant: Grant,
    sent: float,
    suspend_clock: Callable[[], float],
    loop: asyncio.AbstractEventLoop,
) -> float:
    """Run the body once under ``grant``; return the seconds until asking again."""
    coordinator = coordination.coordinator
    coordination.leases_acquired += 1
    lease = Lease(
        task=grant.task,
        token=grant.token,
        replica=coordinator.replica,
        cluster=coordinator.cluster,
        ttl=grant.ttl,
        _valid_until=sent + _LOCAL_SHARE * grant.ttl,
        _clock=suspend_clock,
    )
    me = asyncio.current_task()
    assert me is not None
    in_thread = not runner._is_async

    async def renew() -> None:
        while True:
            await asyncio.sleep(grant.ttl / 3)
            sent = suspend_clock()
            answer = await coordination.call("renew", coordinator.renew(grant))
            if answer is None:
                lease._lose("superseded: the coordinator granted the task to another replica")
            elif not isinstance(answer, _Failed):
                lease._renewed(sent + _LOCAL_SHARE * answer)
            if lease.lost:
                if not in_thread:
                    _lease_cancel(me, lease)
                return

    runner.consecutive_failures = grant.failures  # backoff survives a failover
    if (grant.requested or runner._run_requested) and runner._calendar is not None:
        runner._calendar.take_request()  # a run-now request: out of the instants
    runner._run_requested = runner._bypass = False
    renewer = loop.create_task(renew(), name=f"tickwork-renew-{grant.task}")
    context_token = _current.set(lease)
    started = loop.time()
    runner.state = "running"
    runner.last_started = started
    hooks = runner._scheduler._hooks
    execution = runner._execution(started) if hooks else None
    if execution is not None:
        call_start(hooks, execution)
    outcome: str
    keep = True
    try:
        try:
            await runner._call_body(started)
        finally:
            renewer.cancel()
            _current.reset(context_token)
    except asyncio.CancelledError as exc:
        if lease.lost and me.cancelling() and not runner.cancelled:
            me.uncancel()
            outcome = "lease_lost"
        elif me.cancelling():
            # Shutdown (or a cancel from outside): hand the lease back, due at once, so a peer
            # takes the task over now instead of after the TTL.
            runner._end_cancelled(execution)
            await _release_quietly(coordination, grant)
            raise
        else:  # the body's own CancelledError: that run's failure, as uncoordinated
            keep = runner._failed(execution, exc)
            outcome = "failure"
    except LeaseLostError:
        lease._lose("the body reported it")
        outcome = "lease_lost"
    except Snooze as snooze:
        runner._snoozed(execution, snooze)
        outcome = "snoozed"
    except BaseException as exc:
        keep = runner._failed(execution, exc)
        outcome = "timeout" if isinstance(exc, _Timeout) else "failure"
    else:
        runner._end(execution, None)
        outcome = "success"
    if runner.thread_running:
        await runner._join_thread()
    if outcome != "lease_lost" and lease.lost:
        outcome = "lease_lost"  # a plain function finished after its lease was lost
    if outcome == "lease_lost":
        coordination.leases_lost += 1
        _end_lease_lost(runner, execution, lease, started, loop)
        return 0.0
    wait = max(0.0, runner.deadline - loop.time())
    released = await _release(coordination, grant, wait, runner.consecutive_failures, outcome)
    if not keep:
        # After a BaseException that is no Exception (GeneratorExit: this coroutine may be being
        # closed) the cycle continues on a fresh asyncio task, as the uncoordinated runner does.
        raise _Restart(0.0 if released is None else released)
    if released is None:
        coordination.leases_superseded += 1
        _log.warning(
            "Task %s: its lease (token %d) was superseded before the run ended; "
            "another replica may have started it meanwhile",
            grant.task,
            grant.token,
            extra={"task": grant.task},
        )
        return 0.0
    return released


async def _release(
    coordination: Coordination, grant: Grant, wait: float, failures: int, outcome: str
) -> float | None:
    """Release, retrying while the lease could still be ours; None when superseded."""
    coordinator = coordination.coordinator
    deadline = asyncio.get_running_loop().time() + grant.ttl
    delay = 0.1
    while True:
        answer = await coordination.call(
            "release", coordinator.release(grant, wait=wait, failures=failures, outcome=outcome)
        )
        if not isinstance(answer, _Failed):
            return answer
        if asyncio.get_running_loop().time() + delay >= deadline:
            # The lease will expire with the task still due: a peer may run it once early.
            return _RETRY_MIN
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


async def _release_quietly(coordination: Coordination, grant: Grant) -> None:
    release = coordination.coordinator.release(grant, wait=0.0, failures=0, outcome="cancelled")
    try:
        async with asyncio.timeout(_RELEASE_ON_CANCEL):
            await asyncio.shield(coordination.call("release", release))
    except (TimeoutError, asyncio.CancelledError):
        pass


def _end_lease_lost(
    runner: TaskRunner,
    execution: Any,
    lease: Lease,
    started: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Record a run that ended ``lease_lost``: no failure, no backoff, one WARNING."""
    now = loop.time()
    reason = bounded(lease._lost or "lost")
    runner.record_lease_lost(now, started, reason)
    _log.warning(
        "Task %s: lease lost (token %d, %s); the run ended without its result counting",
        lease.task,
        lease.token,
        reason,
        extra={"task": lease.task},
    )
    if execution is not None:
        call_finish(
            runner._scheduler._hooks,
            execution,
            ExecutionResult(
                outcome="lease_lost",
                duration=now - started,
                finished_at=now + _clock.wall_offset(loop),
                error=None,
                reason=reason,
            ),
        )
