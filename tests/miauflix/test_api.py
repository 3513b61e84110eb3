"""`miauflix.api`: the read API's queries and answers, on SQLite and PostgreSQL (in process).

The demo-filled, real-HTTP test is `test_e2e_demo.py::test_read_api_serves_what_the_demo_built`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from miauflix.api import read_routes
from miauflix.db import (
    Database,
    GenreData,
    MediaListData,
    MovieData,
    ShowData,
    TranslationData,
    replace_media_list,
    upsert_genre_translations,
    upsert_genres,
    upsert_movie,
    upsert_show,
)
from tickwork import Scheduler
from tickwork.service import create_app, register_routes

NOW = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service's app serving the read API over `database`."""
    async with Scheduler() as scheduler:
        app = create_app(scheduler, rate_limit=1000)
        register_routes(scheduler, read_routes(database))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://miauflix") as client:
            yield client


async def _fill(database: Database) -> None:
    """A list of 25 movies (stored in reverse order) and a list of one show."""
    async with database.session() as session:
        ids = [
            await upsert_movie(session, MovieData(1000 + n, f"Movie {n}"), now=NOW)
            for n in range(25)
        ]
        await replace_media_list(
            session, MediaListData("films", "Films"), movie_ids=ids[::-1], now=NOW
        )
        show = await upsert_show(session, ShowData(7, "A show"), now=NOW)
        await replace_media_list(
            session, MediaListData("series", "Series"), show_ids=[show], now=NOW
        )


async def test_lists_name_each_list_with_its_item_count(
    database: Database, client: httpx.AsyncClient
) -> None:
    """`/api/lists` gives each list's slug, name and item count."""
    await _fill(database)

    answer = await client.get("/api/lists")

    assert answer.json() == {
        "lists": [
            {"slug": "films", "name": "Films", "description": "", "item_count": 25},
            {"slug": "series", "name": "Series", "description": "", "item_count": 1},
        ]
    }


async def test_a_list_page_keeps_list_order(database: Database, client: httpx.AsyncClient) -> None:
    """Pages of `/api/lists/{slug}` follow the list's order and report the total."""
    await _fill(database)

    last = (await client.get("/api/lists/films", params={"page": 3, "per_page": 10})).json()
    shows = (await client.get("/api/lists/series")).json()

    assert last["total"] == 25
    assert [item["tmdb_id"] for item in last["items"]] == [1004, 1003, 1002, 1001, 1000]
    assert last["items"][0] == {"tmdb_id": 1004, "kind": "movie", "title": "Movie 4"}
    assert shows["items"] == [{"tmdb_id": 7, "kind": "show", "title": "A show"}]
    assert (shows["page"], shows["per_page"]) == (1, 20)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/lists/films?per_page=101", 400, "per_page must be an integer between 1 and 100"),
        ("/api/lists/films?page=-1", 400, "page must be an integer >= 1"),
        ("/api/lists/nope", 404, "unknown list"),
        ("/api/movies/99", 404, "unknown movie"),
        ("/api/movies/99999999999999999999", 404, "unknown movie"),
        ("/api/shows/99", 404, "unknown show"),
        ("/api/shows/7/seasons/1", 404, "unknown show or season"),
    ],
)
async def test_bad_paging_is_400_and_unknown_ids_404(
    database: Database, client: httpx.AsyncClient, path: str, status: int, error: str
) -> None:
    """Out-of-range paging answers 400 and an unknown slug or id 404, each with its error."""
    await _fill(database)

    answer = await client.get(path)

    assert answer.status_code == status
    assert answer.json()["error"].startswith(error)


async def test_a_movie_answers_in_the_language_asked_when_translated(
    database: Database, client: httpx.AsyncClient
) -> None:
    """`lang=es` gives the Spanish texts; an untranslated language the English ones."""
    spanish = (TranslationData("es", title="Hola", overview="", tagline="Eslogan"),)
    async with database.session() as session:
        await upsert_movie(
            session,
            MovieData(5, "Hello", overview="Plot", tagline="Tag", translations=spanish),
            now=NOW,
        )

    es = (await client.get("/api/movies/5", params={"lang": "es-MX"})).json()
    de = (await client.get("/api/movies/5", params={"lang": "de"})).json()
    bad = await client.get("/api/movies/5", params={"lang": "spanish"})

    assert (es["language"], es["title"], es["overview"], es["tagline"]) == (
        "es",
        "Hola",
        "Plot",
        "Eslogan",
    )
    assert es["languages"] == ["en", "es"]
    assert (de["language"], de["title"]) == ("en", "Hello")
    assert bad.status_code == 400


async def test_genres_are_named_in_the_language_asked_where_stored(
    database: Database, client: httpx.AsyncClient
) -> None:
    """`lang=es` names a genre in Spanish where stored, in English otherwise."""
    async with database.session() as session:
        await upsert_genres(session, [GenreData(18, "Drama"), GenreData(35, "Comedy")])
        await upsert_genre_translations(session, "es", [GenreData(18, "Drama (es)")])
        await upsert_movie(session, MovieData(5, "Hello", genre_ids=(18, 35)), now=NOW)
        await upsert_show(session, ShowData(6, "Show", genre_ids=(18,)), now=NOW)

    movie = (await client.get("/api/movies/5", params={"lang": "es"})).json()
    show = (await client.get("/api/shows/6", params={"lang": "es"})).json()

    assert movie["genres"] == [{"id": 18, "name": "Drama (es)"}, {"id": 35, "name": "Comedy"}]
    assert show["genres"] == [{"id": 18, "name": "Drama (es)"}]
