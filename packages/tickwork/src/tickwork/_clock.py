"""The only module that reads time.

Scheduling runs on the event loop's monotonic clock (``loop.time()``), so wall-clock jumps and
DST never move a deadline. Epoch seconds (``*_at`` fields of status) are derived from it at the
moment a snapshot is taken: ``epoch = monotonic + (wall_now - monotonic_now)``.

A test loop (``tickwork.testing.VirtualTimeLoop``) supplies its own wall clock through a
``tickwork_wall_time()`` method, so virtual time moves both clocks together.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

__all__ = ["suspend_clock", "wall_offset"]

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)
_BASE_LOOP_TIME = asyncio.BaseEventLoop.time


def wall_time(loop: asyncio.AbstractEventLoop) -> float:
    """Return the current epoch time as seen by ``loop``."""
    virtual = getattr(loop, "tickwork_wall_time", None)
    if virtual is not None:
        return float(virtual())
    return time.time()


def wall_offset(loop: asyncio.AbstractEventLoop) -> float:
    """Return ``epoch - loop.time()`` now: add it to a loop time to get epoch seconds."""
    return wall_time(loop) - loop.time()


def suspend_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """Return a monotonic clock that keeps counting while the host is suspended.

    ``CLOCK_BOOTTIME`` on Linux (``time.monotonic`` elsewhere, which may stop during suspend).
    Leases use it for their local deadline: a replica resumed after a suspend longer than its
    lease must not believe it still holds it. A loop with a clock of its own (the virtual-time
    test loop) is its own suspend clock, so leases expire on virtual time in tests.
    """
    if type(loop).time is not _BASE_LOOP_TIME:
        return loop.time
    if _BOOTTIME is not None:
        return functools.partial(time.clock_gettime, _BOOTTIME)
    return time.monotonic
