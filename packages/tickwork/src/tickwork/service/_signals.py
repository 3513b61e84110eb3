"""SIGTERM/SIGINT handling for ``tickwork run``: graceful once, immediate twice, always bounded.

Python-level handlers (``signal.signal``) rather than ``loop.add_signal_handler``: a Python
handler runs between bytecodes of the main thread even while a misbehaving task blocks the event
loop (``time.sleep`` inside a coroutine), so the deadline below is armed in every case.

- First signal: arm a watchdog (a daemon timer thread) that ends the process with exit code 1
  after ``deadline`` seconds, then hand the signal to the loop (``call_soon_threadsafe``), where
  the graceful shutdown runs.
- Second signal: flush the logs and ``os._exit(128 + signum)`` at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from tickwork.service._logging import flush_logging

__all__ = ["HANDLED_SIGNALS", "ShutdownSignals", "hard_exit"]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Exit code when the graceful shutdown overran its deadline.
WATCHDOG_EXIT_CODE = 1


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


class ShutdownSignals:
    """Route SIGTERM/SIGINT to a graceful shutdown on ``loop``, with a hard deadline.

    Args:
        loop: The loop running the service.
        on_signal: Called on the loop with the signal number, once, on the first signal.
        deadline: Seconds after the first signal at which the watchdog ends the process.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_signal: Callable[[int], None],
        *,
        deadline: float,
    ) -> None:
        self._loop = loop
        self._on_signal = on_signal
        self._deadline = deadline
        self._previous: dict[int, Any] = {}
        self._watchdog: threading.Timer | None = None
        self.received: int | None = None

    def install(self) -> None:
        """Install the handlers (main thread only), remembering the previous ones."""
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the previous handlers and disarm the watchdog."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            hard_exit(128 + signum, f"Received {name} again, exiting now")
        self.received = signum
        self._watchdog = threading.Timer(
            self._deadline,
            hard_exit,
            args=(
                WATCHDOG_EXIT_CODE,
                f"Graceful shutdown did not finish within {self._deadline:.1f} s, exiting now",
            ),
        )
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            self._loop.call_soon_threadsafe(self._on_signal, signum)
        except RuntimeError:
            # The loop is already closed: nothing graceful is left to do.
            hard_exit(128 + signum, f"Received {name} after the event loop closed, exiting now")
