"""The read API: what the tasks wrote, as JSON, on the service's HTTP app.

`setup` mounts these routes with `tickwork.service.register_routes`, so they answer under the
rules of `/status`: the `TICKWORK_TOKEN` bearer token when one is set, the per-client rate
limit, `Cache-Control: no-store`. Every route is a read-only `GET`:

=====================================  ===================================================
route                                  answer
=====================================  ===================================================
`/api/lists`                           `{"lists": [{slug, name, description, item_count}]}`
`/api/lists/{slug}?page=&per_page=`    `{items: [{tmdb_id, kind, title}], page, per_page,
                                       total}`; `page` from 1, `per_page` 1-100 (20)
`/api/movies/{tmdb_id}?lang=`          the movie (texts in `lang` when a translation is
                                       stored), its genres, its sources best first (each
                                       with `info_hash`, `magnet`, quality, size, seeders,
                                       leechers, `file_stored`)
`/api/shows/{tmdb_id}?lang=`           the show (genres named in `lang`) and its seasons
`/api/shows/{tmdb_id}/seasons/{n}`     one season and its episodes
=====================================  ===================================================

An unknown slug or id answers 404 `{"error": ...}`; a bad `page`, `per_page` or `lang` 400.
`lang` is an ISO 639-1 code (`es`): a movie's texts and genre names come in that language
where stored, in English otherwise (`language` in a movie's answer says which).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from miauflix.db import Database
from miauflix.db._read import (
    list_page,
    media_lists,
    movie_document,
    season_document,
    show_document,
)

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "read_routes"]

DEFAULT_PER_PAGE = 20
"""Items per page of `/api/lists/{slug}` when `per_page` is not given."""

MAX_PER_PAGE = 100
"""The largest `per_page` accepted."""

# Ids are 32-bit in TMDB and in the tables: a longer number is unknown, not a database error.
_MAX_ID = 2**31 - 1


class _BadRequest(Exception):
    """A query parameter is out of range; its message is the 400 answer's `error`."""


def read_routes(database: Database) -> list[Route]:
    """Return the read API's routes over `database`, for `tickwork.service.register_routes`.

    Args:
        database: The open, migrated catalogue; every request reads it in a read session.

    Returns:
        Starlette routes for `/api/lists`, `/api/lists/{slug}`, `/api/movies/{tmdb_id}`,
        `/api/shows/{tmdb_id}` and `/api/shows/{tmdb_id}/seasons/{n}`.
    """

    async def lists(request: Request) -> Response:
        async with database.read_session() as session:
            return JSONResponse({"lists": await media_lists(session)})

    async def list_items(request: Request) -> Response:
        page = _int_param(request, "page", 1, minimum=1, maximum=None)
        per_page = _int_param(
            request, "per_page", DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE
        )
        async with database.read_session() as session:
            document = await list_page(
                session, request.path_params["slug"], page=page, per_page=per_page
            )
        return _found(document, "unknown list")

    async def movie(request: Request) -> Response:
        tmdb_id = request.path_params["tmdb_id"]
        lang = _lang_param(request)
        if tmdb_id > _MAX_ID:
            return _found(None, "unknown movie")
        async with database.read_session() as session:
            document = await movie_document(session, tmdb_id, lang=lang)
        return _found(document, "unknown movie")

    async def show(request: Request) -> Response:
        tmdb_id = request.path_params["tmdb_id"]
        lang = _lang_param(request)
        if tmdb_id > _MAX_ID:
            return _found(None, "unknown show")
        async with database.read_session() as session:
            document = await show_document(session, tmdb_id, lang=lang)
        return _found(document, "unknown show")

    async def season(request: Request) -> Response:
        tmdb_id, number = request.path_params["tmdb_id"], request.path_params["number"]
        if max(tmdb_id, number) > _MAX_ID:
            return _found(None, "unknown show or season")
        async with database.read_session() as session:
            document = await season_document(session, tmdb_id, number)
        return _found(document, "unknown show or season")

    return [
        Route("/api/lists", _answers_400(lists), methods=["GET"]),
        Route("/api/lists/{slug}", _answers_400(list_items), methods=["GET"]),
        Route("/api/movies/{tmdb_id:int}", _answers_400(movie), methods=["GET"]),
        Route("/api/shows/{tmdb_id:int}", _answers_400(show), methods=["GET"]),
        Route(
            "/api/shows/{tmdb_id:int}/seasons/{number:int}", _answers_400(season), methods=["GET"]
        ),
    ]


def _found(document: dict[str, Any] | None, error: str) -> Response:
    # The unknown id or slug is not echoed back: the path already says it.
    if document is None:
        return JSONResponse({"error": error}, status_code=404)
    return JSONResponse(document)


def _int_param(
    request: Request, name: str, default: int, *, minimum: int, maximum: int | None
) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
    try:
        value = int(raw) if raw.isascii() and len(raw) <= 9 else None
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise _BadRequest(f"{name} must be an integer {bounds}, got {raw[:20]!r}")
    return value


def _lang_param(request: Request) -> str | None:
    raw = request.query_params.get("lang")
    if raw is None:
        return None
    # "es" or "es-MX": translations are stored per language, so the region is dropped.
    language = raw.split("-", 1)[0].lower()
    if not (len(language) == 2 and language.isascii() and language.isalpha()):
        raise _BadRequest(f"lang must be an ISO 639-1 code such as 'es', got {raw[:20]!r}")
    return language


def _answers_400(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    return answer
