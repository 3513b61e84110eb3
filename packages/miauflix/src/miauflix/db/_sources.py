"""Repositories of movie sources: the source search, resync, `.torrent` file and stats queues.

Every function takes an `AsyncSession` already inside a transaction and never commits.
Each pick is one index range scan on its queue column (see `miauflix.db._models`), so a
task that finds nothing costs one cheap query. The services compute retry times (backoff,
jitter) and pass them in; `None` as a next time takes the item off its queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from miauflix.db._models import Movie, MovieSource, MovieSourceFile
from miauflix.db._records import SourceData, normalize_info_hash
from miauflix.db._types import UtcDateTime, require_aware
from miauflix.db._upsert import dialect_insert, returned_count

__all__ = [
    "QUALITY_RANK",
    "get_source_file",
    "list_movie_sources",
    "pick_movie_for_resync",
    "pick_movie_for_source_search",
    "pick_sources_for_stats",
    "pick_sources_missing_file",
    "queue_source_search",
    "record_file_failure",
    "record_resync",
    "record_source_search",
    "record_source_search_failure",
    "record_stats",
    "record_stats_failure",
    "store_source_file",
    "upsert_sources",
]

# Best first: a source's quality is ranked by this table; anything else (e.g. "3D") ranks 0.
QUALITY_RANK: dict[str, int] = {"2160p": 4, "1080p": 3, "720p": 2, "480p": 1}


def _quality_rank() -> Any:
    return case(
        *((MovieSource.quality == quality, rank) for quality, rank in QUALITY_RANK.items()),
        else_=0,
    )


def _best_first() -> tuple[Any, ...]:
    return (
        _quality_rank().desc(),
        func.coalesce(MovieSource.seeders, -1).desc(),
        MovieSource.id,
    )


# The pick statements are built once: they run up to ten times a second, and building the
# file pick alone costs about 2 ms of CPU (compiling is cached by SQLAlchemy either way).
_NOW = bindparam("now", type_=UtcDateTime())
_LIMIT = bindparam("limit", type_=Integer())

_SOURCE_SEARCH_PICK = (
    select(Movie)
    .where(Movie.imdb_id.is_not(None), Movie.next_source_search_at <= _NOW)
    .order_by(Movie.popularity.desc(), Movie.id)
    .limit(1)
)

_RESYNC_PICK = (
    select(Movie)
    .where(Movie.next_resync_at <= _NOW)
    .order_by(Movie.next_resync_at, Movie.id)
    .limit(1)
)

_STATS_PICK = (
    select(MovieSource)
    .where(MovieSource.next_stats_check_at <= _NOW)
    .order_by(MovieSource.next_stats_check_at, MovieSource.id)
    .limit(_LIMIT)
)


def _missing_file_pick() -> Select[int]:
    due = (
        select(
            MovieSource.id.label("id"),
            MovieSource.movie_id.label("movie_id"),
            func.row_number()
            .over(partition_by=MovieSource.movie_id, order_by=_best_first())
            .label("round"),
        )
        .where(MovieSource.next_file_attempt_at <= _NOW, MovieSource.has_file == false())
        .subquery("due")
    )
    stored = aliased(MovieSource)
    files_stored = (
        select(func.count())
        .where(stored.movie_id == due.c.movie_id, stored.has_file == true())
        .scalar_subquery()
    )
    return select(due.c.id).order_by(due.c.round, files_stored, due.c.movie_id).limit(_LIMIT)


_MISSING_FILE_PICK = _missing_file_pick()


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
    return limit


def _incomplete_source() -> Any:
    return or_(MovieSource.uploaded_at.is_(None), MovieSource.source_type.is_(None))


async def pick_movie_for_source_search(session: AsyncSession, *, now: datetime) -> Movie | None:
    """Return the most popular movie with an IMDb id whose source search is due.

    Due means `next_source_search_at <= now`; new movies are due from their insertion, and
    a movie leaves the queue (NULL) once sources were found. Uses the partial index
    `ix_movie_source_search_due` (movies with an IMDb id only).

    Args:
        session: The session.
        now: The current time (aware).

    Returns:
        The movie, or None when none is due.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    return (await session.scalars(_SOURCE_SEARCH_PICK, {"now": now})).first()


