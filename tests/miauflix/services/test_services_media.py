"""`MediaService`: the `syncMovies` and `syncIncompleteSeasons` tasks against the simulator."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from miauflix.db import (
    Database,
    Episode,
    Movie,
    MovieData,
    Season,
    SeasonData,
    ShowData,
    get_sync_state,
    set_sync_state,
    upsert_movie,
    upsert_season,
    upsert_show,
)
from miauflix.providers import Providers
from miauflix.providers.tmdb import TmdbChange, TmdbMovie, TmdbPage
from miauflix.services import (
    MOVIE_CHANGES_CHECKPOINT,
    MOVIE_DETAILS_RETRY,
    ListSynchronizer,
    MediaService,
)
from miauflix.simulator import Simulator

from .conftest import SIM_NOW, FakeClock

NOW = dt.datetime.fromtimestamp(SIM_NOW, dt.UTC)
TODAY = NOW.date()


async def _store_show(database: Database, sim: Simulator, numbers: list[int]) -> int:
    """Store the simulator's first show with seasons `numbers` (queued for a sync now)."""
    show = sim.catalogue.shows[0]
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(show.tmdb_id, show.name), now=NOW)
        for number in numbers:
            await upsert_season(session, show_id, SeasonData(number), now=NOW)
    return show_id


async def _seasons(database: Database) -> dict[int, Season]:
    async with database.session() as session:
        return {s.season_number: s for s in (await session.scalars(select(Season))).all()}


async def _episodes(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Episode)) or 0)


# -- syncIncompleteSeasons ---------------------------------------------------------------------


async def test_sync_incomplete_seasons_inserts_episodes_and_marks_synced(
    media: MediaService, database: Database, sim: Simulator
) -> None:
    """One run syncs one season: its episodes are stored and it leaves the queue."""
    await _store_show(database, sim, [1])

    assert await media.sync_incomplete_seasons() == 1

    season = (await _seasons(database))[1]
    assert season.synced
    assert season.next_sync_attempt_at is None
    assert await _episodes(database) == sim.catalogue.shows[0].seasons[0].episode_count
    assert await media.sync_incomplete_seasons() == 0
    assert await _episodes(database) == sim.catalogue.shows[0].seasons[0].episode_count


async def test_a_synced_season_keeps_its_own_details_through_a_list_refresh(
    media: MediaService,
    lists: ListSynchronizer,
    database: Database,
    sim: Simulator,
    clock: FakeClock,
) -> None:
    """A synced season has its own TMDB details, and a list refresh keeps them and it synced."""
    await lists.synchronize()
    assert await media.sync_incomplete_seasons() == 1
    async with database.session() as session:
        season = (
            await session.scalars(
                select(Season).options(joinedload(Season.show)).where(Season.synced.is_(True))
            )
        ).one()
    show = next(s for s in sim.catalogue.shows if s.tmdb_id == season.show.tmdb_id)
    expected = show.season(season.season_number)
    assert expected is not None
    details = (expected.id, expected.name, expected.overview, expected.episode_count)
    assert (season.tmdb_id, season.name, season.overview, season.episode_count) == details

    clock.advance(3600)
    await lists.synchronize()  # the show's details list the season without id or overview

    async with database.session() as session:
        refreshed = await session.get(Season, season.id)
        assert refreshed is not None
        assert (refreshed.tmdb_id, refreshed.name, refreshed.overview) == details[:3]
        assert refreshed.episode_count == expected.episode_count
        assert refreshed.synced
        assert refreshed.next_sync_attempt_at is None
        grown = SeasonData(season.season_number, episode_count=expected.episode_count + 1)
        await upsert_season(session, season.show_id, grown, now=clock.now)
    async with database.session() as session:
        requeued = await session.get(Season, season.id)
        assert requeued is not None
        assert not requeued.synced
        assert requeued.next_sync_attempt_at == clock.now
        assert requeued.tmdb_id == expected.id


async def test_sync_incomplete_seasons_with_nothing_due_makes_no_request(
    media: MediaService, providers: Providers
) -> None:
    """With no season due the run returns 0 without calling TMDB."""
    assert await media.sync_incomplete_seasons() == 0
    assert providers.tmdb.status().details["requests"] == 0


