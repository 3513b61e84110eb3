"""Claims: how several replicas on PostgreSQL share the five work queues without doubles.

A claim replaces a pick. One statement locks the due rows no other transaction holds
(`FOR UPDATE SKIP LOCKED`), pushes their queue column forward to `now() + ttl` on the
database's clock (the claim's expiry: a replica's clock skew cannot shorten it) and stores
one fresh token from the `miauflix_claim` sequence in the queue's `*_claim` column. While
the claim holds, the item is not due, so no peer picks it; when the claiming replica dies,
the item is simply due again at the expiry (no sweeper).

A write-back of a claimed item first calls `held_claims` in its own transaction: it locks
the rows whose token is still the claim's (so no peer can claim them before the commit) and
returns their ids; a row claimed again since (the claim expired, a peer took it) is left
out, and the caller writes nothing for it. A replica paused past its claim therefore cannot
overwrite the newer holder's counters, retry times or stats.

=============  =============================  =====================  ====================
queue          due column                     claim column           claimed per run
=============  =============================  =====================  ====================
source_search  movie.next_source_search_at    source_search_claim    1 (most popular)
resync         movie.next_resync_at           resync_claim           1 (longest due)
season         season.next_sync_attempt_at    sync_claim             1 (longest due)
file           movie_source.next_file_...     file_claim             `limit` (round-robin)
stats          movie_source.next_stats_...    stats_claim            `limit` (longest due)
=============  =============================  =====================  ====================

PostgreSQL only: SQLite serves one replica and keeps the plain picks. Every claim is one
statement on its queue's index (nothing due: one index probe).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from miauflix.db._models import Movie, MovieSource, Season

__all__ = [
    "ClaimQueue",
    "claim_movie_for_resync",
    "claim_movie_for_source_search",
    "claim_season_to_sync",
    "claim_sources_for_stats",
    "claim_sources_missing_file",
    "held_claims",
]

ClaimQueue = Literal["source_search", "resync", "season", "file", "stats"]
"""The five claimable queues (see the module's table)."""

# queue -> (table, due column, claim column)
_QUEUES: dict[str, tuple[str, str, str]] = {
    "source_search": ("movie", "next_source_search_at", "source_search_claim"),
    "resync": ("movie", "next_resync_at", "resync_claim"),
    "season": ("season", "next_sync_attempt_at", "sync_claim"),
    "file": ("movie_source", "next_file_attempt_at", "file_claim"),
    "stats": ("movie_source", "next_stats_check_at", "stats_claim"),
}


def _claim_sql(queue: str, candidates: str) -> str:
    table, due, claim = _QUEUES[queue]
    # `picked` is MATERIALIZED so the locking scan runs once; one token per statement.
    return f"""
        WITH picked AS MATERIALIZED ({candidates}),
             token AS MATERIALIZED (SELECT nextval('miauflix_claim') AS claim
                                    WHERE EXISTS (SELECT 1 FROM picked))
        UPDATE {table} t SET {due} = now() + make_interval(secs => :ttl),
               {claim} = token.claim
        FROM picked, token WHERE t.id = picked.id
        RETURNING t.*
    """


_SOURCE_SEARCH = _claim_sql(
    "source_search",
    """SELECT id FROM movie
       WHERE imdb_id IS NOT NULL AND next_source_search_at <= now()
       ORDER BY popularity DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED""",
)
_RESYNC = _claim_sql(
    "resync",
    """SELECT id FROM movie WHERE next_resync_at <= now()
       ORDER BY next_resync_at, id LIMIT 1 FOR UPDATE SKIP LOCKED""",
)
_SEASON = _claim_sql(
    "season",
    """SELECT id FROM season WHERE next_sync_attempt_at <= now() AND NOT synced
       ORDER BY next_sync_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED""",
)
_STATS = _claim_sql(
    "stats",
    """SELECT id FROM movie_source WHERE next_stats_check_at <= now()
       ORDER BY next_stats_check_at, id LIMIT :limit FOR UPDATE SKIP LOCKED""",
)
# "FOR UPDATE is not allowed with window functions": the round-robin order (each movie's
# best missing source first, least complete movies first, as `pick_sources_missing_file`)
# ranks `:scan` due candidates without locks; the outer query locks the first `:limit` of
# them that no peer holds. The candidates come from one range scan of the file queue's index.
_FILE = _claim_sql(
    "file",
    """SELECT s.id FROM movie_source s
       JOIN (SELECT d.id, row_number() OVER (
                 PARTITION BY d.movie_id ORDER BY
                 CASE d.quality WHEN '2160p' THEN 4 WHEN '1080p' THEN 3 WHEN '720p' THEN 2
                                WHEN '480p' THEN 1 ELSE 0 END DESC,
                 coalesce(d.seeders, -1) DESC, d.id) AS round,
                 (SELECT count(*) FROM movie_source f
                  WHERE f.movie_id = d.movie_id AND f.has_file) AS files, d.movie_id
             FROM movie_source d
             WHERE d.next_file_attempt_at <= now() AND NOT d.has_file
             ORDER BY d.next_file_attempt_at LIMIT :scan) ranked ON ranked.id = s.id
       WHERE s.next_file_attempt_at <= now() AND NOT s.has_file
       ORDER BY ranked.round, ranked.files, ranked.movie_id, s.id
       LIMIT :limit FOR UPDATE OF s SKIP LOCKED""",
)

_HELD: dict[str, str] = {
    queue: f"SELECT id FROM {table} WHERE id = ANY(:ids) AND {claim} = :claim FOR UPDATE"
    for queue, (table, _due, claim) in _QUEUES.items()
}


def _check_ttl(ttl: float) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
        raise ValueError(f"ttl must be a finite number > 0, got {ttl!r}")
    if ttl <= 0:
        raise ValueError(f"ttl must be a finite number > 0, got {ttl!r}")
    return float(ttl)


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
    return limit


async def claim_movie_for_source_search(session: AsyncSession, *, ttl: float) -> Movie | None:
    """Claim the most popular movie with an IMDb id whose source search is due.

    Args:
        session: A write session on PostgreSQL (commit it before the network call).
        ttl: Seconds the claim holds (the item is due again after them if not written back).

    Returns:
        The movie, its `source_search_claim` the claim's token; None when none is due.

    Raises:
        ValueError: `ttl` is not a finite number > 0.
    """
    statement = select(Movie).from_statement(text(_SOURCE_SEARCH))
    return (await session.scalars(statement, {"ttl": _check_ttl(ttl)})).first()


async def claim_movie_for_resync(session: AsyncSession, *, ttl: float) -> Movie | None:
    """Claim the movie whose source resync has been due the longest (see the claim above)."""
    statement = select(Movie).from_statement(text(_RESYNC))
    return (await session.scalars(statement, {"ttl": _check_ttl(ttl)})).first()


async def claim_season_to_sync(session: AsyncSession, *, ttl: float) -> Season | None:
    """Claim the season whose episode sync has been due the longest, with its `show` loaded.

    Returns:
        The season, its `sync_claim` the token; None when none is due (one query).
    """
    claimed = (
        await session.scalars(
            select(Season).from_statement(text(_SEASON)), {"ttl": _check_ttl(ttl)}
        )
    ).first()
    if claimed is None:
        return None
    statement = select(Season).options(joinedload(Season.show)).where(Season.id == claimed.id)
    return (await session.scalars(statement)).one()


async def claim_sources_missing_file(
    session: AsyncSession, *, ttl: float, limit: int
) -> list[MovieSource]:
    """Claim up to `limit` sources whose `.torrent` file is missing and due, round-robin.

    The order is `pick_sources_missing_file`'s among the `8 * limit` longest-due candidates;
    rows a peer holds are skipped.

    Returns:
        The sources in download order, all with the same `file_claim` token (maybe empty).
    """
    limit = _check_limit(limit)
    rows = await session.scalars(
        select(MovieSource).from_statement(text(_FILE)),
        {"ttl": _check_ttl(ttl), "limit": limit, "scan": 8 * limit},
    )
    return _round_robin(list(rows.all()))


async def claim_sources_for_stats(
    session: AsyncSession, *, ttl: float, limit: int
) -> list[MovieSource]:
    """Claim up to `limit` sources whose tracker stats check is due, longest due first.

    Returns:
        The sources, all with the same `stats_claim` token (maybe empty).
    """
    rows = await session.scalars(
        select(MovieSource).from_statement(text(_STATS)),
        {"ttl": _check_ttl(ttl), "limit": _check_limit(limit)},
    )
    return sorted(rows.all(), key=lambda source: source.id)


async def held_claims(
    session: AsyncSession, queue: ClaimQueue, ids: Collection[int], claim: int
) -> set[int]:
    """Lock the rows of `ids` whose `queue` claim is still `claim`, and return their ids.

    Call it as the first statement of the transaction that writes the items back: a row
    left out was claimed again since (by a peer, after the claim expired) and must not be
    written; the rows returned stay locked until the transaction ends, so no peer claims
    them in between.

    Args:
        session: The write session.
        queue: The queue the items were claimed on.
        ids: The claimed rows' ids.
        claim: The claim's token.

    Returns:
        The ids still held by this claim.

    Raises:
        ValueError: `queue` is not a claimable queue.
    """
    if queue not in _HELD:
        raise ValueError(f"queue must be one of {', '.join(_HELD)}, got {queue!r}")
    if not ids:
        return set()
    result = await session.execute(text(_HELD[queue]), {"ids": list(ids), "claim": claim})
    return {row[0] for row in result}


def _round_robin(sources: list[MovieSource]) -> list[MovieSource]:
    # RETURNING gives rows in no defined order: one source per movie per round again.
    by_movie: dict[int, list[MovieSource]] = {}
    for source in sorted(sources, key=lambda s: s.id):
        by_movie.setdefault(source.movie_id, []).append(source)
    ordered: list[MovieSource] = []
    while len(ordered) < len(sources):
        for queue in by_movie.values():
            if queue:
                ordered.append(queue.pop(0))
    return ordered
