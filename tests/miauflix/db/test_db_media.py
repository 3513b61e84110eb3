"""Catalogue repositories: idempotent upserts, the season queue, lists, checkpoints, counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from miauflix.db import (
    Database,
    Episode,
    EpisodeData,
    GenreData,
    MediaList,
    MediaListData,
    Movie,
    MovieData,
    MovieSource,
    Season,
    SeasonData,
    ShowData,
    SourceData,
    TvShow,
    catalog_counts,
    get_movie_by_tmdb_id,
    get_show_by_tmdb_id,
    get_sync_state,
    mark_season_synced,
    media_list_movie_ids,
    media_list_show_ids,
    pick_season_to_sync,
    record_season_sync_failure,
    record_stats,
    replace_media_list,
    set_sync_state,
    store_source_file,
    stored_movie_ids,
    upsert_episodes,
    upsert_genres,
    upsert_movie,
    upsert_season,
    upsert_show,
    upsert_sources,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HASH = "0123456789abcdef0123456789abcdef01234567"


async def test_upsert_movie_twice_keeps_one_row_and_updates_fields(database: Database) -> None:
    """Upserting the same TMDB id again updates the row in place instead of duplicating it."""
    later = NOW + timedelta(hours=1)
    async with database.session() as session:
        await upsert_genres(session, [GenreData(28, "Action"), GenreData(18, "Drama")])
        first = await upsert_movie(
            session,
            MovieData(
                tmdb_id=550,
                title="Fight Club",
                imdb_id="tt0137523",
                release_date=date(1999, 10, 15),
                popularity=61.5,
                genre_ids=(18, 28),
            ),
            now=NOW,
        )
    async with database.session() as session:
        second = await upsert_movie(
            session,
            MovieData(tmdb_id=550, title="Fight Club (1999)", imdb_id="", popularity=70.0),
            now=later,
        )
    assert second == first
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Movie)) == 1
        movie = await get_movie_by_tmdb_id(session, 550)
        assert movie is not None
        assert movie.title == "Fight Club (1999)"
        assert movie.popularity == 70.0
        assert movie.imdb_id == "tt0137523"  # "" or None in the update keeps the stored id
        assert movie.release_date is None  # a given field is written as given
        assert movie.created_at == NOW
        assert movie.updated_at == later
        assert movie.next_source_search_at == NOW  # queued on insert, kept on update
        assert movie.searched_directories == []
        assert [genre.name for genre in await movie.awaitable_attrs.genres] == ["Drama", "Action"]


async def test_upsert_movie_genres_are_replaced_and_unknown_ids_ignored(
    database: Database,
) -> None:
    """Given genre ids replace the movie's genres; ids not stored as genres are skipped."""
    async with database.session() as session:
        await upsert_genres(session, [GenreData(28, "Action"), GenreData(35, "Comedy")])
        await upsert_genres(session, [GenreData(35, "Comedy!")])
        await upsert_movie(session, MovieData(tmdb_id=1, title="A", genre_ids=(28,)), now=NOW)
        await upsert_movie(session, MovieData(tmdb_id=1, title="A", genre_ids=(35, 99999)), now=NOW)
    async with database.session() as session:
        movie = await get_movie_by_tmdb_id(session, 1)
        assert movie is not None
        assert [(g.id, g.name) for g in await movie.awaitable_attrs.genres] == [(35, "Comedy!")]


async def test_imdb_id_claimed_by_a_second_movie_moves_to_it(database: Database) -> None:
    """Two TMDB movies with one IMDb id never fail the unique index: the last one keeps it."""
    async with database.session() as session:
        await upsert_movie(session, MovieData(tmdb_id=1, title="Old", imdb_id="tt1"), now=NOW)
        await upsert_movie(session, MovieData(tmdb_id=2, title="New", imdb_id="tt1"), now=NOW)
    async with database.session() as session:
        old = await get_movie_by_tmdb_id(session, 1)
        new = await get_movie_by_tmdb_id(session, 2)
        assert old is not None
        assert new is not None
        assert old.imdb_id is None
        assert new.imdb_id == "tt1"


