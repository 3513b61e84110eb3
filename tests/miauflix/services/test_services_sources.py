"""`SourceService`: source search, `.torrent` files, tracker stats and resync (simulator)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging

import bencode2
import pytest
from sqlalchemy import func, select

from miauflix.db import (
    Database,
    Movie,
    MovieData,
    MovieSource,
    SourceData,
    get_source_file,
    record_source_search,
    upsert_movie,
    upsert_sources,
)
from miauflix.providers import Providers, TorrentFile
from miauflix.services import SourceService
from miauflix.simulator import Movie as SimMovie
from miauflix.simulator import Simulator

from .conftest import SIM_NOW, FakeClock

NOW = dt.datetime.fromtimestamp(SIM_NOW, dt.UTC)


def _with_sources(sim: Simulator) -> list[SimMovie]:
    return [m for m in sim.catalogue.movies if m.imdb_id and m.sources]


async def _store(database: Database, movies: list[SimMovie], popularity: float = 0.0) -> None:
    """Store simulator movies (queued for a source search now), more popular first in order."""
    async with database.session() as session:
        for rank, movie in enumerate(movies):
            await upsert_movie(
                session,
                MovieData(
                    movie.tmdb_id,
                    movie.title,
                    imdb_id=movie.imdb_id,
                    popularity=popularity or 1000.0 - rank,
                ),
                now=NOW,
            )


async def _movie(database: Database, tmdb_id: int) -> Movie:
    async with database.session() as session:
        movie = await session.scalar(select(Movie).where(Movie.tmdb_id == tmdb_id))
    assert movie is not None
    return movie


async def _sources(database: Database) -> list[MovieSource]:
    async with database.session() as session:
        return list((await session.scalars(select(MovieSource).order_by(MovieSource.id))).all())


async def _searched(database: Database, sources: SourceService, movie: SimMovie) -> None:
    """Store `movie` and run the source search for it."""
    await _store(database, [movie])
    assert await sources.search_sources_for_movies() == len(movie.sources)


def _seconds_from(clock: FakeClock, when: dt.datetime | None) -> float:
    assert when is not None
    return (when - clock.now).total_seconds()


# -- movieSourceSearch -------------------------------------------------------------------------


async def test_search_picks_the_most_popular_movie_and_stores_its_sources(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """The most popular due movie is searched first; its YTS sources are stored; it leaves."""
    first, second = _with_sources(sim)[:2]
    await _store(database, [first, second])

    assert await sources.search_sources_for_movies() == len(first.sources)

    stored = await _sources(database)
    assert {s.info_hash for s in stored} == {s.info_hash.hex() for s in first.sources}
    assert all(s.source_directory == "yts" and s.next_file_attempt_at is not None for s in stored)
    movie = await _movie(database, first.tmdb_id)
    assert movie.next_source_search_at is None
    assert movie.searched_directories == ["yts"]
    assert (await _movie(database, second.tmdb_id)).next_source_search_at is not None


async def test_search_without_sources_comes_back_in_45_to_75_minutes(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A movie no directory has is searched again 45-75 minutes later, not before."""
    movie = next(m for m in sim.catalogue.movies if m.imdb_id and not m.sources)
    await _store(database, [movie])

    assert await sources.search_sources_for_movies() == 0

    stored = await _movie(database, movie.tmdb_id)
    assert 45 * 60 <= _seconds_from(clock, stored.next_source_search_at) <= 75 * 60
    assert stored.source_search_failures == 0
    assert await sources.search_sources_for_movies() == 0
    assert sources.processed["movieSourceSearch"] == 1


