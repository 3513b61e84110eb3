"""`SourceService.sync_stats_for_sources`: the volatility rule across checks of one source.

The tracker is a stand-in answering the counts each step sets, and the jitter is zero, so
every wait is exact; the database is real (SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from typing import cast

import pytest
from sqlalchemy import select

from miauflix.db import Database, MovieData, MovieSource, SourceData, upsert_movie, upsert_sources
from miauflix.providers import (
    ProviderError,
    ProviderUnavailable,
    ScrapeResult,
    TorrentFileFetcher,
    TrackerScraper,
)
from miauflix.services import SourceService

from .conftest import FakeClock

HOUR = 3600.0
INFO_HASH = "c0" * 20


class _NoJitter(random.Random):
    """Draws the middle of every range: `jittered()` multiplies by exactly 1."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


class _Tracker:
    """A tracker stand-in: answers `counts` for `INFO_HASH`, or raises `error` when set."""

    def __init__(self) -> None:
        self.counts = (0, 0)
        self.error: ProviderError | None = None

    async def scrape(
        self, info_hashes: Iterable[str], trackers: Sequence[str] | None = None
    ) -> dict[str, ScrapeResult]:
        if self.error is not None:
            raise self.error
        seeders, leechers = self.counts
        return {h: ScrapeResult(seeders, leechers, 0, "udp://stand-in") for h in info_hashes}


@pytest.fixture
def tracker() -> _Tracker:
    """The tracker stand-in."""
    return _Tracker()


@pytest.fixture
async def stats(database: Database, clock: FakeClock, tracker: _Tracker) -> SourceService:
    """A source service with one stored source due for its first stats check, zero jitter."""
    async with database.session() as session:
        movie_id = await upsert_movie(
            session, MovieData(550, "Fight Club", imdb_id="tt0137523"), now=clock.now
        )
        await upsert_sources(
            session,
            movie_id,
            [SourceData(INFO_HASH, f"magnet:?xt=urn:btih:{INFO_HASH}", "1080p", "yts")],
            now=clock.now,
        )
    # Only the tracker is asked: nothing here searches directories or downloads files.
    return SourceService(
        database,
        directories=(),
        torrent_files=cast(TorrentFileFetcher, None),
        trackers=cast(TrackerScraper, tracker),
        clock=clock,
        rng=_NoJitter(),
    )


async def _source(database: Database) -> MovieSource:
    async with database.session() as session:
        source = await session.scalar(select(MovieSource))
    assert source is not None
    return source


async def _check_when_due(
    stats: SourceService, database: Database, clock: FakeClock, *, updated: int
) -> MovieSource:
    """Move the clock a minute past the source's next check, run the task once, reload it."""
    due = (await _source(database)).next_stats_check_at
    assert due is not None
    clock.now = max(clock.now, due + dt.timedelta(minutes=1))
    assert await stats.sync_stats_for_sources() == updated
    return await _source(database)


def _wait_hours(source: MovieSource) -> float:
    """Hours between the source's last successful check and its next check."""
    assert source.last_stats_check is not None
    assert source.next_stats_check_at is not None
    return (source.next_stats_check_at - source.last_stats_check).total_seconds() / HOUR


async def test_rechecks_double_a_calm_swarm_and_reset_a_jumpy_one_within_6_to_72_h(
    stats: SourceService, database: Database, clock: FakeClock, tracker: _Tracker
) -> None:
    """Each recheck derives the wait from the last one: <5 % doubles, >50 % resets, 6-72 h."""
    steps = [
        ((100, 40), 6.0),  # first check: no previous counts, the minimum
        ((102, 41), 12.0),  # 2.0 % / 2.5 %: doubled
        ((100, 40), 24.0),  # 2.0 % / 2.4 %: doubled
        ((100, 40), 48.0),  # unchanged: doubled
        ((101, 40), 72.0),  # 1 %: 96 h, clamped to the maximum
        ((101, 41), 72.0),  # 2.5 %: 144 h, still the maximum
        ((170, 41), 6.0),  # 68 % more seeders: back to the minimum, not halved
        ((170, 41), 12.0),  # calm again: doubled from the minimum
        ((170, 85), 6.0),  # leechers doubled (>50 %): reset again
    ]
    for counts, hours in steps:
        tracker.counts = counts
        source = await _check_when_due(stats, database, clock, updated=1)
        assert (source.seeders, source.leechers) == counts
        assert source.last_stats_check == clock.now
        assert _wait_hours(source) == pytest.approx(hours), (counts, hours)


async def test_a_failed_check_does_not_stretch_the_next_volatility_wait(
    stats: SourceService, database: Database, clock: FakeClock, tracker: _Tracker
) -> None:
    """After tracker failures the rule starts from the last chosen wait, not the outage."""
    for counts in ((100, 40), (101, 40)):  # 6 h, then 12 h
        tracker.counts = counts
        await _check_when_due(stats, database, clock, updated=1)
    tracker.error = ProviderUnavailable("trackers", "/scrape", "HTTP 503", status_code=503)
    for failures in range(1, 6):  # 15 min, 30 min, 1 h, 2 h, 4 h: 7.75 h of outage
        source = await _check_when_due(stats, database, clock, updated=0)
        assert source.stats_failures == failures
        assert _wait_hours(source) > 12.0  # last check kept, next one is the retry
    tracker.error = None
    tracker.counts = (108, 40)  # 7 % since the last successful check: the wait is kept

    source = await _check_when_due(stats, database, clock, updated=1)

    assert source.stats_failures == 0
    assert _wait_hours(source) == pytest.approx(12.0)
    source = await _check_when_due(stats, database, clock, updated=1)
    assert _wait_hours(source) == pytest.approx(24.0)  # unchanged: doubled