async def test_stored_movie_ids_maps_only_stored_tmdb_ids(database: Database) -> None:
    """Only the TMDB ids already stored are returned, mapped to their row ids."""
    async with database.session() as session:
        first = await upsert_movie(session, MovieData(tmdb_id=10, title="A"), now=NOW)
        second = await upsert_movie(session, MovieData(tmdb_id=20, title="B"), now=NOW)
        found = await stored_movie_ids(session, [10, 20, 30, *range(1000, 1700)])
    assert found == {10: first, 20: second}


async def test_upsert_show_season_episodes_are_idempotent(database: Database) -> None:
    """Running the same show, season and episode upserts twice leaves one row of each."""
    episodes = [EpisodeData(1, name="Pilot"), EpisodeData(2, name="Two")]
    for run in range(2):
        async with database.session() as session:
            show_id = await upsert_show(
                session, ShowData(tmdb_id=1399, name="GoT", status="Ended"), now=NOW
            )
            season_id = await upsert_season(
                session, show_id, SeasonData(1, name="Season 1", episode_count=2), now=NOW
            )
            added = await upsert_episodes(session, season_id, episodes, now=NOW)
        assert added == (2 if run == 0 else 0)
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(TvShow)) == 1
        assert await session.scalar(select(func.count()).select_from(Season)) == 1
        assert await session.scalar(select(func.count()).select_from(Episode)) == 2


async def test_upsert_show_keeps_watching_flag(database: Database) -> None:
    """An update from the provider does not reset the user's `watching` flag."""
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=NOW)
        show = await session.get(TvShow, show_id)
        assert show is not None
        show.watching = True
    async with database.session() as session:
        await upsert_show(session, ShowData(tmdb_id=1, name="S2", imdb_id="tt9"), now=NOW)
    async with database.session() as session:
        show = await get_show_by_tmdb_id(session, 1)
        assert show is not None
        assert show.watching is True
        assert show.name == "S2"


async def test_upsert_episodes_adds_missing_and_updates_known(database: Database) -> None:
    """Only missing episodes count as new; known ones get the new names."""
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=NOW)
        season_id = await upsert_season(session, show_id, SeasonData(1), now=NOW)
        assert await upsert_episodes(session, season_id, [EpisodeData(1, name="a")], now=NOW) == 1
        added = await upsert_episodes(
            session, season_id, [EpisodeData(1, name="A"), EpisodeData(2, name="B")], now=NOW
        )
        assert added == 1
        assert await upsert_episodes(session, season_id, [], now=NOW) == 0
    async with database.session() as session:
        names = (await session.scalars(select(Episode.name).order_by(Episode.episode_number))).all()
    assert names == ["A", "B"]


async def _show_with_seasons(database: Database, count: int) -> list[int]:
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=77, name="Show"), now=NOW)
        return [
            await upsert_season(
                session, show_id, SeasonData(number), now=NOW + timedelta(seconds=number)
            )
            for number in range(1, count + 1)
        ]


async def test_pick_season_takes_longest_due_and_skips_backoff(database: Database) -> None:
    """The season due the longest is picked; one backing off or synced is skipped."""
    first, second, third = await _show_with_seasons(database, 3)
    async with database.session() as session:
        picked = await pick_season_to_sync(session, now=NOW + timedelta(minutes=1))
        assert picked is not None
        assert picked.id == first
        assert picked.show.tmdb_id == 77  # loaded with the season
        failures = await record_season_sync_failure(
            session, first, next_attempt_at=NOW + timedelta(hours=1)
        )
        assert failures == 1
        await mark_season_synced(session, second, now=NOW)
    async with database.session() as session:
        picked = await pick_season_to_sync(session, now=NOW + timedelta(minutes=1))
        assert picked is not None
        assert picked.id == third
        await record_season_sync_failure(session, third, next_attempt_at=None)  # give up
        assert await pick_season_to_sync(session, now=NOW + timedelta(minutes=1)) is None
        picked = await pick_season_to_sync(session, now=NOW + timedelta(hours=2))
        assert picked is not None
        assert picked.id == first
        assert picked.sync_failures == 1


