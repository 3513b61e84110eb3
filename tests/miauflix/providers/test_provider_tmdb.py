"""The TMDB client parses TMDB's published shapes, against the simulator and canned answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from miauflix.providers import NotConfigured, NotFound, Providers, TmdbClient, Unauthorized
from miauflix.simulator import Simulator

from .fakes import SIM_NOW, Handler, RawHttpServer, json_response, replying

pytestmark = pytest.mark.slow

Start = Callable[[Handler], Awaitable[RawHttpServer]]

CONFIGURATION = {
    "images": {
        "base_url": "http://image.test/t/p/",
        "secure_base_url": "https://image.test/t/p/",
        "backdrop_sizes": ["w300", "w780", "w1280", "original"],
        "poster_sizes": ["w92", "w154", "w342", "w500", "original"],
    },
    "change_keys": ["title"],
}

# Trimmed from TMDB's documented `/movie/550?append_to_response=translations,images,videos`.
FIGHT_CLUB = {
    "adult": False,
    "backdrop_path": None,
    "genres": [{"id": 18, "name": "Drama"}],
    "id": 550,
    "imdb_id": "tt0137523",
    "original_title": "Fight Club",
    "overview": "A ticking-time-bomb insomniac...",
    "popularity": 61.416,
    "poster_path": "/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg",
    "release_date": "1999-10-15",
    "runtime": 139,
    "status": "Released",
    "tagline": "Mischief. Mayhem. Soap.",
    "title": "Fight Club",
    "vote_average": 8.433,
    "vote_count": 26280,
    "translations": {
        "translations": [
            {
                "iso_3166_1": "ES",
                "iso_639_1": "es",
                "name": "Español",
                "english_name": "Spanish",
                "data": {
                    "homepage": "",
                    "overview": "Un joven...",
                    "runtime": 0,
                    "tagline": "",
                    "title": "El club de la lucha",
                },
            }
        ]
    },
    "images": {
        "backdrops": [{"file_path": "/hZkgoQYus5vegHoetLkCJzb17zJ.jpg", "iso_639_1": None}],
        "logos": [],
        "posters": [],
    },
    "videos": {
        "results": [
            {"key": "teaser1", "site": "YouTube", "type": "Teaser", "official": True},
            {"key": "fan-trailer", "site": "YouTube", "type": "Trailer", "official": False},
            {"key": "vimeo1", "site": "Vimeo", "type": "Trailer", "official": True},
            {"key": "SUXWAEX2jlg", "site": "YouTube", "type": "Trailer", "official": True},
        ]
    },
}


async def test_configuration_gives_the_image_base(providers: Providers, sim: Simulator) -> None:
    """`/configuration` yields the secure image base and the sizes used in URLs."""
    config = await providers.tmdb.configuration()
    assert config.image_base_url.startswith(sim.base_url)
    assert config.image_base_url.endswith("/")
    assert (config.poster_size, config.backdrop_size) == ("w500", "w1280")


async def test_genre_lists(providers: Providers) -> None:
    """Movie and TV genre lists come back as (id, name) pairs."""
    movie_genres = await providers.tmdb.movie_genres()
    tv_genres = await providers.tmdb.tv_genres()
    assert any(g.id == 28 and g.name == "Action" for g in movie_genres)
    assert tv_genres
    assert all(g.name for g in tv_genres)


async def test_popular_movies_are_paged_by_popularity(providers: Providers) -> None:
    """`/discover/movie` pages are in descending popularity, with at least 10 votes each."""
    first = await providers.tmdb.popular_movies(1)
    second = await providers.tmdb.popular_movies(2)
    assert (first.page, second.page) == (1, 2)
    assert first.total_pages >= 2
    items = first.results + second.results
    popularity = [m.popularity for m in items]
    assert popularity == sorted(popularity, reverse=True)
    assert all(m.vote_count >= 10 for m in items)
    assert not {m.tmdb_id for m in first.results} & {m.tmdb_id for m in second.results}


async def test_top_rated_and_popular_shows(providers: Providers, sim: Simulator) -> None:
    """`/movie/top_rated` and `/discover/tv` return summaries of catalogue items."""
    top = await providers.tmdb.top_rated_movies()
    shows = await providers.tmdb.popular_shows()
    assert top.results
    assert all(sim.catalogue.movie(m.tmdb_id) is not None for m in top.results)
    assert {s.tmdb_id for s in shows.results} <= {s.tmdb_id for s in sim.catalogue.shows}


async def test_movie_details_match_the_catalogue(providers: Providers, sim: Simulator) -> None:
    """`/movie/{id}` yields IMDb id, texts, runtime, trailer key, genres and image URLs."""
    expected = next(m for m in sim.catalogue.movies if m.imdb_id)
    movie = await providers.tmdb.movie(expected.tmdb_id)
    assert movie.tmdb_id == expected.tmdb_id
    assert movie.imdb_id == expected.imdb_id
    assert movie.title == expected.title
    assert movie.runtime == expected.runtime
    assert movie.release_date == expected.release_date
    assert movie.trailer_key == expected.trailer_key
    assert [g.id for g in movie.genres] == list(expected.genre_ids)
    assert movie.poster_url is not None
    assert movie.poster_url.endswith("/w500" + expected.poster_path)


async def test_unknown_movie_is_not_found(providers: Providers) -> None:
    """A movie TMDB does not know raises NotFound ("gone") and keeps the client ready."""
    with pytest.raises(NotFound, match="/movie/999999999"):
        await providers.tmdb.movie(999_999_999)
    assert providers.tmdb.status().status == "ready"


async def test_show_and_season(providers: Providers, sim: Simulator) -> None:
    """`/tv/{id}` gives the IMDb id from external ids; a season lists its episodes."""
    expected = sim.catalogue.shows[0]
    show = await providers.tmdb.show(expected.tmdb_id)
    assert show.imdb_id == expected.imdb_id
    assert [s.season_number for s in show.seasons] == [s.season_number for s in expected.seasons]
    number = expected.seasons[0].season_number
    season = await providers.tmdb.season(expected.tmdb_id, number)
    want = expected.seasons[0].episodes()
    assert (season.show_id, season.season_number) == (expected.tmdb_id, number)
    assert [e.episode_number for e in season.episodes] == [e.episode_number for e in want]
    assert [e.name for e in season.episodes] == [e.name for e in want]


async def test_unknown_season_is_not_found(providers: Providers, sim: Simulator) -> None:
    """A season number the show does not have raises NotFound."""
    with pytest.raises(NotFound):
        await providers.tmdb.season(sim.catalogue.shows[0].tmdb_id, 99)


async def test_movie_changes_match_the_feed(providers: Providers, sim: Simulator) -> None:
    """Iterating `/movie/changes` yields every movie the simulator's feed changed that day."""
    day = dt.datetime.fromtimestamp(SIM_NOW, dt.UTC).date() - dt.timedelta(days=1)
    changes = [c async for c in providers.tmdb.iter_movie_changes(day, day)]
    assert sorted(c.tmdb_id for c in changes) == sorted(sim.catalogue.changes(day, day, SIM_NOW))


