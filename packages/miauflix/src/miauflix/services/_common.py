"""Helpers of the services: in-run retries, bounded concurrent calls, TMDB -> row values."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from miauflix.db import (
    EpisodeData,
    MovieData,
    SeasonData,
    ShowData,
    SourceData,
    TranslationData,
)
from miauflix.providers import (
    NotConfigured,
    NotFound,
    ProviderError,
    RateLimited,
    SourceCandidate,
    Unauthorized,
)
from miauflix.providers.tmdb import (
    TmdbEpisode,
    TmdbMovie,
    TmdbMovieSummary,
    TmdbSeason,
    TmdbSeasonSummary,
    TmdbShow,
    TmdbShowSummary,
    TmdbTranslation,
)

__all__ = [
    "Sleep",
    "bounded_gather",
    "episode_data",
    "movie_data",
    "movie_summary_data",
    "season_data",
    "season_details_data",
    "show_data",
    "show_summary_data",
    "source_data",
    "with_retries",
]

T = TypeVar("T")
R = TypeVar("R")

Sleep = Callable[[float], Awaitable[None]]

# The longest wait honoured between two attempts of one call within a run (a longer
# Retry-After ends the run's attempts; the next run tries again).
MAX_RETRY_WAIT = 30.0


async def with_retries(
    call: Callable[[], Awaitable[T]], delays: Sequence[float], sleep: Sleep
) -> T:
    """Call `call` once, then once more after each of `delays` while it fails transiently.

    A `NotFound`, `Unauthorized` or `NotConfigured` is an answer, not a glitch: it is raised
    at once. A `RateLimited` waits at least its `retry_after` (up to 30 s).

    Raises:
        ProviderError: The last attempt's error.
    """
    for delay in (*delays, None):
        try:
            return await call()
        except (NotFound, Unauthorized, NotConfigured):
            raise
        except ProviderError as error:
            if delay is None:
                raise
            wait = delay
            if isinstance(error, RateLimited) and error.retry_after is not None:
                if error.retry_after > MAX_RETRY_WAIT:
                    raise
                wait = max(wait, error.retry_after)
            await sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


async def bounded_gather(
    items: Iterable[T], call: Callable[[T], Awaitable[R]], limit: int
) -> list[R]:
    """Run `call(item)` for every item, at most `limit` at once; results in item order.

    Runs in a `TaskGroup`: if one call raises, the others are cancelled and the error
    propagates (unwrapped when it is the only one), and the semaphore is always released.
    """
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with semaphore:
            return await call(item)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except BaseExceptionGroup as group_error:
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise
    return [task.result() for task in tasks]


def movie_data(movie: TmdbMovie) -> MovieData:
    """The row values of a movie's TMDB details."""
    return MovieData(
        tmdb_id=movie.tmdb_id,
        title=movie.title,
        imdb_id=movie.imdb_id,
        original_title=movie.original_title,
        overview=movie.overview,
        tagline=movie.tagline or "",
        release_date=movie.release_date,
        runtime=movie.runtime,
        popularity=movie.popularity,
        rating=movie.vote_average,
        vote_count=movie.vote_count,
        poster_url=movie.poster_url,
        backdrop_url=movie.backdrop_url,
        trailer_code=movie.trailer_key,
        genre_ids=tuple(genre.id for genre in movie.genres),
        logo_url=movie.logo_url,
        translations=translation_data(movie.translations),
    )


def translation_data(translations: Iterable[TmdbTranslation]) -> tuple[TranslationData, ...]:
    """One translation per language, the first TMDB lists; English and empty ones left out
    (the movie's own texts are English)."""
    kept: dict[str, TranslationData] = {}
    for t in translations:
        if not t.language or t.language == "en" or t.language in kept:
            continue
        if not (t.title or t.overview or t.tagline):
            continue
        kept[t.language] = TranslationData(
            t.language, title=t.title or "", overview=t.overview or "", tagline=t.tagline or ""
        )
    return tuple(kept.values())


def movie_summary_data(movie: TmdbMovieSummary) -> MovieData:
    """The row values of a movie as a TMDB list gives it (no IMDb id, runtime or trailer)."""
    return MovieData(
        tmdb_id=movie.tmdb_id,
        title=movie.title,
        original_title=movie.original_title,
        overview=movie.overview,
        release_date=movie.release_date,
        popularity=movie.popularity,
        rating=movie.vote_average,
        vote_count=movie.vote_count,
        poster_url=movie.poster_url,
        backdrop_url=movie.backdrop_url,
        genre_ids=movie.genre_ids,
    )


def show_data(show: TmdbShow) -> ShowData:
    """The row values of a show's TMDB details."""
    return ShowData(
        tmdb_id=show.tmdb_id,
        name=show.name,
        imdb_id=show.imdb_id,
        original_name=show.original_name,
        overview=show.overview,
        first_air_date=show.first_air_date,
        popularity=show.popularity,
        rating=show.vote_average,
        vote_count=show.vote_count,
        status=show.status or "",
        poster_url=show.poster_url,
        backdrop_url=show.backdrop_url,
        genre_ids=tuple(genre.id for genre in show.genres),
        tagline=show.tagline or "",
        type=show.type,
        in_production=show.in_production,
        episode_run_time=show.episode_run_time,
    )


def show_summary_data(show: TmdbShowSummary) -> ShowData:
    """The row values of a show as a TMDB list gives it."""
    return ShowData(
        tmdb_id=show.tmdb_id,
        name=show.name,
        original_name=show.original_name,
        overview=show.overview,
        first_air_date=show.first_air_date,
        popularity=show.popularity,
        rating=show.vote_average,
        vote_count=show.vote_count,
        poster_url=show.poster_url,
        backdrop_url=show.backdrop_url,
        genre_ids=show.genre_ids,
    )


def season_data(season: TmdbSeasonSummary) -> SeasonData:
    """The row values of a season as listed in its show's details."""
    return SeasonData(
        season_number=season.season_number,
        name=season.name,
        air_date=season.air_date,
        episode_count=season.episode_count,
    )


def season_details_data(season: TmdbSeason) -> SeasonData:
    """The row values of a season's own TMDB details.

    The episode count is left out (None keeps the stored one): it comes from the show's details,
    which is what a list refresh compares to re-queue a season whose count grew; mixing in the
    number of episodes this answer lists would re-queue a season at every refresh whenever
    TMDB's two figures disagree.
    """
    return SeasonData(
        season_number=season.season_number,
        tmdb_id=season.tmdb_id,
        name=season.name,
        overview=season.overview,
        air_date=season.air_date,
        episode_count=None,
        poster_url=season.poster_url,
    )


def episode_data(episode: TmdbEpisode) -> EpisodeData:
    """The row values of an episode."""
    return EpisodeData(
        episode_number=episode.episode_number,
        tmdb_id=episode.tmdb_id,
        name=episode.name,
        overview=episode.overview,
        air_date=episode.air_date,
        runtime=episode.runtime,
        still_url=episode.still_url,
    )


def source_data(source: SourceCandidate) -> SourceData:
    """The row values of a source a content directory listed."""
    return SourceData(
        info_hash=source.info_hash,
        magnet_link=source.magnet_link,
        quality=source.quality,
        source_directory=source.directory,
        download_url=source.download_url,
        video_codec=source.video_codec,
        size_bytes=source.size_bytes,
        seeders=source.seeders,
        leechers=source.leechers,
        source_type=source.source_type,
        uploaded_at=source.uploaded_at,
    )
