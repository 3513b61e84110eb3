"""Bounds on the HTTP server's connections: a deadline for each request head, a cap, quiet logs.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that never
sends a complete request head: a socket idle from the start, or a client sending its headers a
byte at a time, stays open forever, and a few hundred of them exhaust the process's file
descriptors (then ``/health`` stops answering, tasks cannot open their database, and asyncio
logs every failed ``accept()``). So ``tickwork run`` serves HTTP/1.1 through
:func:`guarded_protocol`, a subclass of uvicorn's h11 protocol (uvicorn's version range is pinned
in ``pyproject.toml``; ``tests/service/test_service_hardening.py`` covers the internals used:
``cycle``, ``on_response_complete``, ``connections``, ``loop``, ``transport``) that adds:

- a head deadline: from the moment a connection opens, and again after each response, the
  client has ``header_timeout`` seconds to send a complete request head, else the connection is
  closed (a request being served is never cut);
- a cap on open connections: a connection over ``max_connections`` closes the one that has
  waited longest for a request head (or itself, when every other one is being served), so a
  flood of idle sockets cannot lock out ``/health``;
- one log line per interval, with a count, for the closes above and for asyncio's
  ``accept() out of system resource`` errors (:func:`quiet_accept_errors`).

The cap is lowered to fit the descriptor limit (:func:`connection_cap`): half of what the limit
leaves after one accept burst, the other half staying for the application (database pools,
HTTP clients, files).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "ACCEPT_BACKLOG",
    "ConnectionLimits",
    "ThrottledLog",
    "connection_cap",
    "guarded_protocol",
    "quiet_accept_errors",
]

logger = logging.getLogger("tickwork.service")

# The listen backlog, which is also how many connections asyncio accepts in one burst before
# any of them runs ``connection_made`` (where the cap is enforced); the cap leaves room for it.
ACCEPT_BACKLOG = 64

# Seconds between two log lines about the same kind of event.
LOG_INTERVAL = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a connection may wait without a complete request head, and how many may be open.

    Attributes:
        header_timeout: Seconds (> 0) a connection has, from its opening and after each
            response, to send a complete request head.
        max_connections: Connections (>= 1) open at once.
    """

    header_timeout: float = 10.0
    max_connections: int = 100


def connection_cap(requested: int, backlog: int = ACCEPT_BACKLOG) -> int:
    """Return ``requested``, lowered to fit the process's soft descriptor limit.

    The cap is at most half of what the limit leaves after one accept burst of ``backlog``
    descriptors, so that the other half stays with the application.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, (soft - backlog) // 2))


class ThrottledLog:
    """Log the first of a kind of event at once, then at most one line per interval, with a count.

    Must be used on the event loop's thread (it schedules the summary with ``call_later``).

    Args:
        level: The logging level.
        message: What happened, without the count.
        interval: Seconds between two lines.
    """

    def __init__(self, level: int, message: str, interval: float = LOG_INTERVAL) -> None:
        self._level = level
        self._message = message
        self._interval = interval
        self._count = 0
        self._summary: asyncio.TimerHandle | None = None

    def record(self, detail: str | None = None) -> None:
        """Count one event; log it now if no line was written in the last interval."""
        if self._summary is None:
            logger.log(self._level, "%s%s", self._message, f" ({detail})" if detail else "")
            self._summary = asyncio.get_running_loop().call_later(self._interval, self._flush)
        else:
            self._count += 1

    def _flush(self) -> None:
        count, self._count = self._count, 0
        if count == 0:
            self._summary = None
            return
        logger.log(
            self._level,
            "%s: %d more time(s) in the last %g s",
            self._message,
            count,
            self._interval,
        )
        self._summary = asyncio.get_running_loop().call_later(self._interval, self._flush)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Turn asyncio's ``accept() out of system resource`` errors into one line per interval.

    asyncio reports every failed ``accept()`` (each with a traceback, many per second while the
    descriptors are exhausted); other exceptions go to the handler that was set before.
    """
    previous = loop.get_exception_handler()
    tally = ThrottledLog(
        logging.ERROR, "Cannot accept HTTP connections: the process is out of file descriptors"
    )

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            error = context.get("exception")
            tally.record(None if error is None else str(error))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _Guard:
    """What the connections of one server share: their limits and their log lines."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.timed_out = ThrottledLog(
            logging.WARNING,
            f"Closed HTTP connections that sent no complete request within "
            f"{limits.header_timeout:g} s",
        )
        self.evicted = ThrottledLog(
            logging.WARNING,
            f"HTTP connection limit ({limits.max_connections}) reached: closed the connection "
            "waiting longest for a request",
        )


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline and a connection cap (see the module doc)."""

    guard: ClassVar[_Guard]
    _head_timer: asyncio.TimerHandle | None = None
    _waiting_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline, then enforce the cap."""
        super().connection_made(transport)
        self._await_head()
        self._enforce_cap()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the head deadline."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Stop the head deadline once a complete head has started a request."""
        super().data_received(data)
        if self._serving():
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        """Give the next request head its own deadline (a pipelined one may already be in)."""
        super().on_response_complete()
        if self._serving():
            self._cancel_head_timer()
        elif not self.transport.is_closing():
            self._await_head()

    def _serving(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(
            self.guard.limits.header_timeout, self._head_timed_out
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._serving() and not self.transport.is_closing():
            self.guard.timed_out.record()
            self.transport.close()

    def _enforce_cap(self) -> None:
        open_ = [
            c
            for c in self.connections
            if isinstance(c, _GuardedH11Protocol) and not c.transport.is_closing()
        ]
        if len(open_) <= self.guard.limits.max_connections:
            return
        waiting = [c for c in open_ if c is not self and not c._serving()]
        victim = min(waiting, key=lambda c: c._waiting_since) if waiting else self
        self.guard.evicted.record()
        victim.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """Return an HTTP/1.1 protocol class for ``uvicorn.Config(http=...)`` bounded by ``limits``.

    Each call returns a new class, so two servers never share limits or counters.
    """
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"guard": _Guard(limits)})
