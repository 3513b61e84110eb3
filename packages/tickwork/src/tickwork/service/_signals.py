"""Shutdown requests for ``tickwork run``: signals, requests from inside, one deadline, a watchdog.

A graceful shutdown starts once, from the first of:

- SIGTERM or SIGINT (exit code 0 unless the shutdown overruns);
- :func:`request_shutdown` (or :meth:`ShutdownSignals.request`) from inside the process, with a
  reason and an exit code: for example a task body that raised ``SystemExit``. Callable from any
  thread.

Either way a :class:`ShutdownDeadline` is computed from that moment and ``grace``; every step of
the shutdown (the scheduler, the app's resources, the HTTP server) is bounded by it, and a
watchdog (a daemon timer thread) ends the process with exit code 1 at its last point, in case
the event loop itself is blocked. A signal after the first request flushes the logs and ends the
process at once with ``128 + signum``.

Python-level handlers (``signal.signal``) rather than ``loop.add_signal_handler``: a Python
handler runs between bytecodes of the main thread even while a misbehaving task blocks the event
loop (``time.sleep`` inside a coroutine), so the watchdog is armed in every case.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from tickwork.service._logging import flush_logging

__all__ = [
    "HANDLED_SIGNALS",
    "ShutdownDeadline",
    "ShutdownRequest",
    "ShutdownSignals",
    "hard_exit",
    "request_shutdown",
]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Exit code when the graceful shutdown overran its deadline.
WATCHDOG_EXIT_CODE = 1

# Offsets after ``grace`` (seconds) at which each step must be done. The scheduler's own bound
# is grace + 0.5 s (it waits half a second for cancelled executions); the whole shutdown, exit
# included, stays within grace + 1 s, which the CLI documents.
_SCHEDULER_AFTER = 0.6
_RESOURCES_AFTER = 0.75
_SERVER_AFTER = 0.8
_THREADS_AFTER = 0.85
# After every step above: the watchdog only fires when the loop itself is blocked.
_WATCHDOG_AFTER = 0.9


@dataclass(frozen=True)
class ShutdownDeadline:
    """When each step of one graceful shutdown must be done (monotonic seconds).

    Computed once, from the moment the shutdown was requested and the grace period.

    Attributes:
        requested_at: ``time.monotonic()`` when the shutdown was requested.
        grace: Seconds running executions get to finish.
    """

    requested_at: float
    grace: float

    @property
    def scheduler_by(self) -> float:
        """The scheduler's shutdown (grace, then half a second for cancelled executions)."""
        return self.requested_at + self.grace + _SCHEDULER_AFTER

    @property
    def resources_by(self) -> float:
        """Releasing the app's resources."""
        return self.requested_at + self.grace + _RESOURCES_AFTER

    @property
    def server_by(self) -> float:
        """The HTTP server's own shutdown."""
        return self.requested_at + self.grace + _SERVER_AFTER

    @property
    def threads_by(self) -> float:
        """Waiting for worker threads to end."""
        return self.requested_at + self.grace + _THREADS_AFTER

    @property
    def watchdog_after(self) -> float:
        """Seconds after the request at which the watchdog ends the process."""
        return self.grace + _WATCHDOG_AFTER

    @staticmethod
    def left(until: float) -> float:
        """Seconds from now until ``until`` (monotonic), never negative."""
        return max(0.0, until - time.monotonic())


@dataclass(frozen=True)
class ShutdownRequest:
    """Why the service is shutting down, with what exit code, by when.

    Attributes:
        reason: One line for the log (``"Received SIGTERM"``, ``"task x raised SystemExit"``).
        exit_code: The exit code of a shutdown that goes to plan (0 after a signal); an overrun
            turns 0 into 1.
        signum: The signal, or None for a request from inside the process.
        deadline: The shutdown's deadlines, from the moment of the request.
    """

    reason: str
    exit_code: int
    signum: int | None
    deadline: ShutdownDeadline


def hard_exit(code: int, message: str | None = None) -> None:
    """Flush the logs, write ``message`` to stderr, and end the process at once with ``code``.

    ``os._exit`` skips interpreter shutdown, which would otherwise wait for non-daemon threads
    (a plain function stuck in a thread of the loop's default executor) forever.
    """
    flush_logging()
    if message:
        # os.write, not logging: this may run in a signal handler or a timer thread while
        # another thread holds a logging lock.
        os.write(2, (message + "\n").encode(errors="replace"))
    os._exit(code)


# The handlers installed in this process, for request_shutdown().
_active: ShutdownSignals | None = None


def request_shutdown(reason: str, exit_code: int = 1) -> bool:
    """Start the graceful shutdown of the running ``tickwork run`` service, from inside it.

    Safe from any thread. Only the first request (or signal) counts.

    Args:
        reason: One line saying why, logged as is.
        exit_code: The process's exit code when the shutdown goes to plan.

    Returns:
        True when this call started the shutdown; False when one had already started or no
        service runs in this process.
    """
    handlers = _active
    return handlers is not None and handlers.request(reason, exit_code)


class ShutdownSignals:
    """Route SIGTERM/SIGINT and :meth:`request` to a graceful shutdown on ``loop``.

    Args:
        loop: The loop running the service.
        on_request: Called on the loop, once, with the first :class:`ShutdownRequest`.
        grace: The grace period, from which each request's :class:`ShutdownDeadline` follows.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_request: Callable[[ShutdownRequest], None],
        *,
        grace: float,
    ) -> None:
        self._loop = loop
        self._on_request = on_request
        self._grace = grace
        self._previous: dict[int, Any] = {}
        self._watchdog: threading.Timer | None = None
        # A lock taken without blocking is an atomic "first caller wins" flag that a signal
        # handler can test too (a blocking acquire there could deadlock the main thread).
        self._once = threading.Lock()
        self.requested: ShutdownRequest | None = None

    def install(self) -> None:
        """Install the handlers (main thread only), remembering the previous ones."""
        global _active
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        _active = self

    def restore(self) -> None:
        """Put back the previous handlers and disarm the watchdog."""
        global _active
        if _active is self:
            _active = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()

    def request(self, reason: str, exit_code: int = 1, signum: int | None = None) -> bool:
        """Start the graceful shutdown unless one has started; safe from any thread.

        Args:
            reason: One line saying why.
            exit_code: The exit code when the shutdown goes to plan.
            signum: The signal that asked, if any.

        Returns:
            Whether this call started the shutdown.
        """
        if not self._once.acquire(blocking=False):
            return False
        deadline = ShutdownDeadline(time.monotonic(), self._grace)
        request = ShutdownRequest(reason, exit_code, signum, deadline)
        self.requested = request
        self._watchdog = threading.Timer(
            deadline.watchdog_after,
            hard_exit,
            args=(
                WATCHDOG_EXIT_CODE,
                f"Graceful shutdown did not finish within {deadline.watchdog_after:.1f} s, "
                "exiting now",
            ),
        )
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            self._loop.call_soon_threadsafe(self._on_request, request)
        except RuntimeError:
            # The loop is already closed: nothing graceful is left to do.
            hard_exit(exit_code or 1, f"{reason} after the event loop closed, exiting now")
        return True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.request(f"Received {name}", 0, signum):
            first = self.requested
            when = (
                "again" if first is not None and first.signum is not None else "while shutting down"
            )
            hard_exit(128 + signum, f"Received {name} {when}, exiting now")