async def test_pick_season_finds_nothing_before_due(database: Database) -> None:
    """A season inserted at time T is not due before T."""
    await _show_with_seasons(database, 1)
    async with database.session() as session:
        assert await pick_season_to_sync(session, now=NOW - timedelta(seconds=1)) is None


async def test_synced_season_is_queued_again_when_episode_count_changes(
    database: Database,
) -> None:
    """A synced season whose announced episode count changed goes back on the queue."""
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=5, name="S"), now=NOW)
        season_id = await upsert_season(session, show_id, SeasonData(1, episode_count=8), now=NOW)
        await record_season_sync_failure(session, season_id, next_attempt_at=NOW)
        await mark_season_synced(session, season_id, now=NOW)
    later = NOW + timedelta(days=7)
    async with database.session() as session:
        await upsert_season(session, show_id, SeasonData(1, episode_count=8), now=later)
        assert await pick_season_to_sync(session, now=later) is None
        await upsert_season(session, show_id, SeasonData(1, episode_count=9), now=later)
        picked = await pick_season_to_sync(session, now=later)
        assert picked is not None
        assert picked.id == season_id
        assert picked.synced is False
        assert picked.sync_failures == 0


async def test_upsert_season_keeps_stored_details_an_update_leaves_missing(
    database: Database,
) -> None:
    """An update without TMDB id, overview, poster or air date keeps them, and stays synced."""
    stored = SeasonData(
        1,
        tmdb_id=3624,
        name="Season 1",
        overview="Winter is coming.",
        air_date=date(2011, 4, 17),
        episode_count=10,
        poster_url="https://image.example/season1.jpg",
    )
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=5, name="S"), now=NOW)
        season_id = await upsert_season(session, show_id, stored, now=NOW)
        await mark_season_synced(session, season_id, now=NOW)
    later = NOW + timedelta(days=1)
    async with database.session() as session:
        await upsert_season(
            session, show_id, SeasonData(1, name="Book One", episode_count=10), now=later
        )
        assert await pick_season_to_sync(session, now=later) is None
    async with database.session() as session:
        season = await session.get(Season, season_id)
    assert season is not None
    assert season.tmdb_id == 3624
    assert season.name == "Book One"
    assert season.overview == "Winter is coming."
    assert season.air_date == date(2011, 4, 17)
    assert season.episode_count == 10
    assert season.poster_url == "https://image.example/season1.jpg"
    assert season.synced
    assert season.updated_at == later


async def test_season_updates_with_unknown_id_raise_lookup_error(database: Database) -> None:
    """Marking or failing a season that is not stored names the id."""
    async with database.session() as session:
        with pytest.raises(LookupError, match="season_id 404"):
            await mark_season_synced(session, 404, now=NOW)
        with pytest.raises(LookupError, match="season_id 404"):
            await record_season_sync_failure(session, 404, next_attempt_at=None)


async def _movies(database: Database, count: int) -> list[int]:
    async with database.session() as session:
        return [
            await upsert_movie(session, MovieData(tmdb_id=100 + n, title=f"M{n}"), now=NOW)
            for n in range(count)
        ]


