"""The only module that reads time.

Scheduling runs on the event loop's monotonic clock (``loop.time()``), so wall-clock jumps and
DST never move a deadline. Epoch seconds (``*_at`` fields of status) are derived from it at the
moment a snapshot is taken: ``epoch = monotonic + (wall_now - monotonic_now)``.

A test loop (``tickwork.testing.VirtualTimeLoop``) supplies its own wall clock through a
``tickwork_wall_time()`` method, so virtual time moves both clocks together.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["wall_offset"]


def wall_time(loop: asyncio.AbstractEventLoop) -> float:
    """Return the current epoch time as seen by ``loop``."""
    virtual = getattr(loop, "tickwork_wall_time", None)
    if virtual is not None:
        return float(virtual())
    return time.time()


def wall_offset(loop: asyncio.AbstractEventLoop) -> float:
    """Return ``epoch - loop.time()`` now: add it to a loop time to get epoch seconds."""
    return wall_time(loop) - loop.time()
