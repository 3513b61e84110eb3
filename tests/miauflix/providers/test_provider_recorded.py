"""Answers in the shapes the original backend recorded, replayed through our clients.

The files in `recorded/` are our own, written in the shapes of the original's recorded
answers (a YTS hit and a miss, a TMDB movie with translations, the torrent cache's HTML
"missing" page); none is copied. They are served by an `httpx.MockTransport`, so nothing
leaves the process.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from miauflix.providers import BadResponse, TmdbClient, TorrentFileFetcher, YtsDirectory
from miauflix.services._common import movie_data

RECORDED = Path(__file__).parent / "recorded"
TRACKERS = ("udp://127.0.0.1:6969/announce",)


def _replay(answers: dict[str, tuple[str, str]], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A transport answering each path with `(file, content type)` from `recorded/`, else 404."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.get(request.url.path)
        if answer is None:
            return httpx.Response(404, json={"status_code": 34})
        name, content_type = answer
        return httpx.Response(
            200, content=(RECORDED / name).read_bytes(), headers={"Content-Type": content_type}
        )

    return httpx.MockTransport(handle)


JSON = "application/json; charset=utf-8"


@pytest.fixture
def seen() -> list[httpx.Request]:
    """The requests the replaying transport received."""
    return []


async def test_a_yts_hit_gives_each_torrent_as_a_source(seen: list[httpx.Request]) -> None:
    """The YTS hit gives both torrents, hashes lowercased, magnets carrying our trackers."""
    transport = _replay({"/api/v2/list_movies.json": ("yts_hit.json", JSON)}, seen)
    async with YtsDirectory(
        "http://yts.test", trackers=TRACKERS, rate_limit=None, transport=transport
    ) as yts:
        sources = await yts.search("tt0110001")

    assert seen[0].url.params["query_term"] == "tt0110001"
    assert [(s.quality, s.info_hash) for s in sources] == [
        ("720p", "3f8a0c51b2e6d4977a1c0e5b9d2f6a8c4e1b7d30"),
        ("1080p", "a07b9e22c4d1f3856b0e7c9a1d2e4f6b8c0a2e41"),
    ]
    best = sources[1]
    assert (best.seeders, best.leechers, best.size_bytes) == (97, 12, 2007897210)
    assert (best.source_type, best.video_codec) == ("web", "x264")
    assert best.uploaded_at == dt.datetime(2021, 9, 18, 6, 2, 55, tzinfo=dt.UTC)
    assert best.magnet_link.startswith(f"magnet:?xt=urn:btih:{best.info_hash}&dn=")
    assert "&tr=udp%3A%2F%2F127.0.0.1%3A6969%2Fannounce" in best.magnet_link


async def test_a_yts_hit_for_another_imdb_id_gives_nothing(seen: list[httpx.Request]) -> None:
    """A hit whose `imdb_code` is not the one asked (a title match) is no source of ours."""
    transport = _replay({"/api/v2/list_movies.json": ("yts_hit.json", JSON)}, seen)
    async with YtsDirectory("http://yts.test", rate_limit=None, transport=transport) as yts:
        assert await yts.search("tt0999999") == []


async def test_a_yts_miss_without_a_movies_key_gives_no_source(
    seen: list[httpx.Request],
) -> None:
    """The YTS miss (`movie_count` 0 and no `movies` at all) is an empty answer, not an error."""
    transport = _replay({"/api/v2/list_movies.json": ("yts_miss.json", JSON)}, seen)
    async with YtsDirectory("http://yts.test", rate_limit=None, transport=transport) as yts:
        assert await yts.search("tt0110001") == []
    assert len(seen) == 1


async def test_a_tmdb_movie_keeps_its_translations_logo_and_trailer(
    seen: list[httpx.Request],
) -> None:
    """The TMDB movie keeps one translation per language, the English logo and the trailer."""
    transport = _replay(
        {
            "/3/configuration": ("tmdb_configuration.json", JSON),
            "/3/movie/424242": ("tmdb_movie_with_translations.json", JSON),
        },
        seen,
    )
    async with TmdbClient(
        "http://tmdb.test/3", "token", rate_limit=None, transport=transport
    ) as tmdb:
        movie = await tmdb.movie(424242)

    assert seen[-1].url.params["append_to_response"] == "translations,images,videos"
    assert movie.logo_url == "https://image.tmdb.example/t/p/original/lg4PaperLanternEnglish.png"
    assert movie.poster_url == "https://image.tmdb.example/t/p/w500/pst4PaperLanternTall01.jpg"
    assert movie.trailer_key == "tRaIlEr0001b"
    data = movie_data(movie)
    assert data.translations is not None
    by_language = {t.language: t for t in data.translations}
    # English is the movie's own text; the empty German one says nothing; es-ES comes first.
    assert sorted(by_language) == ["es", "fr"]
    assert by_language["es"].title == "El farol de papel"
    assert by_language["es"].tagline == "Hay luces que se leen."
    assert by_language["fr"].title == "La Lanterne de papier"
    assert by_language["fr"].tagline == ""


async def test_the_torrent_caches_missing_page_is_no_torrent(seen: list[httpx.Request]) -> None:
    """The cache's HTML "missing" page (a 200) raises BadResponse: nothing is stored."""
    info_hash = "3f8a0c51b2e6d4977a1c0e5b9d2f6a8c4e1b7d30"
    transport = _replay(
        {
            f"/torrent/{info_hash.upper()}.torrent": (
                "torrent_cache_missing.html",
                "text/html; charset=utf-8",
            )
        },
        seen,
    )
    async with TorrentFileFetcher(
        "http://cache.test", rate_limit=None, transport=transport
    ) as fetcher:
        with pytest.raises(BadResponse, match="not a valid torrent file") as caught:
            await fetcher.fetch(info_hash)

    assert caught.value.code == "bad_response"
    assert [request.url.path for request in seen] == [f"/torrent/{info_hash.upper()}.torrent"]


async def test_popular_shows_ask_for_the_originals_filters(seen: list[httpx.Request]) -> None:
    """The popular-shows query asks for at least 10 votes and no null first-air dates."""
    page = {"page": 1, "results": [], "total_pages": 1, "total_results": 0}
    transport = _replay({"/3/configuration": ("tmdb_configuration.json", JSON)}, seen)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/3/discover/tv":
            seen.append(request)
            return httpx.Response(200, json=page)
        return transport.handle_request(request)

    async with TmdbClient(
        "http://tmdb.test/3", "token", rate_limit=None, transport=httpx.MockTransport(handle)
    ) as tmdb:
        await tmdb.popular_shows()

    params = seen[-1].url.params
    assert params["vote_count.gte"] == "10"
    assert params["include_null_first_air_dates"] == "false"
    assert params["sort_by"] == "popularity.desc"