async def test_a_season_that_404s_backs_off_a_day_and_never_blocks_the_queue(
    media: MediaService,
    database: Database,
    sim: Simulator,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gone season waits about a day (logged once at WARNING) while the next one syncs."""
    await _store_show(database, sim, [99])
    clock.advance(1)
    await _store_show(database, sim, [1])
    clock.advance(1)

    with caplog.at_level(logging.WARNING, logger="miauflix.media"):
        assert await media.sync_incomplete_seasons() == 0
        assert await media.sync_incomplete_seasons() == 1
        assert await media.sync_incomplete_seasons() == 0

    seasons = await _seasons(database)
    gone = seasons[99]
    assert not gone.synced
    assert gone.sync_failures == 1
    assert gone.next_sync_attempt_at is not None
    wait = (gone.next_sync_attempt_at - clock.now).total_seconds()
    assert 0.8 * 86400 <= wait <= 1.2 * 86400
    assert seasons[1].synced
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "season 99" in warnings[0].getMessage()
    assert warnings[0].exc_info is None


async def test_a_failing_season_backs_off_exponentially(
    media: MediaService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A 5xx gives the season 1 min, then 2 min (+-20 %); a success resets its count."""
    await _store_show(database, sim, [1])
    sim.faults.only = ("/tmdb/3/tv",)
    sim.faults.error_rate = 1.0

    assert await media.sync_incomplete_seasons() == 0
    first = (await _seasons(database))[1]
    assert first.next_sync_attempt_at is not None
    assert 48 <= (first.next_sync_attempt_at - clock.now).total_seconds() <= 72
    assert not media.season_pause.active()  # one 5xx is a glitch, not an outage
    assert await media.sync_incomplete_seasons() == 0  # not due again yet: no request
    assert (await _seasons(database))[1].sync_failures == 1

    clock.advance(73)
    assert await media.sync_incomplete_seasons() == 0
    second = (await _seasons(database))[1]
    assert second.sync_failures == 2
    assert second.next_sync_attempt_at is not None
    assert 96 <= (second.next_sync_attempt_at - clock.now).total_seconds() <= 144

    sim.faults.reset()
    clock.advance(145)
    assert await media.sync_incomplete_seasons() == 1
    assert (await _seasons(database))[1].sync_failures == 0


async def test_a_rate_limited_season_waits_at_least_retry_after(
    media: MediaService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A 429 with Retry-After 600 s puts the season's next attempt at least 600 s away."""
    await _store_show(database, sim, [1])
    sim.faults.only = ("/tmdb/3/tv",)
    sim.faults.rate_limit_rate = 1.0
    sim.faults.retry_after = 600

    assert await media.sync_incomplete_seasons() == 0

    season = (await _seasons(database))[1]
    assert season.next_sync_attempt_at is not None
    assert (season.next_sync_attempt_at - clock.now).total_seconds() >= 600
    assert media.season_pause.until is not None
    assert (media.season_pause.until - clock.now).total_seconds() >= 600


# -- syncMovies --------------------------------------------------------------------------------


def _changed_on(sim: Simulator, day: dt.date) -> list[int]:
    return sim.catalogue.changes(day, day + dt.timedelta(days=1), SIM_NOW)


async def _store_movies(database: Database, tmdb_ids: list[int]) -> None:
    """Store movies by TMDB id with a placeholder title (a sync replaces it)."""
    async with database.session() as session:
        for tmdb_id in tmdb_ids:
            await upsert_movie(session, MovieData(tmdb_id, "placeholder"), now=NOW)


async def _titles(database: Database) -> dict[int, str]:
    async with database.session() as session:
        return {m.tmdb_id: m.title for m in (await session.scalars(select(Movie))).all()}


async def test_sync_movies_updates_only_stored_changed_movies_and_checkpoints(
    media: MediaService, database: Database, sim: Simulator
) -> None:
    """The first run looks back 24 h, updates stored movies only, and checkpoints now."""
    yesterday = TODAY - dt.timedelta(days=1)
    changed = _changed_on(sim, yesterday)
    unchanged = [
        m.tmdb_id
        for m in sim.catalogue.movies
        if m.tmdb_id
        not in set(sim.catalogue.changes(TODAY - dt.timedelta(days=14), TODAY, SIM_NOW))
        and m.tmdb_id not in set(_changed_on(sim, TODAY))
    ]
    await _store_movies(database, [changed[0], unchanged[0]])

    report = await media.sync_movies()

    assert not report.skipped
    assert report.days == (yesterday, TODAY)
    assert report.failed_day is None
    assert report.updated == 1
    titles = await _titles(database)
    assert titles[changed[0]] == sim.catalogue.movie(changed[0]).title  # type: ignore[union-attr]
    assert titles[unchanged[0]] == "placeholder"
    assert len(titles) == 2
    async with database.session() as session:
        assert await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT) == NOW


async def test_sync_movies_skips_when_the_last_sync_is_under_an_hour_old(
    media: MediaService, database: Database, providers: Providers, clock: FakeClock
) -> None:
    """A checkpoint 59 minutes old skips the run without asking TMDB; 61 minutes runs it."""
    async with database.session() as session:
        await set_sync_state(session, MOVIE_CHANGES_CHECKPOINT, NOW - dt.timedelta(minutes=59))

    report = await media.sync_movies()

    assert report.skipped
    assert providers.tmdb.status().details["requests"] == 0
    clock.advance(120)
    report = await media.sync_movies()
    assert not report.skipped
    assert report.days == (TODAY,)


async def test_sync_movies_resumes_at_the_failed_day(
    media: MediaService,
    database: Database,
    providers: Providers,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A day that fails keeps the checkpoint at its start; the next run starts with that day."""
    three_days_ago = TODAY - dt.timedelta(days=3)
    failing = TODAY - dt.timedelta(days=1)
    async with database.session() as session:
        start = dt.datetime.combine(three_days_ago, dt.time(), dt.UTC)
        await set_sync_state(session, MOVIE_CHANGES_CHECKPOINT, start)
    real = providers.tmdb.movie_changes

    async def movie_changes(
        start_date: dt.date, end_date: dt.date, page: int = 1
    ) -> TmdbPage[TmdbChange]:
        if start_date == failing:
            sim.faults.only = ("/tmdb/3/movie/changes",)
            sim.faults.error_rate = 1.0
        return await real(start_date, end_date, page)

    monkeypatch.setattr(providers.tmdb, "movie_changes", movie_changes)

    report = await media.sync_movies()

    assert report.days == (three_days_ago, three_days_ago + dt.timedelta(days=1))
    assert report.failed_day == failing
    assert report.outage is not None
    assert report.outage.error is report.error
    assert re.fullmatch(
        rf"tmdb unavailable \(HTTP 50[023]\): movie changes from {failing} not synced",
        report.outage.reason,
    )
    assert report.outage.retry_after is None
    async with database.session() as session:
        checkpoint = await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT)
    assert checkpoint == dt.datetime.combine(failing, dt.time(), dt.UTC)

    monkeypatch.setattr(providers.tmdb, "movie_changes", real)
    sim.faults.reset()
    report = await media.sync_movies()
    assert report.days == (failing, TODAY)
    assert report.failed_day is None
    assert report.outage is None


async def test_sync_movies_walks_at_most_14_days_back(
    media: MediaService, database: Database
) -> None:
    """A checkpoint a month old starts the walk 14 days before today."""
    async with database.session() as session:
        await set_sync_state(session, MOVIE_CHANGES_CHECKPOINT, NOW - dt.timedelta(days=30))

    report = await media.sync_movies()

    assert report.days[0] == TODAY - dt.timedelta(days=14)
    assert report.days[-1] == TODAY
    assert len(report.days) == 15


async def test_sync_movies_leaves_a_movie_gone_from_tmdb_as_stored(
    media: MediaService,
    database: Database,
    providers: Providers,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed movie TMDB answers 404 for is counted as gone and left untouched."""
    changed = _changed_on(sim, TODAY - dt.timedelta(days=1))
    await _store_movies(database, [changed[0]])
    real = providers.tmdb.movie

    async def movie(tmdb_id: int) -> TmdbMovie:
        # TMDB id 1 is not in the simulator's catalogue: a real 404, as for a deleted movie.
        return await real(1 if tmdb_id == changed[0] else tmdb_id)

    monkeypatch.setattr(providers.tmdb, "movie", movie)

    report = await media.sync_movies()

    assert report.gone == 1
    assert report.failed_day is None
    assert (await _titles(database))[changed[0]] == "placeholder"


async def _details_retry(database: Database, tmdb_id: int) -> tuple[int, dt.datetime | None]:
    async with database.session() as session:
        movie = (await session.scalars(select(Movie).where(Movie.tmdb_id == tmdb_id))).one()
        return movie.details_failures, movie.next_details_attempt_at


async def test_two_failing_movies_do_not_stall_the_day(
    media: MediaService, database: Database, sim: Simulator
) -> None:
    """Two movies whose details keep failing are queued on their own; the day completes."""
    yesterday = TODAY - dt.timedelta(days=1)
    changed = _changed_on(sim, yesterday)
    failing, healthy = changed[:2], changed[2]
    await _store_movies(database, [*failing, healthy])
    sim.faults.only = tuple(f"/tmdb/3/movie/{tmdb_id}" for tmdb_id in failing)
    sim.faults.error_rate = 1.0

    report = await media.sync_movies()

    assert report.failed_day is None
    assert report.days == (yesterday, TODAY)
    assert report.failed == 2
    # Failing movies are each their own matter: the run did its work, no outage.
    assert report.outage is None
    titles = await _titles(database)
    assert titles[healthy] == sim.catalogue.movie(healthy).title  # type: ignore[union-attr]
    assert all(titles[tmdb_id] == "placeholder" for tmdb_id in failing)
    for tmdb_id in failing:
        failures, retry_at = await _details_retry(database, tmdb_id)
        assert failures == 1
        assert retry_at is not None
        assert NOW + dt.timedelta(seconds=0.7 * MOVIE_DETAILS_RETRY.base) <= retry_at
    async with database.session() as session:
        assert await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT) == NOW


async def test_a_queued_movie_is_retried_when_due_and_leaves_the_queue(
    media: MediaService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A later run fetches a queued movie once its retry time has come, then clears its retry."""
    changed = _changed_on(sim, TODAY - dt.timedelta(days=1))
    await _store_movies(database, [changed[0]])
    sim.faults.only = (f"/tmdb/3/movie/{changed[0]}",)
    sim.faults.error_rate = 1.0
    await media.sync_movies()
    sim.faults.reset()

    clock.advance(60)
    early = await media.sync_movies()
    assert early.retried == 0
    clock.advance(2 * MOVIE_DETAILS_RETRY.base)
    report = await media.sync_movies()

    assert report.retried == 1
    assert (await _titles(database))[changed[0]] == sim.catalogue.movie(changed[0]).title  # type: ignore[union-attr]
    assert await _details_retry(database, changed[0]) == (0, None)


async def test_a_movie_failing_again_backs_off_longer(
    media: MediaService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A queued movie that fails again counts its streak and waits longer than the first time."""
    changed = _changed_on(sim, TODAY - dt.timedelta(days=1))
    await _store_movies(database, [changed[0]])
    sim.faults.only = (f"/tmdb/3/movie/{changed[0]}",)
    sim.faults.error_rate = 1.0
    await media.sync_movies()
    _, first = await _details_retry(database, changed[0])
    assert first is not None
    clock.advance((first - NOW).total_seconds())

    report = await media.sync_movies()

    failures, second = await _details_retry(database, changed[0])
    assert report.failed == 1
    assert failures == 2
    assert second is not None
    assert second - clock() >= dt.timedelta(seconds=0.8 * 2 * MOVIE_DETAILS_RETRY.base)


async def test_the_first_lookback_is_a_checked_setting(
    database: Database, providers: Providers, clock: FakeClock
) -> None:
    """A 14-day first lookback walks 15 days; one beyond `max_days_back` is refused."""
    media = MediaService(database, providers.tmdb, clock=clock, first_lookback=14 * 86400.0)

    report = await media.sync_movies()

    assert report.days[0] == TODAY - dt.timedelta(days=14)
    with pytest.raises(ValueError, match="first_lookback must be between 0 and"):
        MediaService(database, providers.tmdb, first_lookback=15 * 86400.0)
