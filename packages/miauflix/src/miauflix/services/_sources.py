"""`SourceService`: the source search, `.torrent` file, tracker stats and resync tasks.

Every method is one execution's unit of work: pick due items in one short read session
(no write lock on SQLite), call the provider with no session open (a write session's
`BEGIN IMMEDIATE` would hold the write lock across the network call), then write the outcome
in another short session. Nothing due costs one
indexed query, after which the two sub-second tasks skip even that for `idle_recheck` seconds;
a paused task (its provider is failing) costs nothing.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db import (
    ClaimQueue,
    Database,
    Movie,
    MovieSource,
    claim_movie_for_resync,
    claim_movie_for_source_search,
    claim_sources_for_stats,
    claim_sources_missing_file,
    held_claims,
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
    upsert_sources,
)
from miauflix.providers import (
    ContentDirectory,
    NotFound,
    ProviderError,
    ScrapeResult,
    TorrentFile,
    TorrentFileFetcher,
    TrackerScraper,
    search_directories,
)
from miauflix.services._common import bounded_gather, source_data
from miauflix.services._retry import (
    Clock,
    ProviderPause,
    RetryPolicy,
    is_provider_wide,
    jittered,
    utc_now,
)

__all__ = [
    "FILE_RETRY",
    "RESYNC_RETRY",
    "SEARCH_RETRY",
    "STATS_MAX_WAIT",
    "STATS_MIN_WAIT",
    "STATS_RETRY",
    "SourceService",
    "relative_change",
    "stats_wait",
]

logger = logging.getLogger("miauflix.sources")

SEARCH_RETRY = RetryPolicy(base=60.0, cap=6 * 3600.0, gone_base=3600.0)
"""A directory errored: 1 min, 2 min, ... up to 6 h (never given up: directories recover)."""

FILE_RETRY = RetryPolicy(base=60.0, cap=24 * 3600.0, gone_base=3600.0, give_up_after=8)
"""A `.torrent` not obtained: 1 min doubling (1 h doubling when not found), given up after 8."""

STATS_RETRY = RetryPolicy(base=900.0, cap=24 * 3600.0, gone_base=3600.0)
"""No tracker answered for a source: 15 min doubling up to a day (the stats queue never ends)."""

RESYNC_RETRY = RetryPolicy(base=3600.0, cap=7 * 86400.0, gone_base=3600.0, give_up_after=5)
"""A movie still missing source data after a resync: 1 h doubling, given up after 5 attempts."""

STATS_MIN_WAIT = 6 * 3600.0
"""Shortest wait between two stats checks of a source, in seconds."""

STATS_MAX_WAIT = 72 * 3600.0
"""Longest wait between two stats checks of a source, in seconds."""

# Next source search of a movie no directory has sources for: 45-75 minutes.
_NO_SOURCES_WAIT = (45 * 60.0, 75 * 60.0)


def relative_change(before: int | None, after: int) -> float:
    """`|after - before| / before` (a count going from 0 to n changes by n); 1.0 when unknown."""
    if before is None:
        return 1.0
    return abs(after - before) / max(before, 1)


def stats_wait(
    previous_wait: float | None,
    before: tuple[int | None, int | None],
    after: tuple[int, int],
    rng: random.Random,
) -> float:
    """Seconds until a source's next stats check, from how much its counts moved.

    The change is the larger relative change of seeders and leechers (`relative_change`).
    Under 5 %: the previous wait doubles; 5-10 %: it stays; 10-20 %: x0.75; 20-50 %: halved;
    over 50 %: back to the minimum. The result is kept within 6-72 h, then jittered by
    +-20 % and kept within 6-72 h again.

    Args:
        previous_wait: The wait before this check, in seconds; None for a first check (the
            minimum is used).
        before: (seeders, leechers) known before this check (None: unknown).
        after: (seeders, leechers) the tracker reported now.
        rng: Draws the jitter.

    Returns:
        The wait, in seconds, within [`STATS_MIN_WAIT`, `STATS_MAX_WAIT`].
    """
    wait = STATS_MIN_WAIT if previous_wait is None else previous_wait
    change = max(relative_change(before[0], after[0]), relative_change(before[1], after[1]))
    if change < 0.05:
        wait *= 2.0
    elif change <= 0.10:
        pass
    elif change <= 0.20:
        wait *= 0.75
    elif change <= 0.50:
        wait *= 0.5
    else:
        wait = STATS_MIN_WAIT
    wait = min(STATS_MAX_WAIT, max(STATS_MIN_WAIT, wait))
    return min(STATS_MAX_WAIT, max(STATS_MIN_WAIT, jittered(wait, rng)))


@dataclass(frozen=True, slots=True)
class _FileOutcome:
    source: MovieSource
    file: TorrentFile | None
    error: ProviderError | None


class SourceService:
    """Finds movie sources, downloads their `.torrent` files and keeps tracker stats fresh.

    Args:
        database: The catalogue.
        directories: Content directories, asked in order (the first with sources wins).
        torrent_files: Downloads and verifies `.torrent` files.
        trackers: Scrapes trackers for seeders/leechers.
        clock: Returns the current aware UTC time.
        rng: Draws jitter and the no-sources wait.
        file_batch: Sources picked per `search_torrent_files_for_sources()` run.
        file_concurrency: Downloads in flight at once (a semaphore, always released).
        stats_batch: Sources scraped per `sync_stats_for_sources()` run.
        idle_recheck: Seconds the two sub-second tasks (source search, file search) wait
            before querying again after finding nothing due; new sources stored by this
            service end the wait at once. 0 queries on every run.
        claim_ttl: None (one replica: plain picks), or seconds a claim holds (PostgreSQL,
            several replicas: items are claimed with `miauflix.db.claim_*`, and every
            write-back first checks with `held_claims` that its claim is still current;
            an item whose claim was lost is not written, and counted in `claims_lost`).

    Raises:
        ValueError: A batch size or the concurrency is < 1.
    """

    def __init__(
        self,
        database: Database,
        *,
        directories: Sequence[ContentDirectory],
        torrent_files: TorrentFileFetcher,
        trackers: TrackerScraper,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        file_batch: int = 4,
        file_concurrency: int = 4,
        stats_batch: int = 5,
        idle_recheck: float = 1.0,
        claim_ttl: float | None = None,
    ) -> None:
        for name, value in (
            ("file_batch", file_batch),
            ("file_concurrency", file_concurrency),
            ("stats_batch", stats_batch),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        if not 0 <= idle_recheck < float("inf"):
            raise ValueError(f"idle_recheck must be a finite number >= 0, got {idle_recheck!r}")
        self._db = database
        self.directories = tuple(directories)
        self._files = torrent_files
        self._trackers = trackers
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.file_batch = file_batch
        self.file_concurrency = file_concurrency
        self.stats_batch = stats_batch
        # Idle, the 0.1 s and 0.2 s tasks would query 15 times a second for nothing; after an
        # empty pick they wait `idle_recheck` seconds (new movies wait at most that long).
        self.idle_recheck = timedelta(seconds=idle_recheck)
        self._search_idle_until: datetime | None = None
        self._file_idle_until: datetime | None = None
        self.search_pause = ProviderPause("movieSourceSearch", clock)
        self.file_pause = ProviderPause("dataFileSearch", clock)
        self.stats_pause = ProviderPause("updateSourcesStats", clock)
        self.resync_pause = ProviderPause("resyncMovieSources", clock)
        if claim_ttl is not None and not 0 < claim_ttl < float("inf"):
            raise ValueError(f"claim_ttl must be None or a finite number > 0, got {claim_ttl!r}")
        self.claim_ttl = claim_ttl
        self.processed = {
            "movieSourceSearch": 0,
            "dataFileSearch": 0,
            "updateSourcesStats": 0,
            "resyncMovieSources": 0,
        }
        self.claims_lost = {
            "movieSourceSearch": 0,
            "dataFileSearch": 0,
            "updateSourcesStats": 0,
            "resyncMovieSources": 0,
        }

    async def _held(
        self,
        session: AsyncSession,
        task: str,
        queue: ClaimQueue,
        ids: Sequence[int],
        claim: int | None,
    ) -> set[int]:
        # The ids this run may still write back (all of them without claims).
        if claim is None:
            return set(ids)
        held = await held_claims(session, queue, ids, claim)
        if lost := [i for i in ids if i not in held]:
            self.claims_lost[task] += len(lost)
            logger.info(
                "%s: claim %d lost for %s id(s) %s (claimed again since): not written back",
                task,
                claim,
                queue,
                ", ".join(map(str, lost)),
            )
        return held

    def _retry_log(self, retry_at: datetime | None) -> str:
        return "given up" if retry_at is None else f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S}"

    # -- movieSourceSearch -----------------------------------------------------------------------

    async def search_sources_for_movies(self) -> int:
        """Search sources for one movie: the most popular with an IMDb id whose search is due.

        The directories are asked in order and the first with sources wins; its sources are
        stored and the movie leaves the search queue. When every directory answered "none"
        the next search is in 45-75 minutes; when one errored, the movie backs off
        (`SEARCH_RETRY`) and, for a provider-wide error, the task pauses briefly.

        Returns:
            The number of new sources stored (0 when nothing was due or none was found).
        """
        if self.search_pause.active():
            return 0
        now = self._clock()
        if self._search_idle_until is not None and now < self._search_idle_until:
            return 0
        movie: Movie | None
        claim: int | None = None
        if self.claim_ttl is None:
            async with self._db.read_session() as session:
                movie = await pick_movie_for_source_search(session, now=now)
        else:
            async with self._db.session() as session:
                movie = await claim_movie_for_source_search(session, ttl=self.claim_ttl)
            claim = None if movie is None else movie.source_search_claim
        if movie is None:
            self._search_idle_until = now + self.idle_recheck
            return 0
        self._search_idle_until = None
        assert movie.imdb_id is not None  # the pick only returns movies with one
        task = "movieSourceSearch"
        try:
            result = await search_directories(self.directories, movie.imdb_id)
        except ValueError as error:
            async with self._db.session() as session:
                if await self._held(session, task, "source_search", [movie.id], claim):
                    await record_source_search_failure(session, movie.id, next_search_at=None)
            logger.warning("movie %s: source search given up: %s", movie.tmdb_id, error)
            return 0
        now = self._clock()
        if result.sources:
            self.search_pause.clear()
            async with self._db.session() as session:
                if not await self._held(session, task, "source_search", [movie.id], claim):
                    return 0
                added = await upsert_sources(
                    session, movie.id, (source_data(s) for s in result.sources), now=now
                )
                await record_source_search(
                    session,
                    movie.id,
                    directories=result.searched,
                    searched_at=now,
                    next_search_at=None,
                )
            self.processed["movieSourceSearch"] += 1
            if added:
                self._file_idle_until = None
            logger.debug("movie %s: %d new sources from %s", movie.tmdb_id, added, result.directory)
            return added
        if result.complete:
            self.search_pause.clear()
            next_search = now + timedelta(seconds=self._rng.uniform(*_NO_SOURCES_WAIT))
            async with self._db.session() as session:
                if not await self._held(session, task, "source_search", [movie.id], claim):
                    return 0
                await record_source_search(
                    session,
                    movie.id,
                    directories=result.searched,
                    searched_at=now,
                    next_search_at=next_search,
                )
            self.processed["movieSourceSearch"] += 1
            logger.debug("movie %s: no sources; next search at %s", movie.tmdb_id, next_search)
            return 0
        failure = next(iter(result.errors.values()))
        self.search_pause.trip(failure)
        failures = movie.source_search_failures + 1
        retry_at = SEARCH_RETRY.next_attempt(now, failures, failure, self._rng)
        async with self._db.session() as session:
            if not await self._held(session, task, "source_search", [movie.id], claim):
                return 0
            await record_source_search_failure(session, movie.id, next_search_at=retry_at)
        self.processed["movieSourceSearch"] += 1
        # search_directories() already logged each directory's error at WARNING.
        logger.info(
            "movie %s: source search failed (%d in a row), %s",
            movie.tmdb_id,
            failures,
            self._retry_log(retry_at),
        )
        return 0

    # -- dataFileSearch --------------------------------------------------------------------------

    async def search_torrent_files_for_sources(self) -> int:
        """Download the `.torrent` files of a small batch of sources lacking one.

        The batch is round-robin across movies (each movie's best missing source first, least
        complete movies first); downloads run at most `file_concurrency` at once, from the
        direct URL or the torrent cache, and a file is kept only if its info hash matches.
        A source that fails backs off on its own (`FILE_RETRY`); at the first failure of a
        source with a direct URL its movie's source search is queued again, so a URL the
        directory has changed since is used (`upsert_sources` re-queues the file).

        Returns:
            The number of files stored.
        """
        if self.file_pause.active():
            return 0
        now = self._clock()
        if self._file_idle_until is not None and now < self._file_idle_until:
            return 0
        claim: int | None = None
        if self.claim_ttl is None:
            async with self._db.read_session() as session:
                sources = await pick_sources_missing_file(session, now=now, limit=self.file_batch)
        else:
            async with self._db.session() as session:
                sources = await claim_sources_missing_file(
                    session, ttl=self.claim_ttl, limit=self.file_batch
                )
            claim = sources[0].file_claim if sources else None
        if not sources:
            self._file_idle_until = now + self.idle_recheck
            return 0
        self._file_idle_until = None

        async def fetch(source: MovieSource) -> _FileOutcome:
            try:
                found = await self._files.fetch(source.info_hash, source.download_url)
            except ProviderError as error:
                return _FileOutcome(source, None, error)
            return _FileOutcome(source, found, None)

        outcomes = await bounded_gather(sources, fetch, self.file_concurrency)
        now = self._clock()
        stored = 0
        failed: list[tuple[_FileOutcome, int, datetime | None]] = []
        async with self._db.session() as session:
            held = await self._held(
                session, "dataFileSearch", "file", [s.id for s in sources], claim
            )
            for outcome in outcomes:
                if outcome.source.id not in held:
                    continue
                if outcome.file is not None:
                    await store_source_file(session, outcome.source.id, outcome.file.data, now=now)
                    stored += 1
                    continue
                assert outcome.error is not None
                failures = outcome.source.file_failures + 1
                retry_at = FILE_RETRY.next_attempt(now, failures, outcome.error, self._rng)
                await record_file_failure(session, outcome.source.id, next_attempt_at=retry_at)
                if failures == 1 and outcome.source.download_url:
                    # The direct URL may be stale (a moved host, the demo simulator's old
                    # port): ask the directory again; a new URL re-queues the file at once.
                    await queue_source_search(session, outcome.source.movie_id, at=now)
                failed.append((outcome, failures, retry_at))
        for outcome, failures, retry_at in failed:
            logger.warning(
                "torrent file of source %s (%s) not obtained (%d in a row), %s: %s",
                outcome.source.id,
                outcome.source.info_hash,
                failures,
                self._retry_log(retry_at),
                outcome.error,
            )
        errors = [o.error for o in outcomes if o.error is not None]
        if stored:
            self.file_pause.clear()
        elif errors and all(is_provider_wide(e) for e in errors):
            self.file_pause.trip(errors[0])
        self.processed["dataFileSearch"] += stored
        return stored

    # -- updateSourcesStats ----------------------------------------------------------------------

    async def sync_stats_for_sources(self) -> int:
        """Scrape seeders/leechers for up to `stats_batch` sources whose check is due.

        Each source's next check follows its volatility (`stats_wait`); a source no tracker
        reports backs off on its own (`STATS_RETRY`); when every tracker fails, the whole
        batch backs off and the task pauses briefly.

        Returns:
            The number of sources whose stats were updated.
        """
        if self.stats_pause.active():
            return 0
        now = self._clock()
        claim: int | None = None
        if self.claim_ttl is None:
            async with self._db.read_session() as session:
                sources = await pick_sources_for_stats(session, now=now, limit=self.stats_batch)
        else:
            async with self._db.session() as session:
                sources = await claim_sources_for_stats(
                    session, ttl=self.claim_ttl, limit=self.stats_batch
                )
            claim = sources[0].stats_claim if sources else None
        if not sources:
            return 0
        try:
            results = await self._trackers.scrape([s.info_hash for s in sources])
        except ProviderError as error:
            self.stats_pause.trip(error)
            await self._stats_failures(sources, error, claim)
            return 0
        self.stats_pause.clear()
        now = self._clock()
        unknown: list[MovieSource] = []
        updated = 0
        async with self._db.session() as session:
            held = await self._held(
                session, "updateSourcesStats", "stats", [s.id for s in sources], claim
            )
            for source in sources:
                if source.id not in held:
                    continue
                result = results.get(source.info_hash)
                if result is None:
                    unknown.append(source)
                    continue
                await record_stats(
                    session,
                    source.id,
                    seeders=result.seeders,
                    leechers=result.leechers,
                    checked_at=now,
                    next_check_at=now + timedelta(seconds=self._next_wait(source, result)),
                )
                updated += 1
        if unknown:
            await self._stats_failures(
                unknown, NotFound("trackers", "/scrape", "no tracker reports this info hash"), claim
            )
        self.processed["updateSourcesStats"] += updated
        return updated

    def _next_wait(self, source: MovieSource, result: ScrapeResult) -> float:
        # Not next_stats_check_at - last_stats_check: after a failed check the former is a
        # retry time, and the outage would count as the previous wait (with a 5-10 % change,
        # a day of tracker errors turned a 6 h wait into 30 h). Covered by
        # test_a_failed_check_does_not_stretch_the_next_volatility_wait.
        previous = source.stats_wait_seconds
        if previous is not None and (not math.isfinite(previous) or previous <= 0):
            previous = None
        return stats_wait(
            previous,
            (source.seeders, source.leechers),
            (result.seeders, result.leechers),
            self._rng,
        )

    async def _stats_failures(
        self, sources: Sequence[MovieSource], error: ProviderError, claim: int | None
    ) -> None:
        now = self._clock()
        async with self._db.session() as session:
            held = await self._held(
                session, "updateSourcesStats", "stats", [s.id for s in sources], claim
            )
            for source in sources:
                if source.id not in held:
                    continue
                failures = source.stats_failures + 1
                retry_at = STATS_RETRY.next_attempt(now, failures, error, self._rng)
                assert retry_at is not None  # STATS_RETRY never gives up
                await record_stats_failure(session, source.id, next_check_at=retry_at)
        logger.warning(
            "stats of %d source(s) not updated (ids %s): %s",
            len(sources),
            ", ".join(str(s.id) for s in sources),
            error,
        )

    # -- resyncMovieSources ----------------------------------------------------------------------

    async def resync_movie_sources(self) -> int:
        """Ask again the directory of one movie whose sources lack upload date or type.

        What the directory now says fills what is missing (known values are kept). Every
        attempt is recorded: the movie leaves the queue once complete, otherwise it waits
        (`RESYNC_RETRY`) and is given up after five attempts, so no movie is picked forever.

        Returns:
            1 when the directory answered and the movie's sources were updated, else 0.
        """
        if self.resync_pause.active():
            return 0
        now = self._clock()
        claim: int | None = None
        if self.claim_ttl is None:
            async with self._db.read_session() as session:
                movie = await pick_movie_for_resync(session, now=now)
                if movie is None:
                    return 0
                sources = await list_movie_sources(session, movie.id)
        else:
            async with self._db.session() as session:
                movie = await claim_movie_for_resync(session, ttl=self.claim_ttl)
                if movie is None:
                    return 0
                claim = movie.resync_claim
                sources = await list_movie_sources(session, movie.id)
        task = "resyncMovieSources"
        ids = [movie.id]
        attempt = movie.resync_attempts + 1
        wanted = {
            s.source_directory for s in sources if s.uploaded_at is None or s.source_type is None
        }
        directories = [d for d in self.directories if d.name in wanted]
        if movie.imdb_id is None or not directories:
            async with self._db.session() as session:
                if await self._held(session, task, "resync", ids, claim):
                    await record_resync(session, movie.id, next_attempt_at=None)
            logger.info(
                "movie %s: resync given up (no IMDb id or directory %s not configured)",
                movie.tmdb_id,
                ", ".join(sorted(wanted)) or "unknown",
            )
            return 0
        known = {s.info_hash for s in sources}
        found = []
        try:
            for directory in directories:
                found.extend(await directory.search(movie.imdb_id))
        except ProviderError as error:
            self.resync_pause.trip(error)
            retry_at = RESYNC_RETRY.next_attempt(self._clock(), attempt, error, self._rng)
            async with self._db.session() as session:
                if await self._held(session, task, "resync", ids, claim):
                    await record_resync(session, movie.id, next_attempt_at=retry_at)
            logger.warning(
                "movie %s: resync attempt %d failed, %s: %s",
                movie.tmdb_id,
                attempt,
                self._retry_log(retry_at),
                error,
            )
            return 0
        except ValueError as error:
            async with self._db.session() as session:
                if await self._held(session, task, "resync", ids, claim):
                    await record_resync(session, movie.id, next_attempt_at=None)
            logger.warning("movie %s: resync given up: %s", movie.tmdb_id, error)
            return 0
        self.resync_pause.clear()
        now = self._clock()
        still_missing = NotFound("resync", "/", "sources still lack upload date or type")
        retry_at = RESYNC_RETRY.next_attempt(now, attempt, still_missing, self._rng)
        async with self._db.session() as session:
            if not await self._held(session, task, "resync", ids, claim):
                return 0
            await upsert_sources(
                session,
                movie.id,
                (source_data(c) for c in found if c.info_hash in known),
                now=now,
            )
            incomplete = await record_resync(session, movie.id, next_attempt_at=retry_at)
        logger.debug(
            "movie %s: resync attempt %d, %s",
            movie.tmdb_id,
            attempt,
            "still incomplete" if incomplete else "complete",
        )
        self.processed["resyncMovieSources"] += 1
        return 1