async def record_source_search(
    session: AsyncSession,
    movie_id: int,
    *,
    directories: Sequence[str],
    searched_at: datetime,
    next_search_at: datetime | None,
) -> None:
    """Record a completed search (with or without sources) and reset the failure count.

    Args:
        session: The session.
        movie_id: The movie's row id.
        directories: The directories asked this time; added to `searched_directories`.
        searched_at: When the search ran (aware): `last_source_search_at`.
        next_search_at: The next search (aware), e.g. in 45-75 minutes when nothing was
            found; None when sources were found (the movie leaves the queue).

    Raises:
        ValueError: A datetime is naive.
        LookupError: No movie has this id.
    """
    searched_at = require_aware("searched_at", searched_at)
    if next_search_at is not None:
        next_search_at = require_aware("next_search_at", next_search_at)
    movie = await session.get(Movie, movie_id)
    if movie is None:
        raise LookupError(f"movie_id {movie_id!r} is not stored")
    merged = list(movie.searched_directories)
    merged.extend(name for name in dict.fromkeys(directories) if name not in merged)
    movie.searched_directories = merged
    movie.last_source_search_at = searched_at
    movie.next_source_search_at = next_search_at
    movie.source_search_failures = 0
    movie.updated_at = searched_at
    await session.flush()


async def record_source_search_failure(
    session: AsyncSession, movie_id: int, *, next_search_at: datetime | None
) -> int:
    """Count a failed search (a directory errored) and set the next attempt.

    Args:
        session: The session.
        movie_id: The movie's row id.
        next_search_at: When to try again (aware); None gives up.

    Returns:
        The movie's consecutive search failures, this one included.

    Raises:
        ValueError: `next_search_at` is naive.
        LookupError: No movie has this id.
    """
    if next_search_at is not None:
        next_search_at = require_aware("next_search_at", next_search_at)
    result = await session.execute(
        update(Movie)
        .where(Movie.id == movie_id)
        .values(
            source_search_failures=Movie.source_search_failures + 1,
            next_source_search_at=next_search_at,
        )
        .returning(Movie.source_search_failures)
    )
    return returned_count(result.scalar_one_or_none(), "movie_id", movie_id)


