"""Event-loop lag, stall, suspend and clock-jump detection by a cheap periodic probe.

Every ``interval`` seconds (0.25 by default) the probe wakes up and compares three clocks with
the previous wake-up:

- the monotonic clock, against when the wake-up was due: the difference is the loop lag; a lag
  above ``threshold`` is a ``"stall"`` (the loop was blocked, or the process stopped). A block
  of B seconds shows as a lag between ``B - interval`` and ``B``: with the defaults (0.25 s
  probe, 1 s threshold) every block over 1.25 s is reported, none under 1 s;
- the boot-time clock (Linux ``CLOCK_BOOTTIME``, which keeps counting while the machine is
  suspended) against the monotonic clock (which does not): a gap is a ``"suspend"``;
- the wall clock against the boot-time clock: a gap is a ``"clock_jump"`` (someone or NTP set
  the time), forward or backward.

Each event is logged once as a WARNING with its length and the tasks it delayed, counted, and
kept as the last event. Scheduling itself never looks at the wall clock, so these events only
inform; they do not change when tasks run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from tickwork._spec import check_finite

__all__ = ["LoopMonitor", "StallEvent", "StallKind"]

logger = logging.getLogger("tickwork.service")

StallKind: TypeAlias = Literal["stall", "suspend", "clock_jump"]


def _boot_clock() -> float:
    # CLOCK_BOOTTIME exists on Linux only; elsewhere suspends show up as clock jumps.
    return time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


@dataclass(frozen=True)
class StallEvent:
    """One detected stall, suspend or clock jump.

    Attributes:
        kind: ``"stall"`` (loop blocked or process stopped), ``"suspend"`` (machine asleep) or
            ``"clock_jump"`` (wall clock set; ``seconds`` is negative for a backward jump).
        seconds: How long (or how far the wall clock moved).
        detected_at: Epoch seconds when the probe noticed it.
        delayed_tasks: Names of the tasks overdue or started late because of it.
    """

    kind: StallKind
    seconds: float
    detected_at: float
    delayed_tasks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form shown in ``/status`` as ``last_stall``."""
        return {
            "kind": self.kind,
            "seconds": round(self.seconds, 3),
            "detected_at": self.detected_at,
            "delayed_tasks": list(self.delayed_tasks),
        }

    def describe(self) -> str:
        """Return the one-line human description used in the WARNING."""
        if self.kind == "stall":
            what = f"Event loop was blocked for {self.seconds:.2f} s"
        elif self.kind == "suspend":
            what = f"Process was suspended for {self.seconds:.2f} s"
        else:
            direction = "forward" if self.seconds > 0 else "backward"
            what = (
                f"Wall clock jumped {direction} by {abs(self.seconds):.2f} s "
                "(intervals stay on the monotonic clock)"
            )
        delayed = ", ".join(self.delayed_tasks) if self.delayed_tasks else "none"
        return f"{what}; tasks overdue or delayed: {delayed}"


class LoopMonitor:
    """Measure event-loop lag and detect stalls, suspends and clock jumps.

    Args:
        interval: Seconds between probes; ``> 0``.
        threshold: Seconds of lag, suspend or clock difference that make an event; ``> 0``.
        delayed_tasks: Called with the event's start (epoch seconds) to name the tasks it
            delayed; returns names.
        monotonic: The monotonic clock (replaceable in tests), like the other two clocks.
        wall: The wall clock (epoch seconds).
        boot: A clock that counts while suspended.

    Raises:
        ValueError: ``interval`` or ``threshold`` not a finite number > 0.
    """

    def __init__(
        self,
        *,
        interval: float = 0.25,
        threshold: float = 1.0,
        delayed_tasks: Callable[[float], list[str]] = lambda _since: [],
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        boot: Callable[[], float] = _boot_clock,
    ) -> None:
        check_finite("interval", interval, zero=False)
        check_finite("threshold", threshold, zero=False)
        self.interval = interval
        self.threshold = threshold
        self._delayed_tasks = delayed_tasks
        self._monotonic = monotonic
        self._wall = wall
        self._boot = boot
        self.lag = 0.0
        self.max_lag = 0.0
        self.last_event: StallEvent | None = None
        self.event_counts: Counter[StallKind] = Counter()
        self._listeners: list[Callable[[StallEvent], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._last_mono = self._monotonic()
        self._last_wall = self._wall()
        self._last_boot = self._boot()

    def add_listener(self, listener: Callable[[StallEvent], None]) -> None:
        """Call ``listener(event)`` for every future event (metrics use it)."""
        self._listeners.append(listener)

    def current_lag(self) -> float:
        """Return the lag now: the last probe's, or how late the next probe already is."""
        overdue = self._monotonic() - (self._last_mono + self.interval)
        return max(self.lag, overdue, 0.0)

    def observe(self) -> list[StallEvent]:
        """Take one probe: read the clocks, update the lag, return (and report) new events.

        Called by the probe task ``interval`` seconds after the previous call; tests call it
        directly with fake clocks.
        """
        mono, wall, boot = self._monotonic(), self._wall(), self._boot()
        mono_delta = mono - self._last_mono
        wall_delta = wall - self._last_wall
        boot_delta = boot - self._last_boot
        started_at = self._last_wall
        self._last_mono, self._last_wall, self._last_boot = mono, wall, boot

        self.lag = max(0.0, mono_delta - self.interval)
        self.max_lag = max(self.max_lag, self.lag)
        found: list[tuple[StallKind, float]] = []
        if self.lag > self.threshold:
            found.append(("stall", self.lag))
        suspended = boot_delta - mono_delta
        if suspended > self.threshold:
            found.append(("suspend", suspended))
        jump = wall_delta - boot_delta
        if abs(jump) > self.threshold:
            found.append(("clock_jump", jump))
        events = []
        for kind, seconds in found:
            delayed = tuple(self._delayed_tasks(started_at)) if kind != "clock_jump" else ()
            event = StallEvent(kind, seconds, wall, delayed)
            events.append(event)
            self.last_event = event
            self.event_counts[kind] += 1
            logger.warning("%s", event.describe())
            for listener in self._listeners:
                listener(event)
        return events

    def start(self) -> None:
        """Start the probe task on the running loop; calling it again does nothing.

        Raises:
            RuntimeError: No running event loop.
        """
        if self._task is not None and not self._task.done():
            return
        self._reset()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="tickwork-loop-monitor"
        )

    @property
    def running(self) -> bool:
        """Whether the probe task is running."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.observe()

    async def aclose(self) -> None:
        """Stop the probe task and wait for it to end."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait() neither raises the probe's CancelledError nor swallows our own cancellation.
        await asyncio.wait([task])
