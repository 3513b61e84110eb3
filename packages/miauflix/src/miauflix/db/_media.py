"""Repositories of the media catalogue: genres, movies, shows, seasons and episodes.

Every function takes an `AsyncSession` already inside a transaction (`Database.session()`)
and never commits. Times are passed in (`now`), never read here, and must be aware.
Upserts are keyed by TMDB ids and are idempotent: running one twice leaves one row.
They write with `INSERT ... ON CONFLICT`, so objects of the same rows already loaded in the
session are not refreshed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, false, func, literal, select, update
from sqlalchemy import insert as insert_rows
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from miauflix.db._models import (
    Episode,
    Genre,
    GenreTranslation,
    Movie,
    MovieTranslation,
    Season,
    TvShow,
    movie_genre,
    show_genre,
)
from miauflix.db._records import EpisodeData, GenreData, MovieData, SeasonData, ShowData
from miauflix.db._types import UtcDateTime, require_aware
from miauflix.db._upsert import dialect_insert, in_chunks, returned_count

__all__ = [
    "clear_movie_details_retry",
    "get_movie_by_tmdb_id",
    "get_show_by_tmdb_id",
    "mark_season_synced",
    "movie_details_failures",
    "movies_due_for_details",
    "pick_season_to_sync",
    "record_movie_details_failure",
    "record_season_sync_failure",
    "stored_movie_ids",
    "upsert_episodes",
    "upsert_genre_translations",
    "upsert_genres",
    "upsert_movie",
    "upsert_season",
    "upsert_show",
]


# Built once: the season pick runs every second.
_SEASON_PICK = (
    select(Season)
    .options(joinedload(Season.show, innerjoin=True))
    .where(
        Season.next_sync_attempt_at <= bindparam("now", type_=UtcDateTime()),
        Season.synced == false(),
    )
    .order_by(Season.next_sync_attempt_at, Season.id)
    .limit(1)
)


async def upsert_genres(session: AsyncSession, genres: Iterable[GenreData]) -> None:
    """Insert or rename genres by TMDB id.

    Args:
        session: The session.
        genres: Genres; a repeated id keeps its last name.
    """
    by_id = {genre.tmdb_id: genre.name for genre in genres}
    if not by_id:
        return
    insert = dialect_insert(session, Genre)
    statement = insert.values(
        [{"id": genre_id, "name": name} for genre_id, name in by_id.items()]
    ).on_conflict_do_update(index_elements=[Genre.id], set_={"name": insert.excluded.name})
    await session.execute(statement)


async def upsert_genre_translations(
    session: AsyncSession, language: str, genres: Iterable[GenreData]
) -> None:
    """Insert or rename the names of genres in `language` (ISO 639-1).

    Only genres already stored (`upsert_genres`) get a name; others are skipped.
    """
    stored = set((await session.scalars(select(Genre.id))).all())
    rows = {g.tmdb_id: g.name for g in genres if g.tmdb_id in stored and g.name}
    if not rows:
        return
    insert = dialect_insert(session, GenreTranslation)
    statement = insert.values(
        [{"genre_id": genre, "language": language, "name": name} for genre, name in rows.items()]
    ).on_conflict_do_update(
        index_elements=[GenreTranslation.genre_id, GenreTranslation.language],
        set_={"name": insert.excluded.name},
    )
    await session.execute(statement)


async def upsert_movie(session: AsyncSession, data: MovieData, *, now: datetime) -> int:
    """Insert or update a movie by TMDB id and return its row id.

    A new movie is queued for a source search at once (`next_source_search_at = now`).
    An update keeps the queues, `imdb_id` when `data.imdb_id` is None or "", and the genres when
    `data.genre_ids` is None. TMDB sometimes gives one IMDb id to two movies; the last one
    written keeps it and the other's is cleared, so the unique index never fails the run.

    Args:
        session: The session.
        data: The movie.
        now: The current time (aware): `created_at`/`updated_at`.

    Returns:
        The movie's `id`.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    imdb_id = data.imdb_id or None  # TMDB answers "" as often as null
    if imdb_id is not None:
        await session.execute(
            update(Movie)
            .where(Movie.imdb_id == imdb_id, Movie.tmdb_id != data.tmdb_id)
            .values(imdb_id=None, updated_at=now)
        )
    fields: dict[str, Any] = {
        "imdb_id": imdb_id,
        "title": data.title,
        "original_title": data.original_title,
        "overview": data.overview,
        "tagline": data.tagline,
        "release_date": data.release_date,
        "runtime": data.runtime,
        "popularity": data.popularity,
        "rating": data.rating,
        "vote_count": data.vote_count,
        "poster_url": data.poster_url,
        "backdrop_url": data.backdrop_url,
        "trailer_code": data.trailer_code,
        "logo_url": data.logo_url,
        "updated_at": now,
    }
    insert = dialect_insert(session, Movie)
    set_: dict[str, Any] = {name: insert.excluded[name] for name in fields}
    set_["imdb_id"] = func.coalesce(insert.excluded.imdb_id, Movie.imdb_id)
    set_["logo_url"] = func.coalesce(insert.excluded.logo_url, Movie.logo_url)
    statement = (
        insert.values(
            tmdb_id=data.tmdb_id,
            created_at=now,
            next_source_search_at=now,
            searched_directories=[],
            **fields,
        )
        .on_conflict_do_update(index_elements=[Movie.tmdb_id], set_=set_)
        .returning(Movie.id)
    )
    movie_id: int = (await session.execute(statement)).scalar_one()
    if data.genre_ids is not None:
        await _replace_genres(session, movie_genre, "movie_id", movie_id, data.genre_ids)
    if data.translations is not None:
        await session.execute(delete(MovieTranslation).where(MovieTranslation.movie_id == movie_id))
        rows = {t.language: t for t in data.translations}  # one per language: the last wins
        if rows:
            await session.execute(
                insert_rows(MovieTranslation),
                [
                    {
                        "movie_id": movie_id,
                        "language": t.language,
                        "title": t.title,
                        "overview": t.overview,
                        "tagline": t.tagline,
                    }
                    for t in rows.values()
                ],
            )
    return movie_id


