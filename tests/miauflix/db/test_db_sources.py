"""Source repositories: the search, resync, file and stats queues and the source upsert."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from miauflix.db import (
    Database,
    Movie,
    MovieData,
    MovieSource,
    SourceData,
    get_source_file,
    list_movie_sources,
    pick_movie_for_resync,
    pick_movie_for_source_search,
    pick_sources_for_stats,
    pick_sources_missing_file,
    queue_source_search,
    record_file_failure,
    record_resync,
    record_source_search,
    record_source_search_failure,
    record_stats,
    record_stats_failure,
    store_source_file,
    upsert_movie,
    upsert_sources,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


def info_hash(n: int) -> str:
    """A valid, distinct info hash for each `n`."""
    return f"{n:040x}"


def source(
    n: int,
    quality: str = "1080p",
    seeders: int | None = 10,
    *,
    complete: bool = True,
) -> SourceData:
    """A source from the "yts" directory; `complete=False` leaves date and type unknown."""
    return SourceData(
        info_hash=info_hash(n),
        magnet_link=f"magnet:?xt=urn:btih:{info_hash(n)}",
        quality=quality,
        source_directory="yts",
        download_url=f"http://127.0.0.1:1/torrent/{n}",
        seeders=seeders,
        leechers=1,
        source_type="web" if complete else None,
        uploaded_at=NOW - timedelta(days=30) if complete else None,
    )


async def add_movie(
    database: Database, tmdb_id: int, popularity: float, imdb_id: str | None = "auto"
) -> int:
    """Store a movie (IMDb id derived from the TMDB id unless given) and return its id."""
    async with database.session() as session:
        return await upsert_movie(
            session,
            MovieData(
                tmdb_id=tmdb_id,
                title=f"Movie {tmdb_id}",
                imdb_id=f"tt{tmdb_id:07d}" if imdb_id == "auto" else imdb_id,
                popularity=popularity,
            ),
            now=NOW,
        )


async def add_sources(database: Database, movie_id: int, *sources: SourceData) -> None:
    """Store sources of a movie."""
    async with database.session() as session:
        await upsert_sources(session, movie_id, sources, now=NOW)


async def source_id(database: Database, n: int) -> int:
    """The row id of the source with `info_hash(n)`."""
    async with database.session() as session:
        found = await session.scalar(
            select(MovieSource.id).where(MovieSource.info_hash == info_hash(n))
        )
    assert found is not None
    return found


# -- source search -------------------------------------------------------------------------


async def test_source_search_picks_most_popular_due_movie_with_imdb_id(
    database: Database,
) -> None:
    """The most popular due movie with an IMDb id is picked; one without an IMDb id never is."""
    await add_movie(database, 1, popularity=10.0)
    popular = await add_movie(database, 2, popularity=50.0)
    await add_movie(database, 3, popularity=99.0, imdb_id=None)
    async with database.session() as session:
        picked = await pick_movie_for_source_search(session, now=LATER)
    assert picked is not None
    assert picked.id == popular


async def test_source_search_skips_movies_not_yet_due(database: Database) -> None:
    """A movie is not picked before its next search time."""
    await add_movie(database, 1, popularity=10.0)
    async with database.session() as session:
        assert await pick_movie_for_source_search(session, now=NOW - timedelta(seconds=1)) is None


async def test_source_search_found_takes_movie_off_queue(database: Database) -> None:
    """After a search that found sources the movie is never picked again."""
    movie_id = await add_movie(database, 1, popularity=10.0)
    async with database.session() as session:
        await record_source_search(
            session, movie_id, directories=["yts"], searched_at=LATER, next_search_at=None
        )
    async with database.session() as session:
        assert await pick_movie_for_source_search(session, now=NOW + timedelta(days=365)) is None
        movie = await session.get(Movie, movie_id)
        assert movie is not None
        assert movie.last_source_search_at == LATER
        assert movie.searched_directories == ["yts"]


async def test_source_search_nothing_found_waits_then_next_movie_goes_first(
    database: Database,
) -> None:
    """A movie with nothing found waits until its next search; the next movie is picked now."""
    first = await add_movie(database, 1, popularity=90.0)
    second = await add_movie(database, 2, popularity=10.0)
    retry_at = LATER + timedelta(minutes=60)
    async with database.session() as session:
        await record_source_search(
            session,
            first,
            directories=["yts", "other", "yts"],
            searched_at=LATER,
            next_search_at=retry_at,
        )
        await record_source_search(
            session,
            first,
            directories=["other", "third"],
            searched_at=LATER,
            next_search_at=retry_at,
        )
    async with database.session() as session:
        picked = await pick_movie_for_source_search(session, now=LATER)
        assert picked is not None
        assert picked.id == second
        assert picked.searched_directories == []
        picked = await pick_movie_for_source_search(session, now=retry_at)
        assert picked is not None
        assert picked.id == first
        assert picked.searched_directories == ["yts", "other", "third"]


async def test_source_search_failures_count_and_back_off(database: Database) -> None:
    """Each failure counts; the movie waits for its backoff; a success resets the count."""
    movie_id = await add_movie(database, 1, popularity=10.0)
    async with database.session() as session:
        assert (
            await record_source_search_failure(
                session, movie_id, next_search_at=LATER + timedelta(seconds=30)
            )
            == 1
        )
        assert (
            await record_source_search_failure(
                session, movie_id, next_search_at=LATER + timedelta(seconds=60)
            )
            == 2
        )
    async with database.session() as session:
        assert (
            await pick_movie_for_source_search(session, now=LATER + timedelta(seconds=59)) is None
        )
        picked = await pick_movie_for_source_search(session, now=LATER + timedelta(seconds=60))
        assert picked is not None
        assert picked.source_search_failures == 2
        await record_source_search(
            session, movie_id, directories=["yts"], searched_at=LATER, next_search_at=None
        )
        movie = await session.get(Movie, movie_id)
        assert movie is not None
        assert movie.source_search_failures == 0
        with pytest.raises(LookupError, match="movie_id 404"):
            await record_source_search_failure(session, 404, next_search_at=None)
        with pytest.raises(LookupError, match="movie_id 404"):
            await record_source_search(
                session, 404, directories=[], searched_at=LATER, next_search_at=None
            )


# -- upsert --------------------------------------------------------------------------------


async def test_upsert_sources_is_idempotent_and_normalizes_hashes(database: Database) -> None:
    """Re-running an upsert adds nothing; an upper-case hash is the same source."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    upper = SourceData(("ab" * 20).upper(), "magnet:?", "720p", "yts")
    async with database.session() as session:
        assert await upsert_sources(session, movie_id, [source(1), upper, source(1)], now=NOW) == 2
        assert await upsert_sources(session, movie_id, [source(1), upper], now=NOW) == 0
        lower = SourceData("ab" * 20, "magnet:?", "720p", "yts")
        assert await upsert_sources(session, movie_id, [lower], now=NOW) == 0
        assert await upsert_sources(session, movie_id, [], now=NOW) == 0
        count = await session.scalar(select(func.count()).select_from(MovieSource))
        hashes = set((await session.scalars(select(MovieSource.info_hash))).all())
    assert count == 2
    assert hashes == {info_hash(1), "ab" * 20}


