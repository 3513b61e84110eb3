"""Pure backoff rules: `RetryPolicy`, `ProviderPause` and the stats volatility rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from miauflix.providers import (
    BadResponse,
    NotConfigured,
    NotFound,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from miauflix.services import (
    STATS_MAX_WAIT,
    STATS_MIN_WAIT,
    ProviderPause,
    RetryPolicy,
    relative_change,
    stats_wait,
)

from .conftest import FakeClock

HOUR = 3600.0
POLICY = RetryPolicy(base=60.0, cap=3600.0, gone_base=86400.0, give_up_after=5)
UNAVAILABLE = ProviderUnavailable("tmdb", "/x", "down", status_code=503)


class NoJitter(random.Random):
    """A generator whose `uniform(a, b)` is the midpoint: jitter factor exactly 1."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_delay_doubles_per_failure_up_to_the_cap() -> None:
    """1 min, 2 min, 4 min... then the cap, without jitter."""
    delays = [POLICY.delay(n, UNAVAILABLE, NoJitter()) for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_delay_jitter_stays_within_twenty_percent() -> None:
    """Jittered delays spread over [0.8, 1.2] times the base delay."""
    rng = random.Random(3)
    delays = [POLICY.delay(2, UNAVAILABLE, rng) for _ in range(500)]
    assert min(delays) >= 96
    assert max(delays) <= 144
    assert max(delays) - min(delays) > 30


def test_not_found_starts_from_the_gone_delay() -> None:
    """A 404 waits `gone_base` (capped), not `base`."""
    assert POLICY.delay(1, NotFound("tmdb", "/x", "404"), NoJitter()) == 3600
    wide = RetryPolicy(base=60, cap=7 * 86400, gone_base=86400)
    assert wide.delay(2, NotFound("tmdb", "/x", "404"), NoJitter()) == 2 * 86400


def test_rate_limited_waits_at_least_retry_after() -> None:
    """A 429's Retry-After is a floor for the delay."""
    assert POLICY.delay(1, RateLimited("yts", "/x", 7200.0), NoJitter()) == 7200
    assert POLICY.delay(1, RateLimited("yts", "/x", None), NoJitter()) == 60


def test_next_attempt_gives_up_after_the_limit() -> None:
    """The fifth failure returns None: the item leaves its queue."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert POLICY.next_attempt(now, 4, UNAVAILABLE, NoJitter()) == datetime(
        2026, 1, 1, 0, 8, tzinfo=UTC
    )
    assert POLICY.next_attempt(now, 5, UNAVAILABLE, NoJitter()) is None


@pytest.mark.parametrize(
    ("field", "value"), [("base", 0), ("cap", float("inf")), ("gone_base", -1.0)]
)
def test_policy_rejects_bad_numbers(field: str, value: float) -> None:
    """A non-positive or infinite duration is refused, naming the field and the value."""
    args: dict[str, float] = {"base": 1.0, "cap": 2.0, "gone_base": 3.0, field: value}
    with pytest.raises(ValueError, match=rf"{field} must be a finite number > 0, got {value}"):
        RetryPolicy(args["base"], args["cap"], args["gone_base"])


def test_pause_grows_with_consecutive_trips_and_clears() -> None:
    """From the third timeout in a row: 1 s, 2 s, 4 s...; an answer ends the streak."""
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    pause = ProviderPause("task", clock)
    pause.trip(BadResponse("yts", "/x", "html"))
    pause.trip(ProviderTimeout("yts", "/x", 1.0))
    pause.trip(UNAVAILABLE)
    assert not pause.active()
    assert pause.until is None
    for seconds in (1, 2, 4):
        pause.trip(ProviderTimeout("yts", "/x", 1.0))
        assert pause.until is not None
        assert (pause.until - clock.now).total_seconds() == seconds
    assert pause.active()
    clock.advance(4)
    assert not pause.active()
    pause.clear()
    pause.trip(UNAVAILABLE)
    assert not pause.active()


def test_pause_for_a_missing_setting_is_long() -> None:
    """`NotConfigured` pauses for five minutes, `RateLimited` for its Retry-After."""
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    pause = ProviderPause("task", clock)
    pause.trip(NotConfigured("trackers", "/scrape", "TRACKERS"))
    assert pause.until is not None
    assert (pause.until - clock.now).total_seconds() == 300
    pause.trip(RateLimited("yts", "/x", 42.0))
    assert (pause.until - clock.now).total_seconds() == 42


def test_relative_change() -> None:
    """Change relative to the previous count; from 0 it is the new count; unknown is 100 %."""
    assert relative_change(100, 104) == pytest.approx(0.04)
    assert relative_change(0, 3) == 3
    assert relative_change(None, 5) == 1.0


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ((102, 50), 24 * HOUR),  # 2 %: doubled
        ((107, 50), 12 * HOUR),  # 7 %: kept
        ((115, 50), 9 * HOUR),  # 15 %: x0.75
        ((100, 65), 6 * HOUR),  # 30 % (leechers): halved, then kept at the 6 h minimum
        ((100, 80), 6 * HOUR),  # 60 %: reset to the minimum
    ],
)
def test_stats_wait_follows_the_volatility_rule(after: tuple[int, int], expected: float) -> None:
    """From a 12 h wait and (100, 50): each band of change scales the wait as specified."""
    assert stats_wait(12 * HOUR, (100, 50), after, NoJitter()) == expected


def test_stats_wait_halves_a_long_wait_on_a_moderate_change() -> None:
    """A 30 % change halves a 40 h wait to 20 h."""
    assert stats_wait(40 * HOUR, (100, 50), (130, 50), NoJitter()) == 20 * HOUR


def test_stats_wait_is_clamped_to_6_and_72_hours() -> None:
    """Doubling 60 h stops at 72 h; a first check with no previous wait starts at 6 h."""
    assert stats_wait(60 * HOUR, (100, 50), (100, 50), NoJitter()) == STATS_MAX_WAIT
    assert stats_wait(None, (None, None), (10, 5), NoJitter()) == STATS_MIN_WAIT


def test_stats_wait_jitter_is_twenty_percent_within_bounds() -> None:
    """Jitter spreads a 24 h wait over 19.2-28.8 h and never leaves 6-72 h."""
    rng = random.Random(5)
    waits = [stats_wait(12 * HOUR, (100, 50), (100, 50), rng) for _ in range(500)]
    assert 0.8 * 24 * HOUR <= min(waits) < max(waits) <= 1.2 * 24 * HOUR
    capped = [stats_wait(70 * HOUR, (100, 50), (100, 50), rng) for _ in range(200)]
    assert all(STATS_MIN_WAIT <= w <= STATS_MAX_WAIT for w in capped)