async def upsert_show(session: AsyncSession, data: ShowData, *, now: datetime) -> int:
    """Insert or update a TV show by TMDB id and return its row id.

    An update keeps `watching`, `imdb_id` when `data.imdb_id` is None, and the genres when
    `data.genre_ids` is None.

    Args:
        session: The session.
        data: The show.
        now: The current time (aware).

    Returns:
        The show's `id`.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    fields: dict[str, Any] = {
        "imdb_id": data.imdb_id or None,
        "name": data.name,
        "original_name": data.original_name,
        "overview": data.overview,
        "first_air_date": data.first_air_date,
        "popularity": data.popularity,
        "rating": data.rating,
        "vote_count": data.vote_count,
        "status": data.status,
        "poster_url": data.poster_url,
        "backdrop_url": data.backdrop_url,
        "tagline": data.tagline,
        "type": data.type,
        "in_production": data.in_production,
        "episode_run_time": data.episode_run_time,
        "updated_at": now,
    }
    if data.tagline is None:
        fields["tagline"] = ""
    insert = dialect_insert(session, TvShow)
    set_: dict[str, Any] = {name: insert.excluded[name] for name in fields}
    set_["imdb_id"] = func.coalesce(insert.excluded.imdb_id, TvShow.imdb_id)
    # A list's show summary has none of these: keep what the show's details stored.
    for name in ("type", "in_production", "episode_run_time"):
        set_[name] = func.coalesce(insert.excluded[name], getattr(TvShow, name))
    if data.tagline is None:
        set_["tagline"] = TvShow.tagline
    statement = (
        insert.values(tmdb_id=data.tmdb_id, created_at=now, **fields)
        .on_conflict_do_update(index_elements=[TvShow.tmdb_id], set_=set_)
        .returning(TvShow.id)
    )
    show_id: int = (await session.execute(statement)).scalar_one()
    if data.genre_ids is not None:
        await _replace_genres(session, show_genre, "show_id", show_id, data.genre_ids)
    return show_id


async def upsert_season(
    session: AsyncSession, show_id: int, data: SeasonData, *, now: datetime
) -> int:
    """Insert or update a season by (show, number) and return its row id.

    A new season is queued for an episode sync at once. A synced season whose announced
    `episode_count` changed (new episodes aired) is queued again with its failures reset.
    An update keeps each stored value that `data` leaves missing (None, or "" for text):
    a show's details list seasons without their TMDB id, overview or poster, and must not
    erase what the season's own sync stored.

    Args:
        session: The session.
        show_id: The show's row id.
        data: The season.
        now: The current time (aware).

    Returns:
        The season's `id`.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    fields: dict[str, Any] = {
        "tmdb_id": data.tmdb_id,
        "name": data.name,
        "overview": data.overview,
        "air_date": data.air_date,
        "episode_count": data.episode_count,
        "poster_url": data.poster_url,
        "updated_at": now,
    }
    insert = dialect_insert(session, Season)
    excluded = insert.excluded
    grew = (
        Season.synced.is_(True)
        & excluded.episode_count.is_not(None)
        & excluded.episode_count.is_distinct_from(Season.episode_count)
    )
    set_: dict[str, Any] = {
        "tmdb_id": func.coalesce(excluded.tmdb_id, Season.tmdb_id),
        "name": func.coalesce(func.nullif(excluded.name, ""), Season.name),
        "overview": func.coalesce(func.nullif(excluded.overview, ""), Season.overview),
        "air_date": func.coalesce(excluded.air_date, Season.air_date),
        "episode_count": func.coalesce(excluded.episode_count, Season.episode_count),
        "poster_url": func.coalesce(func.nullif(excluded.poster_url, ""), Season.poster_url),
        "updated_at": excluded.updated_at,
    }
    set_["synced"] = case((grew, False), else_=Season.synced)
    set_["next_sync_attempt_at"] = case((grew, now), else_=Season.next_sync_attempt_at)
    set_["sync_failures"] = case((grew, 0), else_=Season.sync_failures)
    statement = (
        insert.values(
            show_id=show_id,
            season_number=data.season_number,
            created_at=now,
            synced=False,
            next_sync_attempt_at=now,
            **fields,
        )
        .on_conflict_do_update(index_elements=[Season.show_id, Season.season_number], set_=set_)
        .returning(Season.id)
    )
    season_id: int = (await session.execute(statement)).scalar_one()
    return season_id


