"""One task's life: run -> record -> wait ``interval`` -> run again, until cancelled.

States of a ``_TaskRunner`` (``state``)::

    scheduled --(due)--> running --(body ends)--> scheduled
        |                                   |
        +--- cancel(): no further start     +--- cancel(): the body finishes, never rescheduled

Waiting comes in two forms, chosen per wait:

* short waits (< ``_PARK_AFTER`` seconds) keep the runner's asyncio task alive and suspended on a
  loop timer, exactly like a hand-written ``while True: await job(); await sleep(interval)``;
* long waits end the asyncio task and leave only this record plus one ``TimerHandle``, which
  starts a fresh asyncio task when due. An idle hourly task costs a few hundred bytes and no
  wake-ups.

The next start is ``interval`` (plus backoff, plus jitter) after the previous execution finished,
on the loop's monotonic clock. A plain function runs in a daemon worker thread; when it times
out the execution counts as a failure, but the task stays ``running`` and the next start waits
for the thread to return, so a task never overlaps itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import types
from typing import TYPE_CHECKING, Any, Literal

from tickwork import _clock
from tickwork._hooks import Execution, ExecutionResult, Outcome, call_finish, call_start
from tickwork._status import TaskStatus
from tickwork._threads import pool

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from tickwork._coordinated import Coordination
    from tickwork._hooks import ExecutionHook
    from tickwork._scheduler import Scheduler

__all__ = ["SUMMARY_EVERY", "TaskRunner"]

_log = logging.getLogger("tickwork.scheduler")

# Waits at least this long end the runner's asyncio task and park it on a bare timer.
_PARK_AFTER = 1.0
# A run of identical failures is summarised in one ERROR line at most this often (seconds).
SUMMARY_EVERY = 60.0
# Runs without a wait between them re-read the logging level this often (see _main).
_RECHECK_LOGGING = 64
# With interval 0, exponential backoff starts from this many seconds.
_BACKOFF_BASE_FOR_ZERO = 1.0

_State = Literal["scheduled", "running"]

_monotonic = time.monotonic
_BASE_LOOP_TIME = asyncio.BaseEventLoop.time


@types.coroutine
def _yield() -> Generator[None, None, None]:
    """One bare pass through the event loop (what ``asyncio.sleep(0)`` does, minus its checks)."""
    yield


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TaskRunner:
    """Runs one registered task. Created by the scheduler; owns no public API."""

    __slots__ = (
        "_coordination",
        "_error_key",
        "_error_text",
        "_fn",
        "_is_async",
        "_jitter",
        "_loop",
        "_max_backoff",
        "_scheduler",
        "_suppressed",
        "_suppressed_since",
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
    ) -> None:
        self._scheduler = scheduler
        self._coordination = coordination
        self.run_immediately = run_immediately
        self._loop = loop
        self._fn = fn
        self._is_async = is_async
        self._timeout = timeout
        self._jitter = jitter
        self._max_backoff = max_backoff
        self.name = name
        self.interval = interval
        self.state: _State = "scheduled"
        self.cancelled = False
        self.runs = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_started: float | None = None  # loop times; epoch only in status()
        self.last_finished: float | None = None
        self.last_success: float | None = None
        self.last_duration: float | None = None
        self.last_error: str | None = None
        self.deadline = loop.time()
        self._timer: asyncio.Handle | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._thread: asyncio.Future[Any] | None = None
        self._error_key: tuple[type[BaseException], str] | None = None
        self._error_text: str | None = None
        self._suppressed = 0
        self._suppressed_since = 0.0
        if run_immediately or coordination is not None:
            # A coordinated task asks the coordinator at once; the store decides when it is due.
            self._timer = loop.call_soon(self._spawn)
        else:
            self.deadline += self._wait()
            self._timer = loop.call_at(self.deadline, self._spawn)

    # -- control, called by the scheduler --------------------------------------------------

    def cancel(self) -> None:
        """No further execution starts; one in progress finishes and is not rescheduled."""
        self.cancelled = True
        self._flush_suppressed()  # failures held back for the next summary are not lost
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._wakeup is not None:
            _wake(self._wakeup)

    @property
    def thread_running(self) -> bool:
        """True while a plain function of this task is still running in its thread."""
        return self._thread is not None and not self._thread.done()

    def snapshot(self, now: float, offset: float, timeout: float | None) -> TaskStatus:
        """A frozen status at loop time ``now``; ``offset`` converts loop times to epoch."""
        running = self.state == "running"
        started = self.last_started
        return TaskStatus(
            name=self.name,
            interval=self.interval,
            timeout=timeout,
            state=self.state,
            runs=self.runs,
            failures=self.failures,
            consecutive_failures=self.consecutive_failures,
            last_started_at=None if self.last_started is None else self.last_started + offset,
            last_finished_at=None if self.last_finished is None else self.last_finished + offset,
            last_success_at=None if self.last_success is None else self.last_success + offset,
            last_duration=self.last_duration,
            last_error=self.last_error,
            next_run_at=None if running or self.cancelled else self.deadline + offset,
            running_for=max(0.0, now - started) if running and started is not None else None,
        )

    @property
    def timeout(self) -> float | None:
        return self._timeout

    # -- the loop ------------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._timer = None
        if self.cancelled:
            return
        # The scheduler holds the task; the runner does not, so a finished execution's task,
        # coroutine and context are freed at once rather than when the runner is cancelled.
        if self._coordination is not None:
            from tickwork._coordinated import run_coordinated

            main = run_coordinated(self, self._coordination)
        else:
            main = self._main()
        self._scheduler._own(self._loop.create_task(main), self)

    async def _main(self) -> None:
        # Locals, not attributes, on the path every execution takes: at interval 0 the
        # bookkeeping must cost next to nothing beside the body (see benchmarks/core.py).
        loop = self._loop
        # loop.time() is a Python-level wrapper of time.monotonic(); skip it unless a loop (the
        # virtual-time test loop) has its own clock.
        time = _monotonic if type(loop).time is _BASE_LOOP_TIME else loop.time
        scheduler = self._scheduler
        fn = self._fn
        simple = self._is_async and self._timeout is None
        jitter = self._jitter
        debug = _log.isEnabledFor
        verbose = debug(logging.DEBUG)
        # Back-to-back runs (interval 0) ask the logger only every _RECHECK_LOGGING runs: the
        # question costs as much as the rest of the bookkeeping. A level changed at run time
        # still takes effect within microseconds.
        recheck = _RECHECK_LOGGING
        while not self.cancelled:
            started = time()
            self.state = "running"
            self.last_started = started
            if verbose:
                _log.debug("Executing task: %s", self.name, extra={"task": self.name})
            execution = None
            if scheduler._hooks:
                execution = self._execution(started)
                call_start(scheduler._hooks, execution)
            try:
                if simple:
                    await fn()
                else:
                    await self._guarded()
            except asyncio.CancelledError as exc:
                self._end_cancelled(execution, exc)
                raise
            except Exception as exc:
                self._end(execution, "failure", exc)
                wait = self.deadline - time()
            else:
                # (A hook removed during the run leaves an execution nobody is told of.)
                if not (verbose or self.consecutive_failures or scheduler._hooks or jitter):
                    # The common success, recorded inline (the same as _end would).
                    finished = time()
                    self.runs += 1
                    self.last_finished = finished
                    self.last_success = finished
                    self.last_duration = finished - started
                    self.state = "scheduled"
                    wait = self.interval
                    self.deadline = finished + wait
                else:
                    self._end(execution, "success", None)
                    wait = self.deadline - time()
            if not simple and self._thread is not None:
                await self._join_thread()
                wait = self.deadline - time()
            if self.cancelled:
                return
            if wait >= _PARK_AFTER:
                self._timer = loop.call_at(self.deadline, self._spawn)
                return
            if wait <= 0:
                await _yield()
                recheck -= 1
                if not recheck:
                    recheck = _RECHECK_LOGGING
                    verbose = debug(logging.DEBUG)
                continue
            wakeup: asyncio.Future[None] = loop.create_future()
            self._wakeup = wakeup
            timer = loop.call_at(self.deadline, _wake, wakeup)
            try:
                await wakeup
            finally:
                timer.cancel()
                self._wakeup = None
            verbose = debug(logging.DEBUG)

    async def _guarded(self) -> None:
        """Run a body that has a timeout or runs in a thread; raise what the body raised."""
        if self._is_async:
            timeout = asyncio.timeout(self._timeout)
            try:
                async with timeout:
                    await self._fn()
            except TimeoutError:
                if timeout.expired():
                    raise _Timeout(self._timeout) from None
                raise
            return
        thread = pool.submit(self._loop, self._fn, contextvars.copy_context())
        self._thread = thread
        if self._timeout is None:
            # shield: a shutdown that cancels this task must not mark the thread's future done
            # while the thread still runs; thread_running reads it.
            try:
                await asyncio.shield(thread)
            finally:
                if thread.done():
                    self._thread = None
            return
        done, _ = await asyncio.wait((thread,), timeout=self._timeout)
        if not done:
            raise _Timeout(self._timeout, thread=True)  # self._thread stays: _join_thread waits
        self._thread = None
        thread.result()

    async def _join_thread(self) -> None:
        """After a timed-out plain function: stay ``running`` until its thread returns."""
        thread = self._thread
        assert thread is not None
        self.state = "running"
        try:
            await asyncio.shield(thread)
        except Exception as exc:
            _log.warning(
                "Task %s: its timed-out function finally raised %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                extra={"task": self.name},
            )
        else:
            _log.info(
                "Task %s: its timed-out function returned; scheduling resumes",
                self.name,
                extra={"task": self.name},
            )
        self._thread = None
        self.state = "scheduled"
        self.deadline = self._loop.time() + self._wait()

    # -- the interface of the coordinated cycle (_coordinated.py) ------------------------------

    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def hooks(self) -> tuple[ExecutionHook, ...]:
        return self._scheduler._hooks

    def execution(self, started: float) -> Execution:
        return self._execution(started)

    async def run_body(self) -> None:
        """Run the body once, with its timeout or in its thread; raise what it raised."""
        if self._is_async and self._timeout is None:
            await self._fn()
        else:
            await self._guarded()

    def end(self, execution: Execution | None, outcome: Outcome, error: Exception | None) -> None:
        self._end(execution, outcome, error)

    def end_cancelled(self, execution: Execution | None, exc: asyncio.CancelledError) -> None:
        self._end_cancelled(execution, exc)

    @property
    def last_outcome_was_timeout(self) -> bool:
        return self.last_error is not None and self.last_error.startswith("TimeoutError: execution")

    async def join_thread(self) -> None:
        await self._join_thread()

    def record_lease_lost(self, now: float, started: float) -> None:
        """A run that ended ``lease_lost``: counted as a run, not a failure; no backoff."""
        self.runs += 1
        self.last_finished = now
        self.last_duration = now - started
        self.state = "scheduled"

    async def sleep(self, wait: float) -> None:
        """Wait ``wait`` seconds (the next start shows in status), or until cancelled."""
        if self.cancelled:
            return
        loop = self._loop
        self.deadline = loop.time() + wait
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup = wakeup
        timer = loop.call_at(self.deadline, _wake, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

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

    def _end(self, execution: Execution | None, outcome: Outcome, error: Exception | None) -> None:
        loop = self._loop
        now = loop.time()
        started = self.last_started if self.last_started is not None else now
        if execution is None and self._scheduler._hooks:
            execution = self._execution(started)  # a hook was added during this execution
        self.runs += 1
        self.last_finished = now
        self.last_duration = now - started
        if error is None:
            self.last_success = now
            if self.consecutive_failures:
                self._flush_suppressed()
                _log.info(
                    "Task %s recovered after %d consecutive failures",
                    self.name,
                    self.consecutive_failures,
                    extra={"task": self.name},
                )
                self._error_key = None
            self.consecutive_failures = 0
            self.last_error = None
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("Task %s completed successfully", self.name, extra={"task": self.name})
        else:
            if isinstance(error, _Timeout):
                outcome = "timeout"
            self.failures += 1
            self.consecutive_failures += 1
            kind = "TimeoutError" if isinstance(error, _Timeout) else type(error).__name__
            self.last_error = f"{kind}: {error}"
            self._log_failure(error, now)
        if execution is not None:
            call_finish(
                self._scheduler._hooks,
                execution,
                ExecutionResult(
                    outcome=outcome,
                    duration=self.last_duration,
                    finished_at=now + _clock.wall_offset(loop),
                    error=error,
                ),
            )
        if self._thread is None:
            self.state = "scheduled"
            self.deadline = now + self._wait()

    def _end_cancelled(self, execution: Execution | None, exc: asyncio.CancelledError) -> None:
        now = self._loop.time()
        started = self.last_started if self.last_started is not None else now
        if execution is not None:
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
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0 and not self.cancelled:
            # Nobody asked to cancel this task: the body raised CancelledError itself (it awaited
            # something another task cancelled). It is not swallowed, so this task stops here.
            _log.error(
                "Task %s raised CancelledError from its own code; it will not run again",
                self.name,
                exc_info=exc,
                extra={"task": self.name},
            )
            self._scheduler._forget(self)

    def _wait(self) -> float:
        """Seconds from a completion to the next start: interval, backoff, jitter."""
        wait = self.interval
        failures = self.consecutive_failures
        if failures and self._max_backoff is not None:
            base = self.interval or _BACKOFF_BASE_FOR_ZERO / 2
            backoff = min(self._max_backoff, base * 2.0 ** min(failures, 64))
            wait = max(wait, backoff)
        if self._jitter:
            wait += random.uniform(0.0, self._jitter)
        return wait

    def _log_failure(self, error: Exception, now: float) -> None:
        key = (type(error), str(error))
        if key == self._error_key and self.consecutive_failures > 1:
            self._suppressed += 1
            if now - self._suppressed_since >= SUMMARY_EVERY:
                self._flush_suppressed()
                self._suppressed_since = now
            return
        self._flush_suppressed()
        self._error_key = key
        self._error_text = self.last_error
        self._suppressed_since = now
        _log.error(
            "Task %s failed: %s",
            self.name,
            self.last_error,
            exc_info=error,
            extra={"task": self.name},
        )

    def _flush_suppressed(self) -> None:
        if self._suppressed:
            _log.error(
                "Task %s failed %d more times with the same error: %s",
                self.name,
                self._suppressed,
                self._error_text,
                extra={"task": self.name},
            )
            self._suppressed = 0

    def __repr__(self) -> str:
        flags = " cancelled" if self.cancelled else ""
        return f"<TaskRunner {self.name!r} {self.state}{flags} runs={self.runs}>"


class _Timeout(TimeoutError):
    """An execution ran past its timeout (as opposed to the body raising TimeoutError)."""

    def __init__(self, timeout: float | None, *, thread: bool = False) -> None:
        message = f"execution exceeded its timeout of {timeout:g} s"
        if thread:
            message += " (the function is still running in its thread; the next run waits for it)"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TimeoutError, self.args)
