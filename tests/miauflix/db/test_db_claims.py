"""Claims on PostgreSQL: several replicas drain the five queues without sharing an item.

Expiry is made to happen by moving an item's queue column into the past (what the database's
clock does after `ttl`), so no test waits for a claim to run out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db import (
    ClaimQueue,
    Database,
    MovieData,
    SeasonData,
    ShowData,
    SourceData,
    claim_movie_for_resync,
    claim_movie_for_source_search,
    claim_season_to_sync,
    claim_sources_for_stats,
    claim_sources_missing_file,
    held_claims,
    upsert_movie,
    upsert_season,
    upsert_show,
    upsert_sources,
)

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(60)]

# Queue values in the past: every item is due now on the database's clock.
PAST = datetime(2020, 1, 1, tzinfo=UTC)
ITEMS = 12
EXPIRED = datetime(2019, 1, 1, tzinfo=UTC)

Claim = Callable[[AsyncSession], Awaitable[Sequence[Any]]]


def _one(claim: Callable[..., Awaitable[Any]]) -> Claim:
    async def run(session: AsyncSession) -> list[Any]:
        item = await claim(session, ttl=60)
        return [] if item is None else [item]

    return run


def _batch(claim: Callable[..., Awaitable[list[Any]]]) -> Claim:
    async def run(session: AsyncSession) -> list[Any]:
        return await claim(session, ttl=60, limit=3)

    return run


# queue -> (claim, table, due column, claim column, the queue's index)
QUEUES: dict[ClaimQueue, tuple[Claim, str, str, str, str]] = {
    "source_search": (
        _one(claim_movie_for_source_search),
        "movie",
        "next_source_search_at",
        "source_search_claim",
        "ix_movie_source_search_due",
    ),
    "resync": (
        _one(claim_movie_for_resync),
        "movie",
        "next_resync_at",
        "resync_claim",
        "ix_movie_next_resync_at",
    ),
    "season": (
        _one(claim_season_to_sync),
        "season",
        "next_sync_attempt_at",
        "sync_claim",
        "ix_season_next_sync_attempt_at",
    ),
    "file": (
        _batch(claim_sources_missing_file),
        "movie_source",
        "next_file_attempt_at",
        "file_claim",
        "ix_movie_source_next_file_attempt_at",
    ),
    "stats": (
        _batch(claim_sources_for_stats),
        "movie_source",
        "next_stats_check_at",
        "stats_claim",
        "ix_movie_source_next_stats_check_at",
    ),
}


async def _fill(database: Database) -> None:
    # ITEMS movies with an IMDb id and two sources each, ITEMS seasons; every queue due.
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=PAST)
        for n in range(1, ITEMS + 1):
            movie_id = await upsert_movie(
                session,
                MovieData(tmdb_id=n, title=f"M{n}", imdb_id=f"tt{n}", popularity=float(n)),
                now=PAST,
            )
            await upsert_sources(
                session,
                movie_id,
                [
                    SourceData(f"{2 * n:040x}", "magnet:?", "1080p", "yts"),
                    SourceData(f"{2 * n + 1:040x}", "magnet:?", "720p", "yts"),
                ],
                now=PAST,
            )
            await upsert_season(session, show_id, SeasonData(n), now=PAST)
        await session.execute(text("UPDATE movie SET next_resync_at = :past"), {"past": PAST})


async def _expire(database: Database, queue: ClaimQueue) -> None:
    _claim, table, due, _column, _index = QUEUES[queue]
    async with database.session() as session:
        await session.execute(
            # Earlier than every other item: the longest-due queues take it first again.
            text(f"UPDATE {table} SET {due} = :expired WHERE {due} > now()"),
            {"expired": EXPIRED},
        )


def _token(queue: ClaimQueue, item: Any) -> int:
    return int(getattr(item, QUEUES[queue][3]))


@pytest.mark.parametrize("queue", list(QUEUES))
async def test_concurrent_claimers_never_share_an_item(
    pg_database: Database, queue: ClaimQueue
) -> None:
    """Four claimers draining one queue at once claim every item exactly once."""
    claim = QUEUES[queue][0]
    await _fill(pg_database)

    async def claimer() -> list[int]:
        mine: list[int] = []
        while True:
            async with pg_database.session() as session:
                items = await claim(session)
            if not items:
                return mine
            mine.extend(item.id for item in items)

    async with asyncio.timeout(30):
        claimed = await asyncio.gather(*(claimer() for _ in range(4)))
    every = [item for mine in claimed for item in mine]
    expected = 2 * ITEMS if QUEUES[queue][1] == "movie_source" else ITEMS
    assert len(every) == expected
    assert len(set(every)) == expected


@pytest.mark.parametrize("queue", list(QUEUES))
async def test_a_claim_expires_on_the_database_clock(
    pg_database: Database, queue: ClaimQueue
) -> None:
    """A claim pushes its item `ttl` seconds ahead on the database's clock, with a fresh token."""
    claim, table, due, _column, _index = QUEUES[queue]
    await _fill(pg_database)
    async with pg_database.session() as session:
        first = (await claim(session))[0]
        ahead = await session.scalar(
            text(f"SELECT extract(epoch FROM {due} - now()) FROM {table} WHERE id = :id"),
            {"id": first.id},
        )
    assert 59 <= float(ahead) <= 60
    assert _token(queue, first) > 0