async def upsert_episodes(
    session: AsyncSession, season_id: int, episodes: Iterable[EpisodeData], *, now: datetime
) -> int:
    """Insert missing episodes of a season and update the others, by episode number.

    Args:
        session: The session.
        season_id: The season's row id.
        episodes: The season's episodes; a repeated number keeps the last one.
        now: The current time (aware).

    Returns:
        How many episodes were new.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    by_number = {episode.episode_number: episode for episode in episodes}
    if not by_number:
        return 0
    existing = set(
        (
            await session.scalars(
                select(Episode.episode_number).where(Episode.season_id == season_id)
            )
        ).all()
    )
    rows = [
        {
            "season_id": season_id,
            "episode_number": number,
            "tmdb_id": episode.tmdb_id,
            "name": episode.name,
            "overview": episode.overview,
            "air_date": episode.air_date,
            "runtime": episode.runtime,
            "still_url": episode.still_url,
            "created_at": now,
            "updated_at": now,
        }
        for number, episode in sorted(by_number.items())
    ]
    insert = dialect_insert(session, Episode)
    updated = ("tmdb_id", "name", "overview", "air_date", "runtime", "still_url", "updated_at")
    await session.execute(
        insert.values(rows).on_conflict_do_update(
            index_elements=[Episode.season_id, Episode.episode_number],
            set_={name: insert.excluded[name] for name in updated},
        )
    )
    return len(by_number.keys() - existing)


async def pick_season_to_sync(session: AsyncSession, *, now: datetime) -> Season | None:
    """Return the season whose episode sync has been due the longest, with its `show` loaded.

    One index range scan on `ix_season_next_sync_attempt_at`; seasons synced, given up
    (`next_sync_attempt_at` NULL) or backing off (in the future) are not considered.

    Args:
        session: The session.
        now: The current time (aware).

    Returns:
        The season, or None when no season is due.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    return (await session.scalars(_SEASON_PICK, {"now": now})).first()


async def mark_season_synced(session: AsyncSession, season_id: int, *, now: datetime) -> None:
    """Mark a season synced and take it off the sync queue.

    Args:
        session: The session.
        season_id: The season's row id.
        now: The current time (aware): `synced_at`.

    Raises:
        ValueError: `now` is naive.
        LookupError: No season has this id.
    """
    now = require_aware("now", now)
    result = await session.execute(
        update(Season)
        .where(Season.id == season_id)
        .values(
            synced=True, synced_at=now, next_sync_attempt_at=None, sync_failures=0, updated_at=now
        )
        .returning(Season.id)
    )
    if result.scalar_one_or_none() is None:
        raise LookupError(f"season_id {season_id!r} is not stored")