async def test_search_again_creates_no_duplicate_sources(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """Re-queueing a searched movie and searching again updates its sources in place."""
    movie = _with_sources(sim)[0]
    await _searched(database, sources, movie)
    await _store(database, [movie])  # an update keeps the queue: queue it by hand
    async with database.session() as session:
        stored = await session.scalar(select(Movie).where(Movie.tmdb_id == movie.tmdb_id))
        assert stored is not None
        stored.next_source_search_at = NOW

    assert await sources.search_sources_for_movies() == 0

    assert len(await _sources(database)) == len(movie.sources)


async def test_a_failing_directory_backs_off_each_movie_then_pauses_the_search(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """Each movie YTS fails for backs off ~1 min and the next is tried; 3 in a row pause."""
    movies = _with_sources(sim)[:4]
    await _store(database, movies)
    sim.faults.only = ("/yts",)
    sim.faults.error_rate = 1.0

    for _ in range(3):
        assert not sources.search_pause.active()
        assert await sources.search_sources_for_movies() == 0

    for movie in movies[:3]:
        failed = await _movie(database, movie.tmdb_id)
        assert failed.source_search_failures == 1
        assert 48 <= _seconds_from(clock, failed.next_source_search_at) <= 72
    assert sources.search_pause.active()
    sim.faults.reset()
    assert await sources.search_sources_for_movies() == 0  # paused: not even a query
    assert await _sources(database) == []
    clock.advance(2)
    assert await sources.search_sources_for_movies() == len(movies[3].sources)


@pytest.mark.parametrize(
    ("knob", "code"),
    [
        ("error_rate", "unavailable"),
        ("rate_limit_rate", "rate_limited"),
        ("html_rate", "bad_response"),
        ("truncate_rate", "bad_response"),
        ("hang_rate", "timeout"),
    ],
)
async def test_every_directory_fault_backs_off_the_movie(
    sources: SourceService,
    database: Database,
    providers: Providers,
    sim: Simulator,
    clock: FakeClock,
    knob: str,
    code: str,
) -> None:
    """Each kind of bad YTS answer records a failure with its own retry time, never raises."""
    movie = _with_sources(sim)[0]
    await _store(database, [movie])
    sim.faults.only = ("/yts",)
    setattr(sim.faults, knob, 1.0)

    async with asyncio.timeout(10):
        assert await sources.search_sources_for_movies() == 0

    stored = await _movie(database, movie.tmdb_id)
    assert stored.source_search_failures == 1
    assert _seconds_from(clock, stored.next_source_search_at) >= 48
    assert providers.yts.status().details["last_error_code"] == code
    assert await _sources(database) == []


async def test_a_rate_limited_directory_waits_for_retry_after(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A 429 with Retry-After 900 s holds the movie and the task back at least that long."""
    movie = _with_sources(sim)[0]
    await _store(database, [movie])
    sim.faults.only = ("/yts",)
    sim.faults.rate_limit_rate = 1.0
    sim.faults.retry_after = 900

    assert await sources.search_sources_for_movies() == 0

    assert (
        _seconds_from(clock, (await _movie(database, movie.tmdb_id)).next_source_search_at) >= 900
    )
    assert _seconds_from(clock, sources.search_pause.until) >= 900


async def test_search_with_nothing_due_makes_no_request(
    sources: SourceService, providers: Providers
) -> None:
    """With no movie, source or stats check due, every source task returns 0 without a call."""
    assert await sources.search_sources_for_movies() == 0
    assert await sources.search_torrent_files_for_sources() == 0
    assert await sources.sync_stats_for_sources() == 0
    assert await sources.resync_movie_sources() == 0
    statuses = providers.statuses()
    assert all(statuses[name].details["requests"] == 0 for name in ("yts", "torrent_files"))


async def test_empty_picks_do_not_wait_for_a_writer(
    database: Database, sources: SourceService
) -> None:
    """With nothing due, every source task returns while another session holds a write open."""
    wrote = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with database.session() as session:
            # Not queued for a source search (no IMDb id): the picks stay empty.
            await upsert_movie(session, MovieData(1, "Pending"), now=NOW)
            wrote.set()
            await release.wait()

    async with asyncio.timeout(30), asyncio.TaskGroup() as tasks:
        tasks.create_task(writer())
        await wrote.wait()
        try:
            # A pick in a write session would wait for the lock (busy timeout: 10 s) on SQLite.
            async with asyncio.timeout(2):
                assert await sources.search_sources_for_movies() == 0
                assert await sources.search_torrent_files_for_sources() == 0
                assert await sources.sync_stats_for_sources() == 0
                assert await sources.resync_movie_sources() == 0
        finally:
            release.set()


# -- dataFileSearch ----------------------------------------------------------------------------


async def test_file_search_stores_verified_files_round_robin(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """One run stores one verified file per movie first (best quality), for 4 sources."""
    for movie in _with_sources(sim)[:4]:
        await _searched(database, sources, movie)

    assert await sources.search_torrent_files_for_sources() == 4

    stored = [s for s in await _sources(database) if s.has_file]
    assert len({s.movie_id for s in stored}) == 4
    for source in stored:
        async with database.session() as session:
            data = await get_source_file(session, source.id)
        assert data is not None
        info = bencode2.bdecode(data)[b"info"]
        assert hashlib.sha1(bencode2.bencode(info)).hexdigest() == source.info_hash
        assert source.next_file_attempt_at is None


async def test_file_downloads_are_bounded_and_always_released(
    sources: SourceService,
    database: Database,
    providers: Providers,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most `file_concurrency` downloads run at once, and a cancelled run leaves none behind."""
    for movie in _with_sources(sim)[:6]:
        await _searched(database, sources, movie)
    sources.file_batch, sources.file_concurrency = 6, 2
    running = peak = 0
    both_started = asyncio.Event()
    real = providers.torrent_files.fetch

    async def fetch(info_hash: str, download_url: str | None = None) -> TorrentFile:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            both_started.set()
        try:
            return await real(info_hash, download_url)
        finally:
            running -= 1

    monkeypatch.setattr(providers.torrent_files, "fetch", fetch)
    assert await sources.search_torrent_files_for_sources() == 6
    assert peak == 2

    for movie in _with_sources(sim)[6:9]:
        await _searched(database, sources, movie)
    sim.faults.latency = 30.0
    both_started.clear()
    run = asyncio.create_task(sources.search_torrent_files_for_sources())
    async with asyncio.timeout(5):
        await both_started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert running == 0
    sim.faults.latency = 0.0
    assert await sources.search_torrent_files_for_sources() == 6
    assert peak == 2


async def test_a_wrong_hash_is_not_stored_and_the_source_backs_off(
    sources: SourceService,
    database: Database,
    sim: Simulator,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file of another info hash is refused; the source retries in ~1 min, logged once."""
    movie = _with_sources(sim)[0]
    await _searched(database, sources, movie)
    sources.file_batch = 1
    sim.faults.wrong_hash_rate = 1.0

    with caplog.at_level(logging.WARNING, logger="miauflix.sources"):
        assert await sources.search_torrent_files_for_sources() == 0

    failed = [s for s in await _sources(database) if s.file_failures]
    assert len(failed) == 1
    assert not failed[0].has_file
    assert 48 <= _seconds_from(clock, failed[0].next_file_attempt_at) <= 72
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "differs from expected" in caplog.records[0].getMessage()
    assert not sources.file_pause.active()  # a bad file is about the source, not the provider


async def test_a_file_found_nowhere_waits_an_hour_and_never_blocks_the_queue(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A source without a direct URL and absent from the cache waits ~1 h; others proceed."""
    movie, other = _with_sources(sim)[:2]
    uncached = next(s for m in _with_sources(sim)[2:] for s in m.sources if not s.cached)
    await _searched(database, sources, movie)
    stored = await _movie(database, movie.tmdb_id)
    hash_ = uncached.info_hash.hex()
    async with database.session() as session:
        # The best source of the movie (so picked first), with no direct URL.
        await upsert_sources(
            session,
            stored.id,
            [SourceData(hash_, f"magnet:?xt=urn:btih:{hash_}", "2160p", "yts", seeders=10**6)],
            now=NOW,
        )
    await _searched(database, sources, other)
    sources.file_batch = 1

    assert await sources.search_torrent_files_for_sources() == 0
    assert await sources.search_torrent_files_for_sources() == 1

    missing = next(s for s in await _sources(database) if s.info_hash == uncached.info_hash.hex())
    assert missing.file_failures == 1
    assert 0.8 * 3600 <= _seconds_from(clock, missing.next_file_attempt_at) <= 1.2 * 3600


async def test_a_stale_download_url_is_refreshed_from_the_directory(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """A failed direct URL re-asks the directory; its current URL then gets the file."""
    movie = next(m for m in _with_sources(sim) if any(not s.cached for s in m.sources))
    uncached = next(s for s in movie.sources if not s.cached)
    hash_ = uncached.info_hash.hex()
    await _store(database, [movie])
    stored = await _movie(database, movie.tmdb_id)
    async with database.session() as session:
        # As stored before a restart of the demo simulator: its old port no longer answers.
        await upsert_sources(
            session,
            stored.id,
            [
                SourceData(
                    hash_,
                    f"magnet:?xt=urn:btih:{hash_}",
                    "1080p",
                    "yts",
                    download_url=f"http://127.0.0.1:1/yts/torrent/download/{hash_.upper()}",
                )
            ],
            now=NOW,
        )
        await record_source_search(
            session, stored.id, directories=["yts"], searched_at=NOW, next_search_at=None
        )
    sources.file_batch = 1

    assert await sources.search_torrent_files_for_sources() == 0
    assert (await _movie(database, movie.tmdb_id)).next_source_search_at is not None
    assert await sources.search_sources_for_movies() == len(movie.sources) - 1
    sources.file_batch = len(movie.sources)
    assert await sources.search_torrent_files_for_sources() == len(movie.sources)

    refreshed = next(s for s in await _sources(database) if s.info_hash == hash_)
    assert refreshed.has_file
    assert refreshed.download_url is not None
    assert refreshed.download_url.startswith(sim.base_url)


# -- updateSourcesStats ------------------------------------------------------------------------


async def test_stats_are_scraped_for_five_due_sources(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """Up to 5 due sources get the tracker's counts and a next check 6-72 h away."""
    for movie in _with_sources(sim)[:3]:
        await _searched(database, sources, movie)
    swarms = {
        s.info_hash.hex(): s.swarm(SIM_NOW) for m in _with_sources(sim)[:3] for s in m.sources
    }

    assert await sources.sync_stats_for_sources() == 5

    checked = [s for s in await _sources(database) if s.last_stats_check is not None]
    assert len(checked) == 5
    for source in checked:
        assert (source.seeders, source.leechers) == (
            swarms[source.info_hash].complete,
            swarms[source.info_hash].incomplete,
        )
        assert 6 * 3600 <= _seconds_from(clock, source.next_stats_check_at) <= 72 * 3600


async def test_a_hash_no_tracker_knows_backs_off_alone(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """A source the trackers do not report waits ~1 h; the rest of its batch is updated."""
    # UDP trackers answer zeros for unknown hashes; the HTTP scrape leaves them out.
    sim.faults.udp_drop_rate = 1.0
    movie = _with_sources(sim)[0]
    await _searched(database, sources, movie)
    stored = await _movie(database, movie.tmdb_id)
    unknown = "ab" * 20
    async with database.session() as session:
        await upsert_sources(
            session,
            stored.id,
            [SourceData(unknown, f"magnet:?xt=urn:btih:{unknown}", "720p", "x")],
            now=NOW,
        )

    assert await sources.sync_stats_for_sources() == len(movie.sources)

    source = next(s for s in await _sources(database) if s.info_hash == unknown)
    assert source.stats_failures == 1
    assert source.last_stats_check is None
    assert 0.8 * 3600 <= _seconds_from(clock, source.next_stats_check_at) <= 1.2 * 3600


async def test_trackers_that_never_answer_back_off_the_batch(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """When no tracker answers, the whole batch waits ~15 min (each source on its own)."""
    await _searched(database, sources, _with_sources(sim)[0])
    sim.faults.only = ("/tracker",)
    sim.faults.hang_rate = 1.0
    sim.faults.udp_drop_rate = 1.0

    async with asyncio.timeout(10):
        assert await sources.sync_stats_for_sources() == 0

    failed = await _sources(database)
    assert all(s.stats_failures == 1 and s.last_stats_check is None for s in failed)
    assert all(
        0.8 * 900 <= _seconds_from(clock, s.next_stats_check_at) <= 1.2 * 900 for s in failed
    )
    assert sources.stats_pause.trips == 1
    assert await sources.sync_stats_for_sources() == 0  # nothing due any more


# -- resyncMovieSources ------------------------------------------------------------------------


async def _incomplete(database: Database, sim: Simulator) -> SimMovie:
    """Store a movie whose first source lacks its upload date and type (queued for a resync)."""
    movie = _with_sources(sim)[0]
    await _store(database, [movie])
    stored = await _movie(database, movie.tmdb_id)
    first = movie.sources[0]
    async with database.session() as session:
        await upsert_sources(
            session,
            stored.id,
            [SourceData(first.info_hash.hex(), "magnet:?", first.quality, "yts")],
            now=NOW,
        )
    return movie


async def test_resync_fills_missing_upload_date_and_type(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """A resync asks YTS again, fills date and type, and takes the movie off the queue."""
    movie = await _incomplete(database, sim)

    assert await sources.resync_movie_sources() == 1

    (source,) = await _sources(database)
    assert source.source_type == movie.sources[0].type
    assert source.uploaded_at == dt.datetime.fromtimestamp(movie.sources[0].uploaded_at, dt.UTC)
    assert (await _movie(database, movie.tmdb_id)).next_resync_at is None
    assert await sources.resync_movie_sources() == 0


async def test_a_movie_first_listed_with_gaps_is_resynced_complete(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """Searched while YTS lacked some dates or types, a movie is queued; one resync fills them."""
    catalogue = sim.catalogue
    complete = next(m for m in _with_sources(sim) if not catalogue.first_listing_gaps(m.tmdb_id))
    fresh = next(m for m in _with_sources(sim) if catalogue.first_listing_gaps(m.tmdb_id))
    gaps = catalogue.first_listing_gaps(fresh.tmdb_id)
    await _searched(database, sources, complete)
    await _searched(database, sources, fresh)
    assert (await _movie(database, complete.tmdb_id)).next_resync_at is None
    assert (await _movie(database, fresh.tmdb_id)).next_resync_at == clock.now
    stored = {s.info_hash: s for s in await _sources(database)}
    for source in fresh.sources:
        gap = gaps.get(source.info_hash, frozenset())
        row = stored[source.info_hash.hex()]
        assert (row.uploaded_at is None, row.source_type is None) == (
            "uploaded_at" in gap,
            "type" in gap,
        )

    assert await sources.resync_movie_sources() == 1

    stored = {s.info_hash: s for s in await _sources(database)}
    for source in fresh.sources:
        row = stored[source.info_hash.hex()]
        assert row.source_type == source.type
        assert row.uploaded_at == dt.datetime.fromtimestamp(source.uploaded_at, dt.UTC)
    resynced = await _movie(database, fresh.tmdb_id)
    assert (resynced.next_resync_at, resynced.resync_attempts) == (None, 1)
    assert await sources.resync_movie_sources() == 0


async def test_a_failing_resync_records_progress_and_gives_up(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """Every failed attempt counts and moves the movie back (1 h, 2 h, ...); after 5 it leaves."""
    movie = await _incomplete(database, sim)
    sim.faults.only = ("/yts",)
    sim.faults.error_rate = 1.0
    waits = []
    for attempt in range(1, 6):
        assert await sources.resync_movie_sources() == 0
        assert await sources.resync_movie_sources() == 0  # not picked again at once
        stored = await _movie(database, movie.tmdb_id)
        assert stored.resync_attempts == attempt
        if stored.next_resync_at is None:
            break
        waits.append(_seconds_from(clock, stored.next_resync_at))
        clock.advance(waits[-1] + 61)
    assert stored.next_resync_at is None
    assert stored.resync_attempts == 5
    assert len(waits) == 4
    for number, wait in enumerate(waits):
        assert 0.8 * 3600 * 2**number <= wait <= 1.2 * 3600 * 2**number


async def test_sources_count_stays_unique_per_movie(
    sources: SourceService, database: Database, sim: Simulator
) -> None:
    """Search, files, stats and resync together never duplicate a (movie, info hash) row."""
    for movie in _with_sources(sim)[:3]:
        await _searched(database, sources, movie)
    await sources.search_torrent_files_for_sources()
    await sources.sync_stats_for_sources()
    await sources.resync_movie_sources()
    async with database.session() as session:
        total = await session.scalar(select(func.count()).select_from(MovieSource))
        distinct = await session.scalar(
            select(func.count()).select_from(
                select(MovieSource.movie_id, MovieSource.info_hash).distinct().subquery()
            )
        )
    assert total == distinct == sum(len(m.sources) for m in _with_sources(sim)[:3])


async def test_an_idle_search_rechecks_after_idle_recheck_and_files_start_at_once(
    sources: SourceService, database: Database, sim: Simulator, clock: FakeClock
) -> None:
    """After an empty pick the search waits 1 s; sources it stores wake the file task at once."""
    assert await sources.search_sources_for_movies() == 0
    assert await sources.search_torrent_files_for_sources() == 0
    movie = _with_sources(sim)[0]
    await _store(database, [movie])

    assert await sources.search_sources_for_movies() == 0  # still within the idle wait
    clock.advance(1)
    assert await sources.search_sources_for_movies() == len(movie.sources)
    assert await sources.search_torrent_files_for_sources() == min(4, len(movie.sources))
