"""One task's runner: run the body, record the outcome, wait, run again, until cancelled.

The state machine of a ``TaskRunner``. ``state`` is the public :data:`tickwork.TaskState`
(one type for the runner and for status); ``cancelled`` is a flag that can be set in any state::

          schedule_task(run_immediately=True)       schedule_task(run_immediately=False)
                         |                                        |
                         |  deadline = now                        |  deadline = now + wait()
                         v                                        v
    +------------> SCHEDULED  waits for ``deadline`` in one of the _WAITS below
    |                    |
    |                    |  due
    |                    v
    |              RUNNING  the body: awaited on the loop (coroutine function), or in a worker
    |                    |  thread (plain function; an awaitable it returns is then awaited on
    |                    |  the loop), bounded by ``timeout`` if set
    |                    |
    |                    |  ends: success | failure (anything the body raises, BaseException
    |                    |  included) | timeout  ->  _end(): runs, last_*, failures, the
    |                    |  FailureLog, the hooks; deadline = now + wait()
    |                    |
    |                    +--- the body raised Snooze(seconds): _snoozed(): runs, last_*, the
    |                    |    hooks (no failure, the streak kept); deadline = now + seconds
    |                    |    -> SNOOZED, which waits like SCHEDULED, then RUNNING
    |                    |
    |                    +--- a plain function timed out and its thread still runs:
    |                    |    stays RUNNING (``_thread`` set) until the thread returns,
    |                    |    then deadline = now + wait()  (a task never overlaps itself)
    +--------------------+
                         (a CancelledError the scheduler asked for: ``shutdown`` cancelling the
                          asyncio task. The hooks see "cancelled"; the runner's task ends.)

Fields in each state (loop times; ``snapshot`` converts them to epoch seconds)::

    state       deadline           last_started   running_for       next_run_at   _thread
    SCHEDULED   next start         previous run   None              deadline      None
    SNOOZED     end + seconds      previous run   None              deadline      None
    RUNNING     start it was due   this run       now - started     None          set while a
                                                                                  plain function
                                                                                  runs

``runs``, ``failures``, ``consecutive_failures``, ``last_finished``, ``last_duration`` and
``last_error`` change only in ``_end`` and ``_snoozed`` (or the fast path, which writes the same
values: pinned by ``tests/core/test_runner.py``). A success writes no outcome: ``_odd`` keeps
the latest run that did not succeed (number, outcome, reason), and ``snapshot`` reads "success"
when a later run finished since. ``last_success`` is stored only when such a run follows a
success; while the latest run succeeded it is ``last_finished``.

_WAITS, chosen after each execution from ``wait = deadline - now``:

* ``yield``: ``wait <= 0`` (interval 0): one bare pass through the event loop;
* ``sleep``: ``0 < wait < _PARK_AFTER``: the runner's asyncio task sleeps on a future that a
  loop timer (or ``cancel()``) completes;
* ``park``: ``wait >= _PARK_AFTER``, or after the body raised a ``BaseException`` that is not
  an ``Exception``: the asyncio task ends, leaving this record and one ``TimerHandle``
  (``_timer``) that spawns a fresh task when due. An idle hourly task costs a few hundred bytes
  and no wake-ups. (After a ``GeneratorExit`` the coroutine may be being closed, and must not
  await again.)

A new kind of wait (a calendar time) is a new branch in ``_main`` where it chooses the
wait and, when it must show in status, a new ``TaskState`` member (as ``"snoozed"``).

Operators' controls (``Scheduler.pause_task``/``resume_task``/``trigger``), uncoordinated::

    pause()    ``paused`` is set and status reads "paused" at once (a run in progress reads
               "running" until it ends). A parked runner's timer is cancelled; a live asyncio
               task (a short sleep, a run) ends at its next pass through the loop's top, or in
               ``_spawn``. Either way the runner is then HELD: no task, no timer (``_held``).
    resume()   ``paused`` cleared; a held runner gets a timer at its old deadline (at once when
               it passed: one run, not one per missed interval; a calendar task coalesces its
               missed instants under ``misfire_grace``).
    trigger()  idle: the deadline becomes now (a parked or held runner is spawned at once, a
               sleeping one woken); running: ``_run_requested``, consumed where the wait after
               the run is chosen (``_wait``, ``_snoozed``): the next run starts right after.
               On a paused task ``_bypass`` lets one run through the hold.

With a coordinator the store keeps the controls (``_coordinated``): ``paused`` is then a mirror
of the store's answer and the runner is never held; ``poke()`` makes it ask the store again.

Coordinated singleton tasks (a scheduler with a coordinator) run another cycle on the same
record: ``_coordinated.run_coordinated`` (drawn in its module) acquires a lease before each run
and takes every wait from the coordinator; it uses this class's body call and bookkeeping
(``_call_body``, ``_end``, ``_join_thread``), so status, hooks and failure logs are the same.

Calendar tasks (``schedule_cron``) run ``_calendar.run_calendar`` (drawn in its module) on the
same record: it computes each start from the cron expression and calls ``_execute``;
``_wait`` asks the calendar for the wait after a run (retry or next instant).

cancel() (``cancel_task``, ``shutdown``, or the body cancelling its own task): no further
start. A waiting runner leaves at once (timer cancelled, sleep woken); a running body finishes,
is recorded, and is not rescheduled. ``shutdown`` may then cancel the asyncio task itself.

The fast path: a coroutine function without timeout or jitter, with no hooks, no failure
streak and DEBUG off is awaited inline in ``_main`` with its bookkeeping written out there,
because at interval 0 each attribute access is a visible share of the cost
(``benchmarks/core.py``, case 1). Every other execution takes ``_execute``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import random
import time
import types
from typing import TYPE_CHECKING, Any

from tickwork import _clock
from tickwork._failures import FailureLog
from tickwork._hooks import Execution, ExecutionResult, Outcome, call_finish, call_start
from tickwork._snooze import Snooze, bounded
from tickwork._status import TaskState, TaskStatus
from tickwork._threads import pool

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

    from tickwork._calendar import Calendar
    from tickwork._coordinated import Coordination
    from tickwork._scheduler import Scheduler

__all__ = ["TaskRunner"]

_log = logging.getLogger("tickwork.scheduler")

# Waits at least this long end the runner's asyncio task and park it on a bare timer.
_PARK_AFTER = 1.0
# Runs without a wait between them re-read the logging level this often (see _main).
_RECHECK_LOGGING = 64
# With interval 0, exponential backoff starts from this many seconds.
_BACKOFF_BASE_FOR_ZERO = 1.0

_monotonic = time.monotonic
_BASE_LOOP_TIME = asyncio.BaseEventLoop.time


@types.coroutine
def _yield() -> Generator[None, None, None]:
    """One bare pass through the event loop (what ``asyncio.sleep(0)`` does, minus its checks)."""
    yield


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _cancel_requested() -> bool:
    """True when the current asyncio task was cancelled by someone (shutdown), not by its body."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class TaskRunner:
    """Runs one registered task. Created by the scheduler; owns no public API."""

    __slots__ = (
        "_attention",
        "_bypass",
        "_calendar",
        "_coordination",
        "_failure_log",
        "_fn",
        "_held",
        "_is_async",
        "_jitter",
        "_loop",
        "_max_backoff",
        "_odd",
        "_run_requested",
        "_scheduler",
        "_thread",
        "_timeout",
        "_timer",
        "_wakeup",
        "cancelled",
        "consecutive_failures",
        "deadline",
        "failures",
        "interval",
        "last_duration",
        "last_error",
        "last_finished",
        "last_started",
        "last_success",
        "name",
        "paused",
        "run_immediately",
        "runs",
        "state",
    )

    def __init__(
        self,
        scheduler: Scheduler,
        loop: asyncio.AbstractEventLoop,
        name: str,
        interval: float,
        fn: Callable[[], Any],
        is_async: bool,
        timeout: float | None,
        jitter: float,
        max_backoff: float | None,
        run_immediately: bool,
        coordination: Coordination | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._coordination = coordination
        self._calendar = calendar  # a cron task: _calendar computes its starts
        self.run_immediately = run_immediately
        self._loop = loop
        self._fn = fn
        self._is_async = is_async
        self._timeout = timeout
        self._jitter = jitter
        self._max_backoff = max_backoff
        # Created at the first failure: most tasks never fail, and 100,000 idle tasks should
        # not carry 100,000 of them (benchmark case 4's memory per task).
        self._failure_log: FailureLog | None = None
        self.name = name
        self.interval = interval
        self.state: TaskState = "scheduled"
        self.cancelled = False
        self.runs = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_started: float | None = None  # loop times; epoch only in snapshot()
        self.last_finished: float | None = None
        self.last_success: float | None = None
        self.last_duration: float | None = None
        self.last_error: str | None = None
        # The latest run that did not succeed: (its number, outcome, reason). A success writes
        # nothing (the fast path stays as it is): a later run number means the latest succeeded.
        self._odd: tuple[int, Outcome, str | None] | None = None
        # Operators' controls (see the module docstring): (paused at, epoch; by whom) or None.
        self.paused: tuple[float, str | None] | None = None
        self._held = False  # paused, with neither an asyncio task nor a timer
        self._run_requested = False  # a run-now request made during a run
        self._bypass = False  # one run passes a pause (a run-now request on a paused task)
        # True when _main must look at the flags above or ``cancelled``: the fast path reads
        # this one attribute per run instead of three (see _main and _halt).
        self._attention = False
        self.deadline = loop.time()
        self._timer: asyncio.Handle | None = None  # the parked wait's TimerHandle
        self._wakeup: asyncio.Future[None] | None = None  # the short wait's future
        self._thread: asyncio.Future[Any] | None = None  # a plain function's run in its thread
        if run_immediately or coordination is not None or calendar is not None:
            # A coordinated task asks the coordinator at once: the store decides when it is due.
            self._timer = loop.call_soon(self._spawn)
        else:
            self.deadline += self._wait()
            self._timer = loop.call_at(self.deadline, self._spawn)

    # -- control, called by the scheduler --------------------------------------------------

    def cancel(self) -> None:
        """No further execution starts; one in progress finishes and is not rescheduled."""
        self.cancelled = True
        self._attention = True
        if self._failure_log is not None:
            self._failure_log.flush()  # failures held back for the next summary are not lost
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._wakeup is not None:
            _wake(self._wakeup)

    def pause(self, at: float, by: str | None) -> None:
        """Hold the task from its next start on (``at``: epoch seconds of the pause)."""
        if self.paused is None:
            self.paused = (at, by)
        if self._coordination is not None:
            self.poke()
            return
        self._attention = True
        if self._timer is not None:  # parked: drop the timer now
            self._timer.cancel()
            self._timer = None
            self._held = True

    def resume(self) -> None:
        """Undo :meth:`pause`; a held runner starts at its deadline, or at once if it passed."""
        self.paused = None
        self._bypass = False
        self._attention = self.cancelled or self._run_requested
        if self._coordination is not None:
            self.poke()
            return
        if self._held and not self.cancelled:
            self._held = False
            self._timer = self._loop.call_at(max(self.deadline, self._loop.time()), self._spawn)

    def trigger(self) -> None:
        """Run once as soon as possible: now when idle, right after the run in progress."""
        if self.cancelled:
            return
        if self.paused is not None:
            self._bypass = True
        if self._coordination is not None:
            self._run_requested = True  # the store holds the request; this is for status
            self.poke()
            return
        self._attention = True
        if self.state == "running":
            self._run_requested = True
            return
        if self._calendar is not None:
            self._run_requested = True  # run_calendar runs it out of its instants
        self.deadline = self._loop.time()
        if self._timer is not None or self._held:
            if self._timer is not None:
                self._timer.cancel()
            self._held = False
            self._timer = self._loop.call_soon(self._spawn)
        elif self._wakeup is not None:
            _wake(self._wakeup)

    def poke(self) -> None:
        """A coordinated runner waiting for its next question to the store asks it now."""
        if self._wakeup is not None:
            _wake(self._wakeup)

    def hold(self) -> bool:
        """At the top of a cycle: True when the runner must stop here because it is paused.

        A run-now request on the paused task (``_bypass``) lets one run through.
        """
        if self._bypass:
            self._bypass = False
            return False
        self._held = True
        return True

    def _halt(self) -> bool:
        """At the top of ``_main`` with ``_attention`` set: True to leave (cancelled, held)."""
        if self.cancelled:
            return True
        if self.paused is not None and self.hold():
            return True
        self._attention = self.paused is not None or self._run_requested
        return False

    @property
    def thread_running(self) -> bool:
        """True while a plain function of this task is still running in its thread."""
        return self._thread is not None and not self._thread.done()

    def snapshot(self, now: float, offset: float) -> TaskStatus:
        """A frozen status at loop time ``now``; ``offset`` converts loop times to epoch."""
        running = self.state == "running"
        started = self.last_started
        odd = self._odd
        outcome: Outcome | None
        if odd is not None and odd[0] == self.runs:
            _, outcome, reason = odd
            last_success = self.last_success  # stored when the run before the odd one ended
        else:
            # The latest run succeeded (the fast path writes neither last_success nor _odd).
            outcome = "success" if self.runs else None
            reason = None
            last_success = self.last_finished
        paused = self.paused
        state = self.state
        waiting = not (running or self.cancelled)
        if paused is not None and not running and not self._bypass:
            state = "paused"
            waiting = False
        next_run_at = self.deadline + offset if waiting else None
        calendar = self._calendar
        if calendar is not None:  # a cron task: the next instant, in wall time
            next_run_at = calendar.next_run_at if waiting else None
        return TaskStatus(
            name=self.name,
            interval=None if calendar is not None else self.interval,
            timeout=self._timeout,
            state=state,
            runs=self.runs,
            failures=self.failures,
            consecutive_failures=self.consecutive_failures,
            last_started_at=None if started is None else started + offset,
            last_finished_at=None if self.last_finished is None else self.last_finished + offset,
            last_success_at=None if last_success is None else last_success + offset,
            last_duration=self.last_duration,
            last_error=self.last_error,
            next_run_at=next_run_at,
            running_for=max(0.0, now - started) if running and started is not None else None,
            last_outcome=outcome,
            last_outcome_reason=reason,
            schedule=None if calendar is None else calendar.cron.describe(),
            skipped=0 if calendar is None else calendar.skipped,
            paused_at=None if paused is None else paused[0],
            paused_by=None if paused is None else paused[1],
            run_requested=self._run_requested or self._bypass,
        )

    # -- the loop ------------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._timer = None
        if self.cancelled:
            return
        if self.paused is not None and self._coordination is None and not self._bypass:
            self._held = True
            return
        # The scheduler holds the task; the runner does not, so a finished execution's task,
        # coroutine and context are freed at once rather than when the runner is cancelled.
        if self._coordination is not None:
            from tickwork._coordinated import run_coordinated

            main = run_coordinated(self, self._coordination)
        elif self._calendar is not None:
            from tickwork._calendar import run_calendar

            main = run_calendar(self, self._calendar)
        else:
            main = self._main()
        self._scheduler._own(self._loop.create_task(main), self)

    async def _main(self) -> None:
        # Locals, not attributes, on the path every execution takes (see the module docstring).
        loop = self._loop
        # loop.time() is a Python-level wrapper of time.monotonic(); skip it unless a loop (the
        # virtual-time test loop) has its own clock.
        clock = _monotonic if type(loop).time is _BASE_LOOP_TIME else loop.time
        scheduler = self._scheduler
        fn = self._fn
        interval = self.interval
        fast = self._is_async and self._timeout is None and not self._jitter
        debug = _log.isEnabledFor
        verbose = debug(logging.DEBUG)
        # Back-to-back runs (interval 0) ask the logger only every _RECHECK_LOGGING runs: the
        # question costs as much as the rest of the bookkeeping. A level changed at run time
        # still takes effect within microseconds.
        recheck = _RECHECK_LOGGING
        while True:
            if self._attention and self._halt():
                return
            keep = True  # False: continue on a fresh asyncio task (the "park" wait)
            if fast and scheduler._plain and not (self.consecutive_failures or verbose):
                # The fast path: what _execute and _end record for a success without hooks.
                started = clock()
                self.state = "running"
                self.last_started = started
                try:
                    await fn()
                except asyncio.CancelledError as exc:
                    if _cancel_requested():
                        raise  # no hook to tell
                    keep = self._failed(None, exc)
                    wait = self.deadline - clock()
                except Snooze as snooze:
                    self._snoozed(None, snooze)
                    wait = self.deadline - clock()
                except BaseException as exc:
                    keep = self._failed(None, exc)
                    wait = self.deadline - clock()
                else:
                    if scheduler._plain:
                        finished = clock()
                        self.runs += 1
                        self.last_finished = finished  # also the last success: see snapshot()
                        self.last_duration = finished - started
                        self.state = "scheduled"
                        self.deadline = finished + interval
                        wait = interval
                    else:  # a hook was added during the run: _end tells it of the finish
                        self._end(None, None)
                        wait = self.deadline - clock()
            else:
                keep = await self._execute(clock())
                wait = self.deadline - clock()
            if self._attention:
                if self.cancelled:
                    return
                if self._run_requested:  # asked during a run the fast path recorded
                    self._run_requested = False
                    self.deadline = clock()
                    wait = 0.0
            if not keep or wait >= _PARK_AFTER:
                self._park()
                return
            if wait <= 0:
                await _yield()
                recheck -= 1
                if not recheck:
                    recheck = _RECHECK_LOGGING
                    verbose = debug(logging.DEBUG)
                continue
            await self._sleep_until_deadline()
            verbose = debug(logging.DEBUG)

    async def sleep(self, wait: float) -> None:
        """Wait ``wait`` seconds (the next start shows in status), or until cancelled."""
        if self.cancelled:
            return
        self.deadline = self._loop.time() + wait
        await self._sleep_until_deadline()

    def record_lease_lost(self, now: float, started: float, reason: str) -> None:
        """A coordinated run that ended ``lease_lost`` (``reason``, bounded): not a failure."""
        self._not_success("lease_lost", reason)
        self.runs += 1
        self.last_finished = now
        self.last_duration = now - started
        self.state = "scheduled"

    def _park(self) -> None:
        """End this asyncio task; a TimerHandle spawns a fresh one at the deadline."""
        if not self._loop.is_closed():  # a coroutine closed at exit must not schedule anything
            self._timer = self._loop.call_at(self.deadline, self._spawn)

    async def _sleep_until_deadline(self) -> None:
        wakeup: asyncio.Future[None] = self._loop.create_future()
        self._wakeup = wakeup
        timer = self._loop.call_at(self.deadline, _wake, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    async def _execute(self, started: float) -> bool:
        """One execution with everything the fast path leaves out; False: park afterwards."""
        self.state = "running"
        self.last_started = started
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("Executing task: %s", self.name, extra={"task": self.name})
        execution = None
        hooks = self._scheduler._hooks
        if hooks:
            execution = self._execution(started)
            call_start(hooks, execution)
        keep = True
        try:
            await self._call_body(started)
        except asyncio.CancelledError as exc:
            if _cancel_requested():
                self._end_cancelled(execution)
                raise
            keep = self._failed(execution, exc)
        except Snooze as snooze:
            self._snoozed(execution, snooze)
        except BaseException as exc:
            keep = self._failed(execution, exc)
        else:
            self._end(execution, None)
        if self._thread is not None:
            await self._join_thread()
        return keep

    async def _call_body(self, started: float) -> None:
        """Run the body once: on the loop or in a thread, within its timeout; raise its error."""
        timeout = self._timeout
        deadline = None if timeout is None else started + timeout
        if self._is_async:
            await self._within(self._fn(), deadline)
            return
        result = await self._in_thread(deadline)
        if inspect.isawaitable(result):
            # A plain function that returned an awaitable (``lambda: svc.refresh(6)``, an object
            # whose __call__ was wrapped): the work is in the awaitable, so it runs here, on the
            # loop, within what is left of the timeout. Never a success with nothing awaited.
            await self._within(result, deadline)

    async def _within(self, body: Awaitable[Any], deadline: float | None) -> None:
        if deadline is None:
            await body
            return
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                await body
        except TimeoutError:
            if timeout.expired():
                raise _Timeout(self._timeout) from None
            raise

    async def _in_thread(self, deadline: float | None) -> Any:
        thread = pool.submit(self._loop, self._fn, contextvars.copy_context())
        self._thread = thread
        if deadline is None:
            # shield: a shutdown that cancels this task must not mark the thread's future done
            # while the thread still runs; thread_running reads it.
            try:
                return await asyncio.shield(thread)
            finally:
                if thread.done():
                    self._thread = None
        done, _ = await asyncio.wait((thread,), timeout=deadline - self._loop.time())
        if not done:
            raise _Timeout(self._timeout, thread=True)  # self._thread stays: _join_thread waits
        self._thread = None
        return thread.result()

    async def _join_thread(self) -> None:
        """After a timed-out plain function: stay ``running`` until its thread returns."""
        thread = self._thread
        assert thread is not None
        self.state = "running"
        try:
            await asyncio.shield(thread)
        except asyncio.CancelledError as exc:
            if _cancel_requested():
                raise
            self._thread_ended(exc)
        except BaseException as exc:
            self._thread_ended(exc)
        else:
            self._thread_ended(None)
        self._thread = None
        self.state = "scheduled"
        self.deadline = self._loop.time() + self._wait()

    def _thread_ended(self, error: BaseException | None) -> None:
        if error is None:
            _log.info(
                "Task %s: its timed-out function returned; scheduling resumes",
                self.name,
                extra={"task": self.name},
            )
        else:
            _log.warning(
                "Task %s: its timed-out function finally raised %s: %s",
                self.name,
                type(error).__name__,
                error,
                extra={"task": self.name},
            )

    # -- bookkeeping ---------------------------------------------------------------------------

    def _execution(self, started: float) -> Execution:
        offset = _clock.wall_offset(self._loop)
        return Execution(
            task=self.name,
            interval=self.interval,
            number=self.runs + 1,
            due_at=self.deadline + offset,
            started_at=started + offset,
            lateness=max(0.0, started - self.deadline),
        )

    def _failed(self, execution: Execution | None, error: BaseException) -> bool:
        """The body raised ``error``: this run's failure. Returns False to park afterwards.

        Whatever a body raises, ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, its
        own ``CancelledError`` included, is recorded and the task stays scheduled. Hooks see
        the exception in ``ExecutionResult.error``, which is how ``tickwork run`` learns that a
        body asked the process to exit.
        """
        self._end(execution, error)
        return isinstance(error, Exception)

    def _end(self, execution: Execution | None, error: BaseException | None) -> None:
        """Record the end of the execution in progress (``error`` None: a success)."""
        loop = self._loop
        now = loop.time()
        started = self.last_started if self.last_started is not None else now
        if execution is None and self._scheduler._hooks:
            # A hook added while the body ran (wait_for_runs does) hears of its end.
            execution = self._execution(started)
        outcome: Outcome = "success"
        reason = None
        if error is None:
            self.runs += 1
            if self.consecutive_failures:
                assert self._failure_log is not None  # created by the first failure
                self._failure_log.succeeded(self.consecutive_failures, now)
                self.consecutive_failures = 0
                self.last_error = None
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("Task %s completed successfully", self.name, extra={"task": self.name})
        else:
            timed_out = isinstance(error, _Timeout)
            outcome = "timeout" if timed_out else "failure"
            text = f"{'TimeoutError' if timed_out else type(error).__name__}: {error}"
            reason = bounded(text)
            self._not_success(outcome, reason)  # before runs counts this run
            self.runs += 1
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = text
            if self._failure_log is None:
                self._failure_log = FailureLog(self.name)
            if isinstance(error, _Timeout):
                self._failure_log.failed(error, error.headline, now, timed_out=True)
                error = TimeoutError(*error.args)  # hooks never see the private class
            else:
                self._failure_log.failed(error, text, now, timed_out=False)
        self.last_finished = now
        self.last_duration = now - started
        if execution is not None:
            call_finish(
                self._scheduler._hooks,
                execution,
                ExecutionResult(
                    outcome=outcome,
                    duration=self.last_duration,
                    finished_at=now + _clock.wall_offset(loop),
                    error=error,
                    reason=reason,
                ),
            )
        if self._thread is None:
            self.state = "scheduled"
            self.deadline = now + self._wait()

    def _snoozed(self, execution: Execution | None, snooze: Snooze) -> None:
        """The body raised ``snooze``: a run, not a failure; the next in ``snooze.seconds``.

        A failure streak stays as it was (so does the backoff after the next failure): a
        snooze says "not now", not "this worked" nor "this failed".
        """
        loop = self._loop
        now = loop.time()
        started = self.last_started if self.last_started is not None else now
        if execution is None and self._scheduler._hooks:
            execution = self._execution(started)
        reason = None if snooze.reason is None else bounded(snooze.reason)
        self._not_success("snoozed", reason)
        self.runs += 1
        self.last_finished = now
        self.last_duration = now - started
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("Task %s %s", self.name, snooze, extra={"task": self.name})
        if execution is not None:
            call_finish(
                self._scheduler._hooks,
                execution,
                ExecutionResult(
                    outcome="snoozed",
                    duration=self.last_duration,
                    finished_at=now + _clock.wall_offset(loop),
                    error=None,
                    reason=reason,
                ),
            )
        if self._thread is None:
            self.state = "snoozed"
            self.deadline = now + snooze.seconds
            if self._run_requested and self._calendar is None:
                self._run_requested = False  # run now was asked for during this run
                self.deadline = now

    def _not_success(self, outcome: Outcome, reason: str | None) -> None:
        """Keep the outcome of the run about to be counted, which did not succeed."""
        odd = self._odd
        if odd is None or odd[0] != self.runs:
            # The previous run (if any) succeeded: its end is the last success from now on.
            self.last_success = self.last_finished
        self._odd = (self.runs + 1, outcome, reason)

    def _end_cancelled(self, execution: Execution | None) -> None:
        """The scheduler cancelled the execution in progress (shutdown): tell the hooks."""
        if execution is None:
            return
        now = self._loop.time()
        started = self.last_started if self.last_started is not None else now
        call_finish(
            self._scheduler._hooks,
            execution,
            ExecutionResult(
                outcome="cancelled",
                duration=now - started,
                finished_at=now + _clock.wall_offset(self._loop),
                error=None,
            ),
        )

    def _wait(self) -> float:
        """Seconds from a completion to the next start: interval, backoff, jitter."""
        if self._run_requested and self._calendar is None:
            self._run_requested = False  # run now was asked for during the run that ended
            return 0.0
        if self._calendar is not None:
            return self._calendar.wait_after_run(self)
        wait = self.interval
        failures = self.consecutive_failures
        if failures and self._max_backoff is not None:
            base = self.interval or _BACKOFF_BASE_FOR_ZERO / 2
            backoff = min(self._max_backoff, base * 2.0 ** min(failures, 64))
            wait = max(wait, backoff)
        if self._jitter:
            wait += random.uniform(0.0, self._jitter)
        return wait

    def __repr__(self) -> str:
        flags = " cancelled" if self.cancelled else ""
        return f"<TaskRunner {self.name!r} {self.state}{flags} runs={self.runs}>"


class _Timeout(TimeoutError):
    """An execution ran past its timeout (as opposed to the body raising TimeoutError)."""

    def __init__(self, timeout: float | None, *, thread: bool = False) -> None:
        self.headline = f"timed out after {timeout:g} s"
        message = f"execution exceeded its timeout of {timeout:g} s"
        if thread:
            note = " (the function is still running in its thread; the next run waits for it)"
            message += note
            self.headline += note
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TimeoutError, self.args)
