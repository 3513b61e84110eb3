"""Stale writers refused (PostgreSQL): a replica paused past its claim or lease writes nothing.

Two services share one database as two replicas would. The first is held inside its provider
call (a stand-in that waits on an event) while its claim expires and the second claims and
writes; when the first resumes, its write-back is refused and the data is the second's.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import cast

import asyncpg
import pytest
from sqlalchemy import select, text

from miauflix.db import (
    Database,
    MovieData,
    MovieSource,
    SourceData,
    get_sync_state,
    set_sync_state,
    upsert_movie,
    upsert_sources,
)
from miauflix.providers import ScrapeResult, TorrentFileFetcher, TrackerScraper
from miauflix.services import SourceService
from tickwork import LeaseLostError
from tickwork._lease import Lease
from tickwork.coordination import Grant, TaskDecl
from tickwork.coordination.postgres import PostgresCoordinator

from ...conftest import POSTGRES_URL

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(60)]

PAST = datetime(2020, 1, 1, tzinfo=UTC)
INFO_HASHES = [f"{n:040x}" for n in range(1, 4)]


class _Tracker:
    """Answers `counts` for every hash; with `hold` set, first waits for `release`."""

    def __init__(self, counts: tuple[int, int], *, hold: bool = False) -> None:
        self.counts = counts
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def scrape(
        self, info_hashes: Iterable[str], trackers: Sequence[str] | None = None
    ) -> dict[str, ScrapeResult]:
        self.entered.set()
        await self.release.wait()
        seeders, leechers = self.counts
        return {h: ScrapeResult(seeders, leechers, 0, "udp://stand-in") for h in info_hashes}


def _replica(database: Database, tracker: _Tracker) -> SourceService:
    return SourceService(
        database,
        directories=(),
        torrent_files=cast(TorrentFileFetcher, None),
        trackers=cast(TrackerScraper, tracker),
        rng=random.Random(1),
        claim_ttl=60,
    )


async def _stats(database: Database) -> dict[str, tuple[int | None, int]]:
    async with database.read_session() as session:
        rows = await session.scalars(select(MovieSource))
        return {s.info_hash: (s.seeders, s.stats_failures) for s in rows}


async def test_a_stats_writer_paused_past_its_claim_is_refused(pg_database: Database) -> None:
    """A replica resumed after its claim expired and a peer wrote writes no stats."""
    async with pg_database.session() as session:
        movie_id = await upsert_movie(session, MovieData(tmdb_id=1, title="M"), now=PAST)
        await upsert_sources(
            session,
            movie_id,
            [SourceData(h, "magnet:?", "1080p", "yts") for h in INFO_HASHES],
            now=PAST,
        )
    paused_tracker = _Tracker((1, 1), hold=True)
    paused = _replica(pg_database, paused_tracker)
    newer = _replica(pg_database, _Tracker((50, 5)))
    async with asyncio.timeout(20):
        run = asyncio.create_task(paused.sync_stats_for_sources())
        await paused_tracker.entered.wait()
        # The claim's expiry passes while the first replica is paused.
        async with pg_database.session() as session:
            await session.execute(
                text("UPDATE movie_source SET next_stats_check_at = :t"), {"t": PAST}
            )
        assert await newer.sync_stats_for_sources() == len(INFO_HASHES)
        paused_tracker.release.set()
        assert await run == 0
    assert paused.claims_lost["updateSourcesStats"] == len(INFO_HASHES)
    assert paused.processed["updateSourcesStats"] == 0
    assert await _stats(pg_database) == dict.fromkeys(INFO_HASHES, (50, 0))


@pytest.fixture
async def coordinator_schema(pg_database: Database) -> AsyncIterator[str]:
    """A coordinator schema of its own that the test database's role may read and lock."""
    schema = f"tw_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        starter = PostgresCoordinator(POSTGRES_URL, cluster="miauflix", schema=schema)
        await starter.start()
        await starter.close()
        role = pg_database.url.username
        await connection.execute(f'GRANT USAGE ON SCHEMA {schema} TO "{role}"')
        await connection.execute(f'GRANT SELECT, UPDATE ON {schema}.task TO "{role}"')
        yield schema
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


def _lease(coordinator: PostgresCoordinator, grant: Grant) -> Lease:
    # Valid for a long time on this process's clock: only the database can refuse it.
    return Lease(
        task=grant.task,
        token=grant.token,
        replica=coordinator.replica,
        cluster=coordinator.cluster,
        ttl=grant.ttl,
        _valid_until=time.monotonic() + 3600,
    )


async def test_a_checkpoint_writer_that_lost_its_lease_is_refused(
    pg_database: Database, coordinator_schema: str
) -> None:
    """`syncMovies`' checkpoint cannot be moved under a superseded lease; the holder's stays."""
    pg_database.fencing_schema = coordinator_schema
    first = PostgresCoordinator(POSTGRES_URL, cluster="miauflix", schema=coordinator_schema, ttl=5)
    second = PostgresCoordinator(POSTGRES_URL, cluster="miauflix", schema=coordinator_schema, ttl=5)
    try:
        await first.start()
        await second.start()
        await first.declare([TaskDecl("syncMovies", 5400.0)])
        stale = await first.acquire("syncMovies")
        assert isinstance(stale, Grant)
        # The first replica is paused past its lease: the run is handed over.
        await first.release(stale, wait=0, failures=0, outcome="lease_lost")
        current = await second.acquire("syncMovies")
        assert isinstance(current, Grant)
        newer = datetime(2026, 3, 15, tzinfo=UTC)
        async with pg_database.session(lease=_lease(second, current)) as session:
            await set_sync_state(session, "movie_changes", newer)
        with pytest.raises(LeaseLostError):
            async with pg_database.session(lease=_lease(first, stale)) as session:
                await set_sync_state(session, "movie_changes", PAST)
        async with pg_database.read_session() as session:
            assert await get_sync_state(session, "movie_changes") == newer
    finally:
        await first.close()
        await second.close()
