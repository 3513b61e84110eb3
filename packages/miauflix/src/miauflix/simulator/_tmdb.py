"""TMDB v3 routes (mounted at `/tmdb/3`), answering with TMDB's published JSON shapes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miauflix.simulator._context import Context
from miauflix.simulator._models import MOVIE_GENRES, TV_GENRES, Movie
from miauflix.simulator._tmdb_shapes import (
    genres,
    movie_details,
    movie_summary,
    season_details,
    show_details,
    show_summary,
    translated_genres,
)

PAGE_SIZE = 20
MAX_PAGE = 500
CHANGES_PAGE_SIZE = 100
TOP_RATED_MIN_VOTES = 100

Handler = Callable[[Request], Awaitable[Response]]


def tmdb_error(status: int, code: int, message: str) -> JSONResponse:
    """A TMDB error body: `{"status_code", "status_message", "success": false}`."""
    return JSONResponse(
        {"status_code": code, "status_message": message, "success": False}, status_code=status
    )


def _not_found() -> JSONResponse:
    return tmdb_error(404, 34, "The resource you requested could not be found.")


def _invalid(message: str) -> JSONResponse:
    return tmdb_error(422, 47, message)


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip() == token:
        return True
    return request.query_params.get("api_key") == token


def _page(request: Request) -> int | JSONResponse:
    raw = request.query_params.get("page", "1")
    try:
        page = int(raw)
    except ValueError:
        page = 0
    if not 1 <= page <= MAX_PAGE:
        return tmdb_error(
            400,
            22,
            f"Invalid page: Pages start at 1 and max at {MAX_PAGE}. They are expected to be "
            f"an integer, got {raw!r}.",
        )
    return page


def _paginated(items: Sequence[dict[str, Any]], page: int, size: int = PAGE_SIZE) -> JSONResponse:
    total = len(items)
    return JSONResponse(
        {
            "page": page,
            "results": list(items[(page - 1) * size : page * size]),
            "total_pages": math.ceil(total / size),
            "total_results": total,
        }
    )


def _number_param(request: Request, name: str, default: float) -> float | JSONResponse:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        return _invalid(f"{name} must be a number, got {raw!r}.")


def _optional_date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2024-01-31, got {raw!r}.") from None


def _path_int(request: Request, name: str) -> int | None:
    raw = request.path_params[name]
    return int(raw) if raw.isdigit() else None


def tmdb_routes(context: Context) -> list[Route]:
    """The TMDB v3 routes; every one requires the bearer token (or `api_key`)."""
    catalogue = context.catalogue

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not _authorized(request, context.token):
                return tmdb_error(401, 7, "Invalid API key: You must be granted a valid key.")
            return await handler(request)

        return endpoint

    async def configuration(request: Request) -> Response:
        images = f"{context.base_url}/tmdb/images/t/p/"
        return JSONResponse(
            {
                "change_keys": ["images", "overview", "release_dates", "title", "videos"],
                "images": {
                    "base_url": images,
                    "secure_base_url": images,
                    "backdrop_sizes": ["w300", "w780", "w1280", "original"],
                    "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
                    "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
                    "profile_sizes": ["w45", "w185", "h632", "original"],
                    "still_sizes": ["w92", "w185", "w300", "original"],
                },
            }
        )

    async def movie_genres(request: Request) -> Response:
        names = translated_genres(MOVIE_GENRES, request.query_params.get("language"))
        return JSONResponse({"genres": genres(list(MOVIE_GENRES), names)})

    async def tv_genres(request: Request) -> Response:
        names = translated_genres(TV_GENRES, request.query_params.get("language"))
        return JSONResponse({"genres": genres(list(TV_GENRES), names)})

    async def discover_movie(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        minimum = _number_param(request, "vote_count.gte", 0)
        if isinstance(minimum, Response):
            return minimum
        sort_by = request.query_params.get("sort_by", "popularity.desc")
        keys: dict[str, Callable[[Movie], Any]] = {
            "popularity": lambda m: m.popularity,
            "vote_average": lambda m: m.vote_average,
            "vote_count": lambda m: m.vote_count,
            "primary_release_date": lambda m: m.release_date,
            "title": lambda m: m.title,
        }
        field, _, direction = sort_by.partition(".")
        if field not in keys or direction not in ("asc", "desc"):
            return _invalid(f"Invalid sort_by: {sort_by!r}.")
        chosen = [movie for movie in catalogue.movies if movie.vote_count >= minimum]
        key = keys[field]
        chosen.sort(key=lambda m: (key(m), m.tmdb_id), reverse=direction == "desc")
        return _paginated([movie_summary(movie) for movie in chosen], page)

    async def top_rated(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        chosen = [movie for movie in catalogue.movies if movie.vote_count >= TOP_RATED_MIN_VOTES]
        chosen.sort(key=lambda m: (m.vote_average, m.vote_count), reverse=True)
        return _paginated([movie_summary(movie) for movie in chosen], page)

    async def discover_tv(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        minimum = _number_param(request, "vote_count.gte", 0)
        if isinstance(minimum, Response):
            return minimum
        chosen = [show for show in catalogue.shows if show.vote_count >= minimum]
        if request.query_params.get("include_null_first_air_dates") == "false":
            chosen = [show for show in chosen if show.first_air_date is not None]
        chosen.sort(key=lambda s: (s.popularity, s.tmdb_id), reverse=True)
        return _paginated([show_summary(show) for show in chosen], page)

    def appended(request: Request) -> set[str]:
        raw = request.query_params.get("append_to_response", "")
        return {part.strip() for part in raw.split(",") if part.strip()}

    async def movie(request: Request) -> Response:
        tmdb_id = _path_int(request, "movie_id")
        found = catalogue.movie(tmdb_id) if tmdb_id is not None else None
        if found is None:
            return _not_found()
        return JSONResponse(movie_details(found, appended(request)))

    async def show(request: Request) -> Response:
        tmdb_id = _path_int(request, "tv_id")
        found = catalogue.show(tmdb_id) if tmdb_id is not None else None
        if found is None:
            return _not_found()
        return JSONResponse(show_details(found, appended(request)))

    async def season(request: Request) -> Response:
        tmdb_id = _path_int(request, "tv_id")
        number = _path_int(request, "season_number")
        found = catalogue.show(tmdb_id) if tmdb_id is not None else None
        chosen = found.season(number) if found is not None and number is not None else None
        if found is None or chosen is None:
            return _not_found()
        return JSONResponse(season_details(found, chosen))

    async def changes(request: Request) -> Response:
        page = _page(request)
        if isinstance(page, Response):
            return page
        now = context.clock()
        try:
            end = _optional_date(request, "end_date")
            start = _optional_date(request, "start_date")
        except ValueError as error:
            return _invalid(str(error))
        # Without dates TMDB answers for the last day; here: yesterday and today (half-open).
        if end is None:
            end = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=1)
        if start is None:
            start = end - dt.timedelta(days=2)
        if end < start or (end - start).days > 14:
            return _invalid(
                f"Invalid date range: should be a range no longer than 14 days, got "
                f"{start.isoformat()} to {end.isoformat()}."
            )
        ids = catalogue.changes(start, end, now)
        items = [{"id": tmdb_id, "adult": False} for tmdb_id in ids]
        return _paginated(items, page, CHANGES_PAGE_SIZE)

    async def unknown(request: Request) -> Response:
        return _not_found()

    return [
        Route("/configuration", guarded(configuration)),
        Route("/genre/movie/list", guarded(movie_genres)),
        Route("/genre/tv/list", guarded(tv_genres)),
        Route("/discover/movie", guarded(discover_movie)),
        Route("/discover/tv", guarded(discover_tv)),
        Route("/movie/top_rated", guarded(top_rated)),
        Route("/movie/changes", guarded(changes)),
        Route("/movie/{movie_id}", guarded(movie)),
        Route("/tv/{tv_id}", guarded(show)),
        Route("/tv/{tv_id}/season/{season_number}", guarded(season)),
        Route("/{path:path}", guarded(unknown)),
    ]