@pytest.mark.parametrize("bad", ["", "abc", "g" * 40, "a" * 41, "a" * 39])
async def test_upsert_sources_rejects_bad_info_hash(database: Database, bad: str) -> None:
    """A hash that is not 40 hex digits raises ValueError showing it, and nothing is stored."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    async with database.session() as session:
        with pytest.raises(ValueError, match=f"info_hash must be 40 hex digits, got {bad!r}"):
            await upsert_sources(
                session, movie_id, [source(1), SourceData(bad, "m", "720p", "yts")], now=NOW
            )
        assert await session.scalar(select(func.count()).select_from(MovieSource)) == 0


async def test_same_hash_may_belong_to_two_movies(database: Database) -> None:
    """The info hash is unique per movie, not globally."""
    first = await add_movie(database, 1, popularity=1.0)
    second = await add_movie(database, 2, popularity=1.0)
    await add_sources(database, first, source(1))
    await add_sources(database, second, source(1))
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(MovieSource)) == 2


async def test_upsert_fills_missing_fields_and_keeps_tracker_stats(database: Database) -> None:
    """A second upsert fills unknown date/type, keeps known values and tracker counts."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1, seeders=3, complete=False))
    sid = await source_id(database, 1)
    async with database.session() as session:
        await record_stats(
            session, sid, seeders=42, leechers=7, checked_at=NOW, next_check_at=LATER
        )
        bare = SourceData(info_hash(1), "magnet:new", "1080p", "yts", seeders=1)
        await upsert_sources(session, movie_id, [source(1)], now=LATER)
        await upsert_sources(session, movie_id, [bare], now=LATER)
    async with database.session() as session:
        stored = await session.get(MovieSource, sid)
    assert stored is not None
    assert stored.magnet_link == "magnet:new"
    assert stored.source_type == "web"
    assert stored.uploaded_at == NOW - timedelta(days=30)
    assert stored.download_url == "http://127.0.0.1:1/torrent/1"
    assert (stored.seeders, stored.leechers) == (42, 7)