async def test_movie_changes_walks_every_page(raw_http: Start) -> None:
    """`iter_movie_changes` asks page after page until `total_pages`."""
    pages = [
        {
            "page": 1,
            "total_pages": 2,
            "total_results": 3,
            "results": [{"id": 1, "adult": False}, {"id": 2}],
        },
        {"page": 2, "total_pages": 2, "total_results": 3, "results": [{"id": 3, "adult": None}]},
    ]
    server = await raw_http(replying(*(json_response(p) for p in pages)))
    async with TmdbClient(server.url, "t", rate_limit=None) as tmdb:
        day = dt.date(2024, 1, 1)
        ids = [c.tmdb_id async for c in tmdb.iter_movie_changes(day, day)]
    assert ids == [1, 2, 3]
    assert "page=2" in server.requests[1].split("\r\n")[0]
    assert "start_date=2024-01-01" in server.requests[0].split("\r\n")[0]


async def test_published_movie_shape_is_parsed(raw_http: Start) -> None:
    """TMDB's documented movie shape: official YouTube trailer, image fallbacks, translations."""
    server = await raw_http(replying(json_response(CONFIGURATION), json_response(FIGHT_CLUB)))
    async with TmdbClient(server.url, "t", rate_limit=None) as tmdb:
        movie = await tmdb.movie(550)
    assert movie.imdb_id == "tt0137523"
    assert movie.tagline == "Mischief. Mayhem. Soap."
    assert movie.trailer_key == "SUXWAEX2jlg"
    assert movie.poster_url == "https://image.test/t/p/w500/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg"
    assert movie.backdrop_url == "https://image.test/t/p/w1280/hZkgoQYus5vegHoetLkCJzb17zJ.jpg"
    assert movie.translations[0].title == "El club de la lucha"
    assert movie.translations[0].tagline is None
    assert "append_to_response=translations%2Cimages%2Cvideos" in server.requests[1]


async def test_wrong_token_is_unauthorized(sim: Simulator) -> None:
    """The simulator rejects a wrong bearer token and the client reports an error."""
    async with TmdbClient(sim.tmdb_url, "wrong-token") as tmdb:
        with pytest.raises(Unauthorized):
            await tmdb.movie_genres()
        assert tmdb.status().status == "error"


async def test_missing_token_needs_configuration(raw_http: Start) -> None:
    """With no token no request is made: NotConfigured and status naming TMDB_API_TOKEN."""
    server = await raw_http(replying(json_response({})))
    async with TmdbClient(server.url, "") as tmdb:
        with pytest.raises(NotConfigured, match="TMDB_API_TOKEN") as caught:
            await tmdb.popular_movies()
        status = tmdb.status()
    assert caught.value.setting == "TMDB_API_TOKEN"
    assert status.status == "needs_configuration"
    assert status.reason == "TMDB_API_TOKEN is not set"
    assert server.requests == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda t: t.popular_movies(0), ValueError),
        (lambda t: t.top_rated_movies(501), ValueError),
        (lambda t: t.movie(-1), ValueError),
        (lambda t: t.season(1, -1), ValueError),
        (lambda t: t.movie("550"), TypeError),
        (lambda t: t.movie_changes(dt.date(2024, 1, 2), dt.date(2024, 1, 1)), ValueError),
    ],
)
async def test_bad_arguments_raise_at_once(
    call: Callable[[TmdbClient], Awaitable[object]], error: type[Exception]
) -> None:
    """Out-of-range pages, ids and date windows raise before any request."""
    async with TmdbClient("http://127.0.0.1:1", "t") as tmdb:
        with pytest.raises(error):
            await call(tmdb)
