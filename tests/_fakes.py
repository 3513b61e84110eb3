"""Test doubles shared by the suites: settable clocks."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """A settable clock in seconds: `clock()` returns `now`; tests move it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds


class FakeUtcClock:
    """A settable clock for miauflix's services: `clock()` is the current aware UTC time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += timedelta(seconds=seconds)
