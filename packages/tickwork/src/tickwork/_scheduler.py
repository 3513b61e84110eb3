"""``Scheduler``: the registry of tasks, their lifecycle, status and shutdown.

The scheduler owns every asyncio task it creates (``_tasks``); each registered name maps to one
``TaskRunner`` (``_runners``). Cancelling a task removes its name at once; its runner may still
be finishing an execution, which ``shutdown()`` waits for, but it is no longer the task of that
name, so a task scheduled again under the same name starts from a clean status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tickwork import _clock
from tickwork._calendar import Calendar
from tickwork._coordinated import Coordination, _Failed, declaration, paused_at
from tickwork._cron import DEFAULT_GRACE, CronExpression, CronSpec, check_cron_options
from tickwork._errors import SchedulerError
from tickwork._execution import TaskRunner
from tickwork._hooks import ExecutionHook
from tickwork._spec import (
    TaskSpec,
    check_by,
    check_finite,
    check_name,
    check_sums,
    check_task,
    is_async_callable,
)
from tickwork._status import ShutdownReport, TaskStatus
from tickwork.coordination._protocol import Control, Coordinator

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = ["Scheduler"]

_log = logging.getLogger("tickwork.scheduler")

# After the grace period, cancelled executions get this long to unwind before shutdown() gives
# up on them (a body that swallows CancelledError must not wedge the shutdown).
_CANCEL_MARGIN = 0.5
_INF = float("inf")


class Scheduler:
    """Runs recurring tasks on the running asyncio event loop, each independent of the others.

    Every task runs first at once (or after one interval with ``run_immediately=False``), then
    ``interval`` seconds after each execution *finishes* (fixed delay): a task never overlaps
    itself. A task that raises is logged and rescheduled, whatever it raises (``SystemExit``
    and ``KeyboardInterrupt`` included: they are that run's failure, reported to the hooks);
    only :meth:`cancel_task` and :meth:`shutdown` remove a task. One that hangs, fails or is
    cancelled never delays another.

    Use it inside a running event loop; as an async context manager it shuts down on exit::

        async with Scheduler() as scheduler:
            scheduler.schedule_task("refresh", 60, refresh)
            await stop_event.wait()

    With a coordinator (``tickwork.coordination``), replicas sharing its store run each
    singleton task once per interval cluster-wide: see :meth:`use_coordinator`.

    Args:
        hooks: Objects told of every execution's start and end (metrics, tracing); see
            :class:`ExecutionHook`.
        coordinator: The store replicas share (``PostgresCoordinator``, ...), or None for a
            scheduler on its own.
    """

    def __init__(
        self, *, hooks: Iterable[ExecutionHook] = (), coordinator: Coordinator | None = None
    ) -> None:
        self._hooks: tuple[ExecutionHook, ...] = tuple(hooks)
        self._coordination: Coordination | None = None
        if coordinator is not None:
            self._coordination = Coordination(_check_coordinator(coordinator), self)
        self._runners: dict[str, TaskRunner] = {}
        self._tasks: dict[asyncio.Task[None], TaskRunner] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._shutdown_report: ShutdownReport | None = None
        # No hook: the runners may take their fast path (see _execution). Coordinated runs
        # never take it (they run _coordinated.run_coordinated instead of TaskRunner._main).
        self._plain = not self._hooks

    # -- coordination ---------------------------------------------------------------------------

    def use_coordinator(self, coordinator: Coordinator) -> bool:
        """Coordinate this scheduler's singleton tasks through ``coordinator``.

        For an application's ``setup(scheduler)``: call it before the first ``schedule_task``.
        A coordinator given earlier (``Scheduler(coordinator=...)``, which is what the command
        line's ``--coordinator`` does) wins: this one is then not used, and False is returned,
        so the caller can close it.

        Returns:
            True when ``coordinator`` is now the scheduler's.

        Raises:
            TypeError: ``coordinator`` does not implement the protocol.
            SchedulerError: ``"coordinator_too_late"``: a task is already scheduled.
        """
        _check_coordinator(coordinator)
        if self._runners:
            raise SchedulerError("coordinator_too_late", next(iter(self._runners)))
        if self._coordination is not None:
            _log.info(
                "A coordinator is already set (%s); the one the application gave is not used",
                self._coordination.coordinator.backend,
            )
            return False
        self._coordination = Coordination(coordinator, self)
        return True

    @property
    def coordinator(self) -> Coordinator | None:
        """The coordinator, or None for a scheduler on its own."""
        return None if self._coordination is None else self._coordination.coordinator

    @property
    def coordinator_ready(self) -> bool:
        """True without a coordinator; with one, while it answers (``/ready``)."""
        return self._coordination is None or self._coordination.ready

    def _coordinate(self, loop: asyncio.AbstractEventLoop, singleton: bool) -> Coordination | None:
        coordination = self._coordination
        if coordination is None:
            return None
        # Every task, singleton or not, obeys the store's pauses: the heartbeat mirrors them.
        coordination.ensure_running(loop)
        return coordination if singleton else None

    # -- registration -------------------------------------------------------------------------

    def schedule_task(
        self,
        name: str,
        interval: float,
        task: Callable[[], Any],
        *,
        timeout: float | None = None,
        jitter: float = 0.0,
        run_immediately: bool = True,
        max_backoff: float | None = None,
        singleton: bool = True,
    ) -> None:
        """Register ``task`` to run every ``interval`` seconds after its previous completion.

        The name is registered before the first run, so ``cancel_task(name)`` works at once, also
        from inside the first execution.

        Args:
            name: Unique, non-empty name; it identifies the task in status, logs and metrics.
            interval: Seconds from one execution's completion to the next start; 0 runs again
                on the next loop iteration.
            task: A zero-argument coroutine function (awaited on the loop; also a
                ``functools.partial`` of one, or an object whose ``__call__`` is ``async``) or
                plain function (run in a worker thread, so it never blocks the loop). When a
                plain function returns an awaitable (``lambda: svc.refresh(6)``), that
                awaitable is then awaited on the loop, within ``timeout``.
            timeout: Seconds an execution may run. A coroutine past it is cancelled; a plain
                function cannot be stopped, so the scheduler stops waiting, counts a failure,
                and the next run waits until the function has returned. None: no limit.
            jitter: Up to this many random seconds are added to each wait (not to an immediate
                first run), to spread tasks that would otherwise start together.
            run_immediately: Start the first execution on the next loop iteration (True) or
                after one interval (False).
            max_backoff: After consecutive failures the wait doubles per failure
                (``interval * 2**n``; from 1 s when the interval is 0), capped at this many
                seconds, and returns to ``interval`` after the first success. None keeps the
                interval constant.
            singleton: With a coordinator: one run at a time across the cluster, ``interval``
                after the cluster's last completion, the run holding a lease
                (``tickwork.current_lease()``) (True, the default); or every replica runs it
                on its own (False: for tasks that claim their own work items). ``run_immediately``
                then applies only to a task the cluster has never seen. Without a coordinator it
                changes nothing.

        Raises:
            TypeError: An argument has the wrong type (the message names it); a coroutine
                object was passed instead of the function; ``task`` needs arguments.
            ValueError: An argument is out of range (empty name, negative/NaN/infinite seconds,
                a number too large for a float, ``interval + jitter`` overflowing).
            RuntimeError: No event loop is running in this thread, or the scheduler is bound to
                another loop.
            SchedulerError: ``"already_scheduled"`` (the name is taken) or ``"shut_down"``.
        """
        # The checks of TaskSpec, without building one: registering 100,000 tasks should cost
        # about what creating 100,000 asyncio tasks does (benchmarks/core.py, case 4).
        check_name(name)
        if type(interval) is not float or not 0.0 <= interval < _INF:
            interval = check_finite("interval", interval)
        check_task(task)
        if timeout is not None:
            timeout = check_finite("timeout", timeout, zero=False)
        if type(jitter) is not float or not 0.0 <= jitter < _INF:
            jitter = check_finite("jitter", jitter)
        if run_immediately is not True and run_immediately is not False:
            raise TypeError(f"run_immediately must be a bool, got {run_immediately!r}")
        if max_backoff is not None:
            max_backoff = check_finite("max_backoff", max_backoff)
        if jitter:
            check_sums(interval, jitter, max_backoff)
        if singleton is not True and singleton is not False:
            raise TypeError(f"singleton must be a bool, got {singleton!r}")
        loop = self._check_can_add(name)
        self._runners[name] = TaskRunner(
            self,
            loop,
            name,
            interval,
            task,
            is_async_callable(task),
            timeout,
            jitter,
            max_backoff,
            run_immediately,
            self._coordinate(loop, singleton),
        )

    def schedule_cron(
        self,
        name: str,
        expression: str,
        task: Callable[[], Any],
        *,
        tz: str | ZoneInfo = "UTC",
        timeout: float | None = None,
        jitter: float = 0.0,
        singleton: bool = True,
        max_backoff: float | None = None,
        retries: int = 0,
        misfire_grace: float = DEFAULT_GRACE,
    ) -> None:
        """Register ``task`` to run at the instants a cron expression matches, in a time zone.

        The same runner as :meth:`schedule_task`: name space, errors, status, hooks,
        timeouts, cancel and shutdown behave alike; only the next start is computed
        differently. Needs the ``[cron]`` extra (``pip install 'tickwork[cron]'``).

        Semantics:

        * The first run is at the first matching instant after this call (never at once).
        * Day-of-month and day-of-week both restricted (``0 12 13 * 5``): either matches,
          as in cron.
        * A task never overlaps itself: instants that pass while a run is going are skipped
          and counted (``TaskStatus.skipped``); the next start is the first matching instant
          after the run ends.
        * Daylight saving time as cron (cronie, Debian) does: a fixed time of day in the
          skipped hour runs once, right after the jump; one in the repeated hour runs once,
          at its first occurrence; a job with a wildcard or step in the minute or hour field
          runs on the real timeline (no duplicate, no burst).
        * The wall clock is re-read at every wake and the runner never waits more than 60 s
          on the monotonic clock, so an NTP step or a resume from suspend is noticed within a
          minute. Instants missed meanwhile run once (coalesced into the newest) when the
          newest is at most ``misfire_grace`` seconds old; otherwise they are skipped and
          counted. A clock stepped back never repeats an instant that already ran.
        * A failed run (or timeout) is retried up to ``retries`` times, after the interval
          tasks' backoff (``max_backoff``; None retries at once), as long as the retry starts
          before the next instant.
        * With a coordinator (and ``singleton=True``) the instant is the task's due time in the
          store: each instant runs once cluster-wide; a restarted replica never runs an instant
          again that already ran; an instant missed while the whole cluster was down is caught
          up under the same grace; an instant whose holder crashed mid-run runs again once,
          after its lease expired (fenced). The replicas' wall clocks must agree within 5 s.

        Hooks see each run as for an interval task, with ``Execution.due_at`` the instant (or
        the retry's start) and ``Execution.interval`` 0.0.

        Not guaranteed: instants are resolved to the minute, as in cron; a plain function that
        timed out may still be running in its thread (the next run waits for it); with a
        coordinator, ``skipped`` counts what this replica saw (one per skipped grant).

        Args:
            name: Unique, non-empty name.
            expression: Five fields (minute hour day-of-month month day-of-week) with ranges,
                steps, lists and names (``*/15 9-17 * * mon-fri``), or ``@hourly``,
                ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``.
            task: As for :meth:`schedule_task`.
            tz: The IANA zone the expression is read in (``"Europe/Rome"``), or a
                :class:`zoneinfo.ZoneInfo`.
            timeout: As for :meth:`schedule_task`.
            jitter: Up to this many random seconds are added to each instant.
            singleton: As for :meth:`schedule_task`.
            max_backoff: Cap of the doubling wait between retries (from 1 s); None: retry at
                once.
            retries: Retries of a failed run before the next instant (0: none).
            misfire_grace: Seconds a missed instant may be late and still run.

        Raises:
            ValueError: An invalid expression (the message names the field and the value:
                ``minute: 61 is out of range 0-59``), an unknown zone, or an option out of
                range.
            TypeError, RuntimeError, SchedulerError: As for :meth:`schedule_task`.
            tickwork.MissingExtraError: The ``[cron]`` extra is not installed (a
                ``ModuleNotFoundError`` whose one-line message names it).
        """
        self._add_cron(
            CronSpec(
                name,
                expression,
                task,
                tz=tz,
                timeout=timeout,
                jitter=jitter,
                singleton=singleton,
                max_backoff=max_backoff,
                retries=retries,
                misfire_grace=misfire_grace,
            )
        )

    def _add_cron(self, spec: CronSpec) -> None:
        loop = self._check_can_add(spec.name)
        check_cron_options(spec.timeout, spec.jitter, spec.max_backoff, spec.retries)
        calendar = Calendar(
            CronExpression(spec.expression, spec.tz),
            _clock.wall_time(loop),
            retries=spec.retries,
            misfire_grace=spec.misfire_grace,
            jitter=spec.jitter,
            max_backoff=spec.max_backoff,
        )
        self._runners[spec.name] = TaskRunner(
            self,
            loop,
            spec.name,
            0.0,
            spec.task,
            is_async_callable(spec.task),
            None if spec.timeout is None else float(spec.timeout),
            float(spec.jitter),
            spec.max_backoff,
            False,
            self._coordinate(loop, spec.singleton),
            calendar,
        )

    def schedule_tasks(self, specs: Iterable[TaskSpec | CronSpec]) -> None:
        """Register several tasks at once: all of them, or none when any is refused.

        Args:
            specs: The tasks, as :class:`TaskSpec` (interval) or :class:`CronSpec` (calendar)
                objects, checked when they were created.

        Raises:
            TypeError: An item is neither a ``TaskSpec`` nor a ``CronSpec``.
            SchedulerError: ``"already_scheduled"`` (a name is taken or repeated in ``specs``)
                or ``"shut_down"``.
            RuntimeError: As for :meth:`schedule_task`.
        """
        specs = list(specs)
        seen: set[str] = set()
        for spec in specs:
            if not isinstance(spec, TaskSpec | CronSpec):
                raise TypeError(f"specs must contain TaskSpec or CronSpec objects, got {spec!r}")
            if spec.name in seen:
                raise SchedulerError("already_scheduled", spec.name)
            seen.add(spec.name)
            self._check_can_add(spec.name)
        for spec in specs:
            if isinstance(spec, CronSpec):
                self._add_cron(spec)
            else:
                self._add(spec)

    def _check_can_add(self, name: str) -> asyncio.AbstractEventLoop:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"Scheduler needs a running asyncio event loop to schedule task {name!r}: "
                "call it from async code (inside asyncio.run(...))"
            ) from None
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"this Scheduler runs on another event loop; cannot schedule task {name!r} here"
            )
        if self._closed:
            raise SchedulerError("shut_down", name)
        if name in self._runners:
            raise SchedulerError("already_scheduled", name)
        return loop

    def _add(self, spec: TaskSpec) -> None:
        loop = self._check_can_add(spec.name)
        self._runners[spec.name] = TaskRunner(
            self,
            loop,
            spec.name,
            spec.interval,
            spec.task,
            spec.is_async,
            spec.timeout,
            spec.jitter,
            spec.max_backoff,
            spec.run_immediately,
            self._coordinate(loop, spec.singleton),
        )

    def cancel_task(self, name: str) -> None:
        """Stop scheduling ``name``: no further execution starts, and the name is free at once.

        An execution in progress is allowed to finish and is not rescheduled; the name can be
        scheduled again right away.

        Raises:
            SchedulerError: ``"not_scheduled"``: no task of that name.
        """
        runner = self._runners.pop(name, None)
        if runner is None:
            raise SchedulerError("not_scheduled", check_name(name))
        runner.cancel()

    def list_tasks(self) -> list[str]:
        """Return the names of the scheduled tasks, in registration order."""
        return list(self._runners)

    # -- operators' controls --------------------------------------------------------------------

    async def pause_task(self, name: str, *, by: str | None = None) -> TaskStatus:
        """Pause ``name``: no run starts until :meth:`resume_task`; the task stays scheduled.

        A run in progress is not interrupted; it ends as usual and the task then waits. Status
        reads ``"paused"`` with ``paused_at`` and ``paused_by``. Pausing a paused task changes
        nothing (the first pause's time and author stay). :meth:`cancel_task` removes a paused
        task as any other; :meth:`trigger` runs it once and it stays paused.

        With a coordinator the pause is stored in it first: every replica's runner obeys it
        (the holder at its next start, replicas that are waiting within one heartbeat) and it
        survives restarts and deploys, also of a task cancelled and scheduled again under the
        same name. Without one it lives in this process only.

        Args:
            name: The task.
            by: Who asks, in words (``"alice via the CLI"``): status and the log show it.

        Returns:
            The task's status right after the pause.

        Raises:
            SchedulerError: ``"not_scheduled"`` (no task of that name), ``"shut_down"``, or
                ``"coordinator_unavailable"`` (the coordinator could not store it: nothing
                changed).
            TypeError, ValueError: ``name`` or ``by`` is not text (``by``: 1 to 200 printable
                characters), the message naming it.
        """
        runner = self._controlled(name)
        by = check_by(by)
        at = _clock.wall_time(runner._loop)
        coordination = self._coordination
        if coordination is not None:
            control = await self._store(
                runner, coordination, lambda c: c.set_paused(name, True, by=by)
            )
            at = paused_at(control.paused_for, _clock.wall_time(runner._loop))
            by = control.paused_by
            runner = self._controlled(name, runner)
        runner.pause(at, by)
        _log.info("Task %s paused by %s", name, by or "the application", extra={"task": name})
        return self.task_status(name)

    async def resume_task(self, name: str, *, by: str | None = None) -> TaskStatus:
        """Undo :meth:`pause_task`: the task runs at its due time again.

        A task whose due time passed while it was paused runs once at once, not once per
        missed interval; a calendar task's missed instants coalesce under its
        ``misfire_grace``; a snooze in force when the task was paused still holds. Resuming a
        task that is not paused changes nothing. With a coordinator, as for ``pause_task``.

        Args:
            name: The task.
            by: Who asks, in words, for the log.

        Returns:
            The task's status right after.

        Raises:
            SchedulerError: As for :meth:`pause_task`.
        """
        runner = self._controlled(name)
        by = check_by(by)
        coordination = self._coordination
        if coordination is not None:
            await self._store(runner, coordination, lambda c: c.set_paused(name, False, by=by))
            runner = self._controlled(name, runner)
        runner.resume()
        _log.info("Task %s resumed by %s", name, by or "the application", extra={"task": name})
        return self.task_status(name)

    async def trigger(self, name: str, *, by: str | None = None) -> TaskStatus:
        """Run ``name`` once now: at once when it is idle, right after the run in progress.

        Never overlaps: several requests before the run starts make one run. A paused task
        runs once and stays paused. Afterwards the task waits its interval (or, for a calendar
        task, its next instant) from the end of that run. With a coordinator the request is
        stored in it: the first replica free to take the task's lease runs it (this one, unless
        another holds it); a task with ``singleton=False`` runs on this replica.

        Args:
            name: The task.
            by: Who asks, in words, for the log.

        Returns:
            The task's status right after the request: an idle task due now (it starts on
            the loop's next iteration), or ``run_requested`` while a run is in progress.

        Raises:
            SchedulerError: As for :meth:`pause_task`.
        """
        runner = self._controlled(name)
        by = check_by(by)
        coordination = runner._coordination
        if coordination is not None:
            await self._store(runner, coordination, lambda c: c.request_run(name))
            runner = self._controlled(name, runner)
        runner.trigger()
        _log.info("Task %s triggered by %s", name, by or "the application", extra={"task": name})
        return self.task_status(name)

    def _controlled(self, name: str, runner: TaskRunner | None = None) -> TaskRunner:
        """The runner of ``name`` (still ``runner`` after an await), or SchedulerError."""
        found = self._runners.get(check_name(name))
        if found is None or (runner is not None and found is not runner):
            raise SchedulerError("shut_down" if self._closed else "not_scheduled", name)
        return found

    async def _store(
        self,
        runner: TaskRunner,
        coordination: Coordination,
        action: Callable[[Coordinator], Awaitable[Control | None]],
    ) -> Control:
        """Write an operator's control to the coordinator; declare the task's row if needed."""
        name = runner.name
        coordinator = coordination.coordinator
        coordination.actions += 1
        coordination.ensure_running(runner._loop)
        try:
            async with asyncio.timeout(max(1.0, coordinator.ttl / 3)):
                await coordination.wait_started()
        except TimeoutError:
            raise SchedulerError("coordinator_unavailable", name) from None
        answer = await coordination.call("control", action(coordinator))
        if answer is None:  # no row yet: the runner has not declared it, or it is no singleton
            declare = coordinator.declare([declaration(runner)])
            if not isinstance(await coordination.call("declare", declare), _Failed):
                answer = await coordination.call("control", action(coordinator))
        coordination.actions += 1  # a heartbeat that overlapped the write must not undo it
        if not isinstance(answer, Control):
            raise SchedulerError("coordinator_unavailable", name)
        return answer

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> list[TaskStatus]:
        """Return a snapshot of every scheduled task, in registration order."""
        loop = self._loop
        if loop is None:
            return []
        now = loop.time()
        offset = _clock.wall_offset(loop)
        return [r.snapshot(now, offset) for r in self._runners.values()]

    def task_status(self, name: str) -> TaskStatus:
        """Return a snapshot of one task.

        Raises:
            SchedulerError: ``"not_scheduled"``: no task of that name.
        """
        runner = self._runners.get(check_name(name))
        if runner is None or self._loop is None:
            raise SchedulerError("not_scheduled", name)
        return runner.snapshot(self._loop.time(), _clock.wall_offset(self._loop))

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has started: no task can be scheduled any more."""
        return self._closed

    def add_hook(self, hook: ExecutionHook) -> None:
        """Add an execution hook; it sees executions that start from now on."""
        self._hooks = (*self._hooks, hook)
        self._plain = False

    def remove_hook(self, hook: ExecutionHook) -> None:
        """Remove a hook added earlier; unknown hooks are ignored."""
        self._hooks = tuple(h for h in self._hooks if h is not hook)
        self._plain = not self._hooks

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self, grace: float = 5.0) -> ShutdownReport:
        """Cancel every task, let executions in flight finish for up to ``grace`` seconds.

        As the seed's graceful shutdown: every name in :meth:`list_tasks` is cancelled (a
        problem is logged at WARNING and does not stop the others); then executions still
        running get ``grace`` seconds; those left are cancelled and awaited briefly. It always
        returns, within ``grace`` plus half a second, even when a task ignores cancellation
        or is stuck in a thread. Afterwards :meth:`list_tasks` is empty and
        :meth:`schedule_task` raises ``SchedulerError("shut_down")``. A second call returns the
        first call's report.

        Args:
            grace: Seconds to wait for executions in flight (>= 0).

        Returns:
            Which tasks' executions finished, were cancelled, or were left running in a
            thread (plain functions cannot be stopped).
        """
        grace = check_finite("grace", grace)
        if self._shutdown_report is not None:
            return self._shutdown_report
        self._closed = True
        for name in self.list_tasks():
            try:
                self.cancel_task(name)
            except Exception:
                _log.warning("Failed to cancel task %s", name, exc_info=True, extra={"task": name})
        current = asyncio.current_task()
        # Runners that are merely waiting saw their cancel and are leaving; only executions
        # under way count in the report.
        in_flight = {
            t: r for t, r in self._tasks.items() if t is not current and r.state == "running"
        }
        finished: list[str] = []
        cancelled: list[str] = []
        abandoned: list[str] = []
        if in_flight:
            _log.info("Waiting up to %gs for %d running task(s)", grace, len(in_flight))
            done, pending = await asyncio.wait(in_flight, timeout=grace)
            finished.extend(in_flight[t].name for t in done)
            for task in pending:
                task.cancel()
            if pending:
                _, stubborn = await asyncio.wait(pending, timeout=_CANCEL_MARGIN)
                for task in pending:
                    runner = in_flight[task]
                    if runner.thread_running:
                        abandoned.append(runner.name)
                        _log.warning(
                            "Task %s is still running in its thread; abandoning it",
                            runner.name,
                            extra={"task": runner.name},
                        )
                    else:
                        cancelled.append(runner.name)
                        if task in stubborn:
                            _log.warning(
                                "Task %s did not stop after being cancelled; abandoning it",
                                runner.name,
                                extra={"task": runner.name},
                            )
        if self._coordination is not None:
            await self._coordination.close(_CANCEL_MARGIN)
        report = ShutdownReport(tuple(finished), tuple(cancelled), tuple(abandoned))
        self._shutdown_report = report
        return report

    async def __aenter__(self) -> Scheduler:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # -- internals used by TaskRunner -------------------------------------------------------------

    def _own(self, task: asyncio.Task[None], runner: TaskRunner) -> asyncio.Task[None]:
        self._tasks[task] = runner
        task.add_done_callback(self._task_done)
        return task

    def _forget(self, runner: TaskRunner) -> None:
        if self._runners.get(runner.name) is runner:
            del self._runners[runner.name]
        runner.cancel()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        runner = self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        # Task bodies' exceptions never get here: this is a bug in tickwork. It must be seen.
        if runner is not None:
            self._forget(runner)
        task.get_loop().call_exception_handler(
            {
                "message": f"tickwork internal error in the runner of task {runner!r}",
                "exception": exc,
                "task": task,
            }
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        running = sum(r.state == "running" for r in self._runners.values())
        return f"<Scheduler {state} tasks={len(self._runners)} running={running}>"


def _check_coordinator(coordinator: object) -> Coordinator:
    if not isinstance(coordinator, Coordinator):
        raise TypeError(
            "coordinator must implement tickwork.coordination.Coordinator, got "
            f"{type(coordinator).__name__} {coordinator!r}"
        )
    return coordinator
