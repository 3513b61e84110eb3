"""`MediaService`: the `syncMovies` and `syncIncompleteSeasons` tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db import (
    Database,
    Season,
    claim_season_to_sync,
    clear_movie_details_retry,
    get_sync_state,
    held_claims,
    mark_season_synced,
    movie_details_failures,
    movies_due_for_details,
    pick_season_to_sync,
    record_movie_details_failure,
    record_season_sync_failure,
    set_sync_state,
    stored_movie_ids,
    upsert_episodes,
    upsert_movie,
    upsert_season,
)
from miauflix.providers import NotFound, ProviderError, TmdbClient
from miauflix.providers.tmdb import TmdbMovie
from miauflix.services._common import (
    Sleep,
    bounded_gather,
    episode_data,
    movie_data,
    season_details_data,
    with_retries,
)
from miauflix.services._retry import (
    Clock,
    ProviderOutage,
    ProviderPause,
    RetryPolicy,
    utc_now,
)
from tickwork import current_lease

__all__ = [
    "MOVIE_CHANGES_CHECKPOINT",
    "MOVIE_DETAILS_RETRY",
    "SEASON_RETRY",
    "MediaService",
    "MovieSyncReport",
]

logger = logging.getLogger("miauflix.media")

MOVIE_CHANGES_CHECKPOINT = "movie_changes"
"""The `sync_state` name of the movie changes checkpoint."""

SEASON_RETRY = RetryPolicy(base=60.0, cap=7 * 86400.0, gone_base=86400.0, give_up_after=8)
"""A failed season: 1 min, 2 min, 4 min...; a 404 waits a day, doubling up to a week; given up
after 8 failures in a row."""

MOVIE_DETAILS_RETRY = RetryPolicy(base=3600.0, cap=7 * 86400.0, gone_base=86400.0, give_up_after=8)
"""A changed movie whose details failed after the in-run retries: 1 h, 2 h, 4 h... up to a
week, by the next `syncMovies` runs; given up after 8 failures in a row."""

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MovieSyncReport:
    """What one `sync_movies()` did.

    Attributes:
        skipped: True when the last sync was too recent and nothing was asked.
        days: The UTC days completed (their checkpoint was saved).
        updated: Stored movies updated from their details.
        gone: Changed movies TMDB answered 404 for (left as they are).
        failed_day: The day that failed (the next run starts there), or None. Only the
            day's list of changes can fail a day; a movie whose details fail is queued.
        checkpoint: The checkpoint after the run, or None if none was ever saved.
        failed: Movies whose details failed in this run (queued for their own retry, or
            given up).
        retried: Queued movies whose details were fetched again in this run.
        error: Why `failed_day`'s list of changes could not be read, or None.
    """

    skipped: bool
    days: tuple[dt.date, ...] = ()
    updated: int = 0
    gone: int = 0
    failed_day: dt.date | None = None
    checkpoint: dt.datetime | None = None
    failed: int = 0
    retried: int = 0
    error: ProviderError | None = None

    @property
    def outage(self) -> ProviderOutage | None:
        """TMDB's error when a day's list of changes failed (the walk stopped there), else None.

        Days completed before it keep their checkpoint; movies whose details failed are each
        queued on their own and are no outage.
        """
        if self.failed_day is None or self.error is None:
            return None
        return ProviderOutage(self.error, f"movie changes from {self.failed_day} not synced")


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One movie's details fetch: the movie, None when TMDB says it is gone, or the error."""

    tmdb_id: int
    movie: TmdbMovie | None = None
    error: ProviderError | None = None


