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
    get_sync_state,
    held_claims,
    mark_season_synced,
    pick_season_to_sync,
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
from miauflix.services._retry import Clock, ProviderPause, RetryPolicy, utc_now
from tickwork import current_lease

__all__ = ["MOVIE_CHANGES_CHECKPOINT", "SEASON_RETRY", "MediaService", "MovieSyncReport"]

logger = logging.getLogger("miauflix.media")

MOVIE_CHANGES_CHECKPOINT = "movie_changes"
"""The `sync_state` name of the movie changes checkpoint."""

SEASON_RETRY = RetryPolicy(base=60.0, cap=7 * 86400.0, gone_base=86400.0, give_up_after=8)
"""A failed season: 1 min, 2 min, 4 min...; a 404 waits a day, doubling up to a week; given up
after 8 failures in a row."""

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MovieSyncReport:
    """What one `sync_movies()` did.

    Attributes:
        skipped: True when the last sync was too recent and nothing was asked.
        days: The UTC days completed (their checkpoint was saved).
        updated: Stored movies updated from their details.
        gone: Changed movies TMDB answered 404 for (left as they are).
        failed_day: The day that failed (the next run starts there), or None.
        checkpoint: The checkpoint after the run, or None if none was ever saved.
    """

    skipped: bool
    days: tuple[dt.date, ...] = ()
    updated: int = 0
    gone: int = 0
    failed_day: dt.date | None = None
    checkpoint: dt.datetime | None = None


class MediaService:
    """Keeps movie metadata and TV seasons in step with TMDB.

    Args:
        database: The catalogue.
        tmdb: The TMDB client.
        clock: Returns the current aware UTC time.
        rng: Draws the retry jitter.
        concurrency: Movie detail requests in flight at once (`sync_movies`).
        max_days_back: Oldest day of changes walked, in days before today (TMDB keeps 14).
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

        Only movies already stored are updated (from their details). The checkpoint is saved
        after each day: the end of that day, or now for today. A day that fails stops the
        run with the checkpoint at its start, so the next run resumes there. The walk starts
        at most `max_days_back` days before today; a checkpoint younger than `min_interval`
        skips the run.

        Under a coordinator each checkpoint is written under the run's lease
        (`Database.session(lease=...)`): a replica that lost it cannot move the checkpoint.

        Returns:
            What was walked and updated.

        Raises:
            tickwork.LeaseLostError: The run's lease was lost; the checkpoint is the holder's.
        """
        now = self._clock()
        async with self._db.read_session() as session:
            checkpoint = await get_sync_state(session, MOVIE_CHANGES_CHECKPOINT)
        if checkpoint is not None and now - checkpoint < self.min_interval:
            logger.debug("movie changes synced at %s; skipping", checkpoint.isoformat())
            return MovieSyncReport(skipped=True, checkpoint=checkpoint)
        today = now.date()
        oldest = today - dt.timedelta(days=self.max_days_back)
        day = oldest if checkpoint is None else max(oldest, checkpoint.date())
        if checkpoint is not None and checkpoint.date() < oldest:
            logger.info(
                "movie changes checkpoint %s is older than %d days; starting at %s",
                checkpoint.date(),
                self.max_days_back,
                oldest,
            )
        days: list[dt.date] = []
        updated = gone = 0
        while day <= today:
            try:
                day_updated, day_gone = await self._sync_day(day)
            except ProviderError as error:
                logger.warning(
                    "movie changes of %s not synced (next run resumes there): %s", day, error
                )
                return MovieSyncReport(False, tuple(days), updated, gone, day, checkpoint)
            updated += day_updated
            gone += day_gone
            end_of_day = dt.datetime.combine(day + _DAY, dt.time(), dt.UTC)
            checkpoint = min(self._clock(), end_of_day)
            async with self._db.session(lease=current_lease()) as session:
                await set_sync_state(session, MOVIE_CHANGES_CHECKPOINT, checkpoint)
            days.append(day)
            day += _DAY
        logger.info("movie changes synced for %d day(s): %d movies updated", len(days), updated)
        return MovieSyncReport(False, tuple(days), updated, gone, None, checkpoint)

    async def _sync_day(self, day: dt.date) -> tuple[int, int]:
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
            return 0, 0
        async with self._db.read_session() as session:
            stored = await stored_movie_ids(session, changed)
        if not stored:
            return 0, 0

        async def details(tmdb_id: int) -> TmdbMovie | None:
            try:
                return await with_retries(
                    functools.partial(self._tmdb.movie, tmdb_id), self.retry_delays, self._sleep
                )
            except NotFound:
                logger.info("changed movie %s is gone from TMDB; left as stored", tmdb_id)
                return None

        fetched = await bounded_gather(sorted(stored), details, self.concurrency)
        now = self._clock()
        async with self._db.session() as session:
            for movie in fetched:
                if movie is not None:
                    await upsert_movie(session, movie_data(movie), now=now)
        found = sum(movie is not None for movie in fetched)
        self.processed["syncMovies"] += found
        return found, len(fetched) - found

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
