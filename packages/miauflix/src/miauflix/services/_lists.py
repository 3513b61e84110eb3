"""`ListSynchronizer`: the `refreshLists` task, rebuilding TMDB's lists in the catalogue."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from miauflix.db import (
    Database,
    GenreData,
    MediaListData,
    get_movie_by_tmdb_id,
    get_show_by_tmdb_id,
    replace_media_list,
    upsert_genre_translations,
    upsert_genres,
    upsert_movie,
    upsert_season,
    upsert_show,
)
from miauflix.providers import NotFound, ProviderError, TmdbClient
from miauflix.providers.tmdb import (
    TmdbMovie,
    TmdbMovieSummary,
    TmdbPage,
    TmdbShow,
    TmdbShowSummary,
)
from miauflix.services._common import (
    Sleep,
    bounded_gather,
    movie_data,
    movie_summary_data,
    season_data,
    show_data,
    show_summary_data,
    with_retries,
)
from miauflix.services._retry import Clock, ProviderOutage, utc_now
from tickwork import current_lease

__all__ = ["LIST_SPECS", "ListSpec", "ListSyncReport", "ListSynchronizer"]

logger = logging.getLogger("miauflix.lists")

T = TypeVar("T")
Item = TypeVar("Item", TmdbMovieSummary, TmdbShowSummary)


@dataclass(frozen=True, slots=True)
class ListSpec:
    """One TMDB list kept in the catalogue.

    Attributes:
        slug: The `media_list` key.
        name: Display name.
        kind: `"movie"` or `"show"`.
        endpoint: The `TmdbClient` method returning one page.
    """

    slug: str
    name: str
    kind: Literal["movie", "show"]
    endpoint: Literal["popular_movies", "top_rated_movies", "popular_shows"]


LIST_SPECS: tuple[ListSpec, ...] = (
    ListSpec("popular-movies", "Popular movies", "movie", "popular_movies"),
    ListSpec("top-rated-movies", "Top rated movies", "movie", "top_rated_movies"),
    ListSpec("popular-shows", "Popular TV shows", "show", "popular_shows"),
)
"""The three lists of the seed: popular movies, top-rated movies, popular shows."""


@dataclass(frozen=True, slots=True)
class ListSyncReport:
    """What one `synchronize()` did.

    Attributes:
        refreshed: Slugs of the lists whose content was replaced.
        failed: Slug -> the error that left the list as it was.
        movies: Movies written (created or updated).
        shows: Shows written (created or updated).
        details_failed: Items whose details could not be fetched (listed with what was known).
    """

    refreshed: tuple[str, ...]
    failed: dict[str, ProviderError] = field(default_factory=dict)
    movies: int = 0
    shows: int = 0
    details_failed: int = 0

    @property
    def outage(self) -> ProviderOutage | None:
        """TMDB's error when no list was refreshed and at least one failed, else None.

        The error is the last list's (the freshest word on TMDB). A run that refreshed some
        lists is a success with the others left as they were: it has no outage.
        """
        if self.refreshed or not self.failed:
            return None
        return ProviderOutage(list(self.failed.values())[-1], "no list refreshed")


class ListSynchronizer:
    """Rebuilds the three TMDB lists (popular movies, top-rated movies, popular shows).

    One `synchronize()` fetches up to `pages` pages of each list, the details of every item
    (the IMDb id the source search needs, a show's seasons), creates or updates every item,
    then replaces each list's content in one transaction. A page that still fails after the
    in-run retries leaves that list exactly as it was (never empty or half-written); an
    item whose details fail is listed with what the list page said (or what is stored).

    Args:
        database: The catalogue.
        tmdb: The TMDB client.
        clock: Returns the current aware UTC time.
        pages: Pages fetched per list (TMDB pages hold 20 items).
        concurrency: Detail requests in flight at once.
        retry_delays: Seconds between the attempts of one TMDB call within a run.
        sleep: Waits between attempts (tests pass a no-op).
        specs: The lists to keep.
        languages: ISO 639-1 codes whose genre names are kept too (two more TMDB requests
            per language and run); the English names are always kept.

    Raises:
        ValueError: `pages` or `concurrency` is < 1.
    """

    def __init__(
        self,
        database: Database,
        tmdb: TmdbClient,
        *,
        clock: Clock = utc_now,
        pages: int = 6,
        concurrency: int = 8,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
        sleep: Sleep = asyncio.sleep,
        specs: Sequence[ListSpec] = LIST_SPECS,
        languages: Sequence[str] = (),
    ) -> None:
        if pages < 1:
            raise ValueError(f"pages must be >= 1, got {pages!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self._db = database
        self._tmdb = tmdb
        self._clock = clock
        self.pages = pages
        self.concurrency = concurrency
        self.retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self.specs = tuple(specs)
        self.languages = tuple(languages)
        self.processed = 0

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(call, self.retry_delays, self._sleep)

    async def synchronize(self) -> ListSyncReport:
        """Refresh the genres and every list (the `refreshLists` task's unit of work).

        Returns:
            What was refreshed, and why a list was left as it was; its `outage` is set when
            no list was refreshed because TMDB failed.
        """
        await self._sync_genres()
        refreshed: list[str] = []
        failed: dict[str, ProviderError] = {}
        movies = shows = details_failed = 0
        for spec in self.specs:
            try:
                if spec.kind == "movie":
                    movie_pages = await self._fetch_pages(getattr(self._tmdb, spec.endpoint))
                else:
                    show_pages = await self._fetch_pages(getattr(self._tmdb, spec.endpoint))
            except ProviderError as error:
                logger.warning("list %s left unchanged: %s", spec.slug, error)
                failed[spec.slug] = error
                continue
            if spec.kind == "movie":
                written, missing = await self._write_movies(spec, movie_pages)
                movies += written
            else:
                written, missing = await self._write_shows(spec, show_pages)
                shows += written
            details_failed += missing
            refreshed.append(spec.slug)
            self.processed += written
        logger.info(
            "lists refreshed: %s (%d movies, %d shows)%s",
            ", ".join(refreshed) or "none",
            movies,
            shows,
            f"; unchanged: {', '.join(failed)}" if failed else "",
        )
        return ListSyncReport(tuple(refreshed), failed, movies, shows, details_failed)

    async def _sync_genres(self) -> None:
        try:
            genres = [
                *await self._retry(self._tmdb.movie_genres),
                *await self._retry(self._tmdb.tv_genres),
            ]
        except ProviderError as error:
            # Genres only label items; unknown genre ids are skipped, so carry on.
            logger.warning("genres not refreshed: %s", error)
            return
        async with self._db.session() as session:
            await upsert_genres(session, (GenreData(g.id, g.name) for g in genres))
        for language in self.languages:
            try:
                named = [
                    *await self._retry(functools.partial(self._tmdb.movie_genres, language)),
                    *await self._retry(functools.partial(self._tmdb.tv_genres, language)),
                ]
            except ProviderError as error:
                logger.warning("genre names in %s not refreshed: %s", language, error)
                continue
            async with self._db.session() as session:
                await upsert_genre_translations(
                    session, language, (GenreData(g.id, g.name) for g in named)
                )

    async def _fetch_pages(
        self, endpoint: Callable[[int], Awaitable[TmdbPage[Item]]]
    ) -> list[Item]:
        items: dict[int, Item] = {}
        for page in range(1, self.pages + 1):
            answer = await self._retry(functools.partial(endpoint, page))
            for item in answer.results:
                items.setdefault(item.tmdb_id, item)
            if page >= answer.total_pages or not answer.results:
                break
        return list(items.values())

    async def _details(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        try:
            return await self._retry(call)
        except NotFound:
            logger.info("%s is gone from TMDB; listed as the list page describes it", what)
        except ProviderError as error:
            logger.warning("details of %s not fetched: %s", what, error)
        return None

    async def _write_movies(
        self, spec: ListSpec, summaries: list[TmdbMovieSummary]
    ) -> tuple[int, int]:
        async def details(summary: TmdbMovieSummary) -> TmdbMovie | None:
            return await self._details(
                lambda: self._tmdb.movie(summary.tmdb_id), f"movie {summary.tmdb_id}"
            )

        fetched = await bounded_gather(summaries, details, self.concurrency)
        now = self._clock()
        ids: list[int] = []
        written = 0
        # Under a coordinator the list is replaced under the run's lease: a replica that lost
        # it (paused, partitioned) raises LeaseLostError here and writes nothing.
        async with self._db.session(lease=current_lease()) as session:
            # Rows are written in tmdb_id order, as syncMovies writes them: two transactions
            # upserting the same movies in different orders deadlock on PostgreSQL (the two
            # singletons may run at once on two replicas).
            row_ids: dict[int, int] = {}
            pairs = sorted(zip(summaries, fetched, strict=True), key=lambda p: p[0].tmdb_id)
            for summary, movie in pairs:
                if movie is not None:
                    row_ids[summary.tmdb_id] = await upsert_movie(
                        session, movie_data(movie), now=now
                    )
                    written += 1
                    continue
                stored = await get_movie_by_tmdb_id(session, summary.tmdb_id)
                if stored is not None:
                    # Keep the stored details: a list page would blank the runtime and trailer.
                    row_ids[summary.tmdb_id] = stored.id
                else:
                    row_ids[summary.tmdb_id] = await upsert_movie(
                        session, movie_summary_data(summary), now=now
                    )
                    written += 1
            ids.extend(row_ids[summary.tmdb_id] for summary in summaries)
            await replace_media_list(
                session, MediaListData(spec.slug, spec.name), movie_ids=ids, now=now
            )
        return written, fetched.count(None)

    async def _write_shows(
        self, spec: ListSpec, summaries: list[TmdbShowSummary]
    ) -> tuple[int, int]:
        async def details(summary: TmdbShowSummary) -> TmdbShow | None:
            return await self._details(
                lambda: self._tmdb.show(summary.tmdb_id), f"show {summary.tmdb_id}"
            )

        fetched = await bounded_gather(summaries, details, self.concurrency)
        now = self._clock()
        ids: list[int] = []
        written = 0
        # Under a coordinator the list is replaced under the run's lease: a replica that lost
        # it (paused, partitioned) raises LeaseLostError here and writes nothing.
        async with self._db.session(lease=current_lease()) as session:
            for summary, show in zip(summaries, fetched, strict=True):
                if show is not None:
                    show_id = await upsert_show(session, show_data(show), now=now)
                    for season in show.seasons:
                        await upsert_season(session, show_id, season_data(season), now=now)
                    ids.append(show_id)
                    written += 1
                    continue
                stored = await get_show_by_tmdb_id(session, summary.tmdb_id)
                if stored is not None:
                    ids.append(stored.id)
                else:
                    ids.append(await upsert_show(session, show_summary_data(summary), now=now))
                    written += 1
            await replace_media_list(
                session, MediaListData(spec.slug, spec.name), show_ids=ids, now=now
            )
        return written, fetched.count(None)