# -- resync --------------------------------------------------------------------------------


async def test_incomplete_sources_queue_movie_for_resync(database: Database) -> None:
    """A movie gets on the resync queue only when a new source lacks its date or type."""
    complete = await add_movie(database, 1, popularity=1.0)
    incomplete = await add_movie(database, 2, popularity=1.0)
    await add_sources(database, complete, source(1))
    await add_sources(database, incomplete, source(2), source(3, complete=False))
    async with database.session() as session:
        picked = await pick_movie_for_resync(session, now=NOW)
        assert picked is not None
        assert picked.id == incomplete
        assert await pick_movie_for_resync(session, now=NOW - timedelta(seconds=1)) is None


async def test_resync_records_progress_so_one_movie_is_not_picked_forever(
    database: Database,
) -> None:
    """An unsuccessful resync moves the movie back in the queue; the others get their turn."""
    first = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, first, source(1, complete=False))
    second = await add_movie(database, 2, popularity=1.0)
    async with database.session() as session:
        await upsert_sources(session, second, [source(2, complete=False)], now=LATER)
    async with database.session() as session:
        picked = await pick_movie_for_resync(session, now=LATER)
        assert picked is not None
        assert picked.id == first
        still = await record_resync(session, first, next_attempt_at=LATER + timedelta(hours=1))
        assert still is True
    async with database.session() as session:
        picked = await pick_movie_for_resync(session, now=LATER)
        assert picked is not None
        assert picked.id == second
        await record_resync(session, second, next_attempt_at=None)  # give up
        assert await pick_movie_for_resync(session, now=LATER) is None
        movie = await session.get(Movie, first)
        assert movie is not None
        assert movie.resync_attempts == 1