async def upsert_sources(
    session: AsyncSession, movie_id: int, sources: Iterable[SourceData], *, now: datetime
) -> int:
    """Insert new sources of a movie and fill in the known ones, by info hash.

    New sources are queued for their `.torrent` file and their tracker stats at once. For a
    known source, values the directory did not give (None) keep the stored ones, so a resync
    only fills what is missing; the directory's seeders/leechers are ignored once a tracker
    check has run. When a new source lacks its upload date or type, the movie is queued for
    a resync (unless it already is). A known source still without its file whose directory
    now gives another download URL is queued for its file again at once, with its failure
    count reset: the old URL may be what failed (a host that moved, the demo simulator's
    previous port).

    Args:
        session: The session.
        movie_id: The movie's row id.
        sources: The sources; a repeated info hash keeps the first.
        now: The current time (aware).

    Returns:
        How many sources were new.

    Raises:
        ValueError: An info hash is not 40 hex digits, or a datetime is naive.
    """
    now = require_aware("now", now)
    by_hash: dict[str, SourceData] = {}
    for source in sources:
        by_hash.setdefault(normalize_info_hash(source.info_hash), source)
    if not by_hash:
        return 0
    rows: list[dict[str, Any]] = []
    for info_hash, source in by_hash.items():
        uploaded_at = source.uploaded_at
        if uploaded_at is not None:
            uploaded_at = require_aware("uploaded_at", uploaded_at)
        rows.append(
            {
                "movie_id": movie_id,
                "info_hash": info_hash,
                "magnet_link": source.magnet_link,
                "download_url": source.download_url,
                "quality": source.quality,
                "video_codec": source.video_codec,
                "size_bytes": source.size_bytes,
                "seeders": source.seeders,
                "leechers": source.leechers,
                "source_directory": source.source_directory,
                "source_type": source.source_type,
                "uploaded_at": uploaded_at,
                "has_file": False,
                "next_file_attempt_at": now,
                "next_stats_check_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    existing = set(
        (
            await session.scalars(
                select(MovieSource.info_hash).where(
                    MovieSource.movie_id == movie_id, MovieSource.info_hash.in_(list(by_hash))
                )
            )
        ).all()
    )
    insert = dialect_insert(session, MovieSource)
    new = insert.excluded
    no_tracker_yet = MovieSource.last_stats_check.is_(None)
    new_url_for_missing_file = and_(
        MovieSource.has_file == false(),
        new.download_url.is_not(None),
        MovieSource.download_url.is_distinct_from(new.download_url),
    )
    set_: dict[str, Any] = {
        "magnet_link": new.magnet_link,
        "quality": new.quality,
        "download_url": func.coalesce(new.download_url, MovieSource.download_url),
        "video_codec": func.coalesce(new.video_codec, MovieSource.video_codec),
        "size_bytes": func.coalesce(new.size_bytes, MovieSource.size_bytes),
        "source_type": func.coalesce(new.source_type, MovieSource.source_type),
        "uploaded_at": func.coalesce(new.uploaded_at, MovieSource.uploaded_at),
        "seeders": case(
            (no_tracker_yet, func.coalesce(new.seeders, MovieSource.seeders)),
            else_=MovieSource.seeders,
        ),
        "leechers": case(
            (no_tracker_yet, func.coalesce(new.leechers, MovieSource.leechers)),
            else_=MovieSource.leechers,
        ),
        "next_file_attempt_at": case(
            (new_url_for_missing_file, literal(now, UtcDateTime())),
            else_=MovieSource.next_file_attempt_at,
        ),
        "file_failures": case(
            (new_url_for_missing_file, 0),
            else_=MovieSource.file_failures,
        ),
        "updated_at": now,
    }
    await session.execute(
        insert.values(rows).on_conflict_do_update(
            index_elements=[MovieSource.movie_id, MovieSource.info_hash], set_=set_
        )
    )
    added = [row for row in rows if row["info_hash"] not in existing]
    if any(row["uploaded_at"] is None or row["source_type"] is None for row in added):
        await session.execute(
            update(Movie)
            .where(Movie.id == movie_id, Movie.next_resync_at.is_(None))
            .values(next_resync_at=now, resync_attempts=0)
        )
    return len(added)


async def list_movie_sources(session: AsyncSession, movie_id: int) -> list[MovieSource]:
    """Return a movie's sources, best first (highest quality, then most seeders)."""
    statement = select(MovieSource).where(MovieSource.movie_id == movie_id).order_by(*_best_first())
    return list((await session.scalars(statement)).all())


async def pick_movie_for_resync(session: AsyncSession, *, now: datetime) -> Movie | None:
    """Return the movie whose source resync has been due the longest.

    A movie is queued by `upsert_sources` when a new source lacks its upload date or type,
    and leaves the queue through `record_resync`.

    Args:
        session: The session.
        now: The current time (aware).

    Returns:
        The movie, or None when none is due.

    Raises:
        ValueError: `now` is naive.
    """
    now = require_aware("now", now)
    return (await session.scalars(_RESYNC_PICK, {"now": now})).first()


async def record_resync(
    session: AsyncSession, movie_id: int, *, next_attempt_at: datetime | None
) -> bool:
    """Record one resync attempt of a movie (after its sources were upserted again).

    Increments `resync_attempts`. If no source lacks its upload date or type any more, the
    movie leaves the queue whatever `next_attempt_at` says.

    Args:
        session: The session.
        movie_id: The movie's row id.
        next_attempt_at: When to try again if something is still missing (aware); None
            gives up.

    Returns:
        True when some source still lacks its upload date or type.

    Raises:
        ValueError: `next_attempt_at` is naive.
        LookupError: No movie has this id.
    """
    if next_attempt_at is not None:
        next_attempt_at = require_aware("next_attempt_at", next_attempt_at)
    incomplete = bool(
        await session.scalar(
            select(exists().where(MovieSource.movie_id == movie_id, _incomplete_source()))
        )
    )
    result = await session.execute(
        update(Movie)
        .where(Movie.id == movie_id)
        .values(
            resync_attempts=Movie.resync_attempts + 1,
            next_resync_at=next_attempt_at if incomplete else None,
        )
        .returning(Movie.id)
    )
    if result.scalar_one_or_none() is None:
        raise LookupError(f"movie_id {movie_id!r} is not stored")
    return incomplete


async def pick_sources_missing_file(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[MovieSource]:
    """Return up to `limit` sources whose `.torrent` file is missing and due, round-robin.

    Order: each movie's best missing source first (highest quality, then most seeders),
    one per movie per round; within a round, movies with the fewest stored files first,
    then by movie id. Candidates come from one range scan of
    `ix_movie_source_next_file_attempt_at`; sources backing off are not due.

    Args:
        session: The session.
        now: The current time (aware).
        limit: Batch size, >= 1.

    Returns:
        The sources, in download order (possibly empty).

    Raises:
        ValueError: `now` is naive or `limit` < 1.
    """
    now = require_aware("now", now)
    limit = _check_limit(limit)
    ids = list((await session.scalars(_MISSING_FILE_PICK, {"now": now, "limit": limit})).all())
    if not ids:
        return []
    found = {
        source.id: source
        for source in (
            await session.scalars(select(MovieSource).where(MovieSource.id.in_(ids)))
        ).all()
    }
    return [found[source_id] for source_id in ids]


async def store_source_file(
    session: AsyncSession, source_id: int, data: bytes, *, now: datetime
) -> None:
    """Store a source's verified `.torrent` file and take it off the file queue.

    Args:
        session: The session.
        source_id: The source's row id.
        data: The file's bytes (the caller has checked its info hash).
        now: The current time (aware): `stored_at`.

    Raises:
        ValueError: `data` is empty or `now` is naive.
        LookupError: No source has this id.
    """
    now = require_aware("now", now)
    if not data:
        raise ValueError(f"data must be the non-empty .torrent file, got {data!r}")
    result = await session.execute(
        update(MovieSource)
        .where(MovieSource.id == source_id)
        .values(has_file=True, next_file_attempt_at=None, file_failures=0, updated_at=now)
        .returning(MovieSource.id)
    )
    if result.scalar_one_or_none() is None:
        raise LookupError(f"source_id {source_id!r} is not stored")
    insert = dialect_insert(session, MovieSourceFile)
    await session.execute(
        insert.values(source_id=source_id, data=data, stored_at=now).on_conflict_do_update(
            index_elements=[MovieSourceFile.source_id],
            set_={"data": insert.excluded.data, "stored_at": insert.excluded.stored_at},
        )
    )


async def get_source_file(session: AsyncSession, source_id: int) -> bytes | None:
    """Return a source's stored `.torrent` bytes, or None when it has none."""
    return await session.scalar(
        select(MovieSourceFile.data).where(MovieSourceFile.source_id == source_id)
    )


async def record_file_failure(
    session: AsyncSession, source_id: int, *, next_attempt_at: datetime | None
) -> int:
    """Count a failed `.torrent` download (not found, wrong hash, error) and set the next try.

    Args:
        session: The session.
        source_id: The source's row id.
        next_attempt_at: When to try again (aware); None gives up on this source's file.

    Returns:
        The source's consecutive file failures, this one included.

    Raises:
        ValueError: `next_attempt_at` is naive.
        LookupError: No source has this id.
    """
    if next_attempt_at is not None:
        next_attempt_at = require_aware("next_attempt_at", next_attempt_at)
    result = await session.execute(
        update(MovieSource)
        .where(MovieSource.id == source_id)
        .values(file_failures=MovieSource.file_failures + 1, next_file_attempt_at=next_attempt_at)
        .returning(MovieSource.file_failures)
    )
    return returned_count(result.scalar_one_or_none(), "source_id", source_id)


async def queue_source_search(session: AsyncSession, movie_id: int, *, at: datetime) -> bool:
    """Queue a movie's source search again at `at`, unless it is queued already.

    The file task calls it when a source's direct download failed: the search asks the
    directory again, and `upsert_sources` re-queues the file of any source whose URL changed.

    Args:
        session: The session.
        movie_id: The movie's row id.
        at: When the search is due (aware).

    Returns:
        True when the movie was queued, False when it already was (or does not exist).

    Raises:
        ValueError: `at` is naive.
    """
    at = require_aware("at", at)
    result = await session.execute(
        update(Movie)
        .where(Movie.id == movie_id, Movie.next_source_search_at.is_(None))
        .values(next_source_search_at=at)
        .returning(Movie.id)
    )
    return result.scalar_one_or_none() is not None


async def pick_sources_for_stats(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[MovieSource]:
    """Return up to `limit` sources whose tracker stats check is due, longest due first.

    Args:
        session: The session.
        now: The current time (aware).
        limit: Batch size, >= 1.

    Returns:
        The sources (possibly empty).

    Raises:
        ValueError: `now` is naive or `limit` < 1.
    """
    now = require_aware("now", now)
    limit = _check_limit(limit)
    return list((await session.scalars(_STATS_PICK, {"now": now, "limit": limit})).all())


async def record_stats(
    session: AsyncSession,
    source_id: int,
    *,
    seeders: int,
    leechers: int,
    checked_at: datetime,
    next_check_at: datetime,
) -> None:
    """Store a tracker's seeders/leechers for a source and schedule its next check.

    Args:
        session: The session.
        source_id: The source's row id.
        seeders: Seeders, >= 0.
        leechers: Leechers, >= 0.
        checked_at: When the tracker answered (aware): `last_stats_check`.
        next_check_at: The next check (aware); `next_check_at - checked_at` is kept as
            `stats_wait_seconds`, the previous wait of the next check's volatility rule.

    Raises:
        ValueError: A count is negative or a datetime is naive.
        LookupError: No source has this id.
    """
    for name, value in (("seeders", seeders), ("leechers", leechers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    checked_at = require_aware("checked_at", checked_at)
    next_check_at = require_aware("next_check_at", next_check_at)
    result = await session.execute(
        update(MovieSource)
        .where(MovieSource.id == source_id)
        .values(
            seeders=seeders,
            leechers=leechers,
            last_stats_check=checked_at,
            next_stats_check_at=next_check_at,
            stats_wait_seconds=(next_check_at - checked_at).total_seconds(),
            stats_failures=0,
            updated_at=checked_at,
        )
        .returning(MovieSource.id)
    )
    if result.scalar_one_or_none() is None:
        raise LookupError(f"source_id {source_id!r} is not stored")


async def record_stats_failure(
    session: AsyncSession, source_id: int, *, next_check_at: datetime
) -> int:
    """Count a failed stats check (no tracker answered) and set the next check.

    `last_stats_check` and `stats_wait_seconds` keep the last successful check's values, so
    the retry delay never passes for the volatility wait.

    Args:
        session: The session.
        source_id: The source's row id.
        next_check_at: When to try again (aware).

    Returns:
        The source's consecutive stats failures, this one included.

    Raises:
        ValueError: `next_check_at` is naive.
        LookupError: No source has this id.
    """
    next_check_at = require_aware("next_check_at", next_check_at)
    result = await session.execute(
        update(MovieSource)
        .where(MovieSource.id == source_id)
        .values(stats_failures=MovieSource.stats_failures + 1, next_stats_check_at=next_check_at)
        .returning(MovieSource.stats_failures)
    )
    return returned_count(result.scalar_one_or_none(), "source_id", source_id)