async def test_an_expired_claim_comes_back_with_a_new_token(pg_database: Database) -> None:
    """After its expiry a claimed item is claimed again (no sweeper), under a newer token."""
    await _fill(pg_database)
    async with pg_database.session() as session:
        await session.execute(text("UPDATE movie SET next_source_search_at = NULL WHERE id > 1"))
    async with pg_database.session() as session:
        first = await claim_movie_for_source_search(session, ttl=60)
    async with pg_database.session() as session:
        assert await claim_movie_for_source_search(session, ttl=60) is None
    await _expire(pg_database, "source_search")
    async with pg_database.session() as session:
        again = await claim_movie_for_source_search(session, ttl=60)
    assert first is not None
    assert again is not None
    assert again.id == first.id
    assert again.source_search_claim > first.source_search_claim


@pytest.mark.parametrize("queue", list(QUEUES))
async def test_a_stale_claim_is_refused_and_the_newer_one_held(
    pg_database: Database, queue: ClaimQueue
) -> None:
    """Once a peer claimed an item again, the first claim's write-back check leaves it out."""
    claim = QUEUES[queue][0]
    await _fill(pg_database)
    async with pg_database.session() as session:
        stale = (await claim(session))[0]
    await _expire(pg_database, queue)
    async with pg_database.session() as session:
        newer = [item for item in await claim(session) if item.id == stale.id]
    assert newer, "the expired item is claimed first again"
    async with pg_database.session() as session:
        assert await held_claims(session, queue, [stale.id], _token(queue, stale)) == set()
        assert await held_claims(session, queue, [stale.id], _token(queue, newer[0])) == {stale.id}


async def test_a_write_back_in_progress_is_skipped_by_peers(pg_database: Database) -> None:
    """Rows a write-back holds stay locked: a peer's claim skips them until the commit."""
    await _fill(pg_database)
    async with pg_database.session() as session:
        await session.execute(text("UPDATE movie SET next_source_search_at = NULL WHERE id > 1"))
    async with pg_database.session() as session:
        movie = await claim_movie_for_source_search(session, ttl=60)
    assert movie is not None
    await _expire(pg_database, "source_search")
    async with pg_database.session() as writer:
        held = await held_claims(writer, "source_search", [movie.id], movie.source_search_claim)
        assert held == {movie.id}
        async with pg_database.session() as peer:
            assert await claim_movie_for_source_search(peer, ttl=60) is None
        await writer.execute(
            text("UPDATE movie SET next_source_search_at = NULL WHERE id = :id"), {"id": movie.id}
        )
    async with pg_database.session() as peer:
        assert await claim_movie_for_source_search(peer, ttl=60) is None


async def test_held_claims_rejects_an_unknown_queue(pg_database: Database) -> None:
    """`held_claims` names a queue it does not know."""
    async with pg_database.session() as session:
        with pytest.raises(ValueError, match=r"queue must be one of .* got 'nope'"):
            await held_claims(session, "nope", [1], 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", list(QUEUES))
async def test_claim_query_is_an_index_lookup(pg_database: Database, queue: ClaimQueue) -> None:
    """Each claim statement reads its table through its queue index, never by a full scan."""
    from miauflix.db import _claims

    index = QUEUES[queue][4]
    await _fill(pg_database)
    statement = {
        "source_search": _claims._SOURCE_SEARCH,
        "resync": _claims._RESYNC,
        "season": _claims._SEASON,
        "file": _claims._FILE,
        "stats": _claims._STATS,
    }[queue]
    async with pg_database.session() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await session.execute(
            text(f"EXPLAIN {statement}"), {"ttl": 60.0, "limit": 3, "scan": 24}
        )
        plan = "\n".join(str(row[0]) for row in rows)
    assert index in plan, plan
    assert "Seq Scan" not in plan, plan