async def record_season_sync_failure(
    session: AsyncSession, season_id: int, *, next_attempt_at: datetime | None
) -> int:
    """Count a failed sync of a season and set its next attempt.

    Args:
        session: The session.
        season_id: The season's row id.
        next_attempt_at: When to try again (aware); None gives up on the season.

    Returns:
        The season's consecutive failures, this one included.

    Raises:
        ValueError: `next_attempt_at` is naive.
        LookupError: No season has this id.
    """
    if next_attempt_at is not None:
        next_attempt_at = require_aware("next_attempt_at", next_attempt_at)
    result = await session.execute(
        update(Season)
        .where(Season.id == season_id)
        .values(sync_failures=Season.sync_failures + 1, next_sync_attempt_at=next_attempt_at)
        .returning(Season.sync_failures)
    )
    return returned_count(result.scalar_one_or_none(), "season_id", season_id)


async def record_movie_details_failure(
    session: AsyncSession, tmdb_id: int, *, next_attempt_at: datetime | None
) -> int:
    """Count a failed details fetch of a changed movie and set its next attempt.

    Args:
        session: The session.
        tmdb_id: The movie's TMDB id.
        next_attempt_at: When `syncMovies` tries it again (aware); None gives up on it.

    Returns:
        The movie's consecutive details failures, this one included.

    Raises:
        ValueError: `next_attempt_at` is naive.
        LookupError: No movie has this TMDB id.
    """
    if next_attempt_at is not None:
        next_attempt_at = require_aware("next_attempt_at", next_attempt_at)
    result = await session.execute(
        update(Movie)
        .where(Movie.tmdb_id == tmdb_id)
        .values(
            details_failures=Movie.details_failures + 1, next_details_attempt_at=next_attempt_at
        )
        .returning(Movie.details_failures)
    )
    return returned_count(result.scalar_one_or_none(), "tmdb_id", tmdb_id)


async def clear_movie_details_retry(session: AsyncSession, tmdb_id: int) -> None:
    """Take a movie off the details retry queue (its details were fetched, or it is gone)."""
    await session.execute(
        update(Movie)
        .where(Movie.tmdb_id == tmdb_id, Movie.details_failures != 0)
        .values(details_failures=0, next_details_attempt_at=None)
    )


async def movies_due_for_details(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Return the TMDB ids of movies whose details retry is due, oldest due first, at most
    `limit`."""
    rows = await session.scalars(
        select(Movie.tmdb_id)
        .where(Movie.next_details_attempt_at <= require_aware("now", now))
        .order_by(Movie.next_details_attempt_at, Movie.id)
        .limit(limit)
    )
    return list(rows.all())


async def movie_details_failures(session: AsyncSession, tmdb_ids: Iterable[int]) -> dict[int, int]:
    """Map each stored TMDB id among `tmdb_ids` to its current details failure streak."""
    found: dict[int, int] = {}
    for chunk in in_chunks(sorted(set(tmdb_ids))):
        rows = await session.execute(
            select(Movie.tmdb_id, Movie.details_failures).where(Movie.tmdb_id.in_(chunk))
        )
        found.update((tmdb_id, failures) for tmdb_id, failures in rows.all())
    return found


async def get_movie_by_tmdb_id(session: AsyncSession, tmdb_id: int) -> Movie | None:
    """Return the movie with this TMDB id, or None."""
    return (await session.scalars(select(Movie).where(Movie.tmdb_id == tmdb_id))).first()


async def get_show_by_tmdb_id(session: AsyncSession, tmdb_id: int) -> TvShow | None:
    """Return the show with this TMDB id, or None."""
    return (await session.scalars(select(TvShow).where(TvShow.tmdb_id == tmdb_id))).first()


async def stored_movie_ids(session: AsyncSession, tmdb_ids: Iterable[int]) -> dict[int, int]:
    """Map the TMDB ids among `tmdb_ids` that are stored to their movie row ids.

    The movie changes sync uses it to update only movies already in the catalogue.

    Args:
        session: The session.
        tmdb_ids: TMDB movie ids, any number (queried in chunks).

    Returns:
        `{tmdb_id: id}` for the stored ones.
    """
    found: dict[int, int] = {}
    for chunk in in_chunks(sorted(set(tmdb_ids))):
        rows = await session.execute(
            select(Movie.tmdb_id, Movie.id).where(Movie.tmdb_id.in_(chunk))
        )
        found.update(rows.all())
    return found


async def _replace_genres(
    session: AsyncSession, table: Table, owner_column: str, owner_id: int, genre_ids: Sequence[int]
) -> None:
    await session.execute(delete(table).where(table.c[owner_column] == owner_id))
    if not genre_ids:
        return
    # Only genres already stored: an unknown id must not fail the whole upsert.
    await session.execute(
        table.insert().from_select(
            [owner_column, "genre_id"],
            select(literal(owner_id), Genre.id).where(Genre.id.in_(sorted(set(genre_ids)))),
        )
    )