class MediaService:
    """Keeps movie metadata and TV seasons in step with TMDB.

    Args:
        database: The catalogue.
        tmdb: The TMDB client.
        clock: Returns the current aware UTC time.
        rng: Draws the retry jitter.
        concurrency: Movie detail requests in flight at once (`sync_movies`).
        max_days_back: Oldest day of changes walked, in days before today (TMDB keeps 14).
        first_lookback: Seconds of changes the first run (no checkpoint yet) looks back: 24 h,
            as the original backend (the lists fill the catalogue, and a new catalogue has
            nothing older to update); at most `max_days_back` days.
        details_retry: When a changed movie whose details failed is tried again.
        details_retry_batch: Queued movies retried at most per run.
        min_interval: `sync_movies` does nothing when the checkpoint is more recent than this
            many seconds.
        retry_delays: Seconds between the attempts of one TMDB call within a `sync_movies` run.
        sleep: Waits between attempts (tests pass a no-op).
        season_retry: When a failed season is tried again.
        claim_ttl: None (one replica: the season is picked), or seconds a season's claim
            holds (PostgreSQL, several replicas: see `SourceService`'s `claim_ttl`).
    """

    def __init__(
        self,
        database: Database,
        tmdb: TmdbClient,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        concurrency: int = 8,
        max_days_back: int = 14,
        first_lookback: float = 86400.0,
        details_retry: RetryPolicy = MOVIE_DETAILS_RETRY,
        details_retry_batch: int = 100,
        min_interval: float = 3600.0,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0),
        sleep: Sleep = asyncio.sleep,
        season_retry: RetryPolicy = SEASON_RETRY,
        claim_ttl: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        if not 0 <= max_days_back <= 14:
            raise ValueError(f"max_days_back must be between 0 and 14, got {max_days_back!r}")
        self._db = database
        self._tmdb = tmdb
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.concurrency = concurrency
        self.max_days_back = max_days_back
        if not 0 <= first_lookback <= max_days_back * 86400.0:
            raise ValueError(
                "first_lookback must be between 0 and max_days_back days in seconds "
                f"({max_days_back * 86400.0:g}), got {first_lookback!r}"
            )
        self.first_lookback = dt.timedelta(seconds=first_lookback)
        self.details_retry = details_retry
        self.details_retry_batch = details_retry_batch
        self.min_interval = dt.timedelta(seconds=min_interval)
        self.retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self.season_retry = season_retry
        self.season_pause = ProviderPause("syncIncompleteSeasons", clock)
        self.processed = {"syncMovies": 0, "syncIncompleteSeasons": 0}
        if claim_ttl is not None and not 0 < claim_ttl < float("inf"):
            raise ValueError(f"claim_ttl must be None or a finite number > 0, got {claim_ttl!r}")
        self.claim_ttl = claim_ttl
        self.claims_lost = {"syncIncompleteSeasons": 0}

    # -- syncMovies ------------------------------------------------------------------------------

    async def sync_movies(self) -> MovieSyncReport:
        """Walk TMDB's movie changes since the checkpoint, one UTC day at a time.

        Only movies already stored are updated (from their details). Each movie is its own
        error boundary: one whose details still fail after the in-run retries is queued with
        its own next attempt (`details_retry`) and the day completes without it; queued
        movies that are due are fetched first, in every run. The checkpoint is saved after
        each day: the end of that day, or now for today. Only a day whose list of changes
        cannot be read stops the run, with the checkpoint at its start, so the next run
        resumes there. The first run looks back `first_lookback`; later ones start at most
        `max_days_back` days before today; a checkpoint younger than `min_interval` skips the
        walk (not the queued retries).

        Under a coordinator each checkpoint is written under the run's lease
        (`Database.session(lease=...)`): a replica that lost it cannot move the checkpoint.

        Returns:
            What was walked and updated; its `outage` is set when a day's list of changes
            failed (TMDB's error in `error`).

        Raises:
            tickwork.LeaseLostError: The run's lease was lost; the checkpoint is the holder's.
        """
        retried, retry_failed = await self._retry_queued_movies()
        now = self._clock()
        async with self._db.read_session() as session:
            checkpoint = await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT)
        if checkpoint is not None and now - checkpoint < self.min_interval:
            logger.debug("movie changes synced at %s; skipping", checkpoint.isoformat())
            return MovieSyncReport(
                skipped=True, checkpoint=checkpoint, failed=retry_failed, retried=retried
            )
        today = now.date()
        oldest = today - dt.timedelta(days=self.max_days_back)
        day = (now - self.first_lookback).date() if checkpoint is None else checkpoint.date()
        day = max(oldest, day)
        if checkpoint is not None and checkpoint.date() < oldest:
            logger.info(
                "movie changes checkpoint %s is older than %d days; starting at %s",
                checkpoint.date(),
                self.max_days_back,
                oldest,
            )
        days: list[dt.date] = []
        updated = gone = 0
        failed = retry_failed
        while day <= today:
            try:
                day_updated, day_gone, day_failed = await self._sync_day(day)
            except ProviderError as error:
                logger.warning(
                    "movie changes of %s not synced (next run resumes there): %s", day, error
                )
                return MovieSyncReport(
                    False, tuple(days), updated, gone, day, checkpoint, failed, retried, error
                )
            updated += day_updated
            gone += day_gone
            failed += day_failed
            end_of_day = dt.datetime.combine(day + _DAY, dt.time(), dt.UTC)
            checkpoint = min(self._clock(), end_of_day)
            async with self._db.session(lease=current_lease()) as session:
                await set_sync_state(session, MOVIE_CHANGES_CHECKPOINT, checkpoint)
            days.append(day)
            day += _DAY
        logger.info(
            "movie changes synced for %d day(s): %d movies updated, %d queued for a retry",
            len(days),
            updated,
            failed,
        )
        return MovieSyncReport(False, tuple(days), updated, gone, None, checkpoint, failed, retried)

    async def _sync_day(self, day: dt.date) -> tuple[int, int, int]:
        changed: list[int] = []
        # One day is [day, day + 1): the simulator reads the range half-open, TMDB inclusive,
        # where the overlap with the next day only repeats idempotent updates.
        page = 1
        while True:
            answer = await with_retries(
                functools.partial(self._tmdb.movie_changes, day, day + _DAY, page),
                self.retry_delays,
                self._sleep,
            )
            changed.extend(change.tmdb_id for change in answer.results)
            if page >= answer.total_pages or not answer.results:
                break
            page += 1
        if not changed:
            return 0, 0, 0
        async with self._db.read_session() as session:
            stored = await stored_movie_ids(session, changed)
        if not stored:
            return 0, 0, 0
        return await self._fetch_and_store(sorted(stored))

    async def _retry_queued_movies(self) -> tuple[int, int]:
        """Fetch the queued movies that are due; return (fetched or gone, failed again)."""
        async with self._db.read_session() as session:
            due = await movies_due_for_details(
                session, now=self._clock(), limit=self.details_retry_batch
            )
        if not due:
            return 0, 0
        updated, gone, failed = await self._fetch_and_store(due)
        return updated + gone, failed

    async def _fetch_and_store(self, tmdb_ids: Sequence[int]) -> tuple[int, int, int]:
        """Fetch each movie's details and store them; queue the ones that failed.

        Returns the movies (updated, gone, failed).
        """

        async def details(tmdb_id: int) -> _Fetched:
            # The per-movie error boundary: a ProviderError stays with its movie, so one bad
            # movie (or two at once, which a TaskGroup would raise as an ExceptionGroup)
            # neither cancels its siblings nor fails the day.
            try:
                movie = await with_retries(
                    functools.partial(self._tmdb.movie, tmdb_id), self.retry_delays, self._sleep
                )
            except NotFound:
                logger.info("changed movie %s is gone from TMDB; left as stored", tmdb_id)
                return _Fetched(tmdb_id)
            except ProviderError as error:
                return _Fetched(tmdb_id, error=error)
            return _Fetched(tmdb_id, movie)

        fetched = await bounded_gather(tmdb_ids, details, self.concurrency)
        now = self._clock()
        updated = gone = failed = 0
        async with self._db.session() as session:
            failing = [item.tmdb_id for item in fetched if item.error is not None]
            failures = await movie_details_failures(session, failing) if failing else {}
            for item in fetched:
                if item.error is not None:
                    failed += 1
                    streak = failures.get(item.tmdb_id, 0) + 1
                    retry_at = self.details_retry.next_attempt(now, streak, item.error, self._rng)
                    await record_movie_details_failure(
                        session, item.tmdb_id, next_attempt_at=retry_at
                    )
                    logger.warning(
                        "details of movie %s failed (%d in a row), %s: %s",
                        item.tmdb_id,
                        streak,
                        "given up"
                        if retry_at is None
                        else f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S}",
                        item.error,
                    )
                    continue
                if item.movie is None:
                    gone += 1
                else:
                    updated += 1
                    await upsert_movie(session, movie_data(item.movie), now=now)
                await clear_movie_details_retry(session, item.tmdb_id)
        self.processed["syncMovies"] += updated
        return updated, gone, failed

    # -- syncIncompleteSeasons -------------------------------------------------------------------

    async def sync_incomplete_seasons(self) -> int:
        """Sync one due season: fetch it, store its details and episodes, mark it synced.

        A season that fails gets its own next attempt (`season_retry`) and the queue moves on;
        while TMDB itself is failing (timeouts, 5xx, 429) the task pauses briefly.

        Returns:
            1 when a season was synced, 0 otherwise (nothing due, paused, or it failed).
        """
        if self.season_pause.active():
            return 0
        now = self._clock()
        season: Season | None
        claim: int | None = None
        if self.claim_ttl is None:
            async with self._db.read_session() as session:
                season = await pick_season_to_sync(session, now=now)
        else:
            async with self._db.session() as session:
                season = await claim_season_to_sync(session, ttl=self.claim_ttl)
            claim = None if season is None else season.sync_claim
        if season is None:
            return 0
        show = season.show
        try:
            answer = await self._tmdb.season(show.tmdb_id, season.season_number)
        except ProviderError as error:
            self.season_pause.trip(error)
            failures = season.sync_failures + 1
            retry_at = self.season_retry.next_attempt(self._clock(), failures, error, self._rng)
            async with self._db.session() as session:
                if not await self._held(session, season.id, claim):
                    return 0
                await record_season_sync_failure(session, season.id, next_attempt_at=retry_at)
            logger.warning(
                "season %d of show %s (%s) failed (%d in a row), %s: %s",
                season.season_number,
                show.tmdb_id,
                show.name,
                failures,
                "given up" if retry_at is None else f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S}",
                error,
            )
            return 0
        self.season_pause.clear()
        now = self._clock()
        async with self._db.session() as session:
            if not await self._held(session, season.id, claim):
                return 0
            # Before marking it synced: the season is still unsynced here, so storing its
            # episode count does not re-queue it (`upsert_season`'s `grew` needs `synced`).
            await upsert_season(session, season.show_id, season_details_data(answer), now=now)
            added = await upsert_episodes(
                session, season.id, (episode_data(e) for e in answer.episodes), now=now
            )
            await mark_season_synced(session, season.id, now=now)
        logger.debug(
            "season %d of show %s synced: %d new episodes",
            season.season_number,
            show.tmdb_id,
            added,
        )
        self.processed["syncIncompleteSeasons"] += 1
        return 1

    async def _held(self, session: AsyncSession, season_id: int, claim: int | None) -> bool:
        # Whether this run may still write the season back (always, without claims).
        if claim is None or await held_claims(session, "season", [season_id], claim):
            return True
        self.claims_lost["syncIncompleteSeasons"] += 1
        logger.info(
            "season id %d: claim %d lost (claimed again since): not written", season_id, claim
        )
        return False
