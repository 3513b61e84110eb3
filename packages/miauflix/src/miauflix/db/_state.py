"""Repository of sync checkpoints and the catalogue counts shown in /status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db._models import MediaList, Movie, MovieSource, Season, SyncState, TvShow
from miauflix.db._records import CatalogCounts
from miauflix.db._types import require_aware
from miauflix.db._upsert import dialect_insert

__all__ = ["catalog_counts", "get_sync_state", "set_sync_state"]


async def get_sync_state(session: AsyncSession, name: str) -> datetime | None:
    """Return the checkpoint stored under `name` (aware UTC), or None if never set."""
    return await session.scalar(select(SyncState.last_sync_at).where(SyncState.name == name))


async def set_sync_state(session: AsyncSession, name: str, last_sync_at: datetime) -> None:
    """Store the checkpoint `name`, replacing the previous value.

    Args:
        session: The session.
        name: The checkpoint's name, e.g. "movie_changes".
        last_sync_at: The checkpoint (aware).

    Raises:
        ValueError: `name` is empty or `last_sync_at` is naive.
    """
    if not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    last_sync_at = require_aware("last_sync_at", last_sync_at)
    insert = dialect_insert(session, SyncState)
    await session.execute(
        insert.values(name=name, last_sync_at=last_sync_at).on_conflict_do_update(
            index_elements=[SyncState.name], set_={"last_sync_at": insert.excluded.last_sync_at}
        )
    )


async def catalog_counts(session: AsyncSession) -> CatalogCounts:
    """Count what the tasks have built, in one statement (one consistent snapshot)."""

    row = (
        await session.execute(
            select(
                select(func.count()).select_from(MediaList).scalar_subquery(),
                select(func.count()).select_from(Movie).scalar_subquery(),
                select(func.count()).select_from(TvShow).scalar_subquery(),
                select(func.count()).select_from(Season).scalar_subquery(),
                select(func.count()).where(Season.synced == true()).scalar_subquery(),
                select(func.count()).select_from(MovieSource).scalar_subquery(),
                select(func.count()).where(MovieSource.has_file == true()).scalar_subquery(),
                select(func.count())
                .where(MovieSource.last_stats_check.is_not(None))
                .scalar_subquery(),
            )
        )
    ).one()
    return CatalogCounts(*(int(value) for value in row))
