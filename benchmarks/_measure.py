"""Small measuring instruments shared by the scenarios: memory, percentiles, wake-up counters."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

__all__ = ["WakeupCounter", "allocated_blocks", "percentile", "rss_bytes"]

# Typed loosely on purpose: the counter patches a private method of this class.
_Handle: Any = asyncio.Handle
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """Return the resident set size of this process in bytes, or None off Linux."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return None


def allocated_blocks() -> int:
    """Return the number of live blocks of Python's small-object allocator (cheap to read)."""
    return sys.getallocatedblocks()


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class WakeupCounter:
    """Counts event-loop iterations and callbacks run, from the moment it is installed.

    Iterations (completed turns): ``loop._run_once`` is wrapped on the instance (``run_forever``
    looks it up on every turn). Callbacks: ``asyncio.events.Handle._run`` is wrapped on the
    class, which every ``call_soon``/``call_later``/``call_at`` callback and every task step goes
    through (the C ``Task`` schedules its steps with ``loop.call_soon``, which builds a Python
    ``Handle``).
    Both are private CPython details of 3.11-3.13; the counts are exact there.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.iterations = 0
        self.callbacks = 0
        self._loop: Any = cast(Any, loop)
        self._original_run_once: Callable[[], None] = self._loop._run_once
        self._original_handle_run: Callable[[asyncio.Handle], None] = _Handle._run

    def install(self) -> None:
        """Start counting."""
        run_once = self._original_run_once
        handle_run = self._original_handle_run

        def counting_run_once() -> None:
            run_once()
            # Counted on return: the turn blocked in select() when counting starts is not one.
            self.iterations += 1

        def counting_handle_run(handle: asyncio.Handle) -> None:
            self.callbacks += 1
            handle_run(handle)

        self._loop._run_once = counting_run_once
        _Handle._run = counting_handle_run

    def uninstall(self) -> None:
        """Stop counting and restore the originals."""
        del self._loop._run_once
        _Handle._run = self._original_handle_run
