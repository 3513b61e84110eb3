"""Units of the service: rate limiter, loop monitor, JSON log format, loader, tracing hook."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickwork.service._lag import LoopMonitor
from tickwork.service._loader import LoadError, load_target
from tickwork.service._logging import JsonFormatter
from tickwork.service._ratelimit import RateLimiter
from tickwork.testing import wait_until

from .._fakes import FakeClock


def test_rate_limiter_allows_burst_then_refills() -> None:
    """A key gets ``burst`` requests at once, then one per 1/rate seconds; keys are separate."""
    clock = FakeClock()
    limiter = RateLimiter(10, 3, clock=clock)
    assert [limiter.acquire("a", "status") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", "status") == pytest.approx(0.1)
    assert limiter.acquire("a", "metrics") == 0.0
    assert limiter.acquire("b", "status") == 0.0
    clock.now += 0.1
    assert limiter.acquire("a", "status") == 0.0
    assert limiter.acquire("a", "status") > 0
    clock.now += 60
    assert [limiter.acquire("a", "status") for _ in range(4)][-1] > 0


def test_rate_limiter_forgets_oldest_keys() -> None:
    """The bucket table stays bounded by ``max_keys``."""
    limiter = RateLimiter(10, max_keys=100, clock=FakeClock())
    for i in range(1000):
        limiter.acquire(f"10.0.0.{i}", "status")
    assert len(limiter) == 100


@pytest.mark.parametrize(
    ("args", "message"),
    [((0,), "rate must be a finite number > 0, got 0"), ((5, 0), "burst must be an int >= 1")],
)
def test_rate_limiter_rejects_bad_settings(args: tuple[Any, ...], message: str) -> None:
    """Bad rate or burst values raise ValueError naming them."""
    with pytest.raises(ValueError, match=message):
        RateLimiter(*args)


class Clocks:
    """Monotonic, wall and boot-time fake clocks moved together or apart."""

    def __init__(self) -> None:
        self.mono, self.wall, self.boot = 100.0, 1_800_000_000.0, 500.0

    def advance(self, mono: float, wall: float | None = None, boot: float | None = None) -> None:
        self.mono += mono
        self.boot += mono if boot is None else boot
        self.wall += mono if wall is None else wall

    def monitor(self, delayed: list[str]) -> LoopMonitor:
        return LoopMonitor(
            interval=0.25,
            threshold=1.0,
            delayed_tasks=lambda since: delayed,
            monotonic=lambda: self.mono,
            wall=lambda: self.wall,
            boot=lambda: self.boot,
        )


def test_monitor_reports_stall_once_with_delayed_tasks(caplog: pytest.LogCaptureFixture) -> None:
    """A late probe is one "stall" WARNING with its length and the delayed tasks, then quiet."""
    clocks = Clocks()
    monitor = clocks.monitor(["sync_movies"])
    clocks.advance(0.25)
    with caplog.at_level(logging.WARNING, logger="tickwork.service"):
        assert monitor.observe() == []
        clocks.advance(3.25)
        [event] = monitor.observe()
        clocks.advance(0.25)
        assert monitor.observe() == []
    assert (event.kind, event.seconds, event.delayed_tasks) == ("stall", 3.0, ("sync_movies",))
    assert [r.getMessage() for r in caplog.records] == [
        "Event loop was blocked for 3.00 s; tasks overdue or delayed: sync_movies"
    ]
    assert monitor.event_counts["stall"] == 1
    assert monitor.last_event == event
    assert monitor.max_lag == 3.0
    assert monitor.lag == 0.0


def test_monitor_tells_suspend_from_clock_jumps(caplog: pytest.LogCaptureFixture) -> None:
    """Boot time ahead of monotonic is a suspend; wall clock off boot time is a clock jump."""
    clocks = Clocks()
    monitor = clocks.monitor([])
    with caplog.at_level(logging.WARNING, logger="tickwork.service"):
        clocks.advance(0.25, wall=60.25, boot=60.25)
        [suspend] = monitor.observe()
        clocks.advance(0.25, wall=-3599.75)
        [backward] = monitor.observe()
        clocks.advance(0.25, wall=5.25)
        [forward] = monitor.observe()
    assert (suspend.kind, suspend.seconds) == ("suspend", 60.0)
    assert (backward.kind, backward.seconds) == ("clock_jump", -3600.0)
    assert (forward.kind, forward.seconds) == ("clock_jump", 5.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "Process was suspended for 60.00 s; tasks overdue or delayed: none"
    assert messages[1].startswith("Wall clock jumped backward by 3600.00 s")
    assert messages[2].startswith("Wall clock jumped forward by 5.00 s")
    assert dict(monitor.event_counts) == {"suspend": 1, "clock_jump": 2}


@pytest.mark.slow
async def test_monitor_probe_task_detects_real_block() -> None:
    """The running probe notices a real blocked loop and stops cleanly on aclose()."""
    monitor = LoopMonitor(interval=0.05, threshold=0.2)
    monitor.start()
    monitor.start()  # idempotent
    await asyncio.sleep(0.06)
    threading.Event().wait(0.4)  # block the loop on purpose
    await wait_until(lambda: monitor.last_event is not None, timeout=5)
    event = monitor.last_event
    assert event is not None
    assert event.kind == "stall"
    assert event.seconds >= 0.3
    await monitor.aclose()
    assert not monitor.running


def test_json_formatter_carries_task_and_traceback() -> None:
    """A JSON line has timestamp, level, logger, message, the task and the exception text."""
    logger = logging.getLogger("tickwork.scheduler")
    try:
        raise ValueError("bad row")
    except ValueError:
        record = logger.makeRecord(
            "tickwork.scheduler",
            logging.ERROR,
            __file__,
            1,
            "Task %s failed",
            ("sync",),
            sys.exc_info(),
            extra={"task": "sync"},
        )
    data = json.loads(JsonFormatter().format(record))
    assert set(data) == {"timestamp", "level", "logger", "message", "task", "exc_info"}
    assert data["level"] == "ERROR"
    assert data["logger"] == "tickwork.scheduler"
    assert data["message"] == "Task sync failed"
    assert data["task"] == "sync"
    assert data["timestamp"].endswith("+00:00")
    assert "ValueError: bad row" in data["exc_info"]
    plain = logger.makeRecord("x", logging.INFO, __file__, 1, "hi\nthere", (), None)
    line = JsonFormatter().format(plain)
    assert "\n" not in line
    assert "task" not in json.loads(line)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary current directory holding importable modules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("loader_case")]:
        del sys.modules[name]


def test_loader_resolves_dotted_attribute(app_dir: Path) -> None:
    """MODULE:Class.method resolves from the current directory."""
    (app_dir / "loader_case_ok.py").write_text(
        "class App:\n    @staticmethod\n    def setup(scheduler):\n        return 'ok'\n"
    )
    assert load_target("loader_case_ok:App.setup")(None) == "ok"


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (None, "loader_case_none:setup", "cannot import module 'loader_case_none'"),
        ("x = 1\n", "loader_case_attr:setup", "module 'loader_case_attr' has no attribute 'setup'"),
        ("1/0\n", "loader_case_div:setup", "error while importing module 'loader_case_div'"),
        ("setup = 3\n", "loader_case_int:setup", r"is not callable \(its type is int\)"),
        (None, ":setup", "expected MODULE:CALLABLE"),
    ],
)
def test_loader_errors_name_the_problem(
    app_dir: Path, source: str | None, spec: str, message: str
) -> None:
    """Each resolution failure raises LoadError with a one-line message naming it."""
    if source is not None:
        (app_dir / f"{spec.partition(':')[0]}.py").write_text(source)
    with pytest.raises(LoadError, match=message) as info:
        load_target(spec)
    assert "\n" not in str(info.value)


def test_service_public_api_is_pinned() -> None:
    """tickwork.service exports exactly its documented names."""
    import tickwork.service

    assert tickwork.service.__all__ == [
        "ComponentCheck",
        "ComponentState",
        "ComponentStatus",
        "SchedulerMetrics",
        "TracingHook",
        "create_app",
        "register_component",
        "register_routes",
        "tracing_hook",
    ]
    for name in tickwork.service.__all__:
        assert getattr(tickwork.service, name) is not None
