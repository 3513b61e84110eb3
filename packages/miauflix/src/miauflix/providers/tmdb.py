"""TMDB v3 client: lists, details, seasons and the movie changes feed, as frozen dataclasses.

Authentication is TMDB's v4 read access token sent as `Authorization: Bearer <token>`; the
token never appears in a log line, an error message or a status. Image URLs are built from
`/configuration`'s `images.secure_base_url`, fetched once per client on first need.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx

from miauflix.providers import _shape as s
from miauflix.providers._client import _EndpointClient
from miauflix.providers._tmdb_parse import (
    parse_change,
    parse_configuration,
    parse_genres,
    parse_movie,
    parse_movie_summary,
    parse_page,
    parse_season,
    parse_show,
    parse_show_summary,
)
from miauflix.providers._tmdb_types import (
    TmdbChange,
    TmdbConfiguration,
    TmdbEpisode,
    TmdbGenre,
    TmdbMovie,
    TmdbMovieSummary,
    TmdbPage,
    TmdbSeason,
    TmdbSeasonSummary,
    TmdbShow,
    TmdbShowSummary,
    TmdbTranslation,
)
from miauflix.providers.errors import NotConfigured

__all__ = [
    "TmdbChange",
    "TmdbClient",
    "TmdbConfiguration",
    "TmdbEpisode",
    "TmdbGenre",
    "TmdbMovie",
    "TmdbMovieSummary",
    "TmdbPage",
    "TmdbSeason",
    "TmdbSeasonSummary",
    "TmdbShow",
    "TmdbShowSummary",
    "TmdbTranslation",
]

T = TypeVar("T")

#: TMDB refuses pages past 500 on its list endpoints.
MAX_PAGE = 500


class TmdbClient(_EndpointClient):
    """Async TMDB v3 client.

    Args:
        base_url: TMDB v3 base URL (`https://api.themoviedb.org/3`, or the simulator's).
        token: TMDB v4 read access token (`TMDB_API_TOKEN`). Empty: every call raises
            `NotConfigured` and `status()` is `needs_configuration`.
        timeout: Seconds for one whole request, body included.
        max_bytes: Largest body accepted; a bigger one raises `BadResponse`.
        rate_limit: Requests per second (default 40: TMDB allows about 50), None for no
            limit.
        transport: An httpx transport to use instead of the network (tests).

    Raises:
        ValueError: `timeout`, `max_bytes` or `rate_limit` is not a positive number.

    Every method raises a `miauflix.providers.errors.ProviderError` subclass on failure;
    `NotFound` from a details method means the item is gone from TMDB.
    """

    name = "tmdb"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_bytes: int = 4 * 1024 * 1024,
        rate_limit: float | None = 40.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            max_bytes=max_bytes,
            rate_limit=rate_limit,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            transport=transport,
            missing_setting=None if token else "TMDB_API_TOKEN",
        )
        self._configured = bool(token)
        self._images: TmdbConfiguration | None = None
        self._images_lock = asyncio.Lock()

    async def _get(self, path: str, parse: Callable[[dict[str, Any]], T], **params: str | int) -> T:
        if not self._configured:
            raise NotConfigured(self.name, path, "TMDB_API_TOKEN")
        return await self._http.get_json(
            path, lambda doc: parse(s.obj(doc, "the answer")), params or None
        )

    async def configuration(self) -> TmdbConfiguration:
        """Fetch `/configuration` and keep it for building image URLs."""
        config = await self._get("/configuration", parse_configuration)
        self._images = config
        return config

    async def _image_config(self) -> TmdbConfiguration:
        async with self._images_lock:
            if self._images is None:
                await self.configuration()
            assert self._images is not None
            return self._images

    async def movie_genres(self, language: str | None = None) -> list[TmdbGenre]:
        """`/genre/movie/list`: every movie genre, named in `language` (ISO 639-1) if given."""
        params = {} if language is None else {"language": language}
        return await self._get("/genre/movie/list", parse_genres, **params)

    async def tv_genres(self, language: str | None = None) -> list[TmdbGenre]:
        """`/genre/tv/list`: every TV genre, named in `language` (ISO 639-1) if given."""
        params = {} if language is None else {"language": language}
        return await self._get("/genre/tv/list", parse_genres, **params)

    async def popular_movies(self, page: int = 1) -> TmdbPage[TmdbMovieSummary]:
        """`/discover/movie` by popularity, descending, with at least 10 votes.

        Args:
            page: 1-based page number, at most 500.

        Raises:
            ValueError: `page` is out of range.
        """
        _check_page(page)
        images = await self._image_config()
        return await self._get(
            "/discover/movie",
            lambda d: parse_page(d, lambda m: parse_movie_summary(m, images)),
            sort_by="popularity.desc",
            **{"vote_count.gte": 10},
            page=page,
        )

    async def top_rated_movies(self, page: int = 1) -> TmdbPage[TmdbMovieSummary]:
        """`/movie/top_rated`, one page (1-based, at most 500)."""
        _check_page(page)
        images = await self._image_config()
        return await self._get(
            "/movie/top_rated",
            lambda d: parse_page(d, lambda m: parse_movie_summary(m, images)),
            page=page,
        )

    async def popular_shows(self, page: int = 1) -> TmdbPage[TmdbShowSummary]:
        """`/discover/tv` by popularity, descending, one page (1-based, at most 500).

        As the original backend: shows with at least 10 votes and a first air date only.
        """
        _check_page(page)
        images = await self._image_config()
        return await self._get(
            "/discover/tv",
            lambda d: parse_page(d, lambda m: parse_show_summary(m, images)),
            sort_by="popularity.desc",
            include_null_first_air_dates="false",
            **{"vote_count.gte": 10},
            page=page,
        )

    async def movie(self, tmdb_id: int) -> TmdbMovie:
        """`/movie/{id}` with translations, images and videos.

        Raises:
            NotFound: TMDB does not know the movie (any more).
        """
        _check_id("tmdb_id", tmdb_id)
        images = await self._image_config()
        return await self._get(
            f"/movie/{tmdb_id}",
            lambda d: parse_movie(d, images),
            append_to_response="translations,images,videos",
        )

    async def show(self, tmdb_id: int) -> TmdbShow:
        """`/tv/{id}` with external ids (for the IMDb id).

        Raises:
            NotFound: TMDB does not know the show (any more).
        """
        _check_id("tmdb_id", tmdb_id)
        images = await self._image_config()
        return await self._get(
            f"/tv/{tmdb_id}", lambda d: parse_show(d, images), append_to_response="external_ids"
        )

    async def season(self, show_id: int, season_number: int) -> TmdbSeason:
        """`/tv/{show_id}/season/{season_number}` with its episodes.

        Raises:
            NotFound: TMDB does not know the season (any more).
        """
        _check_id("show_id", show_id)
        if isinstance(season_number, bool) or not isinstance(season_number, int):
            raise TypeError(f"season_number must be an int, got {season_number!r}")
        if season_number < 0:
            raise ValueError(f"season_number must be >= 0, got {season_number!r}")
        images = await self._image_config()
        return await self._get(
            f"/tv/{show_id}/season/{season_number}",
            lambda d: parse_season(d, show_id, season_number, images),
        )

    async def movie_changes(
        self, start_date: dt.date, end_date: dt.date, page: int = 1
    ) -> TmdbPage[TmdbChange]:
        """One page of `/movie/changes` between two dates (inclusive, TMDB allows 14 days).

        Raises:
            ValueError: `end_date` is before `start_date`, or `page` is out of range.
        """
        _check_window(start_date, end_date)
        _check_page(page)
        return await self._get(
            "/movie/changes",
            lambda d: parse_page(d, parse_change),
            start_date=start_date.isoformat(),
            end_date=end_date.isoformat(),
            page=page,
        )

    async def iter_movie_changes(
        self, start_date: dt.date, end_date: dt.date
    ) -> AsyncIterator[TmdbChange]:
        """Every change between two dates, page after page (at most 500 pages).

        A failure on a later page raises from the iteration; the changes already yielded stay
        valid, so a caller that checkpoints per day simply retries the day.
        """
        page = 1
        while True:
            answer = await self.movie_changes(start_date, end_date, page)
            for change in answer.results:
                yield change
            if page >= min(answer.total_pages, MAX_PAGE) or not answer.results:
                return
            page += 1


def _check_page(page: int) -> None:
    if isinstance(page, bool) or not isinstance(page, int):
        raise TypeError(f"page must be an int, got {page!r}")
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be between 1 and {MAX_PAGE}, got {page!r}")


def _check_id(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_window(start: dt.date, end: dt.date) -> None:
    for name, value in (("start_date", start), ("end_date", end)):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"{name} must be a datetime.date, got {value!r}")
    if end < start:
        raise ValueError(f"end_date must not be before start_date, got {start} .. {end}")