async def test_replace_media_list_sets_order_and_replaces_content(database: Database) -> None:
    """A list holds exactly the given ids in order (repeats dropped), replaced on each run."""
    movies = await _movies(database, 4)
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=NOW)
        list_id = await replace_media_list(
            session,
            MediaListData("popular-movies", "Popular"),
            movie_ids=[movies[2], movies[0], movies[2]],
            show_ids=[show_id],
            now=NOW,
        )
    async with database.session() as session:
        assert await media_list_movie_ids(session, "popular-movies") == [movies[2], movies[0]]
        assert await media_list_show_ids(session, "popular-movies") == [show_id]
        again = await replace_media_list(
            session,
            MediaListData("popular-movies", "Popular movies", "TMDB"),
            movie_ids=[movies[3], movies[1]],
            now=NOW,
        )
    assert again == list_id
    async with database.session() as session:
        assert await media_list_movie_ids(session, "popular-movies") == [movies[3], movies[1]]
        assert await media_list_show_ids(session, "popular-movies") == []
        media_list = await session.get(MediaList, list_id)
        assert media_list is not None
        assert media_list.name == "Popular movies"
        assert await media_list_movie_ids(session, "unknown") == []


async def test_failed_list_replacement_leaves_old_content_intact(database: Database) -> None:
    """A replacement failing mid-way (an unknown movie id) keeps the old content and labels."""
    movies = await _movies(database, 3)
    async with database.session() as session:
        await replace_media_list(
            session, MediaListData("top", "Top"), movie_ids=movies[:2], now=NOW
        )
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            await replace_media_list(
                session,
                MediaListData("top", "Renamed"),
                movie_ids=[movies[2], 999_999],
                now=NOW,
            )
        # The savepoint rolled back; the session's transaction is still usable.
        assert await media_list_movie_ids(session, "top") == movies[:2]
        await set_sync_state(session, "after-failure", NOW)
    async with database.session() as session:
        assert await media_list_movie_ids(session, "top") == movies[:2]
        name = await session.scalar(select(MediaList.name).where(MediaList.slug == "top"))
        assert name == "Top"
        assert await get_sync_state(session, "after-failure") == NOW


async def test_sync_state_get_and_set(database: Database) -> None:
    """A checkpoint is None until set, then holds the last value written."""
    async with database.session() as session:
        assert await get_sync_state(session, "movie_changes") is None
        await set_sync_state(session, "movie_changes", NOW)
        await set_sync_state(session, "movie_changes", NOW + timedelta(days=1))
        await set_sync_state(session, "other", NOW)
    async with database.session() as session:
        assert await get_sync_state(session, "movie_changes") == NOW + timedelta(days=1)
        with pytest.raises(ValueError, match="name must be a non-empty string, got ''"):
            await set_sync_state(session, "", NOW)


async def test_catalog_counts_count_what_was_built(database: Database) -> None:
    """Each count reflects the rows, synced seasons, stored files and checked sources."""
    async with database.session() as session:
        assert (await catalog_counts(session)).to_dict() == dict.fromkeys(
            (
                "lists",
                "movies",
                "shows",
                "seasons",
                "synced_seasons",
                "sources",
                "sources_with_file",
                "sources_with_stats",
            ),
            0,
        )
    movies = await _movies(database, 2)
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=NOW)
        seasons = [await upsert_season(session, show_id, SeasonData(n), now=NOW) for n in (1, 2)]
        await mark_season_synced(session, seasons[0], now=NOW)
        await replace_media_list(session, MediaListData("l", "L"), movie_ids=movies, now=NOW)
        sources = [SourceData(HASH[:-1] + str(n), "magnet:?", "1080p", "yts") for n in range(3)]
        await upsert_sources(session, movies[0], sources, now=NOW)
    async with database.session() as session:
        ids = (await session.scalars(select(MovieSource.id).order_by(MovieSource.id))).all()
        await store_source_file(session, ids[0], b"d8:announce0:e", now=NOW)
        await record_stats(
            session, ids[1], seeders=5, leechers=1, checked_at=NOW, next_check_at=NOW
        )
        await record_stats(
            session, ids[2], seeders=5, leechers=1, checked_at=NOW, next_check_at=NOW
        )
        counts = await catalog_counts(session)
    assert counts.to_dict() == {
        "lists": 1,
        "movies": 2,
        "shows": 1,
        "seasons": 2,
        "synced_seasons": 1,
        "sources": 3,
        "sources_with_file": 1,
        "sources_with_stats": 2,
    }
