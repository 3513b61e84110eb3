"""``FailureLog``: how one task's failures reach the log without flooding it.

Rules, per task:

* A traceback once per distinct error (exception type and message) per ``TRACEBACK_EVERY``
  seconds: the first failure with that error logs ``Task NAME failed: Type: message`` at ERROR
  with the traceback.
* Every other failure is counted, and the count is logged as one ERROR summary line at most
  every ``SUMMARY_EVERY`` seconds (on the next failure or success after that), when an unseen
  error needs its traceback, and when the task is cancelled. A task failing every other run
  therefore logs one traceback and then a summary a minute, not one traceback per streak.
* A timeout (:class:`TimeoutError` raised by the runner itself, not the body) never carries a
  traceback: it would show tickwork's internals, not the task's code. Its line says
  ``timed out after N s``.
* A success that ends a streak which began with a line of its own logs the streak's summary
  and one INFO line ``recovered after N consecutive failures``; streaks folded entirely into
  summaries end silently.

The class holds no reference to the exceptions it saw (their tracebacks would keep frames alive).
"""

from __future__ import annotations

import logging

__all__ = ["FailureLog"]

_log = logging.getLogger("tickwork.scheduler")

# Failures folded into a summary are logged at most this often (seconds).
SUMMARY_EVERY = 60.0
# The same error logs its traceback again only after this long (seconds).
TRACEBACK_EVERY = 300.0
# Distinct errors remembered per task; beyond it the oldest is forgotten (its next occurrence
# logs a traceback again). Bounds memory when messages carry ids.
_KEEP_ERRORS = 32

_Key = tuple[type[BaseException], str]


class FailureLog:
    """Decides, for one task, which failures log a traceback and which are summarised.

    Args:
        task: The task's name, for the log lines and their ``task`` extra.
    """

    __slots__ = (
        "_extra",
        "_held",
        "_held_text",
        "_last_key",
        "_logged_streak",
        "_mixed",
        "_reported",
        "_seen",
        "task",
    )

    def __init__(self, task: str) -> None:
        self.task = task
        self._extra = {"task": task}
        self._seen: dict[_Key, float] = {}  # error -> loop time its traceback was logged
        self._held = 0  # failures counted, not yet in a summary
        self._held_text = ""
        self._mixed = False  # the held failures are not all the same error
        self._last_key: _Key | None = None
        self._reported = 0.0  # loop time of the latest ERROR line
        self._logged_streak = False  # the current failure streak has a line of its own

    def failed(self, error: BaseException, text: str, now: float, *, timed_out: bool) -> None:
        """Record a failure at loop time ``now``; ``text`` is ``"Type: message"``."""
        key = (type(error), str(error))
        seen = self._seen.get(key)
        if seen is None or now - seen >= TRACEBACK_EVERY:
            self.flush()
            self._remember(key, now)
            self._reported = now
            self._last_key = key
            self._logged_streak = True
            if timed_out:
                _log.error("Task %s %s", self.task, text, extra=self._extra)
            else:
                _log.error("Task %s failed: %s", self.task, text, exc_info=error, extra=self._extra)
            return
        if self._held and key != self._last_key:
            self._mixed = True
        self._last_key = key
        self._held += 1
        self._held_text = text
        if now - self._reported >= SUMMARY_EVERY:
            self.flush()
            self._reported = now

    def succeeded(self, failures: int, now: float) -> None:
        """Record a success at loop time ``now`` that ended ``failures`` consecutive failures."""
        if self._logged_streak:
            # The streak had a line of its own: close it with its summary and the recovery.
            self._logged_streak = False
            self.flush()
            self._reported = now
            _log.info(
                "Task %s recovered after %d consecutive failures",
                self.task,
                failures,
                extra=self._extra,
            )
        elif self._held and now - self._reported >= SUMMARY_EVERY:
            self.flush()
            self._reported = now

    def flush(self) -> None:
        """Log the summary of the failures held back, if any (also called on cancel)."""
        if not self._held:
            return
        if self._mixed:
            _log.error(
                "Task %s failed %d more times (several errors; the latest: %s)",
                self.task,
                self._held,
                self._held_text,
                extra=self._extra,
            )
        else:
            _log.error(
                "Task %s failed %d more times with the same error: %s",
                self.task,
                self._held,
                self._held_text,
                extra=self._extra,
            )
        self._held = 0
        self._mixed = False

    def _remember(self, key: _Key, now: float) -> None:
        self._seen.pop(key, None)
        self._seen[key] = now
        if len(self._seen) > _KEEP_ERRORS:
            del self._seen[next(iter(self._seen))]