async def test_resync_that_filled_everything_leaves_the_queue(database: Database) -> None:
    """Once no source lacks date or type, the movie leaves the queue whatever the retry time."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1, complete=False))
    async with database.session() as session:
        await upsert_sources(session, movie_id, [source(1)], now=LATER)
        still = await record_resync(session, movie_id, next_attempt_at=LATER)
        assert still is False
        assert await pick_movie_for_resync(session, now=NOW + timedelta(days=1)) is None
        with pytest.raises(LookupError, match="movie_id 404"):
            await record_resync(session, 404, next_attempt_at=None)


# -- .torrent files ------------------------------------------------------------------------


async def test_missing_files_round_robin_best_first_least_complete_first(
    database: Database,
) -> None:
    """Each movie's best source comes first, one per movie per round, emptiest movies first."""
    a = await add_movie(database, 1, popularity=1.0)
    b = await add_movie(database, 2, popularity=1.0)
    c = await add_movie(database, 3, popularity=1.0)
    await add_sources(
        database,
        a,
        source(10, "720p", seeders=500),
        source(11, "2160p", seeders=5),
        source(12, "1080p", seeders=50),
        source(13, "3D", seeders=900),
    )
    await add_sources(database, b, source(20, "1080p", seeders=1), source(21, "1080p", seeders=9))
    await add_sources(database, c, source(30, "720p"), source(31, "720p"))
    async with database.session() as session:
        # Movie c already has a file, so it is the most complete and goes last in each round.
        await store_source_file(session, await source_id(database, 31), b"torrent", now=NOW)
        batch = await pick_sources_missing_file(session, now=LATER, limit=10)
    assert [s.info_hash for s in batch] == [info_hash(n) for n in (11, 21, 30, 12, 20, 10, 13)]
    async with database.session() as session:
        batch = await pick_sources_missing_file(session, now=LATER, limit=2)
    assert [s.info_hash for s in batch] == [info_hash(11), info_hash(21)]


async def test_missing_files_skip_backoff_and_stored(database: Database) -> None:
    """A source backing off or with its file stored is not picked; the next one is."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1, "2160p"), source(2, "1080p"), source(3))
    best, second = await source_id(database, 1), await source_id(database, 2)
    async with database.session() as session:
        failures = await record_file_failure(
            session, best, next_attempt_at=LATER + timedelta(minutes=5)
        )
        assert failures == 1
        await store_source_file(session, second, b"d4:infod4:name1:xee", now=LATER)
    async with database.session() as session:
        batch = await pick_sources_missing_file(session, now=LATER, limit=5)
        assert [s.info_hash for s in batch] == [info_hash(3)]
        batch = await pick_sources_missing_file(session, now=LATER + timedelta(minutes=5), limit=5)
        assert [s.info_hash for s in batch] == [info_hash(1), info_hash(3)]
        assert batch[0].file_failures == 1
        assert await get_source_file(session, second) == b"d4:infod4:name1:xee"
        assert await get_source_file(session, best) is None
        stored = await session.get(MovieSource, second)
        assert stored is not None
        assert stored.has_file is True
        assert stored.next_file_attempt_at is None


async def test_file_giving_up_and_bad_arguments(database: Database) -> None:
    """A source given up is never picked again; bad limits, empty data and unknown ids raise."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1))
    sid = await source_id(database, 1)
    async with database.session() as session:
        await record_file_failure(session, sid, next_attempt_at=None)
        assert (
            await pick_sources_missing_file(session, now=NOW + timedelta(days=999), limit=5) == []
        )
        with pytest.raises(ValueError, match="limit must be an integer >= 1, got 0"):
            await pick_sources_missing_file(session, now=NOW, limit=0)
        with pytest.raises(ValueError, match="data must be the non-empty"):
            await store_source_file(session, sid, b"", now=NOW)
        with pytest.raises(LookupError, match="source_id 404"):
            await store_source_file(session, 404, b"x", now=NOW)
        with pytest.raises(LookupError, match="source_id 404"):
            await record_file_failure(session, 404, next_attempt_at=None)


async def test_a_new_download_url_requeues_a_given_up_file(database: Database) -> None:
    """A source given up whose directory now gives another URL is due again, failures reset."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1), source(2))
    ids = [await source_id(database, n) for n in (1, 2)]
    async with database.session() as session:
        for sid in ids:
            await record_file_failure(session, sid, next_attempt_at=None)
    moved = dataclasses.replace(source(1), download_url="http://127.0.0.1:2/torrent/1")
    async with database.session() as session:
        await upsert_sources(session, movie_id, [moved, source(2)], now=LATER)
    async with database.session() as session:
        due = await pick_sources_missing_file(session, now=LATER, limit=5)
    assert [(s.info_hash, s.download_url, s.file_failures) for s in due] == [
        (info_hash(1), "http://127.0.0.1:2/torrent/1", 0)
    ]
    assert due[0].next_file_attempt_at == LATER


async def test_a_new_download_url_leaves_a_stored_file_alone(database: Database) -> None:
    """A source that has its file only takes the new URL: it is not queued for a file again."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1))
    sid = await source_id(database, 1)
    async with database.session() as session:
        await store_source_file(session, sid, b"d4:infoe", now=NOW)
    moved = dataclasses.replace(source(1), download_url="http://127.0.0.1:2/torrent/1")
    async with database.session() as session:
        await upsert_sources(session, movie_id, [moved], now=LATER)
        stored = await session.get(MovieSource, sid)
        assert stored is not None
        assert (stored.download_url, stored.has_file) == (moved.download_url, True)
        assert stored.next_file_attempt_at is None


