"""Repository of media lists: ordered movies and shows, replaced atomically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db._models import MediaList, MediaListMovie, MediaListShow
from miauflix.db._records import MediaListData
from miauflix.db._types import require_aware
from miauflix.db._upsert import dialect_insert

__all__ = ["media_list_movie_ids", "media_list_show_ids", "replace_media_list"]


async def replace_media_list(
    session: AsyncSession,
    data: MediaListData,
    *,
    movie_ids: Sequence[int] = (),
    show_ids: Sequence[int] = (),
    now: datetime,
) -> int:
    """Create or relabel a list and replace its whole content, all or nothing.

    The work runs in a SAVEPOINT: if any statement fails (e.g. an id that is not stored),
    the list keeps its previous content and labels, the error propagates, and the caller's
    transaction stays usable. Committing that transaction publishes the new content at once,
    so readers never see the list empty or half-written.

    Args:
        session: The session.
        data: The list's slug and labels.
        movie_ids: Movie row ids in list order; repeats keep the first position.
        show_ids: Show row ids in list order; repeats keep the first position.
        now: The current time (aware).

    Returns:
        The list's row id.

    Raises:
        ValueError: `now` is naive or the slug is empty.
        sqlalchemy.exc.IntegrityError: An id is not stored (nothing was changed).
    """
    now = require_aware("now", now)
    if not data.slug:
        raise ValueError(f"slug must be a non-empty string, got {data.slug!r}")
    movies = list(dict.fromkeys(movie_ids))
    shows = list(dict.fromkeys(show_ids))
    async with session.begin_nested():
        upsert = dialect_insert(session, MediaList)
        list_id: int = (
            await session.execute(
                upsert.values(
                    slug=data.slug,
                    name=data.name,
                    description=data.description,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_update(
                    index_elements=[MediaList.slug],
                    set_={
                        "name": upsert.excluded.name,
                        "description": upsert.excluded.description,
                        "updated_at": upsert.excluded.updated_at,
                    },
                )
                .returning(MediaList.id)
            )
        ).scalar_one()
        await session.execute(delete(MediaListMovie).where(MediaListMovie.list_id == list_id))
        await session.execute(delete(MediaListShow).where(MediaListShow.list_id == list_id))
        if movies:
            await session.execute(
                insert(MediaListMovie),
                [
                    {"list_id": list_id, "position": position, "movie_id": movie_id}
                    for position, movie_id in enumerate(movies)
                ],
            )
        if shows:
            await session.execute(
                insert(MediaListShow),
                [
                    {"list_id": list_id, "position": position, "show_id": show_id}
                    for position, show_id in enumerate(shows)
                ],
            )
    return list_id


async def media_list_movie_ids(session: AsyncSession, slug: str) -> list[int]:
    """Return the movie row ids of a list in order (empty for an unknown slug)."""
    statement = (
        select(MediaListMovie.movie_id)
        .join(MediaList, MediaList.id == MediaListMovie.list_id)
        .where(MediaList.slug == slug)
        .order_by(MediaListMovie.position)
    )
    return list((await session.scalars(statement)).all())


async def media_list_show_ids(session: AsyncSession, slug: str) -> list[int]:
    """Return the show row ids of a list in order (empty for an unknown slug)."""
    statement = (
        select(MediaListShow.show_id)
        .join(MediaList, MediaList.id == MediaListShow.list_id)
        .where(MediaList.slug == slug)
        .order_by(MediaListShow.position)
    )
    return list((await session.scalars(statement)).all())