async def test_queue_source_search_queues_a_searched_movie_once(database: Database) -> None:
    """A movie out of the search queue is queued at the given time; a queued one keeps its time."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    async with database.session() as session:
        await record_source_search(
            session, movie_id, directories=["yts"], searched_at=NOW, next_search_at=None
        )
        assert await queue_source_search(session, movie_id, at=LATER)
        assert not await queue_source_search(session, movie_id, at=LATER + timedelta(days=1))
    async with database.session() as session:
        assert await pick_movie_for_source_search(session, now=NOW) is None
        picked = await pick_movie_for_source_search(session, now=LATER)
    assert picked is not None
    assert picked.id == movie_id


# -- stats ---------------------------------------------------------------------------------


async def test_stats_picks_up_to_limit_longest_due_first(database: Database) -> None:
    """Up to `limit` due sources are picked, longest due first; checked ones wait."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, *(source(n) for n in range(1, 8)))
    ids = [await source_id(database, n) for n in range(1, 8)]
    async with database.session() as session:
        batch = await pick_sources_for_stats(session, now=LATER, limit=5)
        assert [s.id for s in batch] == ids[:5]
        for position, sid in enumerate(ids[:5]):
            await record_stats(
                session,
                sid,
                seeders=position,
                leechers=0,
                checked_at=LATER,
                next_check_at=LATER + timedelta(hours=6, minutes=position),
            )
    async with database.session() as session:
        batch = await pick_sources_for_stats(session, now=LATER, limit=5)
        assert [s.id for s in batch] == ids[5:]
        batch = await pick_sources_for_stats(
            session, now=LATER + timedelta(hours=6, minutes=1), limit=5
        )
        assert [s.id for s in batch] == [*ids[5:], ids[0], ids[1]]
        assert batch[2].last_stats_check == LATER


async def test_stats_failure_backs_off_without_blocking_others(database: Database) -> None:
    """A source whose tracker never answers waits for its retry; the others are picked."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(database, movie_id, source(1), source(2))
    first, second = await source_id(database, 1), await source_id(database, 2)
    async with database.session() as session:
        assert await record_stats_failure(session, first, next_check_at=LATER) == 1
        assert (
            await record_stats_failure(session, first, next_check_at=LATER + timedelta(hours=1))
            == 2
        )
    async with database.session() as session:
        batch = await pick_sources_for_stats(session, now=LATER, limit=1)
        assert [s.id for s in batch] == [second]
        with pytest.raises(ValueError, match="seeders must be an integer >= 0, got -1"):
            await record_stats(
                session, second, seeders=-1, leechers=0, checked_at=NOW, next_check_at=NOW
            )
        with pytest.raises(LookupError, match="source_id 404"):
            await record_stats_failure(session, 404, next_check_at=NOW)


async def test_list_movie_sources_best_first(database: Database) -> None:
    """A movie's sources are listed by quality, then seeders."""
    movie_id = await add_movie(database, 1, popularity=1.0)
    await add_sources(
        database,
        movie_id,
        source(1, "720p", 100),
        source(2, "1080p", 1),
        source(3, "1080p", None),
        source(4, "1080p", 50),
    )
    async with database.session() as session:
        listed = await list_movie_sources(session, movie_id)
    assert [s.info_hash for s in listed] == [info_hash(n) for n in (4, 2, 3, 1)]
